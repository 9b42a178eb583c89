"""The capacity search on fake steps (no HTTP): where it lands, how it ends, what it says."""

from __future__ import annotations

import pytest

from chatprobe.capacity.search import SearchSettings, Step, StopSearch, next_level, search
from chatprobe.capacity.slo import CapacitySlo, resolve_slo
from chatprobe.capacity.verdict import FAILS, HOLDS, UNCLEAR, judge
from chatprobe.errors import ConfigError
from tests.capacity_support import fake_step_fn

SLO = CapacitySlo(limits={"ttft_ms": 100.0}, percentile=95, max_error_rate=0.05, min_samples=50)


@pytest.mark.parametrize("edge", [3.0, 17.0, 42.0, 250.0])
def test_finds_a_known_edge_within_the_tolerance(edge: float) -> None:
    settings = SearchSettings(start=5.0, tolerance=0.05, max_steps=14)
    result = search(fake_step_fn(edge, SLO), settings, SLO)
    assert result.end == "edge"
    assert result.capacity is not None and abs(result.capacity - edge) / edge <= 0.10
    assert result.low is not None and result.high is not None
    assert result.low <= edge <= result.high
    assert result.steps_used <= settings.max_steps
    assert result.statement.startswith("sustains ")
    assert "95% confidence" in result.statement and "p95 TTFT" in result.statement


def test_the_budget_is_spent_near_the_edge() -> None:
    result = search(fake_step_fn(42.0, SLO), SearchSettings(start=1.0, max_steps=14), SLO)
    levels = [s.level for s in result.steps]
    narrowing = levels[levels.index(64.0) + 1 :]  # after the bracket 32..64
    assert narrowing and all(32 < x < 64 for x in narrowing)
    assert abs(narrowing[-1] - 42) < abs(narrowing[0] - 42) or len(narrowing) == 1


def test_closed_loop_levels_are_whole_users() -> None:
    settings = SearchSettings(start=1, integer=True, unit="users", max_steps=12)
    result = search(fake_step_fn(13.4, SLO), settings, SLO)
    assert all(float(s.level).is_integer() for s in result.steps)
    assert result.capacity == 13 and result.end == "edge"
    assert "users" in result.statement


def test_a_first_failing_step_searches_downward() -> None:
    result = search(fake_step_fn(3.0, SLO), SearchSettings(start=40.0), SLO)
    assert [s.point for s in result.steps[:4]] == [FAILS, FAILS, FAILS, FAILS]
    assert result.capacity is not None and abs(result.capacity - 3.0) / 3.0 <= 0.1


def test_fails_everywhere_ends_below_the_minimum() -> None:
    result = search(fake_step_fn(0.01, SLO), SearchSettings(start=1.0, min_level=0.2), SLO)
    assert result.end == "below_min" and result.capacity is None
    assert "fails even at" in result.statement


def test_the_step_budget_is_a_hard_limit() -> None:
    result = search(fake_step_fn(1000.0, SLO), SearchSettings(start=1.0, max_steps=4), SLO)
    assert result.steps_used == 4 and result.end == "max_steps"
    assert result.advice


def test_rate_limits_end_with_a_rate_limited_verdict() -> None:
    step = fake_step_fn(40.0, SLO, rate_limit_above=12.0)
    result = search(step, SearchSettings(start=5.0), SLO)
    assert result.end == "rate_limited" and result.steps[-1].outcome == "rate_limited"
    assert result.statement.startswith("rate-limited at 20 req/s")
    assert "95% confidence" not in result.statement


def test_a_client_limited_step_is_invalid_and_ends_the_search() -> None:
    step = fake_step_fn(40.0, SLO, client_limit_above=12.0)
    result = search(step, SearchSettings(start=5.0), SLO)
    assert result.end == "client_limited"
    assert [s.outcome for s in result.steps] == [HOLDS, HOLDS, "invalid", "invalid"]
    assert "invalid" in result.statement and "--processes" in result.advice[0]
    assert result.capacity == 10.0


