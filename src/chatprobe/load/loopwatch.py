"""How late the load process's event loop wakes up: the client's own health, directly.

A load generator that is short of CPU (other processes on its core, a nice level, a
container's quota) or whose event loop is overloaded does not notice by itself: it sends
what it manages to send and stamps what it manages to read. CPU seconds per wall second do
not tell it either, since a starved process is busy only the little time it is given.
What does tell is a timer: a greenlet asks to wake every :data:`INTERVAL_S` and records how
late it woke. On a healthy process that lateness stays near the event loop's timer
resolution (about a millisecond); a starved or saturated one wakes tens of milliseconds
late, and every request it sends or reads in that time is late by as much.

Locust child only (gevent).
"""

from __future__ import annotations

import gc
import inspect
import time
from array import array
from collections.abc import Iterable
from typing import Any

import gevent

from chatprobe.stats import percentile

__all__ = [
    "INTERVAL_S",
    "LOOP_LAG_LIMIT_MS",
    "LoopWatch",
    "freeze_startup_objects",
    "wait_figures",
    "warm_caller_lookup",
    "worst_of",
]

INTERVAL_S = 0.01
# a p99 wake-up lateness above this says the process was short of CPU or overloaded
LOOP_LAG_LIMIT_MS = 10.0


class LoopWatch:
    """A greenlet that records the event loop's wake-up lateness (ms) until stopped."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.lateness = array("d")
        self._greenlet: Any = None

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self) -> None:
        interval_ns = int(self.interval_s * 1e9)
        while True:
            due = time.perf_counter_ns() + interval_ns
            gevent.sleep(self.interval_s)
            self.lateness.append(max(0, time.perf_counter_ns() - due) / 1e6)

    def figures(self) -> dict[str, float | int | None]:
        """``{"interval_ms", "n", "p50_ms", "p99_ms", "max_ms"}`` of the wake-ups so far."""
        return {"interval_ms": self.interval_s * 1e3, **wait_figures(self.lateness)}


def wait_figures(waits_ms: Iterable[float]) -> dict[str, float | int | None]:
    """``{"n", "p50_ms", "p99_ms", "max_ms"}`` of waits in ms (exact percentiles)."""
    data = sorted(waits_ms)
    return {
        "n": len(data),
        "p50_ms": round(percentile(data, 50.0), 3) if data else None,
        "p99_ms": round(percentile(data, 99.0), 3) if data else None,
        "max_ms": round(data[-1], 3) if data else None,
    }


def worst_of(figures: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The figures with the highest p99 among ``(worker name, figures)`` pairs, named."""
    worst: dict[str, Any] = {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    for name, theirs in figures:
        if theirs.get("p99_ms") is not None and (
            worst["p99_ms"] is None or theirs["p99_ms"] > worst["p99_ms"]
        ):
            worst = {**theirs, "worker": name}
    return worst


def freeze_startup_objects() -> None:
    """Keep the garbage collector's full passes short while the load runs.

    A full collection scans every object the process tracks, and a load process starts with
    tens of thousands (locust, gevent, chatprobe, the plan): on the project machine that pass
    takes 10-20 ms, during which no stream is read, so a first token that arrived meanwhile
    is read late and shares its kernel stamp with the next one (benchmarks B2: the TTFT
    error p99 at 64 streams was 9.6 ms with it, 0.08 ms without collection at all). The
    objects that exist when the load starts live as long as the process, so they are
    collected once and moved out of the collector's view (``gc.freeze``); objects the run
    creates are still collected, cycles included.
    """
    gc.collect()
    gc.freeze()


def warm_caller_lookup() -> None:
    """Pay for locust's caller lookup before the load instead of at its end.

    ``Runner.stop()`` logs where it was called from with ``inspect.stack()``. The first such
    call in a process maps every loaded module to its file (about 20 ms here; later calls
    take about 0.1 ms). The run ends with that call while the users finish the streams in
    hand, so the first tokens that arrived during it were read late (benchmarks B2, the
    ``chatprobe load --processes auto`` row: a 20-30 ms cluster in the run's last second).
    """
    inspect.getframeinfo(inspect.stack()[0][0])
