"""``summary.json`` of a load run: the figures of :mod:`chatprobe.metrics`, plus what only the
run knows (its end, workers, client CPU, aborted requests).

Every figure is defined in :mod:`chatprobe.metrics` (window, throughput, goodput and the
missing-metric SLO rule, availability, rate limits, cost, open-loop rules); this module
only says which plan, samples and prices go in, and lays the result out as
``docs/results-format.md`` describes. The report computes the same figures from the same
folder through the same function, so the two agree.

* ``client_cpu``: CPU the load generator spent from test start to the end of load (the
  workers' total in a distributed run), per request, and as a fraction of the wall time;
  near 1.0 the client was the bottleneck and its queueing is in the latency figures.
  ``loop_lag_ms`` is how late its event loop woke (:mod:`chatprobe.load.loopwatch`): a
  starved client is busy only the little CPU time it gets, and this is what shows it.
  ``end_turn_ms`` is how long users waited for their end-of-stream turn
  (:mod:`chatprobe.load.idlegate`): long waits mean a saturated client ran fewer streams
  than planned.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chatprobe.load.plan import RunPlan
from chatprobe.metrics import (
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_SLO_ATTAINMENT,
    RunFigures,
    RunSpec,
    compute_run,
    jsonable,
    verdict,
)
from chatprobe.results.samples import SampleTable, load_samples
from chatprobe.results.snapshot import ProfileSnapshot

__all__ = [
    "SUMMARY_VERSION",
    "build_summary",
    "client_behind",
    "client_starved",
    "read_sample_table",
    "run_spec",
    "slo_declared",
    "summary_verdict",
]

SUMMARY_VERSION = 2
"""2: groups hold :class:`chatprobe.metrics.GroupFigures` (``requests``, ``availability``,
``rate_limited``, ``cost``, ...), a ``timeline`` replaces the bare window, and
``error_classes`` lists each class's most common message. Version 1 summaries are read by
reports only for folders without samples."""


def read_sample_table(path: Path) -> SampleTable:
    """``samples.jsonl`` as columns (an empty table when the file does not exist)."""
    if not path.exists():
        return SampleTable()
    return load_samples(path)[0]


def run_spec(
    plan: RunPlan,
    profiles: ProfileSnapshot | None,
    *,
    end_s: float | None,
    slo: dict[str, float] | None = None,
) -> RunSpec:
    """What :func:`chatprobe.metrics.compute_run` needs from a plan and the folder's
    profile snapshot (``slo`` overrides the plan's, as ``chatprobe report --slo`` does)."""
    prices = {}
    for target in plan.targets:
        info = profiles.model(target.provider, target.model) if profiles else None
        prices[(target.provider, target.model)] = info.pricing if info else None
    ol = plan.open_loop
    return RunSpec(
        stages=plan.stages,
        end_s=end_s,
        request_count=plan.requests is not None,
        open_loop_rate=ol.rate if ol else None,
        lag_threshold_ms=ol.lag_threshold_ms if ol else None,
        slo=slo if slo else plan.slo,
        slo_source="report" if slo else "scenario",
        prices=prices,
        targets=[(t.provider, t.model) for t in plan.targets],
        session_turns=plan.conversation.turns if plan.conversation is not None else None,
        timing_bound_ms=plan.timing_bound_ms,
    )


def slo_declared(plan: RunPlan) -> bool:
    """Did the scenario declare an SLO (limits or an attainment target)?"""
    return bool(plan.slo) or plan.slo_attainment is not None


def build_summary(
    plan: RunPlan,
    samples: SampleTable,
    *,
    run_id: str,
    profiles: ProfileSnapshot | None,
    end_offset_s: float | None = None,
    interrupted: bool = False,
    end_reason: str = "completed",
    workers: dict[str, Any] | None = None,
    aborted: int = 0,
    cap_hits: int = 0,
    held_skips: int = 0,
    client_cpu: dict[str, Any] | None = None,
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """The summary of one load run (see ``docs/results-format.md``)."""
    figures: RunFigures = compute_run(samples, run_spec(plan, profiles, end_s=end_offset_s))
    run = jsonable(figures)
    timeline = {
        "end_s": run.pop("end_s"),
        "end_reason": end_reason,
        "measured": run.pop("timeline"),
    }
    ol = plan.open_loop
    all_notes = [*run.pop("notes"), *notes]
    for note in (client_starved(client_cpu), client_behind(client_cpu)):
        if note:
            all_notes.append(note)
    providers = dict.fromkeys(t.provider for t in plan.targets)
    # What people call each provider (the naming rule: chatprobe.endpoints); ids stay the keys.
    shown = {p: profiles.display_name(p) if profiles else p for p in providers}
    return {
        "schema_version": SUMMARY_VERSION,
        "run_id": run_id,
        "scenario": plan.scenario,
        "data_source": plan.data_source,
        "shape": plan.shape_kind,
        "mix": plan.mix,
        "planned_duration_s": plan.duration_s,
        "duration_s": timeline["end_s"],
        "timeline": timeline,
        "requests_target": plan.requests,
        "aborted": aborted,
        "concurrency_cap": {"limit": ol.max_concurrency, "hits": cap_hits} if ol else None,
        "held_skips": held_skips if ol else None,
        "slo_attainment_target": (
            plan.slo_attainment if plan.slo_attainment is not None else DEFAULT_SLO_ATTAINMENT
        ),
        "slo_declared": slo_declared(plan),
        "display_names": shown,
        **run,
        "notes": all_notes,
        "workers": workers or {"expected": 0, "reported": 0, "lost": []},
        "client_cpu": client_cpu,
        "interrupted": interrupted,
        "end_reason": end_reason,
    }


def _over_limit(
    client_cpu: dict[str, Any] | None, figure: str, value: str, limit: str
) -> tuple[dict[str, Any], float, float, str] | None:
    """``client_cpu[figure]`` when its ``value`` passed its ``limit``: the figures, the
    value, the limit and " (worker)" naming the worst worker (or ""); None otherwise."""
    figures = (client_cpu or {}).get(figure) or {}
    got, most = figures.get(value), figures.get(limit)
    if got is None or most is None or got <= most:
        return None
    who = f" ({figures['worker']})" if figures.get("worker") else ""
    return figures, float(got), float(most), who


def client_starved(client_cpu: dict[str, Any] | None) -> str:
    """A note when the load process's event loop woke later than its limit (p99), or "":
    the client was short of CPU or overloaded, and its timing is in the figures."""
    over = _over_limit(client_cpu, "loop_lag_ms", "p99_ms", "limit_ms")
    if over is None:
        return ""
    loop, p99, limit, who = over
    return (
        f"client short of CPU: its event loop woke up to {p99:.1f} ms late{who} (p99 over "
        f"{loop.get('n', 0)} wake-ups, limit {limit:g} ms); sends and reads were late by as "
        "much: give the load generator a core of its own or more processes (--processes auto)"
    )


def client_behind(client_cpu: dict[str, Any] | None) -> str:
    """A note when users spent more than ``share_limit`` of their time waiting for their
    end-of-stream turn (:mod:`chatprobe.load.idlegate`), or "": about that share fewer
    streams were in flight than planned."""
    over = _over_limit(client_cpu, "end_turn_ms", "share", "share_limit")
    if over is None:
        return ""
    turn, share, limit, who = over
    return (
        f"client saturated: users spent {100 * share:.1f}% of their time{who} waiting for the "
        f"event loop between a stream's end and their next request (limit {100 * limit:g}%; "
        f"p99 wait {turn.get('p99_ms')} ms), so about that share fewer streams were in flight "
        "than planned; the timing itself stays exact: use more processes (--processes auto) "
        "or fewer users per process"
    )


def summary_verdict(
    summary: dict[str, Any], *, max_error_rate: float = DEFAULT_MAX_ERROR_RATE
) -> list[str]:
    """Why the run of this ``summary.json`` failed (:func:`chatprobe.metrics.verdict`)."""
    slo = summary.get("slo") or {}
    shown = summary.get("display_names") or {}
    return verdict(
        error_rate=summary.get("error_rate"),
        attainment={
            f"{shown.get(g.get('provider'), g.get('provider'))}/{g.get('model')}": (
                g.get("slo") or {}
            ).get("attainment")
            for g in summary.get("groups") or []
        },
        limits=slo.get("limits") or {},
        max_error_rate=max_error_rate,
        slo_declared=bool(summary.get("slo_declared")),
        slo_attainment=summary.get("slo_attainment_target"),
    )
