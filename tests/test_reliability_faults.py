"""Provider faults, one request at a time: the client classifies, the checks name the failure.

Two sources of misbehaviour:

* every fault kind of the emulator (``X-Chatprobe-Fault``), streamed and plain, for an
  OpenRouter-shaped and an AI/ML API-shaped provider;
* :mod:`tests.fake_servers.hostile`: connections cut at seeded byte offsets of a valid answer,
  garbage, giant lines and headers, NUL bytes, invalid UTF-8, broken chunked encoding, empty
  and HTML 200s, JSON with wrong types everywhere, JSON nested 1000 deep.

For each exchange: :meth:`ChatClient.chat` returns a record (it never raises) whose error
class is the documented one and never ``client_error`` (a harness bug); the sample it
becomes serialises; the whole check registry runs on it without a check crashing; and a
faulty exchange fails the check named for its error class (:data:`NAMED_CHECK`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chatprobe.checks import CheckContext, Evaluation, evaluate
from chatprobe.client import ChatClient, Timeouts
from chatprobe.emulator import DEMO_KEY, FAULT_KINDS, Emulator, EmulatorConfig
from chatprobe.profiles import ProviderProfile, custom_profile
from chatprobe.record import ErrorClass, RequestRecord
from chatprobe.suites.model import CaseRun
from tests.fake_servers.hostile import BEHAVIOURS, WRONG_BODIES, HostileServer
from tests.results_support import sample_of

E = ErrorClass
BODY: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Explain why rivers meander."}],
    "max_tokens": 24,
}

# The check that must fail when a record carries each error class.
NAMED_CHECK = {
    E.HTTP_STATUS: "expected_status",
    E.RATE_LIMITED: "expected_status",
    E.UNAVAILABLE: "expected_status",
    E.CONNECT_ERROR: "response_complete",
    E.TIMEOUT_CONNECT: "response_complete",
    E.TIMEOUT_FIRST_BYTE: "response_complete",
    E.TIMEOUT_IDLE: "response_complete",
    E.TIMEOUT_TOTAL: "response_complete",
    E.CONNECTION_RESET: "response_complete",
    E.TRUNCATED_BODY: "response_complete",
    E.PROTOCOL_ERROR: "response_complete",
    E.TRUNCATED_STREAM: "response_complete",
    E.BAD_CONTENT_TYPE: "content_type",
    E.BAD_JSON: "json_body",
    E.MIDSTREAM_ERROR: "midstream_error",
    E.EMPTY_RESPONSE: "assistant_message",
}

# Emulator fault kind -> (class when streamed, class when plain); docs/emulator.md "Faults".
EMULATOR_EXPECTED: dict[str, tuple[E | None, E | None]] = {
    "rate_limit_429": (E.RATE_LIMITED, E.RATE_LIMITED),
    "server_500": (E.HTTP_STATUS, E.HTTP_STATUS),
    "bad_gateway_502": (E.HTTP_STATUS, E.HTTP_STATUS),
    "unavailable_503": (E.UNAVAILABLE, E.UNAVAILABLE),
    "no_credits": (E.HTTP_STATUS, E.HTTP_STATUS),
    "html_error": (E.HTTP_STATUS, E.HTTP_STATUS),
    "slow_headers": (None, None),
    "stall": (E.TIMEOUT_IDLE, E.TIMEOUT_IDLE),
    "reset_midstream": (E.CONNECTION_RESET, E.CONNECTION_RESET),
    "truncated_body": (E.TRUNCATED_STREAM, E.TRUNCATED_BODY),  # a clean close (FIN) mid-body
    "truncated_stream": (E.TRUNCATED_STREAM, None),  # stream-only kinds: a plain answer is fine
    "malformed_json_chunk": (E.BAD_JSON, E.BAD_JSON),
    "missing_done": (None, None),  # complete but for [DONE]: a finding and an anomaly
    "midstream_error": (E.MIDSTREAM_ERROR, E.MIDSTREAM_ERROR),
    "empty_200": (E.TRUNCATED_STREAM, E.BAD_JSON),
    "stream_rule": (E.MIDSTREAM_ERROR, None),  # with its rule error_in_200; stream-only
}
FAULT_PARAM = {"stall": "=1", "slow_headers": "=0.2", "stream_rule": "=error_in_200"}

# Hostile behaviour -> (classes allowed streamed, classes allowed plain). Sets where the
# bytes are random (seeded per request, so they depend on the request's position).
HOSTILE_EXPECTED: dict[str, tuple[set[E | None], set[E | None]]] = {
    "valid": ({None}, {None}),
    "silent_close": ({E.CONNECTION_RESET}, {E.CONNECTION_RESET}),
    "garbage": ({E.PROTOCOL_ERROR, E.CONNECTION_RESET}, {E.PROTOCOL_ERROR, E.CONNECTION_RESET}),
    "garbage_body": ({E.TRUNCATED_STREAM, E.BAD_JSON}, {E.BAD_JSON}),
    "giant_line": ({E.BAD_JSON}, {None}),  # plain: a valid 3 MB answer
    "giant_header": ({E.PROTOCOL_ERROR}, {E.PROTOCOL_ERROR}),
    "nul_bytes": ({E.BAD_JSON}, {E.BAD_JSON}),
    "invalid_utf8": ({None}, {E.BAD_JSON}),  # SSE text decodes with U+FFFD, as WHATWG says
    "bad_chunk_size": ({E.PROTOCOL_ERROR}, {E.PROTOCOL_ERROR}),
    "chunk_overrun": ({E.PROTOCOL_ERROR}, {E.PROTOCOL_ERROR}),
    "chunk_short": ({E.TRUNCATED_STREAM}, {E.TRUNCATED_STREAM}),  # always an event stream
    "empty_200": ({E.TRUNCATED_STREAM}, {E.BAD_JSON}),
    "html_200": ({E.BAD_CONTENT_TYPE}, {E.BAD_CONTENT_TYPE}),
    "json_array_200": ({E.BAD_CONTENT_TYPE}, {E.BAD_JSON}),
    "content_length_lie": ({E.TRUNCATED_BODY}, {E.TRUNCATED_BODY}),  # always a JSON body
    "bad_status_line": ({E.PROTOCOL_ERROR}, {E.PROTOCOL_ERROR}),
    "headers_no_end": ({E.CONNECTION_RESET}, {E.CONNECTION_RESET}),
    "stall_headers": ({E.TIMEOUT_IDLE}, {E.TIMEOUT_IDLE}),
    "wrong_types": ({E.MIDSTREAM_ERROR}, {None, E.BAD_JSON, E.MIDSTREAM_ERROR, E.EMPTY_RESPONSE}),
    "deep_json": ({E.MIDSTREAM_ERROR}, {E.MIDSTREAM_ERROR}),
    "echo_key": ({E.MIDSTREAM_ERROR}, {E.HTTP_STATUS}),
    "hostile_content": ({None}, {None}),
    "hostile_error": ({E.HTTP_STATUS}, {E.HTTP_STATUS}),
    "hostile_midstream": ({E.MIDSTREAM_ERROR}, {E.HTTP_STATUS}),
}
# Answers that are what a client should get: the checks may pass them.
BENIGN = {("valid", True), ("valid", False), ("hostile_content", True), ("hostile_content", False)}
BENIGN.add(("giant_line", False))
CUTS_STREAMED = 60
CUTS_PLAIN = 30


def test_every_kind_is_in_the_matrix() -> None:
    assert set(EMULATOR_EXPECTED) == set(FAULT_KINDS)
    assert set(HOSTILE_EXPECTED) | {"cut", "cut_rst"} == set(BEHAVIOURS)


# ---------------------------------------------------------------------------- helpers


def judge(profile: ProviderProfile, record: RequestRecord, body: dict[str, Any]) -> Evaluation:
    """Run the whole check registry on ``record``; no check may crash; the sample serialises."""
    orjson.dumps(sample_of(record))  # what a load run writes
    case = CaseRun(
        suite="reliability",
        case="fault",
        provider=profile.name,
        model=record.model,
        model_id=record.model_id,
        source="tests/test_reliability_faults.py:1",
        body=body,
    )
    evaluation = evaluate(CheckContext.for_case(profile, case), record, case)
    crashed = [p for p in evaluation.problems if "crashed" in p]
    assert crashed == [], crashed
    for result in evaluation.results.values():
        for finding in result.findings:
            assert isinstance(str(finding), str)
    return evaluation


def assert_named_failure(evaluation: Evaluation, record: RequestRecord) -> None:
    """A faulty record fails the case, and fails the check named for its class."""
    assert record.error_class is not ErrorClass.CLIENT_ERROR, record.error_detail
    if record.error_class is None:
        return
    assert evaluation.outcome == "failed", evaluation.statuses()
    name = NAMED_CHECK[record.error_class]
    status = evaluation.results[name].status
    assert status == "fail", f"{name} is {status} for {record.error_class}: {record.error_detail}"


# ---------------------------------------------------------------------------- emulator


# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(
    providers=("openrouter", "aimlapi"),
    zero_latency=True,
    output_tokens=(12, 12),
    rate_limit_rpm=0,
    seed=8,
)


MODELS = {"openrouter": "gemini-2.0-flash-001", "aimlapi": "gemini-2.0-flash-exp"}


@pytest.mark.parametrize("provider", sorted(MODELS))
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_emulator_fault(emulator: Emulator, provider: str, stream: bool, kind: str) -> None:
    profile = emulator.profile(provider)
    idle = 0.3 if kind == "stall" else 10.0
    body = {**BODY, "stream": stream}
    with ChatClient(profile, api_key=DEMO_KEY, timeouts=Timeouts(5, 10, idle, 30)) as client:
        record = client.chat(
            body,
            model=MODELS[provider],
            headers={"X-Chatprobe-Fault": kind + FAULT_PARAM.get(kind, "")},
        )
    want = EMULATOR_EXPECTED[kind][0 if stream else 1]
    assert record.error_class == want, (record.status, record.error_detail)
    evaluation = judge(profile, record, body)
    assert_named_failure(evaluation, record)
    if kind == "missing_done" and stream:  # never a lost measurement, always a finding
        assert record.ttft_ms is not None and record.output_tokens > 0
        assert evaluation.results["stream_done_last"].status == "fail"


# ---------------------------------------------------------------------------- hostile server


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer(seed=11) as server:
        yield server
        assert server.errors == []


def _hostile_call(
    server: HostileServer, behaviour: str, stream: bool, *, idle: float = 10.0
) -> tuple[ProviderProfile, RequestRecord, dict[str, Any]]:
    profile = custom_profile(server.base_url, "HOSTILE_API_KEY", name="hostile")
    body = {**BODY, "stream": stream}
    with ChatClient(profile, api_key="hostile-key-1", timeouts=Timeouts(5, 10, idle, 30)) as client:
        record = client.chat(body, model="hostile-1", headers={"X-Hostile": behaviour})
    return profile, record, body


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
@pytest.mark.parametrize("behaviour", sorted(HOSTILE_EXPECTED))
def test_hostile_behaviour(hostile: HostileServer, behaviour: str, stream: bool) -> None:
    ask = "stall_headers:1" if behaviour == "stall_headers" else behaviour
    idle = 0.3 if behaviour == "stall_headers" else 10.0
    profile, record, body = _hostile_call(hostile, ask, stream, idle=idle)
    allowed = HOSTILE_EXPECTED[behaviour][0 if stream else 1]
    assert record.error_class in allowed, (record.status, record.error_detail)
    evaluation = judge(profile, record, body)
    assert_named_failure(evaluation, record)
    if (behaviour, stream) not in BENIGN:
        assert evaluation.outcome == "failed", evaluation.statuses()


@pytest.mark.parametrize("index", range(len(WRONG_BODIES)))
def test_wrong_types_in_a_plain_body(hostile: HostileServer, index: int) -> None:
    profile, record, body = _hostile_call(hostile, f"wrong_types:{index}", False)
    assert record.error_class in (None, E.BAD_JSON, E.MIDSTREAM_ERROR, E.EMPTY_RESPONSE), (
        record.error_detail
    )
    evaluation = judge(profile, record, body)
    assert_named_failure(evaluation, record)
    assert evaluation.outcome == "failed", evaluation.statuses()


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_connection_closed_at_seeded_offsets(hostile: HostileServer, stream: bool) -> None:
    """Cut a valid answer at seeded byte offsets (FIN, and RST for a third of them): every
    cut before the end of ``data: [DONE]`` (plain: before the last byte) is an error; a cut
    after it leaves a complete answer, noted as an anomaly."""
    cuts = CUTS_STREAMED if stream else CUTS_PLAIN
    classes: dict[str, int] = {}
    for i in range(cuts):
        behaviour = "cut_rst" if i % 3 == 2 else "cut"
        profile, record, body = _hostile_call(hostile, behaviour, stream)
        _, name, sent, done_at = hostile.log[-1]
        assert name == behaviour
        key = str(record.error_class.value if record.error_class else None)
        classes[key] = classes.get(key, 0) + 1
        if stream and done_at is not None and sent >= done_at:
            assert record.error_class is None, (sent, done_at, record.error_detail)
        elif not stream or done_at is None or sent < done_at - 6:
            assert record.error_class is not None, (sent, done_at)
        evaluation = judge(profile, record, body)
        assert_named_failure(evaluation, record)
    print(f"\n{cuts} cuts ({'stream' if stream else 'plain'}): {classes}")
    assert len(classes) >= 2
