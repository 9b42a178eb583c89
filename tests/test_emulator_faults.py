"""Every fault kind is reachable, and this is what chatprobe's client records for it."""

from __future__ import annotations

from typing import Any

import pytest

from chatprobe.client import ChatClient, Timeouts
from chatprobe.emulator import DEMO_KEY, FAULT_KINDS, Emulator, EmulatorConfig, parse_fault_rate
from chatprobe.errors import ConfigError
from chatprobe.profiles import list_profiles
from chatprobe.record import ErrorClass, RequestRecord

BODY = {"messages": [{"role": "user", "content": "Tell me a long story."}]}
FAST = Timeouts(connect=5, first_byte=0.3, idle=0.3, total=20)

# (fault header, stream?, expected error class or None, expected status)
CASES: list[tuple[str, bool, ErrorClass | None, int | None]] = [
    ("rate_limit_429", True, ErrorClass.RATE_LIMITED, 429),
    ("429=7", False, ErrorClass.RATE_LIMITED, 429),
    ("server_500", True, ErrorClass.HTTP_STATUS, 500),
    ("bad_gateway_502", False, ErrorClass.HTTP_STATUS, 502),
    ("unavailable_503", True, ErrorClass.UNAVAILABLE, 503),
    ("html_error", True, ErrorClass.HTTP_STATUS, 502),
    ("html_error=504", False, ErrorClass.HTTP_STATUS, 504),
    ("reset_midstream", True, ErrorClass.CONNECTION_RESET, 200),
    ("reset_midstream", False, ErrorClass.CONNECTION_RESET, 200),
    ("stall=1.5", True, ErrorClass.TIMEOUT_IDLE, 200),
    ("stall=1.5", False, ErrorClass.TIMEOUT_IDLE, 200),
    ("slow_headers=1.5", True, ErrorClass.TIMEOUT_FIRST_BYTE, None),
    ("slow_headers=1.5", False, ErrorClass.TIMEOUT_FIRST_BYTE, None),
    ("malformed_json_chunk", True, ErrorClass.BAD_JSON, 200),
    ("malformed_json_chunk", False, ErrorClass.BAD_JSON, 200),
    ("missing_done", True, None, 200),  # complete but for [DONE]: an anomaly, not an error
    ("midstream_error", True, ErrorClass.MIDSTREAM_ERROR, 200),
    ("midstream_error", False, ErrorClass.MIDSTREAM_ERROR, 200),
    ("truncated_body", False, ErrorClass.TRUNCATED_BODY, 200),
    ("truncated_body", True, ErrorClass.TRUNCATED_STREAM, 200),  # chunked, no terminator, FIN
    ("truncated_stream", True, ErrorClass.TRUNCATED_STREAM, 200),
    ("empty_200", False, ErrorClass.BAD_JSON, 200),
    ("empty_200", True, ErrorClass.TRUNCATED_STREAM, 200),
    ("stream_rule=missing_done", True, None, 200),  # an anomaly, as missing_done
    ("stream_rule=error_in_200", True, ErrorClass.MIDSTREAM_ERROR, 200),
]


# OpenRouter (status 200 on success) keeps the expected statuses simple; envelopes of
# the other dialects are covered in test_emulator_profiles.py and below.
# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(
    providers=("openrouter",), zero_latency=True, rate_limit_rpm=0, output_tokens=(30, 30)
)


def _send(
    emulator: Emulator,
    fault: str,
    stream: bool,
    provider: str = "openrouter",
    timeouts: Timeouts = FAST,
) -> RequestRecord:
    with ChatClient(emulator.profile(provider), api_key=DEMO_KEY, timeouts=timeouts) as client:
        return client.chat(
            {**BODY, "stream": stream},
            model="gemini-2.0-flash-001",
            headers={"X-Chatprobe-Fault": fault},
        )


