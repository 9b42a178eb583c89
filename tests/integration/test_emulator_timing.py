"""The client's TTFT against the emulator's ground truth, per profile, at low load.

Client TTFT = first content event's arrival - request sent (client clock); truth TTFT = first
content write - request fully read (emulator clock). Both are ``perf_counter_ns`` on one
machine, so the difference is the request's and the first event's time on the wire and in
the two HTTP stacks. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from chatprobe.client import ChatClient
from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig
from chatprobe.kernelclock import KERNEL_TIMESTAMPS
from chatprobe.profiles import list_profiles, load_profile

REQUESTS = 30


# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(
    ttft_ms=30,
    itl_ms=3,
    sigma=0.2,
    output_tokens=(12, 12),
    rate_limit_rpm=0,
    record_event_times=True,
)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@pytest.mark.parametrize("provider", list_profiles())
def test_client_ttft_matches_ground_truth(emulator: Emulator, provider: str) -> None:
    model = next(iter(load_profile(provider).models))
    body = {
        "messages": [{"role": "user", "content": "Count the boats."}],
        "stream": True,
        "stream_options": {"include_usage": True},  # exact token counts for the ITL figure
    }
    with ChatClient(emulator.profile(provider), api_key=DEMO_KEY) as client:
        client.chat(body, model=model)  # warm the connection and the plan cache
        records = [client.chat(body, model=model) for _ in range(REQUESTS)]
    truth = {t["request_id"]: t for t in emulator.truth()}
    ttft_error, arrival, intended, itl_error = [], [], [], []
    for record in records:
        assert record.ok, record.summary_line()
        t = truth[record.response_headers["x-chatprobe-request-id"]]
        assert record.ttft_ms is not None and record.t_first_token_ns is not None
        truth_ttft = (t["t_first_content_ns"] - t["t_received_ns"]) / 1e6
        ttft_error.append(record.ttft_ms - truth_ttft)
        arrival.append((record.t_first_token_ns - t["t_first_content_ns"]) / 1e6)
        intended.append(truth_ttft - t["ttft_ms_intended"])
        assert len(t["event_times_ns"]) == len(record.chunks) + 1  # + [DONE]
        if record.itl_ms is not None:
            truth_itl = (t["t_last_content_ns"] - t["t_first_content_ns"]) / 1e6 / 11
            itl_error.append(record.itl_ms - truth_itl)
    abs_error = [abs(e) for e in ttft_error]
    print(
        f"\n{provider}: n={len(records)} TTFT client-truth p50 {statistics.median(ttft_error):.3f}"
        f" ms (|p50| {statistics.median(abs_error):.3f}, p90 {_pct(abs_error, 0.9):.3f});"
        f" first-event arrival delay p50 {statistics.median(arrival):.3f} ms;"
        f" emulator lateness vs its draw p50 {statistics.median(intended):.3f} ms"
        f" (p90 {_pct(intended, 0.9):.3f}); ITL client-truth p50"
        f" {statistics.median(itl_error):.4f} ms"
    )
    # The accuracy itself (p50 under 1 ms on a quiet machine, docs/emulator.md) is a speed
    # figure measured by the benchmarks (B2); a test on a busy shared machine can only hold
    # the client to the right order of magnitude: its error is a small part of the TTFT.
    client_ttft = statistics.median(r.ttft_ms for r in records if r.ttft_ms is not None)
    assert statistics.median(abs_error) < 0.5 * client_ttft


@pytest.mark.skipif(not KERNEL_TIMESTAMPS, reason="kernel receive stamps are Linux-only")
def test_a_busy_event_loop_does_not_move_the_arrival_time(emulator: Emulator) -> None:
    """The request reaches the emulator while its event loop is blocked: the truth's
    arrival is the kernel's stamp (before the block ends), its parse time after it, and
    the intended TTFT counts from the arrival."""
    blocked, released = threading.Event(), []

    def block(_server: object) -> None:
        blocked.set()
        time.sleep(0.2)  # the loop can read nothing meanwhile
        released.append(time.perf_counter_ns())

    body = {"messages": [{"role": "user", "content": "Late?"}], "stream": True}
    model = next(iter(load_profile("openrouter").models))
    with ChatClient(emulator.profile("openrouter"), api_key=DEMO_KEY) as client:
        client.chat(body, model=model)  # an open connection: no accept waits on the loop
        since = max(t["seq"] for t in emulator.truth())
        blocker = threading.Thread(target=emulator._call, args=(block,))
        blocker.start()
        assert blocked.wait(10)
        record = client.chat(body, model=model)
        blocker.join()
    assert record.ok, record.summary_line()
    (truth,) = emulator.truth(since=since)
    assert record.t0_ns <= truth["t_received_ns"] < released[0] <= truth["t_parsed_ns"]
    assert truth["t_first_content_ns"] >= truth["t_parsed_ns"]
    # the client's TTFT and the truth's both count from the request's arrival
    truth_ttft = (truth["t_first_content_ns"] - truth["t_received_ns"]) / 1e6
    assert record.ttft_ms is not None and record.ttft_ms >= truth_ttft
    assert truth_ttft > (released[0] - truth["t_received_ns"]) / 1e6
