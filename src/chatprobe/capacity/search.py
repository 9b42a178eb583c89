"""The capacity search: bracket the SLO edge, then narrow it where the verdict flips.

Pure: the search calls a *step function* ``level -> Step`` (one load step at a request
rate, or at a concurrency) and decides from the steps it got; nothing here sends a request,
so every rule is tested with fake steps (tests/test_capacity_search.py).

1. **Bracket**: from ``start``, multiply the level by ``growth`` while the step holds; when
   the first step already fails, divide instead. The first holding and failing levels are
   the bracket.
2. **Narrow**: the next level is where the binding percentile's ratio to its limit crosses
   1, interpolated on a log scale between the bracket's two steps (latency grows fast near
   the edge), kept inside the middle half of the bracket so the bracket shrinks by at least
   a quarter every step; bisection when no ratio is known (errors, saturation). It stops
   when the bracket is narrower than ``tolerance`` (relative; 1 user in closed loop) or the
   step budget ``max_steps`` is spent.

A step counts on its point verdict (estimates against limits) for the bracket; the
*interval* reported is the confident one: from the highest level that held with
``confidence`` to the lowest that failed with it. The search ends early when a step was
client-limited (its figures are the client's), rate-limited (HTTP 429: a hosted API's quota,
not its latency), or when the step function raises :class:`StopSearch` (the cost budget).
A step whose throughput stayed flat while its latency climbed is *saturated*: a failure,
whatever its percentiles say. An invalid step is run again once (``retry_invalid``) before it
ends the search: a passing hiccup of a shared machine should not end it, a client that is
too small will be too small twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chatprobe.capacity.health import ClientHealth
from chatprobe.capacity.slo import CapacitySlo, metric_label
from chatprobe.capacity.verdict import FAILS, HOLDS, UNCLEAR, Judgement

__all__ = [
    "END_REASONS",
    "RATE_LIMITED_SHARE",
    "SearchResult",
    "SearchSettings",
    "Step",
    "StopSearch",
    "search",
]

RATE_LIMITED_SHARE = 0.01  # a step with at least this share of 429s is rate-limited
SATURATION_GROWTH = 1.05  # throughput grew by at most this factor ...
SATURATION_LEVEL = 1.2  # ... while the level grew by at least this one ...
SATURATION_LATENCY = 1.5  # ... and the median latency by at least this one
END_REASONS = (
    "edge",  # the bracket narrowed to the tolerance
    "max_steps",  # the step budget ran out first
    "max_level",  # the SLO still held at the highest level allowed
    "below_min",  # the SLO failed even at the lowest level allowed
    "client_limited",  # a step was limited by the client
    "rate_limited",  # the provider answered 429
    "budget",  # --max-cost: the next step would pass the budget
)

INVALID, RATE_LIMITED = "invalid", "rate_limited"


class StopSearch(Exception):
    """Raised by a step function to end the search before running a step (``reason`` is
    one of :data:`END_REASONS`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Step:
    """One load step at one level, as the step function measured it."""

    level: float
    judgement: Judgement
    health: ClientHealth = field(default_factory=ClientHealth)
    requests: int = 0  # measured requests, any outcome
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    achieved_rps: float | None = None  # measured requests sent per second
    throughput_rps: float | None = None  # successful completions per second
    goodput_rps: float | None = None  # successful requests meeting every limit, per second
    duration_s: float = 0.0
    stopped_early: bool = False
    # metric -> {n, p50, p50_low, p50_high, p95, ..., p99, ...}: the report's curves
    latency: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    cost_usd: float | None = None
    run_id: str = ""
    path: str = ""
    saturated: bool = False
    outcome: str = ""  # holds | fails | unclear | invalid | rate_limited (set by the search)
    point: str = ""  # holds | fails, what the bracket used ("" for invalid/rate-limited)

    def p50(self, metric: str) -> float | None:
        value = (self.latency.get(metric) or {}).get("p50")
        return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class SearchSettings:
    start: float = 1.0
    growth: float = 2.0
    tolerance: float = 0.05  # the bracket's width relative to its low end
    max_steps: int = 12
    min_level: float = 0.1
    max_level: float | None = None
    integer: bool = False  # closed loop: levels are user counts
    unit: str = "req/s"
    retry_invalid: int = 1  # an invalid step is run again this many times (interference)

    def __post_init__(self) -> None:
        if not self.start > 0:
            raise ValueError("the start level must be more than 0")
        if not self.growth > 1:
            raise ValueError("growth must be more than 1")
        if not 0 < self.tolerance < 1:
            raise ValueError("tolerance must be between 0 and 1")
        if self.max_steps < 2:
            raise ValueError("max_steps must be at least 2")


@dataclass
class SearchResult:
    """The answer for one target."""

    unit: str
    capacity: float | None  # highest level that held (point verdict); None: none held
    low: float | None  # confident interval of the edge: held with confidence ...
    high: float | None  # ... and failed with confidence (None: not bounded above)
    end: str  # one of END_REASONS
    message: str  # why the search ended, in words
    statement: str  # the answer in one or two sentences
    limit: str | None  # what broke first above the edge: a metric, error_rate, saturation
    steps: list[Step] = field(default_factory=list)
    max_steps: int = 0
    confidence: float = 0.95
    advice: list[str] = field(default_factory=list)

    @property
    def steps_used(self) -> int:
        return len(self.steps)


def fmt_level(level: float | None, unit: str) -> str:
    if level is None:
        return "-"
    if unit == "users" or float(level).is_integer():
        return f"{level:.0f}"
    return f"{level:.3g}" if level < 100 else f"{level:.0f}"


def _classify(step: Step, done: list[Step]) -> None:
    if not step.health.valid:
        step.outcome, step.point = INVALID, ""
        return
    if step.requests and step.rate_limited >= max(1, RATE_LIMITED_SHARE * step.requests):
        step.outcome, step.point = RATE_LIMITED, ""
        return
    step.saturated = _saturated(step, done)
    step.outcome = step.judgement.verdict
    step.point = step.judgement.point
    if step.saturated:
        step.outcome = step.point = FAILS


def _saturated(step: Step, done: list[Step]) -> bool:
    """Throughput flat while the level and the median latency climbed, against the closest
    valid lower step."""
    lower = [s for s in done if s.level < step.level and s.outcome in (HOLDS, FAILS, UNCLEAR)]
    if not lower or step.throughput_rps is None:
        return False
    prev = max(lower, key=lambda s: s.level)
    if prev.throughput_rps is None or step.level < SATURATION_LEVEL * prev.level:
        return False
    if step.throughput_rps > SATURATION_GROWTH * prev.throughput_rps:
        return False
    for metric in step.latency:
        now, then = step.p50(metric), prev.p50(metric)
        if now is not None and then and now >= SATURATION_LATENCY * then:
            return True
    return False


def _converged(lo: float, hi: float, settings: SearchSettings) -> bool:
    if settings.integer:
        return hi - lo <= 1
    return hi - lo <= settings.tolerance * lo


def _ratio(step: Step) -> float | None:
    binding = step.judgement.binding()
    return binding.ratio if binding is not None else None


def next_level(lo: Step, hi: Step, settings: SearchSettings) -> float:
    """Where to step next inside the bracket (module docstring, step 2)."""
    a, b = lo.level, hi.level
    width = b - a
    guess = (a + b) / 2
    r_lo, r_hi = _ratio(lo), _ratio(hi)
    if not hi.saturated and r_lo is not None and r_hi is not None and 0 < r_lo < 1 < r_hi:
        share = -math.log(r_lo) / (math.log(r_hi) - math.log(r_lo))
        guess = a + width * min(0.75, max(0.25, share))
    if settings.integer:
        guess = float(min(b - 1, max(a + 1, round(guess))))
    return guess


def search(
    step_fn: Callable[[float], Step], settings: SearchSettings, slo: CapacitySlo
) -> SearchResult:
    """Run the search (module docstring) and state its answer."""
    steps: list[Step] = []
    lo: Step | None = None
    hi: Step | None = None
    end, message = "", ""

    def run(level: float) -> Step | None:
        nonlocal end, message
        retries = settings.retry_invalid
        while True:
            try:
                step = step_fn(level)
            except StopSearch as stop:
                end, message = stop.reason, stop.message
                return None
            _classify(step, steps)
            steps.append(step)
            if step.outcome != INVALID or retries <= 0 or len(steps) >= settings.max_steps:
                break
            retries -= 1  # a client hiccup (another process took the CPU): try once more
        if step.outcome == INVALID:
            end = "client_limited"
            message = (
                f"the client was the limit at {fmt_level(level, settings.unit)} "
                f"{settings.unit}: {'; '.join(step.health.problems)}"
            )
        elif step.outcome == RATE_LIMITED:
            end = "rate_limited"
            message = (
                f"rate-limited at {fmt_level(level, settings.unit)} {settings.unit}: "
                f"{step.rate_limited} of {step.requests} requests answered 429"
            )
        return step

    level = _snap(settings.start, settings)
    while not end:
        step = run(level)
        if step is None:
            break
        if step.outcome in (INVALID, RATE_LIMITED):
            break
        if step.point == HOLDS:
            lo = step
            if hi is not None:
                break
            if settings.max_level is not None and level >= settings.max_level:
                end = "max_level"
                message = (
                    "the SLO held up to the highest level allowed "
                    f"({fmt_level(level, settings.unit)} {settings.unit})"
                )
                break
            bigger = level * settings.growth
            if settings.integer:
                bigger = max(level + 1, round(bigger))
            if settings.max_level is not None:
                bigger = min(bigger, settings.max_level)
            level = bigger
        else:
            hi = step
            if lo is not None:
                break
            smaller = level / settings.growth
            if settings.integer:
                smaller = math.floor(smaller)
            if smaller < max(settings.min_level, 1 if settings.integer else 0) or smaller <= 0:
                end = "below_min"
                message = (
                    f"the SLO failed even at {fmt_level(level, settings.unit)} "
                    f"{settings.unit}, the lowest level tried"
                )
                break
            level = smaller
        if len(steps) >= settings.max_steps and not end:
            end = "max_steps"
            message = f"the step budget ({settings.max_steps}) ran out while bracketing"
    while not end and lo is not None and hi is not None:
        if _converged(lo.level, hi.level, settings):
            end = "edge"
            message = "the bracket narrowed to the tolerance"
            break
        if len(steps) >= settings.max_steps:
            end = "max_steps"
            message = f"the step budget ({settings.max_steps}) ran out"
            break
        step = run(next_level(lo, hi, settings))
        if step is None or step.outcome in (INVALID, RATE_LIMITED):
            break
        if step.point == HOLDS:
            lo = step
        else:
            hi = step
    return _result(steps, lo, hi, end, message, settings, slo)


def _snap(level: float, settings: SearchSettings) -> float:
    return float(max(1, round(level))) if settings.integer else level


def _result(
    steps: list[Step],
    lo: Step | None,
    hi: Step | None,
    end: str,
    message: str,
    settings: SearchSettings,
    slo: CapacitySlo,
) -> SearchResult:
    unit = settings.unit
    clear_fail = [s.level for s in steps if s.saturated or _clear_fail(s)]
    high = min(clear_fail) if clear_fail else None
    clear_hold = [s.level for s in steps if s.outcome == HOLDS and (high is None or s.level < high)]
    low = max(clear_hold) if clear_hold else None
    limit = _limit(hi)
    result = SearchResult(
        unit=unit,
        capacity=lo.level if lo is not None else None,
        low=low,
        high=high,
        end=end or "edge",
        message=message,
        statement="",
        limit=limit,
        steps=steps,
        max_steps=settings.max_steps,
        confidence=slo.confidence,
    )
    result.statement = _statement(result, lo, hi, slo)
    if end == "client_limited":
        result.advice.append(
            "the load generator was the bottleneck: rerun with more processes "
            "(--processes N) or on a bigger machine"
        )
    if end == "max_steps":
        result.advice.append("raise --max-steps or --tolerance to finish narrowing the edge")
    return result


def _clear_fail(step: Step) -> bool:
    return step.outcome == FAILS and step.judgement.verdict == FAILS


def _limit(hi: Step | None) -> str | None:
    if hi is None:
        return None
    if hi.saturated:
        return "saturation"
    failing = [c for c in hi.judgement.checks if c.point == FAILS]
    if not failing:
        return None
    worst = max(failing, key=lambda c: c.ratio or 0.0)
    return worst.metric


def _check_text(step: Step, slo: CapacitySlo, *, holding: bool) -> str:
    pct = f"p{slo.percentile:g}"
    parts = []
    for c in step.judgement.checks:
        if c.metric == "error_rate" or c.value is None:
            continue
        if holding != (c.point == HOLDS):
            continue
        ci = (
            f"{_ms(c.low)}-{_ms(c.high)} ms"
            if c.low is not None or c.high is not None
            else "no CI yet"
        )
        parts.append(
            f"{pct} {metric_label(c.metric)} {_ms(c.value)} ms (CI {ci}) "
            f"{'<=' if holding else '>'} {c.limit:g} ms"
        )
    return "; ".join(parts)


def _ms(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _statement(result: SearchResult, lo: Step | None, hi: Step | None, slo: CapacitySlo) -> str:
    unit = result.unit
    conf = f"{100 * slo.confidence:g}%"
    pct = f"p{slo.percentile:g}"
    if result.end == "rate_limited":
        last = result.steps[-1].level if result.steps else None
        return (
            f"rate-limited at {fmt_level(last, unit)} {unit}: the provider answered 429, so "
            f"there is no latency verdict above "
            f"{fmt_level(result.capacity, unit) if result.capacity is not None else 'it'}"
            + (f" (the SLO held at {fmt_level(result.capacity, unit)} {unit})" if lo else "")
        )
    if result.end == "client_limited":
        last = result.steps[-1].level if result.steps else None
        head = (
            f"sustains at least {fmt_level(result.capacity, unit)} {unit}"
            if result.capacity is not None
            else "no valid answer"
        )
        return (
            f"{head}; the step at {fmt_level(last, unit)} {unit} is invalid: the client was "
            "the limit, not the endpoint (run more load processes)"
        )
    if result.end == "budget":
        head = (
            f"sustains at least {fmt_level(result.capacity, unit)} {unit}"
            if result.capacity is not None
            else "no answer"
        )
        return f"{head}; stopped before the cost budget was spent ({result.message})"
    if lo is None:
        where = fmt_level(hi.level, unit) if hi is not None else "-"
        return f"the SLO ({slo.describe()}) fails even at {where} {unit}"
    head = f"sustains {fmt_level(lo.level, unit)} {unit}"
    if result.end == "max_level":
        head = f"sustains at least {fmt_level(lo.level, unit)} {unit} (the highest level tried)"
    sure = lo.judgement.verdict == HOLDS and lo.outcome == HOLDS
    checks = _check_text(lo, slo, holding=True)
    if result.low is not None or result.high is not None:
        span = (
            f"between {fmt_level(result.low, unit) if result.low is not None else '0'} and "
            f"{fmt_level(result.high, unit)} {unit}"
            if result.high is not None
            else f"above {fmt_level(result.low, unit)} {unit}"
        )
        head += f"; the edge lies {span}"
    if sure:
        text = (
            f"{head}; at {fmt_level(lo.level, unit)} {unit} the {pct} SLO holds with "
            f"{conf} confidence"
        )
    else:
        text = (
            f"{head}; at {fmt_level(lo.level, unit)} {unit} the {pct} SLO holds on its "
            f"estimate, not yet with {conf} confidence"
        )
    if checks:
        text += f" ({checks})"
    if hi is not None:
        if hi.saturated:
            text += (
                f"; at {fmt_level(hi.level, unit)} {unit} the endpoint saturates "
                "(throughput flat while latency climbs)"
            )
        else:
            broken = _check_text(hi, slo, holding=False)
            errors = next((c for c in hi.judgement.checks if c.metric == "error_rate"), None)
            if not broken and errors is not None and errors.point == FAILS:
                broken = f"errors {100 * (errors.value or 0):.1f}% > {100 * errors.limit:g}%"
            if broken:
                text += f"; it breaks at {fmt_level(hi.level, unit)} {unit}: {broken}"
    return text


def as_dict(result: SearchResult) -> dict[str, Any]:
    """The result as JSON-ready data (``capacity.json``)."""
    from chatprobe.metrics import jsonable

    data = jsonable(result)
    data["steps_used"] = result.steps_used
    return data
