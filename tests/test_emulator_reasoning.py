"""Reasoning models: thinking streamed before the answer in each dialect, with ground truth."""

from __future__ import annotations

from typing import Any

import pytest

from chatprobe.client import ChatClient
from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig, count_tokens
from chatprobe.emulator.dialect import REASONING_FORMATS
from chatprobe.emulator.models import emulated_models, served_profile
from chatprobe.profiles import load_profile
from tests.emulator_support import chunks, post_raw

REASONER = "chatprobe/reasoner"
THINK = 5
ANSWER = 4


# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(
    providers=("openrouter", "aimlapi"),
    ttft_ms=5,
    itl_ms=3,
    sigma=0.0,
    output_tokens=(ANSWER, ANSWER),
    rate_limit_rpm=0,
)


def _ask(
    emulator: Emulator,
    provider: str = "openrouter",
    *,
    model: str = REASONER,
    stream: bool = True,
    dialect: str | None = None,
    think: int = THINK,
    **body: Any,
) -> tuple[Any, dict[str, Any]]:
    before = emulator.stats()["last_seq"]
    extra = {"X-Chatprobe-Reasoning-Tokens": str(think)}
    if dialect:
        extra["X-Chatprobe-Dialect"] = dialect
    request = {
        "model": model,
        "messages": [{"role": "user", "content": "Think, then answer."}],
        "stream": stream,
        "stream_options": {"include_usage": True} if stream else None,
        **body,
    }
    response = post_raw(
        emulator, {k: v for k, v in request.items() if v is not None}, provider, **extra
    )
    (truth,) = emulator.truth(since=before)
    return response, truth


def _deltas(raw: bytes) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks(raw) if c.get("choices")]


def _usage(raw: bytes) -> dict[str, Any]:
    return next(c["usage"] for c in chunks(raw) if c.get("usage"))


def _thinking(delta: dict[str, Any]) -> bool:
    return any(k in delta for k in ("reasoning", "reasoning_content", "reasoning_details"))


def test_the_reasoning_models_are_served_and_labelled_emulated() -> None:
    models = emulated_models()
    assert {m.id for m in models.values()} == {REASONER, "chatprobe/reasoner-encrypted"}
    for model in models.values():
        assert model.latency.reasoning_tokens and "emulated" in (model.pricing.source or "")
    profile = served_profile("openrouter")
    assert "chatprobe-reasoner" in profile.models
    assert "chatprobe-reasoner" not in load_profile("openrouter").models  # docs untouched


@pytest.mark.parametrize(
    ("provider", "dialect", "field"),
    [
        ("openrouter", None, "reasoning"),
        ("aimlapi", None, "reasoning_content"),
        ("openrouter", "reasoning=reasoning_content", "reasoning_content"),
        ("aimlapi", "reasoning=reasoning", "reasoning"),
        ("openrouter", "reasoning=reasoning_details", "reasoning_details"),
    ],
)
def test_thinking_streams_before_the_answer(
    emulator: Emulator, provider: str, dialect: str | None, field: str
) -> None:
    response, truth = _ask(emulator, provider, dialect=dialect)
    deltas = _deltas(response.content)
    thinking = [d for d in deltas if _thinking(d)]
    answer = [d for d in deltas if d.get("content")]
    assert len(thinking) == THINK and len(answer) == ANSWER
    assert deltas.index(thinking[-1]) < deltas.index(answer[0])  # all thinking first
    assert all(field in d for d in thinking)
    text = "".join(d.get("reasoning") or d.get("reasoning_content") or "" for d in thinking)
    details = [d["reasoning_details"][0] for d in thinking if "reasoning_details" in d]
    if details:
        assert all(x["type"] == "reasoning.text" for x in details)
        text = text or "".join(x["text"] for x in details)
    assert count_tokens(text) == THINK
    if field != "reasoning":
        assert "reasoning" not in thinking[0]
    assert "role" in deltas[0]
    usage = _usage(response.content)
    assert usage["completion_tokens"] == THINK + ANSWER
    assert usage["completion_tokens_details"] == {"reasoning_tokens": THINK}
    assert truth["reasoning_tokens"] == THINK and truth["tokens_sent"] == THINK + ANSWER
    assert truth["t_first_content_ns"] == truth["t_first_reasoning_ns"]
    assert truth["t_first_answer_ns"] > truth["t_first_reasoning_ns"]


def test_encrypted_reasoning_is_silent_then_one_opaque_detail(emulator: Emulator) -> None:
    _, shown_truth = _ask(emulator, think=20)
    response, truth = _ask(emulator, model="chatprobe/reasoner-encrypted", think=20)
    deltas = _deltas(response.content)
    assert deltas[0]["reasoning_details"][0]["type"] == "reasoning.encrypted"
    assert deltas[0]["reasoning_details"][0]["data"]
    assert not any(_thinking(d) for d in deltas[1:])
    assert _usage(response.content)["completion_tokens_details"] == {"reasoning_tokens": 20}
    # nothing is written while it thinks, so its first token comes after the thinking time
    ttft = truth["t_first_content_ns"] - truth["t_received_ns"]
    shown_ttft = shown_truth["t_first_content_ns"] - shown_truth["t_received_ns"]
    assert ttft > shown_ttft
    assert truth["t_first_reasoning_ns"] == truth["t_first_content_ns"]
    assert truth["t_first_answer_ns"] > truth["t_first_reasoning_ns"]


