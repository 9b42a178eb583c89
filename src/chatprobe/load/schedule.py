"""The run's timeline, pure and testable: stages, warm-up, open-loop arrivals, quotas.

Every process (the locust master running the shape, each worker marking samples) reads the
same stage list and the same clock offset, so a sample's ``stage``, ``users`` and
``warmup`` agree with the load that was applied when it was sent.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from chatprobe.load.scenario import Stage

__all__ = [
    "MAX_SPAWN_RATE",
    "Position",
    "arrival_offsets",
    "position_at",
    "split_quota",
    "tick",
]

# Locust spawns users at a rate (users/s); "no ramp" is the fastest rate locust advises
# (above 100/s it warns of trouble), so 100 users start within a second.
MAX_SPAWN_RATE = 100.0


class Position:
    """Where an offset falls on the timeline."""

    __slots__ = ("index", "offset_in_stage", "stage", "warmup")

    def __init__(self, index: int, stage: Stage, offset_in_stage: float) -> None:
        self.index = index
        self.stage = stage
        self.offset_in_stage = offset_in_stage
        self.warmup = offset_in_stage < stage.warmup_s


def position_at(stages: Sequence[Stage], offset_s: float) -> Position:
    """The stage at ``offset_s`` seconds after the start (the last one past the end)."""
    start = 0.0
    for index, stage in enumerate(stages):
        if offset_s < start + stage.duration_s or index == len(stages) - 1:
            return Position(index, stage, max(0.0, offset_s - start))
        start += stage.duration_s
    raise ValueError("no stages")


def tick(stages: Sequence[Stage], offset_s: float, drivers: int = 1) -> tuple[int, float] | None:
    """``(users, spawn_rate)`` for locust's shape at ``offset_s``; None once the run is over.

    Open-loop stages run one driver user per process (``drivers``), which schedules arrivals.
    """
    if offset_s >= sum(s.duration_s for s in stages):
        return None
    stage = position_at(stages, offset_s).stage
    if stage.rate is not None:
        return drivers, MAX_SPAWN_RATE
    if stage.ramp_s > 0:
        return stage.users, max(stage.users / stage.ramp_s, 0.01)
    return stage.users, MAX_SPAWN_RATE


def arrival_offsets(
    rate: float,
    *,
    arrival: str,
    seed: int | str,
    start_s: float = 0.0,
    end_s: float = math.inf,
    limit: int | None = None,
) -> Iterator[float]:
    """Scheduled send times (seconds from the run start) of an open-loop arrival process.

    ``poisson``: exponential gaps with mean ``1/rate`` from a generator seeded by ``seed``;
    ``constant``: exactly ``1/rate`` apart, the first at ``start_s``. Stops at ``end_s`` or
    after ``limit`` arrivals. The schedule never depends on responses.
    """
    if rate <= 0:
        return
    rng = random.Random(f"chatprobe-arrivals:{seed}")
    t = start_s
    if arrival == "poisson":
        t += rng.expovariate(rate)
    count = 0
    while t < end_s and (limit is None or count < limit):
        yield t
        count += 1
        t += rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate


def split_quota(total: int, parts: int, index: int) -> int:
    """Part ``index`` of ``total`` split as evenly as possible into ``parts`` (sums to total)."""
    if parts < 1:
        raise ValueError("parts must be >= 1")
    base, extra = divmod(total, parts)
    return base + (1 if index % parts < extra else 0)
