"""The official openai SDK completes plain, streamed and tool calls against every profile."""

from __future__ import annotations

import json

import pytest
from openai import OpenAI

from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig
from chatprobe.emulator.models import served_profile
from chatprobe.profiles import list_profiles, load_profile

PROFILES = list_profiles()
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city"],
        },
    },
}


# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(zero_latency=True, rate_limit_rpm=0)


def _sdk(emulator: Emulator, provider: str) -> OpenAI:
    return OpenAI(base_url=emulator.base_url(provider), api_key=DEMO_KEY, max_retries=0, timeout=10)


def _model(provider: str) -> str:
    return next(iter(load_profile(provider).models.values())).id


@pytest.mark.parametrize("provider", PROFILES)
def test_plain_completion(emulator: Emulator, provider: str) -> None:
    with _sdk(emulator, provider) as client:
        completion = client.chat.completions.create(
            model=_model(provider),
            messages=[{"role": "user", "content": "Tell me about harbors."}],
            max_tokens=20,
        )
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.model == load_profile(provider).model(_model(provider)).echo
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


@pytest.mark.parametrize("provider", PROFILES)
def test_streamed_completion(emulator: Emulator, provider: str) -> None:
    with _sdk(emulator, provider) as client:
        stream = client.chat.completions.create(
            model=_model(provider),
            messages=[{"role": "user", "content": "Tell me about harbors."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, usage = "", None, None
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
    assert text
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0
    # The same request, plain, gives the same text (seeded by the request, not by time).
    with _sdk(emulator, provider) as client:
        plain = client.chat.completions.create(
            model=_model(provider),
            messages=[{"role": "user", "content": "Tell me about harbors."}],
        )
    assert plain.choices[0].message.content == text


@pytest.mark.parametrize("provider", PROFILES)
def test_tool_call_plain(emulator: Emulator, provider: str) -> None:
    with _sdk(emulator, provider) as client:
        completion = client.chat.completions.create(
            model=_model(provider),
            messages=[{"role": "user", "content": "What's the weather in Paris?"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice="required",
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    arguments = json.loads(calls[0].function.arguments)
    assert isinstance(arguments["city"], str)
    assert arguments["unit"] in ("celsius", "fahrenheit")
    assert isinstance(arguments["days"], int)


@pytest.mark.parametrize("provider", PROFILES)
def test_tool_call_streamed(emulator: Emulator, provider: str) -> None:
    body = {
        "model": _model(provider),
        "messages": [{"role": "user", "content": "Please call get_weather for Oslo."}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
    }
    with _sdk(emulator, provider) as client:
        plain = client.chat.completions.create(**body)  # type: ignore[call-overload]
        with client.chat.completions.stream(**body) as stream:  # assembles deltas itself
            for _ in stream:
                pass
            final = stream.get_final_completion()
    streamed_call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    plain_call = plain.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls"
    assert streamed_call.function.name == "get_weather"
    assert streamed_call.id == plain_call.id
    assert json.loads(streamed_call.function.arguments) == json.loads(plain_call.function.arguments)


@pytest.mark.parametrize("provider", PROFILES)
def test_models_list(emulator: Emulator, provider: str) -> None:
    with _sdk(emulator, provider) as client:
        ids = [m.id for m in client.models.list()]
    assert ids == [m.id for m in served_profile(provider).models.values()]
    assert "chatprobe/reasoner" in ids  # the emulator-only models are served too