def test_flat_throughput_with_climbing_latency_is_saturation() -> None:
    # latency passes its limit only at 4x the edge, but throughput stops at 20 req/s
    step = fake_step_fn(
        30.0, CapacitySlo(limits={"ttft_ms": 6400.0}, min_samples=50), throughput_cap=20.0
    )
    slo = CapacitySlo(limits={"ttft_ms": 6400.0}, min_samples=50)
    result = search(step, SearchSettings(start=10.0, max_steps=10), slo)
    saturated = [s for s in result.steps if s.saturated]
    assert saturated and result.limit == "saturation"
    assert result.capacity is not None and result.capacity < min(s.level for s in saturated)


def test_errors_above_the_limit_fail_a_step() -> None:
    step = fake_step_fn(1000.0, SLO, error_rate_at=lambda x: 0.0 if x < 25 else 0.3)
    result = search(step, SearchSettings(start=5.0), SLO)
    assert result.limit == "error_rate" and result.capacity is not None
    assert 20 <= result.capacity < 25
    assert "errors" in result.statement


def test_a_stop_from_the_step_function_ends_the_search() -> None:
    inner = fake_step_fn(40.0, SLO)
    calls: list[float] = []

    def step(level: float) -> Step:
        if len(calls) == 2:
            raise StopSearch("budget", "the next step would pass --max-cost 0.01 USD")
        calls.append(level)
        return inner(level)

    result = search(step, SearchSettings(start=5.0), SLO)
    assert result.end == "budget" and result.steps_used == 2
    assert "cost budget" in result.statement


def test_interpolation_stays_inside_the_middle_half() -> None:
    lo = fake_step_fn(40.0, SLO)(30.0)
    hi = fake_step_fn(40.0, SLO)(80.0)
    assert 30 + 0.25 * 50 <= next_level(lo, hi, SearchSettings()) <= 80 - 0.25 * 50


def test_a_step_verdict_needs_its_minimum_sample() -> None:
    few = judge({"ttft_ms": [1.0] * 10}, 10, 0, SLO)
    assert few.verdict == UNCLEAR and few.point == HOLDS
    many = judge({"ttft_ms": [1.0] * 200}, 200, 0, SLO)
    assert many.verdict == HOLDS
    slow = judge({"ttft_ms": [500.0] * 200}, 200, 0, SLO)
    assert slow.verdict == FAILS
    straddle = judge({"ttft_ms": sorted([99.0] * 190 + [101.0] * 10)}, 200, 0, SLO)
    assert straddle.verdict == UNCLEAR


def test_slo_resolution_order_and_bad_values() -> None:
    flags = resolve_slo(
        flags={"ttft_ms": 300},
        scenario_slo={"itl_ms": 20},
        scenario_attainment=0.9,
        percentile=None,
        max_error_rate=0.01,
    )
    assert flags.limits == {"ttft_ms": 300} and flags.percentile == 90 and flags.source == "flags"
    scen = resolve_slo(
        flags=None,
        scenario_slo={"itl_ms": 20},
        scenario_attainment=None,
        percentile=99,
        max_error_rate=0.01,
    )
    assert scen.limits == {"itl_ms": 20} and scen.percentile == 99
    assert "p99 ITL <= 20 ms" in scen.describe()
    with pytest.raises(ConfigError, match="unknown SLO metric"):
        CapacitySlo(limits={"speed": 3.0})
    with pytest.raises(ConfigError, match="percentile"):
        CapacitySlo(percentile=100)


def test_an_invalid_step_is_retried_once() -> None:
    inner = fake_step_fn(40.0, SLO)
    bad = fake_step_fn(40.0, SLO, client_limit_above=0.0)
    calls: list[float] = []

    def step(level: float) -> Step:
        calls.append(level)
        return bad(level) if len(calls) == 2 else inner(level)  # one hiccup at the 2nd step

    result = search(step, SearchSettings(start=5.0), SLO)
    assert calls[1] == calls[2] == 10.0 and result.end == "edge"
    assert [s.outcome for s in result.steps].count("invalid") == 1