def _truth(emulator: Emulator, seq_before: int) -> dict[str, Any]:
    records = emulator.truth(since=seq_before)
    assert len(records) == 1
    return records[0]


def test_every_kind_has_a_case() -> None:
    covered = {case[0].partition("=")[0] for case in CASES} | {"no_credits"}
    covered = {{"429": "rate_limit_429"}.get(k, k) for k in covered}
    assert covered == set(FAULT_KINDS)


@pytest.mark.parametrize(
    ("fault", "stream", "expected", "status"),
    CASES,
    ids=[f"{c[0]}-{'stream' if c[1] else 'plain'}" for c in CASES],
)
def test_fault_is_classified(
    emulator: Emulator, fault: str, stream: bool, expected: ErrorClass | None, status: int | None
) -> None:
    before = emulator.stats()["last_seq"]
    record = _send(emulator, fault, stream)
    print(f"\n{fault} ({'stream' if stream else 'plain'}): {record.summary_line()}")
    assert record.error_class is expected, record.summary_line()
    assert record.status == status
    truth = _truth(emulator, before)
    kind = fault.partition("=")[0]
    assert truth["faults"] and truth["faults"][0].startswith(
        {"429": "rate_limit_429"}.get(kind, kind)
    )
    if kind in ("rate_limit_429", "429", "unavailable_503"):
        assert record.response_headers["retry-after"] == ("7" if fault == "429=7" else "1")
        assert record.json is not None and record.json["error"]["code"] == status
    if kind == "html_error":
        assert record.content_type == "text/html"
        assert record.body.lstrip().lower().startswith(b"<!doctype html>")
    if kind == "reset_midstream":
        assert _wait_outcome(emulator, truth["seq"]) == "reset"
        if stream:
            assert record.text, "some content arrived before the reset"
    if kind == "truncated_body":
        assert _wait_outcome(emulator, truth["seq"]) == "closed"
    if kind in ("stall", "slow_headers"):
        assert _wait_outcome(emulator, truth["seq"]) == "client_closed"
    if kind == "missing_done":
        assert not record.done and any(a.startswith("missing_done") for a in record.anomalies)
    if kind == "midstream_error" and stream:
        assert record.choices[0].finish_reason == "error"
        assert record.error_payload["code"] == 502
        assert record.text, "content before the error event is kept"


def _wait_outcome(emulator: Emulator, seq: int) -> str:
    """The truth record's outcome once the emulator has noticed how the exchange ended."""
    import time

    deadline = time.monotonic() + 5
    while True:
        outcome = next(t["outcome"] for t in emulator.truth(since=seq - 1) if t["seq"] == seq)
        if outcome != "in_flight" or time.monotonic() > deadline:
            return str(outcome)
        time.sleep(0.02)


@pytest.mark.parametrize(("fault", "stream"), [("stall=0.4", True), ("slow_headers=0.4", False)])
def test_short_stall_and_slow_headers_still_complete(
    emulator: Emulator, fault: str, stream: bool
) -> None:
    before = emulator.stats()["last_seq"]
    record = _send(emulator, fault, stream, timeouts=Timeouts(first_byte=5, idle=5))
    assert record.ok, record.summary_line()
    truth = _truth(emulator, before)
    if stream:
        # The stall is scheduled from the request's arrival, so the gap after the first
        # (already late) write can be a little under 400 ms.
        assert max(record.chunk_gaps_ms) >= 300
        assert truth["outcome"] == "complete" and truth["tokens_sent"] == 30
    else:
        assert record.ttfb_ms is not None and record.ttfb_ms >= 400
        assert truth["t_headers_ns"] - truth["t_received_ns"] >= 400e6


