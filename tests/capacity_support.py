"""Fake step functions for the capacity search: latency as a known function of load."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from chatprobe.capacity.health import ClientHealth, assess
from chatprobe.capacity.search import Step
from chatprobe.capacity.slo import CapacitySlo
from chatprobe.capacity.verdict import judge


def fake_step_fn(
    edge: float,
    slo: CapacitySlo,
    *,
    n: int = 400,
    seed: int = 0,
    throughput_cap: float | None = None,
    rate_limit_above: float | None = None,
    client_limit_above: float | None = None,
    error_rate_at: Callable[[float], float] | None = None,
) -> Callable[[float], Step]:
    """Steps whose p95 TTFT is ``limit * (level / edge) ** 3``: the SLO edge is ``edge``."""
    limit = slo.limits["ttft_ms"]
    q = slo.percentile / 100
    rng = random.Random(seed)

    def step(level: float) -> Step:
        p95 = limit * (level / edge) ** 3
        scale = p95 / -math.log(1 - q)  # exponential with that percentile
        values = sorted(rng.expovariate(1 / scale) for _ in range(n))
        errors = round(n * error_rate_at(level)) if error_rate_at else 0
        limited = n // 5 if rate_limit_above is not None and level > rate_limit_above else 0
        health = ClientHealth()
        if client_limit_above is not None and level > client_limit_above:
            health = assess(
                lag_p99_ms=80.0,
                lag_threshold_ms=10.0,
                cpu_busy=0.99,
                timing_error_ms=None,
                timing_limit_ms=None,
            )
        throughput = level if throughput_cap is None else min(level, throughput_cap)
        return Step(
            level=level,
            judgement=judge({"ttft_ms": values}, n + limited, errors + limited, slo),
            health=health,
            requests=n + limited,
            ok=n - errors,
            rate_limited=limited,
            throughput_rps=throughput,
            latency={"ttft_ms": {"p50": values[n // 2]}},
        )

    return step
