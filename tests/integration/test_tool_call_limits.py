"""max_tokens applies to tool calls too: the emulator cuts arguments, the checks accept it."""

from __future__ import annotations

import pytest

from chatprobe.client import ChatClient
from chatprobe.emulator import DEMO_KEY, Emulator

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            },
        },
    }
]


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_cuts_tool_call_arguments(stream: bool) -> None:
    with (
        Emulator.in_thread(providers=("openrouter",)) as emu,
        ChatClient(emu.profile("openrouter"), api_key=DEMO_KEY) as client,
    ):
        body = {
            "messages": [{"role": "user", "content": "weather in Paris?"}],
            "tools": TOOLS,
            "tool_choice": "required",
            "stream": stream,
        }
        full = client.chat(body, model="gemini-2.0-flash-001")
        cut = client.chat({**body, "max_tokens": 3}, model="gemini-2.0-flash-001")
    assert full.ok and cut.ok
    assert full.choices[0].finish_reason == "tool_calls"
    assert cut.choices[0].finish_reason == "length"
    assert cut.output_tokens == 3 < full.output_tokens
    whole = full.choices[0].tool_calls[0]["function"]["arguments"]
    part = cut.choices[0].tool_calls[0]["function"]["arguments"]
    assert whole.startswith(part) and len(part) < len(whole)
