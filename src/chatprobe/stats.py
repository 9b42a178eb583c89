"""Statistics from exact values: percentiles, bootstrap confidence intervals, ratios.

Never from locust's rounded histogram. Percentiles use linear interpolation between closest
ranks (numpy's default, "type 7"), so p50 of [1, 2] is 1.5.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

__all__ = [
    "PCTS",
    "bootstrap_ci",
    "percentile",
    "percentiles",
    "ratio_ci",
]

PCTS = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values; NaN when empty."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(sorted_values[lo]) + (float(sorted_values[hi]) - float(sorted_values[lo])) * frac


def percentiles(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """``{n, mean, std, min, p50, p90, p95, p99, p999, max}``; ``None`` entries are skipped."""
    data = sorted(v for v in values if v is not None and not math.isnan(v))
    n = len(data)
    if n == 0:
        return {
            "n": 0,
            "mean": None,
            "std": None,
            "min": None,
            **{k: None for k, _ in PCTS},
            "max": None,
        }
    mean = math.fsum(data) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in data) / (n - 1)) if n > 1 else 0.0
    out: dict[str, float | int | None] = {"n": n, "mean": mean, "std": std, "min": data[0]}
    for key, q in PCTS:
        out[key] = percentile(data, q)
    out["max"] = data[-1]
    return out


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float] | None = None,
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    max_sample: int = 20_000,
) -> tuple[float, float, float]:
    """``(estimate, low, high)`` by percentile bootstrap; seeded, so reports are stable.

    Large inputs are subsampled to ``max_sample`` for the resampling (the estimate itself
    uses every value), which keeps a million-sample report fast.
    """
    data = [v for v in values if v is not None and not math.isnan(v)]
    if statistic is None:
        statistic = _median
    if not data:
        return (math.nan, math.nan, math.nan)
    estimate = statistic(data)
    if len(data) < 2:
        return (estimate, estimate, estimate)
    rng = random.Random(seed)
    pool = data if len(data) <= max_sample else rng.sample(data, max_sample)
    k = len(pool)
    stats = sorted(statistic(rng.choices(pool, k=k)) for _ in range(resamples))
    alpha = (1 - confidence) / 2 * 100
    return (estimate, percentile(stats, alpha), percentile(stats, 100 - alpha))


def ratio_ci(
    a: Sequence[float],
    b: Sequence[float],
    statistic: Callable[[Sequence[float]], float] | None = None,
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    max_sample: int = 20_000,
) -> tuple[float, float, float]:
    """``statistic(a) / statistic(b)`` with a bootstrap CI resampling both sides."""
    statistic = statistic or _median
    xa = [v for v in a if v is not None and not math.isnan(v)]
    xb = [v for v in b if v is not None and not math.isnan(v)]
    if not xa or not xb:
        return (math.nan, math.nan, math.nan)
    sb = statistic(xb)
    estimate = statistic(xa) / sb if sb else math.nan
    rng = random.Random(seed)
    pa = xa if len(xa) <= max_sample else rng.sample(xa, max_sample)
    pb = xb if len(xb) <= max_sample else rng.sample(xb, max_sample)
    ratios = []
    for _ in range(resamples):
        denominator = statistic(rng.choices(pb, k=len(pb)))
        if denominator:
            ratios.append(statistic(rng.choices(pa, k=len(pa))) / denominator)
    if not ratios:
        return (estimate, math.nan, math.nan)
    ratios.sort()
    alpha = (1 - confidence) / 2 * 100
    return (estimate, percentile(ratios, alpha), percentile(ratios, 100 - alpha))


def _median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50.0)
