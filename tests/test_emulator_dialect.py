"""Dialect knobs and stream-rule faults: each variation on the wire, and the truth about it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig, count_tokens
from chatprobe.emulator.dialect import KNOBS, Knobs, parse_knobs
from chatprobe.emulator.faults import STREAM_RULES, parse_fault_rate
from chatprobe.emulator.schedule import parse_window
from chatprobe.errors import ConfigError
from chatprobe.profiles import load_profile
from chatprobe.sse import Comment
from tests.emulator_support import (
    OPENROUTER_MODEL,
    chat_body,
    chunks,
    open_loop,
    post_raw,
    sse_data,
    sse_events,
    wait_settled,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]


# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(
    providers=("openrouter", "aimlapi"), zero_latency=True, output_tokens=(7, 7)
)


def _stream(emulator: Emulator, knob: str = "", provider: str = "openrouter", **body: Any) -> bytes:
    model = OPENROUTER_MODEL if provider == "openrouter" else "gemini-2.0-flash-exp"
    extra = {"X-Chatprobe-Dialect": knob} if knob else {}
    request = {**chat_body(stream=True), "model": model, **body}
    response = post_raw(emulator, request, provider, **extra)
    assert response.status_code in (200, 201), response.text
    return response.content


def _choices(raw: bytes) -> list[dict[str, Any]]:
    return [c for chunk in chunks(raw) for c in chunk.get("choices", [])]


# ---------------------------------------------------------------------------- knobs


def test_knobs_parse_print_back_and_layer() -> None:
    knobs = parse_knobs("usage_every_chunk,sse_comments,line_ends=cr,tokens_per_chunk=3")
    assert knobs.sse_comments == 1 and knobs.line_ends == "cr" and knobs.tokens_per_chunk == 3
    assert parse_knobs(str(knobs)) == knobs
    header = parse_knobs("line_ends=crlf")
    assert header.over(knobs).line_ends == "crlf" and header.over(knobs).usage_every_chunk
    assert Knobs().over(knobs) == knobs


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sparkles", "unknown dialect knob 'sparkles'"),
        ("no_models=yes", "takes no value"),
        ("line_ends", "needs a value"),
        ("line_ends=nl", "expected one of cr, crlf, lf"),
        ("tokens_per_chunk=0", "positive integer"),
        ("envelope=azure", "expected one of openai, openrouter, aimlapi"),
    ],
)
def test_bad_knobs_are_one_clear_error(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        EmulatorConfig(dialect=(text,))
    assert words in str(info.value) and info.value.field == "--dialect"


def test_cli_rejects_a_bad_knob_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "emulate", "--dialect", "sparkles"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--dialect" in lines[0] and "sparkles" in lines[0]


def test_tool_call_deltas_without_index(emulator: Emulator) -> None:
    raw = _stream(emulator, "tool_calls_no_index", tools=TOOLS, tool_choice="required")
    calls = [c["delta"]["tool_calls"][0] for c in _choices(raw) if c["delta"].get("tool_calls")]
    assert len(calls) > 2 and all("index" not in call for call in calls)
    assert calls[0]["id"].startswith("call_") and calls[0]["function"]["name"] == "lookup"
    assert all("id" not in call for call in calls[1:])  # id-less deltas continue the call
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert isinstance(json.loads(arguments), dict)
    usual = _stream(emulator, tools=TOOLS, tool_choice="required")
    assert all(
        c["delta"]["tool_calls"][0]["index"] == 0
        for c in _choices(usual)
        if c["delta"].get("tool_calls")
    )


@pytest.mark.parametrize("provider", ["openrouter", "aimlapi"])
def test_usage_on_every_chunk_is_cumulative(emulator: Emulator, provider: str) -> None:
    raw = _stream(emulator, "usage_every_chunk", provider, stream_options={"include_usage": True})
    data = chunks(raw)
    assert all("usage" in c for c in data) and all(c["choices"] for c in data)
    completion = [c["usage"]["completion_tokens"] for c in data]
    assert completion == sorted(completion) and completion[-1] == 7
    assert data[-1]["usage"]["total_tokens"] == data[-1]["usage"]["prompt_tokens"] + 7


def test_litellm_usage_chunk_keeps_a_choice(emulator: Emulator) -> None:
    last = chunks(_stream(emulator, "usage_chunk_with_choice"))[-1]
    assert last["choices"] == [{"index": 0, "delta": {}}] and last["usage"]["completion_tokens"]


def test_finish_reason_on_every_chunk(emulator: Emulator) -> None:
    reasons = [c["finish_reason"] for c in _choices(_stream(emulator, "finish_reason_every_chunk"))]
    assert len(reasons) == 8 and set(reasons) == {"stop"}


def test_azure_prompt_filter_chunk_comes_first(emulator: Emulator) -> None:
    first = chunks(_stream(emulator, "azure_prompt_filter"))[0]
    assert first["choices"] == [] and first["id"] == "" and first["model"] == ""
    assert first["prompt_filter_results"][0]["prompt_index"] == 0


def test_sse_comments_between_events(emulator: Emulator) -> None:
    events = sse_events(_stream(emulator, "sse_comments=2", "aimlapi"))
    pings = [e for e in events if isinstance(e, Comment)]
    assert len(pings) == 7 // 2 and all(p.text.strip() == "keep-alive" for p in pings)


@pytest.mark.parametrize("ends", ["cr", "crlf"])
def test_line_ends(emulator: Emulator, ends: str) -> None:
    raw = _stream(emulator, f"line_ends={ends}")
    assert (b"\n" in raw) is (ends == "crlf") and b"\r" in raw
    usual = _stream(emulator)
    assert [json.loads(d)["choices"] for d in sse_data(raw) if d != "[DONE]"] == [
        json.loads(d)["choices"] for d in sse_data(usual) if d != "[DONE]"
    ]


def test_one_character_per_chunk(emulator: Emulator) -> None:
    pieces = [c["delta"]["content"] for c in _choices(_stream(emulator, "one_char_chunks"))]
    pieces = [p for p in pieces if p]
    text = "".join(c["delta"].get("content") or "" for c in _choices(_stream(emulator)))
    assert all(len(p) == 1 for p in pieces) and "".join(pieces) == text


def test_many_tokens_per_chunk(emulator: Emulator) -> None:
    pieces = [c["delta"].get("content") for c in _choices(_stream(emulator, "tokens_per_chunk=3"))]
    pieces = [p for p in pieces if p]
    assert [count_tokens(p) for p in pieces] == [3, 3, 1]


def _error(emulator: Emulator, knob: str, provider: str = "openrouter") -> httpx.Response:
    body = {**chat_body(), "model": "no-such-model"}
    return post_raw(emulator, body, provider, **{"X-Chatprobe-Dialect": knob})


def test_error_code_as_the_status_string(emulator: Emulator) -> None:
    error = _error(emulator, "error_code_as_string").json()["error"]
    assert error["code"] == "404" and error["param"] == "None"
    assert error["type"] == "invalid_request_error"


def test_error_envelope_of_another_provider(emulator: Emulator) -> None:
    aimlapi = _error(emulator, "envelope=aimlapi").json()
    assert aimlapi["statusCode"] == 404 and "error" not in aimlapi
    openai = _error(emulator, "envelope=openai", "aimlapi").json()
    assert openai["error"]["code"] == "model_not_found" and "statusCode" not in openai


def test_connection_closes_after_an_error(emulator: Emulator) -> None:
    body = orjson.dumps({**chat_body(), "model": "no-such-model"})
    request = (
        b"POST /openrouter/api/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + DEMO_KEY.encode() + b"\r\nX-Chatprobe-Dialect: "
        b"close_after_error\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while data := sock.recv(65536):  # ends: the server closed the socket
            received += data
    assert received.startswith(b"HTTP/1.1 404") and b"Connection: close" in received


def test_no_models_endpoint(emulator: Emulator) -> None:
    url = emulator.base_url("openrouter") + "/models"
    with httpx.Client(trust_env=False) as http:
        assert http.get(url).status_code == 200
        assert http.get(url, headers={"X-Chatprobe-Dialect": "no_models"}).status_code == 404


def test_every_knob_has_a_test() -> None:
    tested = {
        "reasoning",  # tests/test_emulator_reasoning.py
        "tool_calls_no_index",
        "usage_every_chunk",
        "usage_chunk_with_choice",
        "finish_reason_every_chunk",
        "azure_prompt_filter",
        "sse_comments",
        "line_ends",
        "one_char_chunks",
        "tokens_per_chunk",
        "error_code_as_string",
        "envelope",
        "close_after_error",
        "no_models",
    }
    assert tested == set(KNOBS)


def test_knobs_from_the_config_a_profile_model_and_a_window(tmp_path: Path) -> None:
    source = Path(load_profile("aimlapi").source).read_text()
    marker = "emulator: {ttft_ms: 45, ttft_sigma: 0.20, itl_ms: 6, itl_sigma: 0.15}"
    assert marker in source
    profile = tmp_path / "gemini-compat.yaml"
    profile.write_text(
        source.replace("name: aimlapi", "name: gemini-compat").replace(
            marker, "emulator: {ttft_ms: 1, itl_ms: 1, dialect: [usage_every_chunk]}"
        )
    )
    config = EmulatorConfig(
        providers=(str(profile),),
        zero_latency=True,
        dialect=("line_ends=crlf",),
        schedule=(parse_window("dialect:finish_reason_every_chunk@0-1h"),),
    )
    with Emulator.in_thread(config) as emulator:
        raw = _stream(emulator, provider="gemini-compat")
        header = _stream(emulator, "line_ends=lf", provider="gemini-compat")
        truth = emulator.truth()
    assert b"\r\n\r\n" in raw and b"\r\n\r\n" not in header  # config, then the header wins
    assert all("usage" in c for c in chunks(raw))  # the model's knob
    assert all(c["finish_reason"] for c in _choices(raw))  # the window's knob
    assert truth[0]["dialect"] == "usage_every_chunk,finish_reason_every_chunk,line_ends=crlf"
    assert truth[0]["windows"] == ["dialect#0"]


def test_the_truth_records_the_knobs_of_each_answer(emulator: Emulator) -> None:
    before = emulator.stats()["last_seq"]
    _stream(emulator, "tokens_per_chunk=2,sse_comments")
    _stream(emulator)
    first, second = emulator.truth(since=before)
    assert first["dialect"] == "sse_comments=1,tokens_per_chunk=2" and second["dialect"] is None


# ---------------------------------------------------------------------------- stream rules


def _broken_rules(raw: bytes) -> set[str]:
    """The stream rules a stream breaks, judged from its bytes alone."""
    data = sse_data(raw)
    events = [orjson.loads(d) for d in data if d != "[DONE]"]
    broken = set()
    if len({e.get("id") for e in events}) > 1:
        broken.add("id_changes")
    if len({e.get("created") for e in events}) > 1:
        broken.add("created_changes")
    finishes: dict[int, int] = {}
    for event in events:
        for choice in event.get("choices", []):
            if choice.get("finish_reason"):
                finishes[choice["index"]] = finishes.get(choice["index"], 0) + 1
    if any(n > 1 for n in finishes.values()):
        broken.add("two_finish_reasons")
    if any("usage" in e for e in events[:-1]):
        broken.add("usage_not_final")
    if not data or data[-1] != "[DONE]":
        broken.add("missing_done")
    if any("error" in e for e in events):
        broken.add("error_in_200")
    return broken


@pytest.mark.parametrize("rule", STREAM_RULES)
def test_each_stream_rule_breaks_that_rule_alone(emulator: Emulator, rule: str) -> None:
    before = emulator.stats()["last_seq"]
    response = post_raw(emulator, chat_body(), **{"X-Chatprobe-Fault": f"stream_rule={rule}"})
    assert response.status_code == 200
    assert _broken_rules(response.content) == {rule}
    (truth,) = emulator.truth(since=before)
    assert truth["stream_rule"] == rule and truth["faults"] == [f"stream_rule={rule}"]
    assert _broken_rules(_stream(emulator)) == set()  # the same request without the fault


def test_stream_rules_parse_and_plain_requests_ignore_them() -> None:
    rate = parse_fault_rate("stream_rule:created_changes=0.1")
    assert rate.fault.rule == "created_changes" and str(rate) == "stream_rule:created_changes=0.1"
    with pytest.raises(ConfigError, match="rules: id_changes"):
        parse_fault_rate("stream_rule:sideways=0.1")


@pytest.mark.parametrize("rule", ["created_changes", "two_finish_reasons"])
def test_a_rule_broken_at_a_rate_under_load_is_what_the_truth_says(rule: str) -> None:
    """10% of streams under open-loop load break the rule; the truth names exactly those."""
    count = 400
    config = EmulatorConfig(
        providers=("openrouter",),
        ttft_ms=2,
        itl_ms=1,
        sigma=0.0,
        rate_limit_rpm=0,
        output_tokens=(8, 8),
        faults=(parse_fault_rate(f"stream_rule:{rule}=0.10"),),
    )
    with Emulator.in_thread(config) as emulator:
        answers = open_loop(emulator, chat_body(), rate=200, count=count)
        truth = {t["request_id"]: t for t in wait_settled(emulator, count)}
    assert [a.status for a in answers] == [200] * count
    broken = {i for i, t in truth.items() if t["stream_rule"] is not None}
    assert {truth[i]["stream_rule"] for i in broken} == {rule}
    assert abs(len(broken) / count - 0.10) <= 0.02  # seeded per request: the same every run
    for answer in answers:  # the bytes on the wire break the rule exactly where truth says
        expected = {rule} if answer.request_id in broken else set()
        assert _broken_rules(answer.body) == expected


def test_a_scenario_block_sets_knobs() -> None:
    from chatprobe.load.launcher import emulator_config
    from chatprobe.load.scenario import parse_scenario

    base = "targets:\n  - {provider: openrouter, model: gemini-2.0-flash-001}\n"
    text = base + "emulator:\n  dialect: [usage_every_chunk, 'line_ends=cr']\n"
    assert emulator_config(parse_scenario(text), None).dialect == (
        "usage_every_chunk",
        "line_ends=cr",
    )
    with pytest.raises(ConfigError) as info:
        parse_scenario(base + "emulator: {dialect: [sparkles]}\n", "bad.yaml")
    assert str(info.value).startswith("bad.yaml:3: emulator.dialect: unknown dialect knob")


def test_one_char_chunks_under_a_capacity_model() -> None:
    from chatprobe.emulator.capacity import Capacity

    config = EmulatorConfig(
        providers=("openrouter",),
        ttft_ms=1,
        itl_ms=1,
        sigma=0.0,
        output_tokens=(6, 6),
        capacity=Capacity(tokens_per_s=500),
        dialect=("one_char_chunks",),
    )
    with Emulator.in_thread(config) as emulator:
        raw = _stream(emulator)
        (truth,) = wait_settled(emulator, 1)
    pieces = [c["delta"].get("content") for c in _choices(raw) if c["delta"].get("content")]
    assert all(len(p) == 1 for p in pieces) and truth["tokens_sent"] == 6
    assert truth["chunks"] == len(pieces) and truth["batch_mean"] == 1
