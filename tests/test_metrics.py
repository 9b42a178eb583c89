"""chatprobe.metrics: each written rule on hand-built samples (window, SLO and the missing
metric, availability and rate limits, cost, open loop, sweeps, verdict)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from chatprobe.load.scenario import Stage
from chatprobe.metrics import (
    DEFAULT_SLO,
    RunSpec,
    compute_run,
    contract_figures,
    measured_timeline,
    verdict,
)
from chatprobe.profiles import Pricing
from chatprobe.results import new_sample, table_from_rows

PRICE = Pricing(input_per_mtok=1.0, output_per_mtok=2.0, source="documented (test)")
KEY = ("p", "m")


def sample(offset: float, ttft: float | None, **changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "provider": "p",
        "model": "m",
        "t_offset_s": offset,
        "ttfb_ms": 1.0,
        "ttft_ms": ttft,
        "itl_ms": 5.0,
        "e2e_ms": None if ttft is None else ttft + 100,
        "total_ms": 200.0 if ttft is None else ttft + 101,
        "output_tokens": 10,
        "prompt_tokens": 1000,
        "token_source": "usage",
        "status": 200,
        "warmup": offset < 2.0,
        "stage": "2 users",
    }
    values.update(changes)
    return new_sample(**values)


def spec(**changes: object) -> RunSpec:
    values: dict[str, object] = {
        "stages": [Stage("2 users", 10.0, 2, 0.0, 2.0)],
        "end_s": 10.0,
        "slo": {"ttft_ms": 100.0},
        "prices": {KEY: PRICE},
        "targets": [KEY],
    }
    values.update(changes)
    return RunSpec(**values)  # type: ignore[arg-type]


def failed(offset: float, cls: str, status: int, **changes: object) -> dict[str, object]:
    return sample(
        offset, None, error_class=cls, status=status, itl_ms=None, output_tokens=0, **changes
    )


def test_throughput_goodput_and_cost_follow_the_written_rules() -> None:
    rows = [
        sample(0.5, 500.0),  # warm-up: in no figure
        sample(3.0, 40.0),
        sample(4.0, 60.0),
        sample(5.0, 150.0),  # misses the TTFT limit
        failed(6.0, "http_status", 500),
    ]
    run = compute_run(table_from_rows(rows), spec())
    assert (run.samples, run.measured, run.warmup_samples) == (5, 4, 1)
    assert run.window_s == 8.0  # 10 s minus the 2 s warm-up
    (g,) = run.groups
    assert (g.samples, g.requests, g.ok) == (5, 4, 3)
    assert g.errors == {"http_status": 1} and g.error_statuses == {"500": 1}
    assert g.success_rate == 0.75 and g.error_rate == 0.25
    assert g.ttft_ms.p50 == 60.0 and g.ttft_ms.n == 3 and g.ttft_ms.max == 150.0
    assert g.ttft_ms.p50_low is not None  # the median CI travels with the figures
    assert g.requests_per_s == 4 / 8 and g.output_tokens_per_s == 30 / 8
    assert (g.slo.met, g.slo.attainment, g.goodput_rps) == (2, 0.5, 2 / 8)
    # cost: the 3 successful measured requests at the captured price
    assert g.cost.requests == 3 and g.cost.price_source == "documented"
    assert g.cost.usd_total == pytest.approx(3 * (1000 * 1 + 10 * 2) / 1e6)
    assert g.cost.per_1k_requests == pytest.approx(1000 * (1000 + 20) / 1e6)


def test_missing_itl_meets_an_itl_limit_and_a_missing_ttft_misses() -> None:
    rows = [
        sample(3.0, 40.0, output_tokens=1, itl_ms=None),  # one token: no ITL, meets
        sample(4.0, 40.0, itl_ms=50.0),  # misses ITL <= 20
        sample(5.0, 40.0, itl_ms=10.0),
        sample(6.0, None, itl_ms=10.0),  # a success without TTFT cannot prove it met it
    ]
    run = compute_run(table_from_rows(rows), spec(slo={"ttft_ms": 100.0, "itl_ms": 20.0}))
    (g,) = run.groups
    assert g.slo.met == 2 and g.slo.attainment == 0.5
    assert g.itl_ms.n == 3  # the one-token answer has no ITL to count


def test_default_slo_applies_when_the_scenario_has_none() -> None:
    run = compute_run(table_from_rows([sample(3.0, 2000.0)]), spec(slo={}))
    assert run.slo.limits == DEFAULT_SLO and run.slo.source == "default"
    assert run.groups[0].slo.met == 0  # TTFT 2 s is over the default 1 s


def test_availability_leaves_rate_limited_out_and_times_them_apart() -> None:
    rows = [
        sample(3.0, 40.0),
        sample(4.0, 40.0),
        sample(5.0, 40.0),
        failed(5.5, "rate_limited", 429, total_ms=300.0),
        failed(6.0, "rate_limited", 429, total_ms=200.0),
        failed(7.0, "unavailable", 503),
    ]
    run = compute_run(table_from_rows(rows), spec())
    (g,) = run.groups
    assert g.success_rate == 0.5 and g.error_rate == 0.5
    assert g.availability == 3 / 4  # ok / (ok + errored), the two 429s in neither
    rl = g.rate_limited
    assert (rl.count, rl.share, rl.time_s, rl.first_s, rl.last_s) == (2, 2 / 6, 0.5, 5.5, 6.0)
    assert run.availability == 3 / 4 and run.rate_limited.count == 2


def test_errors_by_class_with_their_most_common_message() -> None:
    rows = [
        failed(3.0, "http_status", 500, error_detail="HTTP 500: boom"),
        failed(4.0, "http_status", 500, error_detail="HTTP 500: boom"),
        failed(5.0, "http_status", 502, error_detail="HTTP 502: bad gateway"),
        failed(0.5, "timeout_idle", 200, error_detail="stalled"),  # warm-up: not counted
        sample(6.0, 40.0),
    ]
    run = compute_run(table_from_rows(rows), spec())
    assert [(e.error_class, e.count, e.message, e.message_count) for e in run.error_classes] == [
        ("http_status", 3, "HTTP 500: boom", 2)
    ]


def test_prompt_tokens_reported_as_zero_are_flagged_and_missing_ones_counted() -> None:
    rows = [
        sample(3.0, 40.0, prompt_tokens=0),
        sample(4.0, 40.0, prompt_tokens=None),
        sample(5.0, 40.0, prompt_tokens=100, cost=0.5),
    ]
    cost = compute_run(table_from_rows(rows), spec()).groups[0].cost
    assert (cost.prompt_tokens_zero, cost.prompt_tokens_missing) == (1, 1)
    assert cost.usd_total == pytest.approx((100 * 1 + 30 * 2) / 1e6)
    assert cost.reported_usd_total == 0.5 and cost.reported_requests == 1


def test_no_price_captured_means_no_cost() -> None:
    cost = compute_run(table_from_rows([sample(3.0, 40.0)]), spec(prices={})).groups[0].cost
    assert cost.usd_total is None and cost.price_source == "none"


def test_window_is_cut_where_the_run_ended() -> None:
    stages = [Stage("a", 10.0, 1, 0.0, 2.0), Stage("b", 10.0, 4, 0.0, 1.0)]
    assert [(w.start_s, w.end_s) for w in measured_timeline(stages, None)] == [
        (2.0, 10.0),
        (11.0, 20.0),
    ]
    assert [(w.start_s, w.end_s) for w in measured_timeline(stages, 12.5)] == [
        (2.0, 10.0),
        (11.0, 12.5),
    ]
    assert [(w.start_s, w.end_s) for w in measured_timeline(stages, 5.0)] == [
        (2.0, 5.0),
        (11.0, 11.0),
    ]


def test_request_count_run_ends_at_its_last_completion() -> None:
    rows = [sample(t, 10.0, warmup=False, total_ms=1000.0) for t in (0.0, 1.0, 2.0)]
    stages = [Stage("1 users", 600.0, 1, 0.0, 0.0)]
    run = compute_run(table_from_rows(rows), spec(stages=stages, end_s=3.4, request_count=True))
    assert run.end_s == pytest.approx(3.0) and run.window_s == pytest.approx(3.0)
    assert run.groups[0].requests_per_s == pytest.approx(1.0)
    unknown = compute_run(table_from_rows(rows), spec(stages=stages, end_s=None))
    assert unknown.end_s == pytest.approx(3.0)  # nothing recorded: the last completion


def test_open_loop_counts_from_the_schedule() -> None:
    rows = [sample(i * 0.2, 50.0, warmup=False, lag_ms=0.5) for i in range(40)]
    rows[-1]["lag_ms"] = 80.0  # p99 of 40 values interpolates toward the outlier
    ol = spec(
        stages=[Stage("5 rps", 10.0, 0, 0.0, 0.0, 5.0)],
        open_loop_rate=5.0,
        lag_threshold_ms=10.0,
    )
    run = compute_run(table_from_rows(rows), ol)
    assert run.latency_origin == "t_sched"
    (g,) = run.groups
    assert g.ttft_ms.p50 == 50.5 and g.ttft_ms_from_t0 is not None
    assert g.ttft_ms_from_t0.p50 == 50.0
    assert run.requested_rate == 5.0 and run.achieved_rate == 4.0
    assert run.lag_ms.p50 == 0.5 and run.client_saturated is True
    rows[-1]["lag_ms"] = 0.6
    assert compute_run(table_from_rows(rows), ol).client_saturated is False


def test_sweep_rows_use_each_stage_window() -> None:
    stages = [Stage("1 users", 5.0, 1, 0.0, 1.0), Stage("4 users", 5.0, 4, 0.0, 1.0)]
    rows = [
        sample(2.0, 10.0, provider="a", stage="1 users", warmup=False),
        sample(7.0, 20.0, provider="a", stage="4 users", warmup=False),
        sample(7.5, 30.0, provider="b", stage="4 users", warmup=False),
    ]
    keys = [("a", "m"), ("b", "m")]
    run = compute_run(table_from_rows(rows), spec(stages=stages, targets=keys))
    cells = {(r.stage, r.provider): r for r in run.sweep}
    assert len(cells) == 4
    assert cells[("4 users", "a")].ttft_ms.p50 == 20.0
    assert cells[("4 users", "b")].requests_per_s == 1 / 4
    assert cells[("1 users", "b")].requests == 0
    assert [g.provider for g in run.groups] == ["a", "b"]


def test_a_run_shorter_than_its_warmup_is_reported_with_a_note() -> None:
    run = compute_run(table_from_rows([sample(0.5, 40.0), sample(1.0, 50.0)]), spec(end_s=1.5))
    assert run.measured == 2 and run.groups[0].ttft_ms.n == 2 and run.window_s == 1.5
    assert "shorter than it" in run.notes[0]


def test_without_a_plan_the_window_runs_from_first_send_to_last_completion() -> None:
    rows = [sample(3.0, 10.0, total_ms=1000.0), sample(5.0, 10.0, total_ms=500.0)]
    run = compute_run(table_from_rows(rows), spec(stages=None))
    assert run.window_s == pytest.approx(2.5) and "no plan.json" in run.notes[0]


def test_verdict_on_error_rate_and_missed_slo() -> None:
    ok = verdict(error_rate=0.05, attainment={"p/m": 0.95}, limits={"ttft_ms": 100.0})
    assert ok == []
    assert verdict(error_rate=0.051, attainment={}, limits={})[0].startswith("error rate 5.10%")
    missed = verdict(
        error_rate=0.0,
        attainment={"p/m": 0.9, "q/m": 0.99},
        limits={"ttft_ms": 100.0},
        slo_declared=True,
    )
    assert len(missed) == 1 and missed[0].startswith("SLO missed by p/m: 90.00%")
    undeclared = verdict(error_rate=0.0, attainment={"p/m": 0.1}, limits=DEFAULT_SLO)
    assert undeclared == []  # the default SLO scores goodput; it never fails a run


# ---------------------------------------------------------------------------- contract tallies


def _case(
    case: str,
    outcome: str,
    checks: dict[str, str],
    findings: Sequence[tuple[str, str]] = (),
    *,
    provider: str = "p",
    deviations: dict[str, str] | None = None,
) -> dict[str, object]:
    return {
        "case": case,
        "suite": "basic",
        "provider": provider,
        "model": "m",
        "outcome": outcome,
        "source": f"suites/basic.yaml:{len(case)}",
        "checks": checks,
        "findings": [
            {"check": c, "severity": "error", "message": msg, "path": ""} for c, msg in findings
        ],
        "deviations": [{"check": c, "reason": r} for c, r in (deviations or {}).items()],
    }


def test_contract_tallies_count_every_finding_failures_first() -> None:
    """Nothing is cut per case: ten schema findings in one case do not crowd out the
    stream-usage finding of the same case; each check gets its counts and one example."""
    schema = [("strict_response_schema", f"problem {k}") for k in range(10)]
    results = [
        _case(
            "a",
            "failed",
            {"strict_response_schema": "fail", "stream_include_usage": "fail", "status": "pass"},
            [*schema, ("stream_include_usage", "no usage chunk")],
        ),
        _case(
            "b",
            "deviation",
            {"status_openai": "deviation", "model_echo": "deviation"},
            [("status_openai", "201"), ("model_echo", "google/m")],
            deviations={"status_openai": "documents 201", "model_echo": "echoes google/"},
        ),
        _case("c", "deviation", {"status_openai": "deviation"}, [("status_openai", "201")]),
        _case("d", "passed", {"stop_honoured": "warn"}, [("stop_honoured", "stop seen late")]),
        _case("e", "failed", {"status": "pass"}),  # an unmet expectation: no check names it
        _case("f", "skipped", {}),
        _case("g", "passed", {"x": "expected"}, [("x", "injected fault")]),
    ]
    figures = contract_figures(results, {"stop_honoured": "error"})
    assert figures.cases == 7 and figures.conforming == 4
    assert figures.outcomes == {"deviation": 2, "failed": 2, "passed": 2, "skipped": 1}
    assert figures.deviating_checks == {"status_openai": 2, "model_echo": 1}
    assert figures.failing_checks == {
        "(expectations)": 1,
        "stream_include_usage": 1,
        "strict_response_schema": 1,
    }
    rows = {(t.verdict, t.check): t for t in figures.tallies}
    assert [t.verdict for t in figures.tallies] == ["fail"] * 3 + ["deviation"] * 2 + ["warn"]
    assert (
        rows["fail", "strict_response_schema"].cases,
        rows["fail", "strict_response_schema"].findings,
    ) == (1, 10)
    usage = rows["fail", "stream_include_usage"]
    assert (usage.findings, usage.example) == (1, "no usage chunk")
    assert usage.example_case == "basic::a" and usage.example_source == "suites/basic.yaml:1"
    status = rows["deviation", "status_openai"]
    assert (status.cases, status.findings, status.reason) == (2, 2, "documents 201")
    assert figures.tallies[3] is status  # most cases first within a verdict
    assert rows["warn", "stop_honoured"].example == "stop seen late"
    assert ("expected", "x") not in rows  # an injected fault says nothing about the provider


def test_contract_tallies_read_entries_written_before_checks_were_recorded() -> None:
    old = {
        "case": "a",
        "suite": "s",
        "provider": "p",
        "model": "m",
        "outcome": "deviation",
        "findings": [{"check": "c", "severity": "error", "message": "seen", "path": ""}],
        "deviations": [{"check": "c", "reason": "documented"}],
    }
    (tally,) = contract_figures([old]).tallies
    assert (tally.verdict, tally.check, tally.cases, tally.reason) == (
        "deviation",
        "c",
        1,
        "documented",
    )


def test_reasoning_cache_and_lengths_follow_the_written_rules() -> None:
    rows = [
        sample(0.5, 500.0, ttfa_ms=900.0, reasoning_tokens=99),  # warm-up: in no figure
        # a reasoning request: answer after its thinking, half its prompt from the cache
        sample(3.0, 40.0, ttfa_ms=90.0, reasoning_tokens=6, cached_tokens=500),
        sample(4.0, 60.0, ttfa_ms=60.0, reasoning_tokens=0, cached_tokens=0),
        # encrypted reasoning without a count; no cached count reported
        sample(5.0, 50.0, ttfa_ms=80.0, reasoning_tokens=None),
        failed(6.0, "http_status", 500, reasoning_tokens=7, cached_tokens=900),
    ]
    (g,) = compute_run(table_from_rows(rows), spec()).groups
    assert (g.ttfa_ms.n, g.ttfa_ms.min, g.ttfa_ms.max) == (3, 60.0, 90.0)
    r = g.reasoning
    assert (r.requests, r.reasoned, r.tokens_total, r.unknown) == (3, 1, 6, 1)
    assert r.tokens.p50 == 6.0
    c = g.cache
    assert (c.requests, c.requests_unreported) == (2, 1)
    assert (c.cached_tokens, c.prompt_tokens, c.hit_rate) == (500, 2000, 0.25)


def test_requested_and_delivered_lengths_and_rates_per_output_token() -> None:
    rows = [
        sample(3.0, 40.0, input_tokens=1000, prompt_tokens=1010, max_tokens=10),  # 10 of 10
        sample(4.0, 40.0, input_tokens=500, prompt_tokens=450, max_tokens=20),  # 10 of 20
        # an estimated count is no evidence of the delivered length
        sample(5.0, 40.0, input_tokens=None, max_tokens=20, token_source="estimate"),
        sample(6.0, 40.0, max_tokens=None, itl_ms=None, output_tokens=1),
    ]
    (g,) = compute_run(table_from_rows(rows), spec()).groups
    lengths = g.lengths
    assert lengths.input_ratio.n == 2
    assert (lengths.input_ratio.min, lengths.input_ratio.max) == (0.9, 1.01)
    assert lengths.input_requested.max == 1000.0
    assert lengths.output_ratio.n == 2  # the estimate and the uncapped request are out
    assert (lengths.output_ratio.min, lengths.output_ratio.max) == (0.5, 1.0)
    assert lengths.output_at_cap == 0.5
    assert lengths.output_requested.n == 3
    # E2E (ttft + 100 ms) per output token, and 1000 / ITL per stream (ITL 5 ms)
    assert lengths.ms_per_output_token.min == pytest.approx(14.0)
    assert lengths.ms_per_output_token.max == pytest.approx(140.0)
    assert lengths.stream_tokens_per_s.n == 3 and lengths.stream_tokens_per_s.p50 == 200.0


def test_sessions_per_turn_and_per_session_follow_the_written_rules() -> None:
    def turn(offset: float, session: str, k: int, ttft: float, cached: int, **more: object):
        return sample(
            offset, ttft, session=session, turn=k, cached_tokens=cached,
            prompt_tokens=100 * k, input_tokens=90 * k, **more,
        )  # fmt: skip

    rows = [
        turn(1.0, "0-1", 1, 10.0, 0),  # started in the warm-up: its session is not counted
        turn(2.5, "0-1", 2, 20.0, 100),
        turn(3.0, "0-2", 1, 30.0, 0),
        turn(4.0, "0-2", 2, 40.0, 150),
        turn(5.0, "0-2", 3, 50.0, 250),
        turn(3.5, "0-3", 1, 30.0, 0),
        failed(4.5, "http_status", 500, session="0-3", turn=2),  # ends its session
        sample(6.0, 5.0),  # a request on its own: in no session figure
    ]
    (g,) = compute_run(table_from_rows(rows), spec(session_turns=3)).groups
    s = g.sessions
    assert s is not None
    assert (s.sessions, s.complete, s.planned_turns) == (2, 1, 3)
    assert (s.turns.min, s.turns.max) == (2.0, 3.0)
    # 0-2: sent at 3.0 s, its last answer ended at 5.0 s + 50 ms + 101 ms
    assert s.duration_s.max == pytest.approx(2.151)
    assert [t.turn for t in s.by_turn] == [1, 2, 3]
    one, two, three = s.by_turn
    assert (one.requests, one.ok, one.ttft_ms.p50, one.cache.hit_rate) == (2, 2, 30.0, 0.0)
    assert (two.requests, two.ok) == (3, 2) and two.ttft_ms.n == 2
    assert two.cache.hit_rate == pytest.approx(250 / 400)
    assert three.input_tokens.p50 == 270.0 and three.cache.hit_rate == pytest.approx(250 / 300)
    # the target's cache hit rate: every measured success reporting a cached count
    assert g.cache.hit_rate == pytest.approx(500 / 900) and g.cache.requests_unreported == 1


def test_without_sessions_there_is_no_session_block() -> None:
    (g,) = compute_run(table_from_rows([sample(3.0, 10.0)]), spec()).groups
    assert g.sessions is None


def test_sessions_survive_a_parallel_read(tmp_path: Path) -> None:
    from chatprobe.results import SampleWriter
    from chatprobe.results.samples import load_samples

    rows = [
        sample(3.0 + i / 100, 10.0, session=f"s{i % 7}" if i % 3 else None, turn=i % 5 + 1)
        for i in range(700)
    ]
    path = tmp_path / "samples.jsonl"
    with SampleWriter(path) as writer:
        for row in rows:
            writer.write(row)
    serial = load_samples(path, processes=1)[0]
    parallel = load_samples(path, processes=3)[0]
    for table in (serial, parallel):
        names = [table.sessions[k] if k >= 0 else None for k in table.session]
        assert names == [row["session"] for row in rows]
        assert list(table.ints["turn"]) == [row["turn"] for row in rows]
