"""Statistics from exact values: percentiles, confidence intervals of medians and ratios.

Never from locust's rounded histogram. Percentiles use linear interpolation between closest
ranks (numpy's default, "type 7"), so p50 of [1, 2] is 1.5.

This module is the one home of every interval a report or summary shows:

* :func:`median_ci`: 95% CI of a median. Up to :data:`CI_EXACT_ABOVE` values, a seeded
  percentile bootstrap (:func:`bootstrap_ci`, :data:`CI_RESAMPLES` resamples); above, the
  bootstrap's own limit computed instead of sampled: the median of a resample falls below
  the j-th order statistic with binomial probability, so the interval is the pair of order
  statistics at n/2 -+ 1.96 sqrt(n)/2 (the distribution-free CI of the median). Exact, O(1).
* :func:`median_ratio_ci`: median(a) / median(b) with a 95% CI: :func:`ratio_ci` (bootstrap,
  both sides resampled) when both sides are small; above, the two medians' CIs combined on
  the log scale, where the variances of independent samples add.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import random
from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "CI_EXACT_ABOVE",
    "CI_RESAMPLES",
    "PCTS",
    "bootstrap_ci",
    "describe_counts",
    "describe_sorted",
    "median_ci",
    "median_ratio_ci",
    "percentile",
    "percentiles",
    "ratio_ci",
]

PCTS = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))
CI_EXACT_ABOVE = 1000  # median CIs of more values are computed, not resampled
CI_RESAMPLES = 400
_Z95 = 1.959964


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
    """``{n, mean, std, min, p50, p90, p95, p99, p999, max}``; ``None`` and NaN are skipped."""
    return describe_sorted(sorted(v for v in values if v is not None and v == v))


def describe_sorted(data: Sequence[float]) -> dict[str, float | int | None]:
    """:func:`percentiles` of values already sorted, NaN-free (one sort serves a whole
    report row: these figures, the median CI, the CDF).

    ``std`` is the sample standard deviation (n - 1), from the sum of squares in one pass
    (a million values in C, not in a Python loop); latencies are never so tightly bunched
    around a large mean that the subtraction loses digits that matter.
    """
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
    total = sum(data)
    mean = total / n
    if n > 1:
        square = sum(map(operator.mul, data, data))
        std = math.sqrt(max(0.0, square - total * mean) / (n - 1))
    else:
        std = 0.0
    out: dict[str, float | int | None] = {"n": n, "mean": mean, "std": std, "min": data[0]}
    for key, q in PCTS:
        out[key] = percentile(data, q)
    out["max"] = data[-1]
    return out


def describe_counts(counts: Mapping[int, int]) -> dict[str, float | int | None]:
    """:func:`percentiles` of integer values given as ``{value: how many}`` (token counts take
    a few distinct values: counting them is cheaper than sorting a million)."""
    keys = sorted(counts)
    n = sum(counts.values())
    if n == 0:
        return describe_sorted(())
    cum = list(itertools.accumulate(counts[k] for k in keys))

    def at(rank: int) -> float:  # the value at 0-based rank in sorted order
        return float(keys[bisect.bisect_right(cum, rank)])

    total = float(sum(k * c for k, c in counts.items()))
    mean = total / n
    square = float(sum(k * k * c for k, c in counts.items()))
    std = math.sqrt(max(0.0, square - total * mean) / (n - 1)) if n > 1 else 0.0
    out: dict[str, float | int | None] = {"n": n, "mean": mean, "std": std, "min": at(0)}
    for key, q in PCTS:
        pos = (n - 1) * q / 100.0
        lo = math.floor(pos)
        low, high = at(lo), at(min(lo + 1, n - 1))
        out[key] = low + (high - low) * (pos - lo)
    out["max"] = at(n - 1)
    return out


def median_ci(data: Sequence[float], *, seed: int) -> tuple[float | None, float | None]:
    """95% CI of the median of sorted, NaN-free ``data`` (see the module docstring);
    ``(None, None)`` when empty."""
    n = len(data)
    if n == 0:
        return None, None
    if n <= CI_EXACT_ABOVE:
        _, low, high = bootstrap_ci(data, resamples=CI_RESAMPLES, seed=seed)
        return _num(low), _num(high)
    half = _Z95 * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2 + half) - 1)
    return data[lo], data[hi]


def median_ratio_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    ci_a: tuple[float | None, float | None],
    ci_b: tuple[float | None, float | None],
    seed: int,
) -> tuple[float | None, float | None, float | None]:
    """``(median(a) / median(b), low, high)`` for sorted, NaN-free samples, given each
    median's CI from :func:`median_ci` (used above :data:`CI_EXACT_ABOVE` values); None
    where not computable."""
    if not a or not b:
        return None, None, None
    if len(a) <= CI_EXACT_ABOVE and len(b) <= CI_EXACT_ABOVE:
        ratio, low, high = ratio_ci(a, b, resamples=CI_RESAMPLES, seed=seed)
        return _num(ratio), _num(low), _num(high)
    ma, mb = percentile(a, 50.0), percentile(b, 50.0)
    if not mb:
        return None, None, None
    ratio = ma / mb
    (la, ha), (lb, hb) = ci_a, ci_b
    if la is None or ha is None or lb is None or hb is None or min(la, lb, ma, mb) <= 0:
        return ratio, None, None
    sa = (math.log(ha) - math.log(la)) / (2 * _Z95)
    sb = (math.log(hb) - math.log(lb)) / (2 * _Z95)
    spread = _Z95 * math.sqrt(sa * sa + sb * sb)
    log_ratio = math.log(ratio)
    return ratio, math.exp(log_ratio - spread), math.exp(log_ratio + spread)


def _num(x: float | None) -> float | None:
    return None if x is None or x != x else x


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
