"""Was the client the limit of a step? Schedule lag, client CPU and client timing error.

A load generator that cannot keep up measures itself: requests leave late (open loop:
schedule lag), its process is busy all the time (CPU), its event loop wakes late (short of
CPU: a starved process is not busy, it waits; :mod:`chatprobe.load.loopwatch`), or it
reads what arrived late
(timing error: the client's TTFT against the server's own, where the server says, as the
emulator's ground truth does). A step that trips any of these is *invalid*: its latencies
are the client's, not the endpoint's, and the search does not use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CPU_LIMIT", "ClientHealth", "assess"]

CPU_LIMIT = 0.9  # share of one core per locust process
TIMING_FLOOR_MS = 5.0


@dataclass
class ClientHealth:
    valid: bool = True
    lag_p99_ms: float | None = None
    lag_threshold_ms: float | None = None
    cpu_busy: float | None = None  # CPU seconds / wall seconds, per locust process
    cpu_limit: float = CPU_LIMIT
    loop_lag_p99_ms: float | None = None  # the event loop's wake-up lateness
    loop_lag_limit_ms: float | None = None
    timing_error_ms: float | None = None  # median client TTFT - median server TTFT
    timing_limit_ms: float | None = None
    problems: list[str] = field(default_factory=list)


def timing_limit(limits_ms: list[float]) -> float:
    """The timing error a step tolerates: 5% of the tightest latency limit, at least 5 ms."""
    return max(TIMING_FLOOR_MS, 0.05 * min(limits_ms)) if limits_ms else TIMING_FLOOR_MS


def assess(
    *,
    lag_p99_ms: float | None,
    lag_threshold_ms: float | None,
    cpu_busy: float | None,
    timing_error_ms: float | None,
    timing_limit_ms: float | None,
    cpu_limit: float = CPU_LIMIT,
    loop_lag_p99_ms: float | None = None,
    loop_lag_limit_ms: float | None = None,
) -> ClientHealth:
    """The client's health at one step; ``valid`` False when any figure passed its limit
    (a figure that is not known passes)."""
    health = ClientHealth(
        lag_p99_ms=lag_p99_ms,
        lag_threshold_ms=lag_threshold_ms,
        cpu_busy=cpu_busy,
        cpu_limit=cpu_limit,
        loop_lag_p99_ms=loop_lag_p99_ms,
        loop_lag_limit_ms=loop_lag_limit_ms,
        timing_error_ms=timing_error_ms,
        timing_limit_ms=timing_limit_ms,
    )
    if lag_p99_ms is not None and lag_threshold_ms is not None and lag_p99_ms > lag_threshold_ms:
        health.problems.append(
            f"schedule lag p99 {lag_p99_ms:.1f} ms > {lag_threshold_ms:g} ms: requests left late"
        )
    if cpu_busy is not None and cpu_busy > cpu_limit:
        health.problems.append(
            f"client CPU {100 * cpu_busy:.0f}% of a core > {100 * cpu_limit:.0f}%"
        )
    if (
        loop_lag_p99_ms is not None
        and loop_lag_limit_ms is not None
        and loop_lag_p99_ms > loop_lag_limit_ms
    ):
        health.problems.append(
            f"client event loop woke {loop_lag_p99_ms:.1f} ms late (p99) > "
            f"{loop_lag_limit_ms:g} ms: short of CPU"
        )
    if (
        timing_error_ms is not None
        and timing_limit_ms is not None
        and abs(timing_error_ms) > timing_limit_ms
    ):
        health.problems.append(
            f"client timing error {timing_error_ms:.1f} ms > {timing_limit_ms:g} ms "
            "(client TTFT against the server's)"
        )
    health.valid = not health.problems
    return health
