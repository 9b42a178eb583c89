"""``summary.json`` from ``samples.jsonl``: percentiles from exact values, never from locust.

Definitions used here (see also ``docs/load.md``):

* measured samples: samples not marked ``warmup``; every figure below uses only them,
  except cost (money spent is spent) and the ``samples`` total.
* latency percentiles (TTFT, ITL, E2E, TTFB): successful measured requests only.
* window: the measured part of the timeline, each stage minus its warm-up, cut at the
  moment the run actually ended (request count reached, interrupted, or planned end).
* ``requests_per_s``: measured requests (any outcome) / window; ``output_tokens_per_s``:
  their output tokens / window; ``goodput_rps``: successful measured requests that meet
  every SLO / window (errors count against goodput through the SLO attainment).
* open loop: TTFB, TTFT and E2E count from the scheduled time ``t_sched`` (the sample's
  t0-based value + ``lag_ms``; ``latency_origin`` says which), with TTFT from t0 kept as
  ``ttft_ms_from_t0``; ``lag_ms`` = t0 - t_sched percentiles; ``achieved_rate`` = measured
  requests / window against ``requested_rate``; ``client_saturated`` when lag p99 exceeds
  the scenario's ``lag_threshold_ms``.
* cost: ``prompt_tokens`` x input price + ``output_tokens`` x output price from the profile.
* ``client_cpu``: CPU the load generator spent from test start to the end of load (the
  workers' total in a distributed run), per request, and as a fraction of the wall time;
  near 1.0 the client was the bottleneck and its queueing is in the latency figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from chatprobe.load.plan import RunPlan, TargetPlan
from chatprobe.stats import percentiles

__all__ = ["build_summary", "iter_samples", "window_seconds"]

SCHEMA_VERSION = 1


def iter_samples(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of ``samples.jsonl``; a truncated last line (an interrupt) is skipped."""
    if not path.exists():
        return
    from chatprobe.results import iter_sample_batches

    for rows, _bad, _truncated in iter_sample_batches(path):
        for row in rows:
            if isinstance(row, dict):
                yield row


def window_seconds(plan: RunPlan, end_offset_s: float | None) -> list[tuple[float, float]]:
    """The measured intervals of each stage, cut at ``end_offset_s`` (None: planned end)."""
    out = []
    start = 0.0
    for stage in plan.stages:
        lo = start + stage.warmup_s
        hi = start + stage.duration_s
        if end_offset_s is not None:
            hi = min(hi, end_offset_s)
        out.append((lo, max(lo, hi)))
        start += stage.duration_s
    return out


def _cost(target: TargetPlan | None, row: dict[str, Any]) -> float:
    if target is None or target.price_in_per_mtok is None or target.price_out_per_mtok is None:
        return 0.0
    prompt = row.get("prompt_tokens") or 0
    output = row.get("output_tokens") or 0
    if not isinstance(prompt, int | float) or not isinstance(output, int | float):
        return 0.0
    return (prompt * target.price_in_per_mtok + output * target.price_out_per_mtok) / 1e6


def _meets_slo(row: dict[str, Any], slo: dict[str, float]) -> bool:
    if row.get("error_class"):
        return False
    for key, limit in slo.items():
        value = row.get(key)
        if value is not None and value > limit:
            return False
        if value is None and key in ("ttft_ms", "e2e_ms"):
            return False  # no token arrived: cannot meet a token-time limit
    return True


_FROM_T0 = ("ttfb_ms", "ttft_ms", "e2e_ms", "total_ms")


def _from_schedule(row: dict[str, Any]) -> dict[str, Any]:
    """A sample's latencies counted from ``t_sched`` (t0-based value + lag)."""
    lag = row.get("lag_ms")
    if lag is None:
        return row
    out = dict(row)
    for key in _FROM_T0:
        if out.get(key) is not None:
            out[key] = out[key] + lag
    return out


def _latency(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ttft_ms": percentiles([r.get("ttft_ms") for r in rows]),
        "itl_ms": percentiles([r.get("itl_ms") for r in rows]),
        "e2e_ms": percentiles([r.get("e2e_ms") for r in rows]),
        "ttfb_ms": percentiles([r.get("ttfb_ms") for r in rows]),
    }


def _group_figures(
    rows: list[dict[str, Any]], window_s: float, slo: dict[str, float]
) -> dict[str, Any]:
    measured = [r for r in rows if not r.get("warmup")]
    ok = [r for r in measured if not r.get("error_class")]
    errors = Counter(str(r["error_class"]) for r in measured if r.get("error_class"))
    statuses = Counter(str(r.get("status")) for r in measured if r.get("error_class"))
    tokens = sum(int(r.get("output_tokens") or 0) for r in ok)
    met = sum(1 for r in measured if _meets_slo(r, slo))
    per_s = (lambda x: x / window_s) if window_s > 0 else (lambda x: None)
    return {
        "n": len(measured),
        "ok": len(ok),
        "errors": dict(sorted(errors.items())),
        "error_statuses": dict(sorted(statuses.items())),
        "success_rate": len(ok) / len(measured) if measured else None,
        **_latency(ok),
        "output_tokens": percentiles([r.get("output_tokens") for r in ok]),
        "token_source": dict(Counter(str(r.get("token_source")) for r in ok)),
        "requests_per_s": per_s(len(measured)),
        "output_tokens_per_s": per_s(tokens),
        "goodput_rps": per_s(met),
        "slo": {**slo, "met": met, "attainment": met / len(measured) if measured else None},
    }


