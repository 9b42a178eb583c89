"""One step's verdict from its exact values: each SLO percentile with its CI, the error rate
with its CI, and whether the step's answer is already clear.

A limit *holds* when the upper end of its percentile's CI is at or under the limit, *fails*
when the lower end is above it, and is *unclear* otherwise (or while fewer than
``min_samples`` values are in). The step holds when every limit and the error rate hold,
fails when any fails; the point verdict (from the estimates alone) is what the search uses
when a step ends unclear. The error rate is judged on its estimate once ``min_samples``
requests are in; its Wilson CI only makes a failure clear sooner. The CIs are
distribution-free (:func:`chatprobe.stats.quantile_ci`, :func:`chatprobe.stats.proportion_ci`):
latency distributions under load are skewed and multi-modal, and nothing here assumes a shape;
the percentile CIs are widened by the design effect of the step's own autocorrelation, since
requests that queue behind each other are not independent draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chatprobe.capacity.slo import CapacitySlo
from chatprobe.stats import design_effect, percentile, proportion_ci, quantile_ci

__all__ = ["FAILS", "HOLDS", "UNCLEAR", "Check", "Judgement", "judge"]

HOLDS, FAILS, UNCLEAR = "holds", "fails", "unclear"


@dataclass
class Check:
    """One target of the SLO at one step."""

    metric: str  # ttft_ms, itl_ms, ... or "error_rate"
    limit: float
    value: float | None  # the percentile (or the error rate)
    low: float | None  # CI; None where the sample cannot bound that side
    high: float | None
    n: int
    verdict: str  # holds | fails | unclear
    point: str  # holds | fails: the estimate alone

    @property
    def ratio(self) -> float | None:
        """value / limit (the error rate's: None when the limit is 0)."""
        if self.value is None or not self.limit:
            return None
        return self.value / self.limit


@dataclass
class Judgement:
    verdict: str  # holds | fails | unclear
    point: str  # holds | fails
    checks: list[Check] = field(default_factory=list)

    @property
    def clear(self) -> bool:
        return self.verdict != UNCLEAR

    def binding(self) -> Check | None:
        """The check closest to (or furthest past) its limit: what decides the edge."""
        rated = [c for c in self.checks if c.ratio is not None and c.metric != "error_rate"]
        return max(rated, key=lambda c: c.ratio or 0.0) if rated else None


def _latency_check(metric: str, limit: float, ordered: Sequence[float], slo: CapacitySlo) -> Check:
    n = len(ordered)
    if n == 0:
        return Check(metric, limit, None, None, None, 0, UNCLEAR, FAILS)
    data = sorted(ordered)
    value = percentile(data, slo.percentile)
    deff = design_effect(ordered, value)
    low, high = quantile_ci(data, slo.percentile, confidence=slo.confidence, design_effect=deff)
    point = HOLDS if value <= limit else FAILS
    verdict = UNCLEAR
    if n >= slo.min_samples:
        if high is not None and high <= limit:
            verdict = HOLDS
        elif low is not None and low > limit:
            verdict = FAILS
    return Check(metric, limit, value, low, high, n, verdict, point)


def _error_check(requests: int, errors: int, slo: CapacitySlo) -> Check:
    limit = slo.max_error_rate
    if requests == 0:
        return Check("error_rate", limit, None, None, None, 0, UNCLEAR, FAILS)
    share = errors / requests
    low, high = proportion_ci(errors, requests, confidence=slo.confidence)
    point = HOLDS if share <= limit else FAILS
    verdict = UNCLEAR
    if requests >= slo.min_samples:
        # The error rate is judged on its estimate; its CI only makes a failure clear
        # early (a Wilson upper bound never gets under a 1% limit from 100 requests).
        if low is not None and low > limit:
            verdict = FAILS
        elif point == HOLDS:
            verdict = HOLDS
    return Check("error_rate", limit, share, low, high, requests, verdict, point)


def judge(
    values: Mapping[str, Sequence[float]], requests: int, errors: int, slo: CapacitySlo
) -> Judgement:
    """The verdict of one step: ``values`` maps each SLO metric to the NaN-free values of
    the successful measured requests *in the order they were sent* (the CI accounts for
    neighbours that are alike: :func:`chatprobe.stats.design_effect`); ``requests`` counts
    every measured request and ``errors`` the failed ones."""
    checks = [_latency_check(m, lim, values.get(m, ()), slo) for m, lim in slo.limits.items()]
    checks.append(_error_check(requests, errors, slo))
    if any(c.verdict == FAILS for c in checks):
        verdict = FAILS
    elif all(c.verdict == HOLDS for c in checks):
        verdict = HOLDS
    else:
        verdict = UNCLEAR
    point = HOLDS if all(c.point == HOLDS for c in checks) else FAILS
    return Judgement(verdict, point, checks)
