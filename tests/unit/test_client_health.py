"""The client's own health: the event loop's wake-up lateness (a starved or overloaded load
process), the note a summary carries, and the capacity step verdict that uses it."""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

import gevent
import pytest

from chatprobe.capacity.health import assess
from chatprobe.load.loopwatch import (
    LOOP_LAG_LIMIT_MS,
    LoopWatch,
    freeze_startup_objects,
    worst_of,
)
from chatprobe.load.summary import client_behind, client_starved


def test_a_blocked_event_loop_shows_as_late_wake_ups() -> None:
    """A greenlet that holds the loop without yielding makes the watch wake late by at least
    as long as it held it; without it the watch wakes on time. Order, not milliseconds: the
    blocked run's worst wake-up is later than the hold, the free run's p50 below it."""
    free = LoopWatch(interval_s=0.005)
    free.start()
    gevent.sleep(0.2)
    free.stop()

    blocked = LoopWatch(interval_s=0.005)
    blocked.start()
    gevent.sleep(0.02)

    def hog() -> None:
        end = time.perf_counter() + 0.15
        while time.perf_counter() < end:
            pass  # holds the loop: no greenlet runs meanwhile

    gevent.spawn(hog).join()
    gevent.sleep(0.05)
    blocked.stop()

    hold_ms = 150.0
    worst = blocked.figures()
    assert worst["n"] and worst["max_ms"] is not None and worst["max_ms"] >= hold_ms * 0.9
    calm = free.figures()
    assert calm["n"] and calm["p50_ms"] is not None and calm["p50_ms"] < hold_ms
    assert set(calm) == {"interval_ms", "n", "p50_ms", "p99_ms", "max_ms"}


def test_an_idle_watch_has_no_figures() -> None:
    figures = LoopWatch().figures()
    assert figures["n"] == 0 and figures["p99_ms"] is None and figures["max_ms"] is None


def test_the_summary_says_when_the_client_was_short_of_cpu() -> None:
    late = {"loop_lag_ms": {"n": 300, "p99_ms": 48.3, "limit_ms": LOOP_LAG_LIMIT_MS}}
    note = client_starved(late)
    assert note.startswith("client short of CPU") and "48.3 ms" in note
    assert "--processes auto" in note
    worker = {"loop_lag_ms": {"n": 9, "p99_ms": 20.0, "limit_ms": 10.0, "worker": "worker-1"}}
    assert "(worker-1)" in client_starved(worker)
    # on time, unknown, or no figure: no note
    assert client_starved({"loop_lag_ms": {"n": 300, "p99_ms": 1.1, "limit_ms": 10.0}}) == ""
    assert client_starved({"loop_lag_ms": {"n": 0, "p99_ms": None, "limit_ms": 10.0}}) == ""
    assert client_starved(None) == "" and client_starved({}) == ""


def test_the_summary_says_when_users_spent_long_waiting_for_their_turn() -> None:
    waited = {"end_turn_ms": {"n": 900, "p99_ms": 85.5, "share": 0.081, "share_limit": 0.05}}
    note = client_behind(waited)
    assert note.startswith("client saturated") and "8.1% of their time" in note
    assert "fewer streams were in flight" in note and "--processes auto" in note
    brief = {"end_turn_ms": {"n": 900, "p99_ms": 14.0, "share": 0.004, "share_limit": 0.05}}
    assert client_behind(brief) == ""  # a few long waits are not a smaller load
    assert client_behind(None) == "" and client_behind({"loop_lag_ms": {}}) == ""


def test_a_distributed_run_reports_its_worst_worker() -> None:
    worst = worst_of(
        [
            ("worker-0", {"n": 5, "p50_ms": 0.1, "p99_ms": 2.0, "max_ms": 3.0}),
            ("worker-1", {"n": 5, "p50_ms": 0.1, "p99_ms": 9.0, "max_ms": 9.5}),
            ("worker-2", {}),  # reported nothing
        ]
    )
    assert worst["worker"] == "worker-1" and worst["p99_ms"] == 9.0
    assert worst_of([])["p99_ms"] is None


def test_a_late_event_loop_makes_a_step_invalid_even_when_the_cpu_looks_idle() -> None:
    """A starved process is busy only the little CPU it gets: the CPU figure passes, the
    loop lateness does not."""
    starved = assess(
        lag_p99_ms=None,
        lag_threshold_ms=None,
        cpu_busy=0.18,
        timing_error_ms=None,
        timing_limit_ms=None,
        loop_lag_p99_ms=48.3,
        loop_lag_limit_ms=LOOP_LAG_LIMIT_MS,
    )
    assert not starved.valid
    assert starved.problems == ["client event loop woke 48.3 ms late (p99) > 10 ms: short of CPU"]
    healthy = assess(
        lag_p99_ms=2.0,
        lag_threshold_ms=25.0,
        cpu_busy=0.18,
        timing_error_ms=0.4,
        timing_limit_ms=5.0,
        loop_lag_p99_ms=1.1,
        loop_lag_limit_ms=LOOP_LAG_LIMIT_MS,
    )
    assert healthy.valid and not healthy.problems


def test_the_objects_a_load_process_starts_with_are_kept_out_of_collections() -> None:
    """A full collection would scan them all (a 10-20 ms stall of every stream); after the
    freeze they sit in the permanent generation, and new garbage is still collected."""
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000

        class Cycle:
            me: object = None

        cycle = Cycle()
        cycle.me = cycle
        tracker = weakref.ref(cycle)
        del cycle
        gc.collect()
        assert tracker() is None
    finally:
        gc.unfreeze()


def test_the_caller_lookup_is_warmed_before_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from chatprobe.load.loopwatch import warm_caller_lookup

    real, calls = inspect.stack, []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(inspect, "stack", counting)
    warm_caller_lookup()
    assert calls  # the lookup locust's Runner.stop() makes, made now
    # the module-to-file map it needs holds every module loaded before the load
    assert "chatprobe.load.loopwatch" in inspect.modulesbyfile.values()


def test_kernel_timestamping_is_held_on_for_the_process() -> None:
    from chatprobe import kernelclock

    first = kernelclock.keep_timestamping_on()
    assert kernelclock.keep_timestamping_on() == first  # idempotent: one holder socket
    if kernelclock.KERNEL_TIMESTAMPS:
        assert first and len(kernelclock._HOLDER) == 1