@pytest.mark.parametrize(("provider", "status"), [("openrouter", 402), ("aimlapi", 403)])
def test_no_credits_status_per_provider(provider: str, status: int) -> None:
    with Emulator.in_thread(providers=(provider,), zero_latency=True) as emulator:
        model = "gemini-2.0-flash-001" if provider == "openrouter" else "gemini-2.0-flash-exp"
        with ChatClient(emulator.profile(provider), api_key=DEMO_KEY) as client:
            record = client.chat(BODY, model=model, headers={"X-Chatprobe-Fault": "no_credits"})
    assert record.error_class is ErrorClass.HTTP_STATUS and record.status == status


def test_fault_parameter_counts_chunks_before_the_reset(emulator: Emulator) -> None:
    before = emulator.stats()["last_seq"]
    record = _send(emulator, "reset_midstream=3", True)
    assert record.error_class is ErrorClass.CONNECTION_RESET
    assert len(record.content_times_ns) == 3
    _wait_outcome(emulator, before + 1)
    assert _truth(emulator, before)["tokens_sent"] == 3


def test_stall_then_reset(emulator: Emulator) -> None:
    record = _send(emulator, "stall=0.4,reset_midstream", True, timeouts=Timeouts(idle=5))
    assert record.error_class is ErrorClass.CONNECTION_RESET
    assert record.t_end_ns is not None and record.content_times_ns
    # the reset waited for the stall: far longer than the zero-latency chunks before it (half
    # the stall as the bound: a timer may fire a little before the client's stamps say)
    assert record.t_end_ns - record.content_times_ns[-1] > 0.5 * 0.4e9


def test_unknown_fault_is_a_400_naming_it(emulator: Emulator) -> None:
    record = _send(emulator, "gremlins", False)
    assert record.status == 400
    assert "gremlins" in record.json["error"]["message"]


def test_fault_rates_are_seeded() -> None:
    def statuses(seed: int) -> list[int | None]:
        config = EmulatorConfig(
            providers=("openrouter",),
            zero_latency=True,
            seed=seed,
            faults=(parse_fault_rate("500=0.3"), parse_fault_rate("midstream_error=0.2")),
        )
        with (
            Emulator.in_thread(config) as emulator,
            ChatClient(emulator.profile("openrouter"), api_key=DEMO_KEY) as client,
        ):
            out = []
            for _ in range(40):
                record = client.chat({**BODY, "stream": True}, model="gemini-2.0-flash-001")
                out.append(
                    -1 if record.error_class is ErrorClass.MIDSTREAM_ERROR else record.status
                )
            stats = emulator.stats()
        assert stats["by_fault"].get("server_500", 0) == out.count(500)
        assert stats["by_fault"].get("midstream_error", 0) == out.count(-1)
        return out

    first, again, other = statuses(1), statuses(1), statuses(2)
    assert first == again
    assert first != other
    assert 4 <= first.count(500) <= 22 and 1 <= first.count(-1) <= 16


@pytest.mark.parametrize(
    "text",
    ["nonsense=0.1", "500", "500=2", "stall:abc=0.1", "500=0.8 "],
)
def test_bad_fault_rates_are_config_errors(text: str) -> None:
    if text == "500=0.8 ":
        with pytest.raises(ConfigError, match="add up"):
            EmulatorConfig(faults=(parse_fault_rate(text), parse_fault_rate("502=0.5")))
        return
    with pytest.raises(ConfigError, match="--fault"):
        parse_fault_rate(text)


@pytest.mark.parametrize("provider", list_profiles())
def test_status_faults_use_the_provider_envelope(provider: str) -> None:
    from chatprobe import specs
    from chatprobe.profiles import load_profile

    profile = load_profile(provider)
    with Emulator.in_thread(providers=(provider,), zero_latency=True) as emulator:
        for fault, status in (("429", 429), ("500", 500), ("502", 502), ("503", 503)):
            with ChatClient(emulator.profile(provider), api_key=DEMO_KEY) as client:
                record = client.chat(
                    BODY, model=next(iter(profile.models)), headers={"X-Chatprobe-Fault": fault}
                )
            assert record.status == status
            assert not specs.validate(profile.schema_level, "error", record.json)
