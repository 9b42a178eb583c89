"""Polite load: Retry-After holds a target, connection failures back off, the summary says so.

The rules are pure (:mod:`chatprobe.load.polite`) and tested as such; the acceptance runs are
real ``chatprobe load`` runs (locust in a child process) against a real HTTP server on
127.0.0.1, bounded in time; they assert counts, never milliseconds.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from chatprobe.load.polite import Backoff, TargetHold, after_request
from chatprobe.load.scenario import Stage
from chatprobe.metrics import RunSpec, compute_run
from chatprobe.record import ErrorClass, RequestRecord
from chatprobe.results.samples import new_sample, table_from_rows
from tests.fake_servers.fixed import FixedServer
from tests.reliability_support import run_cli


def _record(status: int | None, cls: ErrorClass | None, **headers: str) -> RequestRecord:
    record = RequestRecord(stream=True)
    record.status = status
    record.response_headers = dict(headers)
    if cls is not None and status is None:
        record.transport_error = cls
    return record


def test_backoff_doubles_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, rng=random.Random(1))
    delays = [backoff.failed() for _ in range(6)]
    for n, delay in enumerate(delays):
        ceiling = min(8.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling, (n, delay)
    backoff.succeeded()
    assert 0.5 <= backoff.failed() <= 1.0


def test_retry_after_holds_the_target_and_only_it() -> None:
    backoff, hold, other = Backoff(), TargetHold(), TargetHold()
    limited = _record(429, None, **{"retry-after": "2"})
    limited.finish()
    assert limited.error_class is ErrorClass.RATE_LIMITED
    assert after_request(limited, backoff, hold, now=100.0) == (2.0, None)
    assert hold.remaining(100.5) == 1.5 and other.remaining(100.5) == 0.0
    assert backoff.failures == 0  # the server named the wait: no backoff on top
    # a shorter Retry-After never shortens a hold
    after_request(_finished(503, **{"retry-after": "1"}), backoff, hold, now=100.5)
    assert hold.remaining(100.5) == 1.5


def _finished(status: int | None, cls: ErrorClass | None = None, **headers: str) -> RequestRecord:
    record = _record(status, cls, **headers)
    record.finish()
    return record


def test_connection_failures_and_bare_429_back_off_answers_reset() -> None:
    backoff, hold = Backoff(rng=random.Random(2)), TargetHold()
    refused = _finished(None, ErrorClass.CONNECT_ERROR)
    assert refused.error_class is ErrorClass.CONNECT_ERROR
    _, first = after_request(refused, backoff, hold, now=0.0)
    _, second = after_request(_finished(429), backoff, hold, now=0.0)
    assert first is not None and second is not None and backoff.failures == 2
    assert hold.remaining(0.0) == 0.0
    assert after_request(_finished(500), backoff, hold, now=0.0) == (None, None)
    assert backoff.failures == 0


def test_held_back_figures() -> None:
    """Two 429s with Retry-After 2 s overlapping by 1 s hold the target 3 s; backoffs are
    summed, each cut at the run's end."""
    rows = [
        new_sample(
            provider="p",
            model="m",
            t_offset_s=1.0,
            total_ms=0.0,
            status=429,
            error_class="rate_limited",
            retry_after_s=2.0,
        ),
        new_sample(
            provider="p",
            model="m",
            t_offset_s=2.0,
            total_ms=0.0,
            status=429,
            error_class="rate_limited",
            retry_after_s=2.0,
        ),
        new_sample(
            provider="p",
            model="m",
            t_offset_s=5.0,
            total_ms=0.0,
            error_class="connect_error",
            backoff_s=1.5,
        ),
        new_sample(
            provider="p",
            model="m",
            t_offset_s=9.5,
            total_ms=0.0,
            error_class="connect_error",
            backoff_s=4.0,
        ),
        new_sample(provider="p", model="m", t_offset_s=6.0, total_ms=5.0, status=200),
    ]
    spec = RunSpec(stages=[Stage("2 users", 10.0, 2)], end_s=10.0, targets=[("p", "m")])
    figures = compute_run(table_from_rows(rows), spec)
    held = figures.held
    assert (held.retry_after, held.backoffs) == (2, 2)
    assert held.retry_after_s == pytest.approx(3.0)
    assert held.backoff_s == pytest.approx(2.0)
    assert figures.rate_limited.count == 2
    # availability leaves the 429s out: 1 ok of 1 ok + 2 connect errors
    assert figures.availability == pytest.approx(1 / 3)
    assert figures.groups[0].held == held


# ---------------------------------------------------------------------------- real runs

USERS = 2
DURATION_S = 6


def _load(tmp_path: Path, url: str, *extra: str) -> tuple[int, dict, str]:
    done = run_cli(
        *("load", "--quiet", "--base-url", url, "--api-key-env", "POLITE_KEY"),
        *("--model", "m", "--users", str(USERS), "--duration", f"{DURATION_S}s"),
        *("--out", str(tmp_path), "--run-id", "r", *extra),
        env={"POLITE_KEY": "polite-key-123456"},
        timeout=120,
    )
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    return done.returncode, summary, done.stdout + done.stderr


@pytest.mark.slow
def test_a_gateway_that_always_says_429_retry_after_2_is_not_hammered(tmp_path: Path) -> None:
    with FixedServer(429, {"Retry-After": "2"}) as server:
        code, summary, output = _load(tmp_path, server.url())
        posts = server.counts["POST"]
    # each round of USERS requests holds the target 2 s: USERS + USERS x D / 2 at most
    # (+ one round of allowance for the moment the hold starts)
    assert 0 < posts <= USERS + USERS * DURATION_S / 2 + USERS, posts
    assert code == 1, output[-2000:]
    assert summary["errors"] == {"rate_limited": summary["measured"]}
    assert summary["samples"] == posts
    assert summary["rate_limited"]["count"] == summary["measured"]
    assert summary["held"]["retry_after"] == summary["measured"]
    assert summary["held"]["retry_after_s"] > 0 and summary["held"]["backoffs"] == 0
    assert summary["availability"] is None  # nothing but 429s: nothing left to count
    assert "rate_limited x" in output and "Retry-After honoured" in output


@pytest.mark.slow
def test_a_refused_port_backs_off_exponentially(tmp_path: Path) -> None:
    # The server answers one request (the preflight) and then stops listening: every
    # request of the run is refused.
    with FixedServer(404, listen_for=1) as server:
        code, summary, output = _load(tmp_path, server.url())
    # With a 0.25 s base the waits are at least 0.125, 0.25, 0.5, 1, 2 s: at most 6
    # requests per user in 6 s (plus one); without backoff, thousands.
    assert 0 < summary["samples"] <= USERS * 7, summary["samples"]
    assert set(summary["errors"]) == {"connect_error"}, summary["errors"]
    assert summary["held"]["backoffs"] == summary["measured"]
    assert summary["held"]["backoff_s"] > 0
    assert code == 1, output[-2000:]  # every request failed
    assert "connection backoff" in output
