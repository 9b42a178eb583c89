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

* :func:`quantile_ci`: the distribution-free CI of any percentile, from order statistics:
  the number of values below the true q-th quantile is Binomial(n, q), so the pair of order
  statistics whose ranks cover the middle of that binomial with the wanted probability
  brackets the quantile, whatever the distribution (exact binomial tails, no resampling).
  A bound the sample is too small to give is None (p99 of 50 values has no upper bound).
  Values measured one after another under load are not independent (a queue makes
  neighbours alike): :func:`design_effect` estimates how much that inflates the binomial
  count's variance from the autocorrelation of the "at or under" indicator in arrival order,
  and ``quantile_ci(..., design_effect=d)`` widens the interval to the effective sample
  size n / d.
* :func:`proportion_ci`: the Wilson score interval of a share (an error rate).

And the one test of a shift between two samples, :func:`mann_whitney_u` (two-sided
Mann-Whitney U, also called the Wilcoxon rank-sum test): exact for small samples without
ties, the normal approximation with tie and continuity corrections otherwise. The monitor's
latency-shift rule (:mod:`chatprobe.monitor.detect`) judges with it.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CI_EXACT_ABOVE",
    "CI_RESAMPLES",
    "PCTS",
    "MannWhitney",
    "bootstrap_ci",
    "describe_counts",
    "describe_sorted",
    "design_effect",
    "mann_whitney_u",
    "median_ci",
    "median_ratio_ci",
    "percentile",
    "percentiles",
    "proportion_ci",
    "quantile_ci",
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


def quantile_ci(
    sorted_values: Sequence[float],
    q: float,
    *,
    confidence: float = 0.95,
    design_effect: float = 1.0,
) -> tuple[float | None, float | None]:
    """Distribution-free ``confidence`` CI of the ``q``-th percentile (0..100) of sorted,
    NaN-free values (see the module docstring).

    With K ~ Binomial(n, q/100) the count of values below the true quantile, the interval
    is ``[x_(l), x_(u)]`` (1-based order statistics) with ``l`` the largest rank such that
    P(K < l) <= alpha/2 and ``u`` the smallest such that P(K < u) >= 1 - alpha/2; each tail
    holds at most alpha/2, so the coverage is at least ``confidence``. A side the sample
    cannot bound (``l`` < 1 or ``u`` > n) is None. With ``design_effect`` d > 1 the ranks
    come from the effective sample size n / d and are scaled back to n (wider, as dependent
    values warrant).
    """
    full = len(sorted_values)
    if full == 0:
        return None, None
    scale = max(1.0, design_effect)
    n = max(1, int(full / scale))
    p = min(1.0, max(0.0, q / 100.0))
    alpha = (1.0 - confidence) / 2.0
    cdf = _binomial_cdf(n, p)  # cdf[k] = P(K <= k)
    # P(K < l) = cdf[l - 2] (0 for l = 1): the largest l with that at most alpha
    low_rank = 0
    for rank in range(1, n + 1):
        below = cdf[rank - 2] if rank >= 2 else 0.0
        if below <= alpha:
            low_rank = rank
        else:
            break
    high_rank = n + 1
    for rank in range(1, n + 1):
        if cdf[rank - 1] >= 1.0 - alpha:  # P(K < u) = P(K <= u - 1)
            high_rank = rank
            break
    if n != full:  # back to ranks among all the values, rounded outwards
        low_rank = math.floor(low_rank * full / n) if low_rank >= 1 else 0
        high_rank = math.ceil(high_rank * full / n) if high_rank <= n else full + 1
        n = full
    low = float(sorted_values[low_rank - 1]) if low_rank >= 1 else None
    high = float(sorted_values[high_rank - 1]) if high_rank <= n else None
    return low, high


