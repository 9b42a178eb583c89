"""summary.json from hand-built samples: every figure from exact values."""

from __future__ import annotations

import pytest

from chatprobe.load.plan import RunPlan, TargetPlan
from chatprobe.load.scenario import OpenLoop, Stage
from chatprobe.load.summary import build_summary


def _target(provider: str = "p", model: str = "m") -> TargetPlan:
    return TargetPlan(
        provider=provider,
        model=model,
        model_id=model,
        url="http://x/v1/chat/completions",
        data_source="emulated",
        price_in_per_mtok=1.0,
        price_out_per_mtok=2.0,
    )


def _plan(**changes: object) -> RunPlan:
    base: dict[str, object] = {
        "scenario": "t",
        "out_dir": "/tmp/x",
        "data_source": "emulated",
        "targets": [_target()],
        "prompts": [[{"role": "user", "content": "hi"}]],
        "stages": [Stage("2 users", 10.0, 2, 0.0, 2.0)],
        "slo": {"ttft_ms": 100.0},
    }
    base.update(changes)
    return RunPlan(**base)  # type: ignore[arg-type]


def _sample(offset: float, ttft: float, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "provider": "p",
        "model": "m",
        "t_offset_s": offset,
        "ttft_ms": ttft,
        "itl_ms": 5.0,
        "e2e_ms": ttft + 100,
        "ttfb_ms": 1.0,
        "total_ms": ttft + 101,
        "lag_ms": None,
        "output_tokens": 10,
        "prompt_tokens": 1000,
        "token_source": "usage",
        "status": 200,
        "error_class": None,
        "warmup": offset < 2.0,
        "stage": "2 users",
    }
    row.update(changes)
    return row


def test_percentiles_throughput_goodput_and_cost() -> None:
    samples = [
        _sample(0.5, 500.0),  # warm-up: left out of every figure but cost and the total
        _sample(3.0, 40.0),
        _sample(4.0, 60.0),
        _sample(5.0, 150.0),  # misses the TTFT SLO
        _sample(6.0, 80.0, error_class="rate_limited", status=429, ttft_ms=None, e2e_ms=None),
    ]
    s = build_summary(_plan(), samples, run_id="r", end_offset_s=10.0)
    assert s["samples"] == 5 and s["measured"] == 4 and s["warmup_samples"] == 1
    assert s["window_s"] == 8.0  # 10 s minus 2 s warm-up
    (g,) = s["groups"]
    assert g["n"] == 4 and g["ok"] == 3
    assert g["errors"] == {"rate_limited": 1} and g["error_statuses"] == {"429": 1}
    assert g["success_rate"] == 0.75
    assert g["ttft_ms"]["p50"] == 60.0 and g["ttft_ms"]["n"] == 3
    assert g["ttft_ms"]["max"] == 150.0
    assert g["requests_per_s"] == 4 / 8
    assert g["output_tokens_per_s"] == 30 / 8
    assert g["slo"]["met"] == 2 and g["slo"]["attainment"] == 0.5
    assert g["goodput_rps"] == 2 / 8
    # cost: all 5 samples, 1000 prompt tokens at $1/M and 10 output tokens at $2/M each
    assert g["cost_usd_total"] == pytest.approx(5 * (1000 * 1 + 10 * 2) / 1e6)
    assert s["errors"] == {"rate_limited": 1}
    assert s["client_saturated"] is False


def test_open_loop_lag_and_saturation() -> None:
    plan = _plan(
        stages=[Stage("5 rps", 10.0, 0, 0.0, 0.0, 5.0)],
        open_loop=OpenLoop(rate=5.0, lag_threshold_ms=10.0),
        shape_kind="open_loop",
    )
    samples = [_sample(i * 0.2, 50.0, warmup=False, lag_ms=0.5) for i in range(40)]
    samples[-1]["lag_ms"] = 80.0  # p99 of 40 values interpolates toward the outlier
    s = build_summary(plan, samples, run_id="r", end_offset_s=10.0)
    assert s["latency_origin"] == "t_sched"
    (g,) = s["groups"]
    assert g["ttft_ms"]["p50"] == 50.5 and g["ttft_ms_from_t0"]["p50"] == 50.0
    assert s["requested_rate"] == 5.0 and s["achieved_rate"] == 4.0
    assert s["lag_ms"]["p50"] == 0.5
    assert s["client_saturated"] is True
    samples[-1]["lag_ms"] = 0.6
    assert build_summary(plan, samples, run_id="r")["client_saturated"] is False


def test_sweep_rows_per_stage_and_target() -> None:
    plan = _plan(
        shape_kind="sweep",
        stages=[Stage("1 users", 5.0, 1, 0.0, 1.0), Stage("4 users", 5.0, 4, 0.0, 1.0)],
        targets=[_target("a"), _target("b")],
    )
    samples = [
        _sample(2.0, 10.0, provider="a", stage="1 users", warmup=False),
        _sample(7.0, 20.0, provider="a", stage="4 users", warmup=False),
        _sample(7.5, 30.0, provider="b", stage="4 users", warmup=False),
    ]
    s = build_summary(plan, samples, run_id="r", end_offset_s=10.0)
    rows = {(r["stage"], r["provider"]): r for r in s["sweep"]}
    assert len(rows) == 4
    assert rows[("4 users", "a")]["ttft_ms"]["p50"] == 20.0
    assert rows[("4 users", "b")]["requests_per_s"] == 1 / 4
    assert rows[("1 users", "b")]["n"] == 0
    assert [g["provider"] for g in s["groups"]] == ["a", "b"]


def test_request_count_window_is_the_span_used() -> None:
    plan = _plan(requests=3, stages=[Stage("1 users", 600.0, 1, 0.0, 0.0)])
    samples = [_sample(t, 10.0, warmup=False, total_ms=1000.0) for t in (0.0, 1.0, 2.0)]
    s = build_summary(plan, samples, run_id="r")
    assert s["window_s"] == pytest.approx(3.0)
    assert s["groups"][0]["requests_per_s"] == pytest.approx(1.0)