def build_summary(
    plan: RunPlan,
    samples: Iterable[dict[str, Any]],
    *,
    run_id: str,
    end_offset_s: float | None = None,
    interrupted: bool = False,
    end_reason: str = "completed",
    workers: dict[str, Any] | None = None,
    aborted: int = 0,
    cap_hits: int = 0,
    client_cpu: dict[str, Any] | None = None,
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """The summary of one load run (see ``docs/results-format.md``)."""
    raw_rows = list(samples)
    open_loop = plan.open_loop
    # Open loop measures from the scheduled time: a client that falls behind its schedule
    # makes its requests late, and that wait is part of what a user of the service sees.
    rows = [_from_schedule(r) for r in raw_rows] if open_loop else raw_rows
    targets = {(t.provider, t.model): t for t in plan.targets}
    by_group: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in targets}
    for row in rows:
        by_group.setdefault((str(row.get("provider")), str(row.get("model"))), []).append(row)

    last = max(
        (
            (r.get("t_offset_s") or 0.0) + (r.get("total_ms") or r.get("e2e_ms") or 0.0) / 1000
            for r in rows
        ),
        default=0.0,
    )
    if end_offset_s is None:
        end_offset_s = min(last, plan.duration_s) if rows else plan.duration_s
    windows = window_seconds(plan, end_offset_s)
    window_s = sum(hi - lo for lo, hi in windows)
    if plan.requests is not None and rows:
        # A request-count run ends when the count is reached: measure the span actually used.
        measured = [r for r in rows if not r.get("warmup")]
        if measured:
            first = min(r.get("t_offset_s") or 0.0 for r in measured)
            window_s = max(0.0, last - first)

    groups = []
    for (provider, model), group_rows in by_group.items():
        target = targets.get((provider, model))
        from_t0 = {}
        if open_loop:
            ok_t0 = [
                r
                for r in raw_rows
                if (r.get("provider"), r.get("model")) == (provider, model)
                and not r.get("warmup")
                and not r.get("error_class")
            ]
            from_t0 = {"ttft_ms_from_t0": percentiles([r.get("ttft_ms") for r in ok_t0])}
        cost = sum(_cost(target, r) for r in group_rows)
        reported: list[float] = [
            r["cost"] for r in group_rows if isinstance(r.get("cost"), int | float)
        ]
        groups.append(
            {
                "provider": provider,
                "model": model,
                "model_id": target.model_id if target else None,
                "data_source": target.data_source if target else None,
                "samples": len(group_rows),
                **_group_figures(group_rows, window_s, plan.slo),
                "cost_usd_total": cost,
                "cost_per_1k_requests": cost / len(group_rows) * 1000 if group_rows else None,
                "cost_reported_usd_total": sum(reported) if reported else None,
                "price_source": target.price_source if target else "",
                **from_t0,
            }
        )

    sweep = []
    if plan.shape_kind in ("sweep", "stages"):
        for (lo, hi), stage in zip(windows, plan.stages, strict=True):
            stage_window = hi - lo
            for (provider, model), group_rows in by_group.items():
                in_stage = [r for r in group_rows if r.get("stage") == stage.name]
                figures = _group_figures(in_stage, stage_window, plan.slo)
                sweep.append(
                    {
                        "stage": stage.name,
                        "users": stage.users,
                        "provider": provider,
                        "model": model,
                        "window_s": stage_window,
                        **{
                            k: figures[k]
                            for k in (
                                "n",
                                "errors",
                                "requests_per_s",
                                "output_tokens_per_s",
                                "goodput_rps",
                                "ttft_ms",
                                "itl_ms",
                                "e2e_ms",
                            )
                        },
                    }
                )

    measured_rows = [r for r in rows if not r.get("warmup")]
    lag = percentiles([r.get("lag_ms") for r in measured_rows])
    requested_rate = open_loop.rate if open_loop else None
    achieved_rate = len(measured_rows) / window_s if open_loop and window_s > 0 else None
    saturated = bool(
        open_loop and lag["p99"] is not None and lag["p99"] > open_loop.lag_threshold_ms
    )
    all_errors = Counter(str(r["error_class"]) for r in measured_rows if r.get("error_class"))
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "scenario": plan.scenario,
        "data_source": plan.data_source,
        "shape": plan.shape_kind,
        "latency_origin": "t_sched" if open_loop else "t0",
        "mix": plan.mix,
        "planned_duration_s": plan.duration_s,
        "duration_s": end_offset_s,
        "window_s": window_s,
        "samples": len(rows),
        "measured": len(measured_rows),
        "warmup_samples": len(rows) - len(measured_rows),
        "aborted": aborted,
        "errors": dict(sorted(all_errors.items())),
        "requests_target": plan.requests,
        "requested_rate": requested_rate,
        "achieved_rate": achieved_rate,
        "client_saturated": saturated,
        "lag_ms": lag,
        "lag_threshold_ms": open_loop.lag_threshold_ms if open_loop else None,
        "concurrency_cap": (
            {"limit": open_loop.max_concurrency, "hits": cap_hits} if open_loop else None
        ),
        "slo": plan.slo,
        "groups": groups,
        "sweep": sweep,
        "workers": workers or {"expected": 0, "reported": 0, "lost": []},
        "client_cpu": client_cpu,
        "interrupted": interrupted,
        "end_reason": end_reason,
        "notes": list(notes),
    }