def design_effect(ordered: Sequence[float], threshold: float, *, max_lag: int = 50) -> float:
    """How much dependence between neighbours inflates the variance of the count of values
    at or under ``threshold``: ``1 + 2 * sum(rho_k)`` over the autocorrelations of that
    indicator in ``ordered`` (arrival order), summed from lag 1 until the first one that is
    not positive (at most ``max_lag``, at most a quarter of the values); at least 1.
    Independent values give about 1; latencies of a filling queue give more."""
    n = len(ordered)
    if n < 20:
        return 1.0
    x = [1.0 if v <= threshold else 0.0 for v in ordered]
    p = sum(x) / n
    var = p * (1.0 - p)
    if var <= 0.0:
        return 1.0
    centred = [v - p for v in x]
    total = 0.0
    for lag in range(1, min(max_lag, n // 4) + 1):
        rho = sum(map(operator.mul, centred[:-lag], centred[lag:])) / (n * var)
        if rho <= 0.0:
            break
        total += rho
    return max(1.0, 1.0 + 2.0 * total)


def _binomial_cdf(n: int, p: float) -> list[float]:
    """``[P(K <= k) for k in 0..n]`` for K ~ Binomial(n, p), summed in log space."""
    if p <= 0.0:
        return [1.0] * (n + 1)
    if p >= 1.0:
        return [0.0] * n + [1.0]
    lp, lq = math.log(p), math.log1p(-p)
    lgn = math.lgamma(n + 1)
    out, total = [], 0.0
    for k in range(n + 1):
        total += math.exp(lgn - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq)
        out.append(min(1.0, total))
    return out


def proportion_ci(
    hits: int, n: int, *, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Wilson score interval of the share ``hits / n``; ``(None, None)`` when ``n`` is 0."""
    if n <= 0:
        return None, None
    z = _z(confidence)
    share = hits / n
    denominator = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _z(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (bisection on erfc; no scipy)."""
    if abs(confidence - 0.95) < 1e-12:
        return _Z95
    target = 1.0 - confidence
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if math.erfc(mid / math.sqrt(2)) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


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


# ----------------------------------------------------------------------------- Mann-Whitney U

MW_EXACT_MAX_CELLS = 5000
"""Exact p-values up to this many pairs (len(a) x len(b)) when no value is tied."""
MW_EXACT_MAX_WORK = 1_000_000
"""With ties, exact p-values while the counting takes at most about this many steps."""


@dataclass(frozen=True, slots=True)
class MannWhitney:
    """A two-sided Mann-Whitney U test of ``a`` against ``b``.

    ``u`` counts the pairs (x from a, y from b) with x > y (ties count one half), so
    ``u / (n_a * n_b)`` is the probability that a value of ``a`` exceeds one of ``b``: 1 when
    every value of ``a`` is larger, 0.5 when neither side tends to be larger.
    """

    u: float
    p: float
    n_a: int
    n_b: int
    exact: bool

    @property
    def effect(self) -> float:
        """P(a > b) + P(a = b) / 2, the common-language effect size."""
        return self.u / (self.n_a * self.n_b)


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> MannWhitney:
    """Two-sided Mann-Whitney U test: do ``a`` and ``b`` come from one distribution, or does
    one tend to be larger? NaNs are dropped; each side needs at least one value.

    The p-value is exact for small samples: without ties, from the null distribution of U
    counted by the Gaussian binomial coefficient (``len(a) * len(b) <=``
    :data:`MW_EXACT_MAX_CELLS`); with ties, from the permutation distribution of the
    smaller side's midrank sum, counted by dynamic programming (while that stays under
    :data:`MW_EXACT_MAX_WORK` steps). Otherwise it comes from the normal approximation with
    the tie correction of the variance and a continuity correction of 0.5.
    """
    xa = [float(v) for v in a if v == v]
    xb = [float(v) for v in b if v == v]
    m, n = len(xa), len(xb)
    if not m or not n:
        raise ValueError("mann_whitney_u needs at least one value on each side")
    ranked = sorted(itertools.chain(((v, 0) for v in xa), ((v, 1) for v in xb)))
    twice: list[int] = []  # each value's midrank, doubled (an integer), in sorted order
    ties: list[int] = []
    i = 0
    total = m + n
    while i < total:
        j = i
        while j + 1 < total and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        twice += [i + j + 2] * (j - i + 1)  # 1-based ranks; tied values share the mean rank
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    rank_sum2 = sum(r for r, (_, side) in zip(twice, ranked, strict=True) if side == 0)
    u = rank_sum2 / 2 - m * (m + 1) / 2
    cells = m * n
    small = min(m, n)
    if ties and small * total * 2 * total * small <= MW_EXACT_MAX_WORK:
        observed = rank_sum2 if m <= n else total * (total + 1) - rank_sum2
        return MannWhitney(u, _tied_p(twice, small, observed), m, n, True)
    if not ties and cells <= MW_EXACT_MAX_CELLS:
        counts = _u_counts(m, n)
        whole = sum(counts)
        k = round(min(u, cells - u))  # the distribution is symmetric around cells / 2
        tail = sum(counts[: k + 1]) / whole
        return MannWhitney(u, min(1.0, 2 * tail), m, n, True)
    mean = cells / 2
    tie_term = sum(t**3 - t for t in ties) / (total * (total - 1)) if total > 1 else 0.0
    var = cells / 12 * ((total + 1) - tie_term)
    if var <= 0:  # every value equal: no evidence either way
        return MannWhitney(u, 1.0, m, n, False)
    z = max(0.0, abs(u - mean) - 0.5) / math.sqrt(var)
    return MannWhitney(u, min(1.0, math.erfc(z / math.sqrt(2))), m, n, False)


def _tied_p(twice: Sequence[int], k: int, observed: int) -> float:
    """Two-sided exact p of a doubled midrank sum ``observed`` of ``k`` values drawn from
    ``twice`` (all values' doubled midranks): the share of the C(N, k) subsets whose sum is
    at least as far from its mean, k (N + 1), as the observed one."""
    counts: list[dict[int, int]] = [{} for _ in range(k + 1)]
    counts[0][0] = 1
    for seen, r in enumerate(twice):
        for c in range(min(seen + 1, k), 0, -1):
            into = counts[c]
            for total, ways in counts[c - 1].items():
                into[total + r] = into.get(total + r, 0) + ways
    centre = k * (len(twice) + 1)
    far = abs(observed - centre)
    hits = sum(ways for total, ways in counts[k].items() if abs(total - centre) >= far)
    return min(1.0, hits / math.comb(len(twice), k))


def _u_counts(m: int, n: int) -> list[int]:
    """How many of the C(m+n, m) orderings give U = 0, 1, ..., m*n: the coefficients of the
    Gaussian binomial [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), computed as
    power series truncated above degree m*n (the division by 1 - q^i is exact)."""
    size = m * n + 1
    c = [0] * size
    c[0] = 1
    for i in range(1, m + 1):
        k = n + i
        for j in range(size - 1, k - 1, -1):
            c[j] -= c[j - k]
        for j in range(i, size):
            c[j] += c[j - i]
    return c