@pytest.mark.parametrize(
    ("provider", "dialect", "expected"),
    [
        ("openrouter", None, {"reasoning", "reasoning_details"}),
        ("aimlapi", None, {"reasoning_content"}),
        ("openrouter", "reasoning=encrypted", {"reasoning_details"}),
    ],
)
def test_plain_answers_carry_the_reasoning(
    emulator: Emulator, provider: str, dialect: str | None, expected: set[str]
) -> None:
    response, truth = _ask(emulator, provider, stream=False, dialect=dialect)
    message = response.json()["choices"][0]["message"]
    present = {k for k in ("reasoning", "reasoning_content", "reasoning_details") if message.get(k)}
    assert present == expected
    assert count_tokens(message["content"]) == ANSWER
    assert response.json()["usage"]["completion_tokens_details"] == {"reasoning_tokens": THINK}
    assert (
        truth["t_first_reasoning_ns"] == truth["t_first_answer_ns"] == truth["t_first_content_ns"]
    )


def test_reasoning_exclude_thinks_without_showing(emulator: Emulator) -> None:
    response, truth = _ask(emulator, think=20, reasoning={"exclude": True})
    deltas = _deltas(response.content)
    assert not any(_thinking(d) for d in deltas)
    assert deltas[0]["role"] == "assistant" and deltas[0]["content"]
    assert _usage(response.content)["completion_tokens_details"] == {"reasoning_tokens": 20}
    assert truth["t_first_reasoning_ns"] is None
    assert truth["t_first_answer_ns"] == truth["t_first_content_ns"]


def test_max_tokens_counts_reasoning_first(emulator: Emulator) -> None:
    response, truth = _ask(emulator, think=THINK, max_tokens=3)
    deltas = _deltas(response.content)
    assert sum(1 for d in deltas if _thinking(d)) == 3 and not any(d.get("content") for d in deltas)
    assert chunks(response.content)[-2]["choices"][0]["finish_reason"] == "length"
    assert truth["t_first_answer_ns"] is None and truth["completion_tokens"] == 3
    capped, _ = _ask(emulator, think=THINK, reasoning={"max_tokens": 2})
    assert _usage(capped.content)["completion_tokens_details"] == {"reasoning_tokens": 2}


def test_a_tool_call_follows_the_thinking(emulator: Emulator) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    response, truth = _ask(emulator, tools=tools, tool_choice="required")
    deltas = _deltas(response.content)
    calls = [d for d in deltas if d.get("tool_calls")]
    assert calls and deltas.index(calls[0]) == THINK
    assert calls[0]["tool_calls"][0]["function"]["name"] == "lookup"
    assert truth["t_first_answer_ns"] > truth["t_first_reasoning_ns"]


def test_other_models_have_no_reasoning_fields(emulator: Emulator) -> None:
    response, truth = _ask(emulator, model="google/gemini-2.0-flash-001")
    assert not any(_thinking(d) for d in _deltas(response.content))
    assert "completion_tokens_details" not in _usage(response.content)
    assert truth["reasoning_tokens"] is None and truth["t_first_reasoning_ns"] is None
    assert truth["t_first_answer_ns"] == truth["t_first_content_ns"]


@pytest.mark.parametrize(
    ("header", "value", "words"),
    [
        ("X-Chatprobe-Dialect", "reasoning=loud", "expected one of"),
        ("X-Chatprobe-Dialect", "sparkles", "unknown dialect knob 'sparkles'"),
        ("X-Chatprobe-Reasoning-Tokens", "many", "must be an integer"),
    ],
)
def test_bad_control_headers_are_a_400(
    emulator: Emulator, header: str, value: str, words: str
) -> None:
    response = post_raw(
        emulator,
        {"model": REASONER, "messages": [{"role": "user", "content": "x"}]},
        **{header: value},
    )
    assert response.status_code == 400 and words in response.json()["error"]["message"]


def test_every_format_is_reachable_by_header(emulator: Emulator) -> None:
    for fmt in REASONING_FORMATS:
        response, _ = _ask(emulator, dialect=f"reasoning={fmt}")
        assert response.status_code == 200 and _deltas(response.content)


def test_chatprobe_client_addresses_the_reasoner_through_the_served_profile(
    emulator: Emulator,
) -> None:
    with ChatClient(emulator.profile("openrouter"), api_key=DEMO_KEY) as client:
        record = client.chat(
            {"messages": [{"role": "user", "content": "hi"}], "stream": True},
            model="chatprobe-reasoner",
        )
    assert record.status == 200 and record.error_class is None
    assert record.usage is not None and record.usage["completion_tokens_details"]
    assert record.text  # the answer (what the client makes of reasoning is its own business)
