"""Fake step functions for the capacity search: latency as a known function of load."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

from chatprobe.capacity.health import ClientHealth, assess
from chatprobe.capacity.runner import latency_curve
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
        values = [rng.expovariate(1 / scale) for _ in range(n)]  # in "send" order
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
            latency={"ttft_ms": latency_curve(values, slo.confidence)},
        )

    return step


def make_capacity_run(
    root: Path,
    targets: list[tuple[str, str, float]],
    *,
    run_id: str = "20260101-000000-cap0",
    slo: CapacitySlo | None = None,
    hostile_model: str | None = None,
) -> Path:
    """A ``chatprobe capacity`` results folder searched on fake steps (no load run): each
    ``(provider, model, true edge)`` gets a full search with latency curves."""
    from chatprobe.capacity.runner import build_document
    from chatprobe.capacity.search import SearchSettings, as_dict, search
    from chatprobe.results import CAPACITY, new_run_dir, write_json_atomic, write_meta

    slo = slo or CapacitySlo(limits={"ttft_ms": 100.0}, min_samples=50)
    folder = new_run_dir(root, run_id)
    write_meta(
        folder,
        kind="capacity",
        data_source="emulated",
        providers=[p for p, _, _ in targets],
        models=[m for _, m, _ in targets],
        command=["chatprobe", "capacity"],
    )
    settings = SearchSettings(start=4.0)
    out = []
    for n, (provider, model, edge) in enumerate(targets):
        inner = fake_step_fn(edge, slo, seed=n)

        def step(level: float, inner: Callable[[float], Step] = inner) -> Step:
            made = inner(level)
            ttft = made.latency["ttft_ms"]
            made.latency["itl_ms"] = {
                k: (v / 8 if isinstance(v, float) else v) for k, v in ttft.items()
            }
            made.goodput_rps = level * 0.9
            return made

        result = search(step, settings, slo)
        out.append({"provider": provider, "model": hostile_model or model, **as_dict(result)})
    document = build_document(
        run_id=folder.name,
        scenario="synthetic",
        by="rate",
        slo=slo,
        settings=settings,
        step={"max_s": 30.0, "min_s": 10.0, "warmup_s": 2.0, "min_samples": slo.min_samples},
        targets=out,
    )
    write_json_atomic(folder / CAPACITY, document)
    return folder
