"""chatprobe.stats: the distribution-free quantile CI, the design effect, Wilson."""

from __future__ import annotations

# ----------------------------------------------------------------------------- quantile CIs


def test_quantile_ci_is_a_pair_of_order_statistics_covering_the_quantile() -> None:
    import math
    import random

    from chatprobe.stats import quantile_ci

    data = [float(v) for v in range(1, 101)]
    assert quantile_ci(data, 50) == (41.0, 61.0)
    low, high = quantile_ci(data, 95)
    assert low is not None and high is not None and low <= 95 <= high and high in data
    assert quantile_ci(data[:50], 99)[1] is None  # 50 values cannot bound p99 from above
    assert quantile_ci([], 95) == (None, None)
    rng = random.Random(1)
    true = -math.log(0.05)  # p95 of Exp(1)
    misses = 0
    for _ in range(300):
        sample = sorted(rng.expovariate(1.0) for _ in range(200))
        lo, hi = quantile_ci(sample, 95)
        misses += not (lo is not None and hi is not None and lo <= true <= hi)
    assert misses / 300 <= 0.08  # at least the stated coverage, give or take sampling


def test_design_effect_widens_the_interval_of_dependent_values() -> None:
    import random

    from chatprobe.stats import design_effect, quantile_ci

    rng = random.Random(2)
    iid = [rng.random() for _ in range(600)]
    assert design_effect(iid, 0.95) < 1.3
    walk, x = [], 0.0
    for _ in range(600):
        x = 0.9 * x + rng.gauss(0.0, 1.0)
        walk.append(x)
    data = sorted(walk)
    deff = design_effect(walk, data[570])
    assert deff > 2
    narrow, wide = quantile_ci(data, 95), quantile_ci(data, 95, design_effect=deff)
    assert wide[0] is not None and narrow[0] is not None and wide[0] <= narrow[0]
    assert wide[1] is not None and narrow[1] is not None and wide[1] >= narrow[1]


def test_proportion_ci_is_wilson() -> None:
    from chatprobe.stats import proportion_ci

    low, high = proportion_ci(0, 100)
    assert low == 0.0 and high is not None and 0.03 < high < 0.04
    assert proportion_ci(0, 0) == (None, None)
    low, high = proportion_ci(50, 100)
    assert low is not None and high is not None and abs((low + high) / 2 - 0.5) < 1e-9
