"""The report as plain data, computed once from results folders; renderers only format it.

The model holds figures, never sentences (those are the views', :mod:`chatprobe.report.headline`).
Every load figure comes from :func:`chatprobe.metrics.compute_run` on the folder's exact
samples (``samples.jsonl`` read as typed columns), with the plan, the recorded end and the
prices the folder captured at run time, so a report shows what ``summary.json`` shows for
the same folder; the rules (window, SLO and the missing-metric rule, availability, cost) are
written once, in :mod:`chatprobe.metrics`. A folder without samples falls back to its
``summary.json``.

Nothing about a past run is read from ``specs/providers/``: prices, price sources, model
families and documented deviation reasons come from the folder's ``profiles.json`` (and
``contract.json``). Folders written before snapshots existed get a warning, prices from
their ``plan.json`` where it recorded them, and no live-profile stand-ins.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from chatprobe.errors import ChatprobeError
from chatprobe.metrics import (
    DEFAULT_SLO,
    SLO_METRICS,
    CacheFigures,
    CheckTally,
    ConformanceUnderLoad,
    ContractFigures,
    Cost,
    Dist,
    GroupFigures,
    HeldBack,
    LengthFigures,
    RateLimited,
    ReasoningFigures,
    RunFigures,
    RunSpec,
    SampleIndex,
    SessionFigures,
    Slo,
    StageFigures,
    TimingBound,
    TurnFigures,
    compute_run,
    contract_figures,
    latency_column,
    send_offsets,
)
from chatprobe.results import ProfileSnapshot, Results, SampleTable
from chatprobe.stats import median_ratio_ci, percentile

__all__ = [
    "DEFAULT_SLO",
    "REPORT_SCHEMA_VERSION",
    "CapacityPoint",
    "CapacityTarget",
    "Comparison",
    "Conformance",
    "Dist",
    "GroupStats",
    "Report",
    "RunInfo",
    "build_report",
    "compare_groups",
    "family_pair",
]

REPORT_SCHEMA_VERSION = 3
"""2: groups carry :class:`chatprobe.metrics.GroupFigures` (the same names and values as
``summary.json``), sweep rows are :class:`chatprobe.metrics.StageFigures`, and the
summary sentences left the model for the views. 3: ``display_names`` (provider id -> what
people call it), groups' ``provider_display``, and the conformance findings as
:class:`chatprobe.metrics.CheckTally` rows (``tallies``, every finding counted) with the
run's :class:`chatprobe.metrics.ContractFigures` (``figures``) instead of the first three
findings of each failed case. ``capacity`` (added within 3): the capacity searches of
``chatprobe capacity`` folders, per target with every step's latency percentiles and CIs."""
CDF_POINTS = 120
TIMELINE_BINS = 60
TIMELINE_MAX_POINTS = 20_000  # per group; a stride subsample beyond
STATUS_ORDER = ("fail", "deviation", "pass", "skip")


@dataclass
class RunInfo:
    """What one results folder says about itself."""

    run_id: str
    kind: str
    path: str
    started_at: str
    finished_at: str | None
    harness_version: str
    machine: dict[str, Any]
    data_source: str
    command: list[str]
    providers: list[str]
    interrupted: bool
    notes: list[str]
    samples: int = 0
    skipped_lines: int = 0
    truncated_tail: bool = False
    scenario: str = ""
    duration_s: float | None = None
    warmup_start_s: float | None = None  # warm-up span on the t_offset_s axis
    warmup_s: float | None = None
    profiles_captured: bool = False  # the folder holds profiles.json
    # open loop (a rate or a trace replay): the schedule and how late requests went out
    latency_origin: str = "t0"
    requested_rate: float | None = None
    achieved_rate: float | None = None
    lag_ms: Dist = field(default_factory=Dist)
    client_saturated: bool = False


@dataclass
class GroupStats(GroupFigures):
    """One provider x model of a load run: its figures plus what the report draws."""

    family: str = ""
    provider_display: str = ""  # what people call the provider (profiles.json), else its id
    data_source: str = ""
    run_id: str = ""
    free: bool = False
    excerpts: list[str] = field(default_factory=list)
    cdf: list[tuple[float, float]] = field(default_factory=list)  # (ttft ms, fraction)
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (s, median ttft ms)

    @property
    def label(self) -> str:
        return f"{self.provider_display or self.provider} · {self.model}"


@dataclass
class Conformance:
    providers: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)
    matrix: dict[str, dict[str, str]] = field(default_factory=dict)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # provider -> outcome
    figures: ContractFigures = field(default_factory=ContractFigures)  # every case, tallied
    # Findings by check x provider x verdict (failures, deviations, warnings), with counts
    # and one example each; deviations carry the reason documented at run time.
    tallies: list[CheckTally] = field(default_factory=list)
    excerpts: list[tuple[str, str, str]] = field(default_factory=list)  # provider, model, text
    data_source: str = ""


@dataclass
class Comparison:
    """A TTFT ratio (median of a / median of b) with its 95% CI (:mod:`chatprobe.stats`)."""

    kind: str  # "family" (two versions of one family at one provider) | "provider"
    scope: str
    a: str
    b: str
    a_p50: float | None
    b_p50: float | None
    n_a: int
    n_b: int
    ratio: float | None
    low: float | None
    high: float | None
    outcome: str  # a_faster | b_faster | unclear | no_data


@dataclass
class CapacityPoint:
    """One step of a capacity search: its level and what it measured there."""

    level: float
    outcome: str  # holds | fails | unclear | invalid | rate_limited
    valid: bool
    saturated: bool
    requests: int
    throughput_rps: float | None
    goodput_rps: float | None
    # metric -> {n, p50, p50_low, p50_high, p95, ..., p99, ...}
    latency: dict[str, dict[str, float | int | None]] = field(default_factory=dict)


@dataclass
class CapacityTarget:
    """One target's capacity search (``capacity.json``), as the report draws it."""

    provider: str
    model: str
    run_id: str
    data_source: str
    by: str  # rate | concurrency
    unit: str  # req/s | users
    slo: dict[str, float]  # the latency limits
    slo_text: str
    percentile: float
    confidence: float
    capacity: float | None
    low: float | None
    high: float | None
    limit: str | None
    end: str
    statement: str
    steps_used: int
    max_steps: int
    points: list[CapacityPoint] = field(default_factory=list)
    provider_display: str = ""

    @property
    def label(self) -> str:
        return f"{self.provider_display or self.provider} · {self.model}"


@dataclass
class Report:
    report_id: str
    generated_at: str
    harness_version: str
    runs: list[RunInfo]
    data_sources: list[str]
    slo: dict[str, float]  # the limits goodput used (--slo, else the load runs')
    slo_source: str = "default"  # report (--slo) | scenario | default | mixed
    groups: list[GroupStats] = field(default_factory=list)
    sweep: list[StageFigures] = field(default_factory=list)
    capacity: list[CapacityTarget] = field(default_factory=list)
    conformance: Conformance | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # provider id -> what people call it (the naming rule: chatprobe.endpoints), from the
    # folders' profiles.json, contract.json and summary.json
    display_names: dict[str, str] = field(default_factory=dict)
    schema_version: int = REPORT_SCHEMA_VERSION

    def name(self, provider: str) -> str:
        """What people call ``provider`` (an id)."""
        return self.display_names.get(provider, provider)

    @property
    def emulated(self) -> bool:
        return "emulated" in self.data_sources

    @property
    def source_label(self) -> str:
        return " + ".join(self.data_sources) or "unknown"


# ----------------------------------------------------------------------------- building


def build_report(
    folders: list[Results],
    *,
    report_id: str | None = None,
    slo: dict[str, float] | None = None,
) -> Report:
    """Compute the whole report from loaded folders (see the module docstring)."""
    from chatprobe import __version__

    runs = [_run_info(r) for r in folders]
    sources = sorted({run.data_source for run in runs if run.data_source})
    report = Report(
        report_id=report_id or _default_id(folders),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        harness_version=__version__,
        runs=runs,
        data_sources=sources,
        slo=dict(slo or {}),
        slo_source="report" if slo else "default",
    )
    used_slos: list[tuple[str, dict[str, float]]] = []
    for res, run in zip(folders, runs, strict=True):
        for provider, shown in _display_names(res).items():
            report.display_names.setdefault(provider, shown)
        if res.skipped_lines:
            where = ", ".join(str(n) for n in res.bad_line_numbers)
            cut = (
                " (the last line was cut off by an interrupted write)" if res.truncated_tail else ""
            )
            report.warnings.append(
                f"{res.run_id}: skipped {res.skipped_lines} unreadable line(s) of samples.jsonl "
                f"(line {where}){cut}."
            )
        report.warnings.extend(_folder_warnings(res))
        if res.meta.get("interrupted"):
            report.warnings.append(
                f"{res.run_id}: the run was interrupted; figures cover what was measured."
            )
        if res.capacity is not None:
            report.capacity.extend(_capacity_targets(res))
            continue
        if res.samples is not None and len(res.samples):
            groups, sweep, used, figures = _groups_from_samples(
                res, res.samples, slo, report.warnings
            )
            used_slos.append(used)
            if figures.latency_origin == "t_sched":
                run.latency_origin = figures.latency_origin
                run.requested_rate = figures.requested_rate
                run.achieved_rate = figures.achieved_rate
                run.lag_ms = figures.lag_ms
                run.client_saturated = figures.client_saturated
        elif res.summary is not None:
            groups, sweep = _groups_from_summary(res)
        else:
            continue
        report.groups.extend(groups)
        report.sweep.extend(sweep)
    if not slo and used_slos:
        report.slo_source, report.slo = used_slos[0]
        if any(limits != report.slo for _source, limits in used_slos[1:]):
            report.slo_source = "mixed"
            report.warnings.append(
                "the load runs declare different SLOs; each group's goodput uses its own run's "
                "(pass --slo to compare under one)."
            )
    for g in report.groups:
        g.provider_display = report.name(g.provider)
    for c in report.capacity:
        c.provider_display = report.name(c.provider)
    _warn_duplicates(report)
    report.conformance = _conformance([r for r in folders if r.contract is not None])
    report.comparisons = compare_groups(report.groups)
    return report


def _capacity_targets(res: Results) -> list[CapacityTarget]:
    """The targets of a ``capacity.json`` (the search's figures, as written)."""
    doc = res.capacity or {}
    slo = doc.get("slo") or {}
    out = []
    for t in doc.get("targets") or []:
        points = []
        for step in t.get("steps") or []:
            health = step.get("health") or {}
            points.append(
                CapacityPoint(
                    level=float(step.get("level") or 0.0),
                    outcome=str(step.get("outcome") or ""),
                    valid=bool(health.get("valid", True)),
                    saturated=bool(step.get("saturated")),
                    requests=int(step.get("requests") or 0),
                    throughput_rps=step.get("throughput_rps"),
                    goodput_rps=step.get("goodput_rps"),
                    latency=dict(step.get("latency") or {}),
                )
            )
        points.sort(key=lambda p: p.level)
        out.append(
            CapacityTarget(
                provider=str(t.get("provider")),
                model=str(t.get("model")),
                run_id=res.run_id,
                data_source=res.data_source,
                by=str(doc.get("by") or "rate"),
                unit=str(doc.get("unit") or "req/s"),
                slo={str(k): float(v) for k, v in (slo.get("limits") or {}).items()},
                slo_text=str(slo.get("text") or ""),
                percentile=float(slo.get("percentile") or 95.0),
                confidence=float(slo.get("confidence") or 0.95),
                capacity=t.get("capacity"),
                low=t.get("low"),
                high=t.get("high"),
                limit=t.get("limit"),
                end=str(t.get("end") or ""),
                statement=str(t.get("statement") or ""),
                steps_used=int(t.get("steps_used") or len(points)),
                max_steps=int(t.get("max_steps") or 0),
                points=points,
            )
        )
    return out


def _display_names(res: Results) -> dict[str, str]:
    """Provider id -> display name as the folder recorded it: ``contract.json`` and
    ``summary.json`` (``display_names``), else ``profiles.json``; ids not named there are
    shown as they are."""
    found: dict[str, str] = {}
    for doc in (res.contract, res.summary):
        names = (doc or {}).get("display_names")
        if isinstance(names, dict):
            found.update({str(k): str(v) for k, v in names.items() if isinstance(v, str) and v})
    snapshot = res.profiles
    if snapshot is not None:
        for provider, shown in snapshot.display_names().items():
            found.setdefault(provider, shown)
    return found


def _folder_warnings(res: Results) -> list[str]:
    """What a folder says about its own trustworthiness and completeness."""
    out: list[str] = []
    summary = res.summary or {}
    if res.profiles is None and (res.samples is not None or res.summary or res.contract):
        out.append(
            f"{res.run_id}: written by an older chatprobe without profiles.json: prices, "
            "model families and deviation reasons are only what the folder itself recorded "
            "(plan.json prices, contract.json reasons); today's profiles are not used for a "
            "past run."
        )
    if summary.get("client_saturated"):
        out.append(
            f"{res.run_id}: the load client was saturated (send lag above its threshold): "
            "latency figures include client-side queueing."
        )
    workers = summary.get("workers")
    lost = (workers.get("lost") if isinstance(workers, dict) else None) or []
    if lost:
        out.append(
            f"{res.run_id}: {len(lost)} load worker(s) were lost; their samples are missing."
        )
    # contract.json's "warnings" are checks that passed with warnings (provider -> check -> n):
    # findings, shown with the other findings by check, not notes about the folder.
    for note in summary.get("notes") or []:
        if isinstance(note, str) and note.strip():
            out.append(f"{res.run_id}: {note.strip()}")
    return out


def _default_id(folders: list[Results]) -> str:
    groups = {r.meta.get("group") for r in folders if r.meta.get("group")}
    if len(groups) == 1:
        return str(groups.pop())
    return max((r.run_id for r in folders), default="report")


def _run_info(res: Results) -> RunInfo:
    meta = res.meta
    summary = res.summary or {}
    return RunInfo(
        run_id=res.run_id,
        kind=res.kind,
        path=str(res.path),
        started_at=str(meta.get("started_at") or ""),
        finished_at=meta.get("finished_at"),
        harness_version=str(meta.get("harness_version") or ""),
        machine=dict(meta.get("machine") or {}),
        data_source=res.data_source,
        command=[str(a) for a in meta.get("command") or []],
        providers=[str(p) for p in meta.get("providers") or []],
        interrupted=bool(meta.get("interrupted")),
        notes=[str(n) for n in meta.get("notes") or []],
        samples=len(res.samples) if res.samples is not None else 0,
        skipped_lines=res.skipped_lines,
        truncated_tail=res.truncated_tail,
        scenario=str(summary.get("scenario") or ""),
        duration_s=summary.get("duration_s"),
        profiles_captured=res.profiles is not None,
        latency_origin=str(summary.get("latency_origin") or "t0"),
        requested_rate=summary.get("requested_rate"),
        achieved_rate=summary.get("achieved_rate"),
        lag_ms=Dist.from_dict(summary.get("lag_ms")),
        client_saturated=bool(summary.get("client_saturated")),
        **_warmup_span(res.samples),
    )


def _warmup_span(t: SampleTable | None) -> dict[str, float]:
    if t is None or not any(t.warmup):
        return {}
    offsets = send_offsets(t)
    warm = [o for o in itertools.compress(offsets, t.warmup) if o == o]
    if not warm:
        return {}
    return {"warmup_start_s": min(warm), "warmup_s": max(warm)}


def _recorded_end(summary: dict[str, Any] | None) -> float | None:
    """When the run stopped, as the run recorded it in summary.json (version 1 or 2)."""
    if not summary:
        return None
    timeline = summary.get("timeline")
    end = timeline.get("end_s") if isinstance(timeline, dict) else summary.get("duration_s")
    return float(end) if isinstance(end, int | float) and not isinstance(end, bool) else None


def _slo_of_summary(summary: dict[str, Any] | None) -> dict[str, float]:
    """The SLO limits an older folder without plan.json recorded in its summary."""
    for group in (summary or {}).get("groups") or []:
        slo = group.get("slo") if isinstance(group, dict) else None
        if isinstance(slo, dict):
            limits: dict[str, Any] = slo["limits"] if isinstance(slo.get("limits"), dict) else slo
            found = {
                k: float(v)
                for k, v in limits.items()
                if k in SLO_METRICS and isinstance(v, int | float) and not isinstance(v, bool)
            }
            if found:
                return found
    return {}


def _snapshot(res: Results) -> ProfileSnapshot | None:
    if res.profiles is not None:
        return res.profiles
    if res.plan is not None:
        return ProfileSnapshot.from_legacy_plan(res.plan)
    return None


def _spec(
    res: Results, t: SampleTable, slo: dict[str, float] | None, warnings: list[str]
) -> RunSpec:
    """The run's plan, recorded end and captured prices, as metrics take them."""
    from chatprobe.load.plan import RunPlan
    from chatprobe.load.summary import run_spec

    snapshot = _snapshot(res)
    end_s = _recorded_end(res.summary)
    if res.plan is not None:
        try:
            plan = RunPlan.from_dict(res.plan)
        except (TypeError, KeyError, ValueError, ChatprobeError) as exc:
            warnings.append(
                f"{res.run_id}: plan.json is not readable ({exc}); window from samples."
            )
        else:
            return run_spec(plan, snapshot, end_s=end_s, slo=slo)
    prices = {}
    for key in t.groups:
        info = snapshot.model(*key) if snapshot else None
        prices[key] = info.pricing if info else None
    limits = slo or _slo_of_summary(res.summary)
    return RunSpec(
        stages=None,
        end_s=end_s,
        slo=limits,
        slo_source="report" if slo else "scenario",
        prices=prices,
    )


def _groups_from_samples(
    res: Results, t: SampleTable, slo: dict[str, float] | None, warnings: list[str]
) -> tuple[list[GroupStats], list[StageFigures], tuple[str, dict[str, float]], RunFigures]:
    spec = _spec(res, t, slo, warnings)
    index = SampleIndex(t)
    figures = compute_run(t, spec, index=index)
    recorded = set((res.summary or {}).get("notes") or [])  # shown with the folder's warnings
    warnings.extend(f"{res.run_id}: {note}" for note in figures.notes if note not in recorded)
    snapshot = _snapshot(res)
    codes = {key: g for g, key in enumerate(t.groups)}
    open_loop = spec.open_loop_rate is not None
    offsets = send_offsets(t)
    ttft = latency_column(t, "ttft_ms", open_loop=open_loop)
    groups = []
    for fig in figures.groups:
        g = codes.get((fig.provider, fig.model))
        if g is None or not fig.requests:
            continue
        stats = GroupStats(**{f.name: getattr(fig, f.name) for f in fields(GroupFigures)})
        info = snapshot.model(fig.provider, fig.model) if snapshot else None
        stats.family = info.family if info else fig.model
        stats.free = info.free if info else False
        stats.data_source = res.data_source
        stats.run_id = res.run_id
        stats.cdf = _cdf(stats.ttft_sorted)
        # successful requests, warm-up included
        over_time = index.group(g, failed=False, warm=False) + index.group(
            g, failed=False, warm=True
        )
        over_time = over_time[:: max(1, len(over_time) // TIMELINE_MAX_POINTS)]
        stats.timeline = _timeline([offsets[i] for i in over_time], [ttft[i] for i in over_time])
        stats.excerpts = list(t.excerpts.get(g, []))
        groups.append(stats)
    return groups, figures.sweep, (figures.slo.source, dict(figures.slo.limits)), figures


def _cdf(sorted_values: list[float]) -> list[tuple[float, float]]:
    if not sorted_values:
        return []
    qs = [100.0 * k / (CDF_POINTS - 1) for k in range(CDF_POINTS)]
    return [(percentile(sorted_values, q), q / 100.0) for q in qs]


def _timeline(times: list[float], values: list[float]) -> list[tuple[float, float]]:
    pairs = [(t, v) for t, v in zip(times, values, strict=True) if t == t and v == v]
    if not pairs:
        return []
    lo = min(p[0] for p in pairs)
    hi = max(p[0] for p in pairs)
    width = (hi - lo) / TIMELINE_BINS or 1.0
    bins: list[list[float]] = [[] for _ in range(TIMELINE_BINS + 1)]
    for tt, v in pairs:
        bins[int((tt - lo) / width)].append(v)
    out = []
    for k, values_in_bin in enumerate(bins):
        if values_in_bin:
            values_in_bin.sort()
            out.append((lo + (k + 0.5) * width, percentile(values_in_bin, 50.0)))
    return out


def _groups_from_summary(res: Results) -> tuple[list[GroupStats], list[StageFigures]]:
    """Figures from ``summary.json`` alone (a folder whose samples are gone)."""
    summary = res.summary or {}
    snapshot = _snapshot(res)
    version = summary.get("schema_version")
    groups = []
    for row in summary.get("groups") or []:
        if not isinstance(row, dict):
            continue
        provider, model = str(row.get("provider", "?")), str(row.get("model", "?"))
        stats = GroupStats(provider=provider, model=model, data_source=res.data_source)
        stats.run_id = res.run_id
        info = snapshot.model(provider, model) if snapshot else None
        stats.family = info.family if info else model
        stats.free = info.free if info else False
        if version == 1:
            _legacy_group(stats, row, summary)
        else:
            _group_from_dict(stats, row)
        groups.append(stats)
    sweep = []
    for row in summary.get("sweep") or []:
        if isinstance(row, dict) and version != 1:
            sweep.append(_stage_from_dict(row))
    return groups, sweep


def _group_from_dict(stats: GroupStats, row: dict[str, Any]) -> None:
    for f in fields(GroupFigures):
        if f.name not in row or not f.metadata.get("json", True):
            continue
        value = row[f.name]
        if f.name in ("ttfb_ms", "ttft_ms", "ttfa_ms", "itl_ms", "e2e_ms", "output_tokens"):
            value = Dist.from_dict(value)
        elif f.name in _NESTED:
            value = _nested(_NESTED[f.name], value)
        elif f.name == "ttft_ms_from_t0":
            value = Dist.from_dict(value) if value else None
        elif f.name == "slo":
            value = Slo(**_known(Slo, value))
        elif f.name == "cost":
            value = Cost(**_known(Cost, value))
        elif f.name == "rate_limited":
            value = RateLimited(**_known(RateLimited, value))
        elif f.name == "held":
            value = HeldBack(**_known(HeldBack, value if isinstance(value, dict) else {}))
        elif f.name == "sessions":
            value = _sessions_from_dict(value) if isinstance(value, dict) else None
        elif f.name == "error_messages":
            value = [tuple(m) for m in value or [] if isinstance(m, list | tuple) and len(m) == 3]
        setattr(stats, f.name, value)


_NESTED: dict[str, Any] = {
    "reasoning": ReasoningFigures,
    "cache": CacheFigures,
    "lengths": LengthFigures,
    "timing_bound": TimingBound,
    "conformance": ConformanceUnderLoad,
}


def _nested(cls: Any, value: Any) -> Any:
    """A figures dataclass from its summary dict, its :class:`Dist` fields rebuilt."""
    values = _known(cls, value if isinstance(value, dict) else {})
    for f in fields(cls):
        if f.name in values and f.type in ("Dist", Dist):
            values[f.name] = Dist.from_dict(values[f.name])
    return cls(**values)


def _sessions_from_dict(value: dict[str, Any]) -> SessionFigures:
    fig = _nested(SessionFigures, value)
    turns = []
    for row in value.get("by_turn") or []:
        if isinstance(row, dict):
            turn = _nested(TurnFigures, row)
            turn.cache = _nested(CacheFigures, row.get("cache"))
            turns.append(turn)
    fig.by_turn = turns
    return fig


def _known(cls: Any, value: Any) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in (value or {}).items() if k in names}


def _stage_from_dict(row: dict[str, Any]) -> StageFigures:
    values = _known(StageFigures, row)
    for name in ("ttft_ms", "itl_ms"):
        values[name] = Dist.from_dict(values.get(name))
    values.setdefault("stage", "")
    values.setdefault("users", 0)
    values.setdefault("provider", "?")
    values.setdefault("model", "?")
    values.setdefault("window_s", 0.0)
    return StageFigures(**values)


def _legacy_group(stats: GroupStats, row: dict[str, Any], summary: dict[str, Any]) -> None:
    """A version 1 summary group (before chatprobe.metrics): the figures it recorded."""
    stats.requests = int(row.get("n") or 0)
    stats.errors = {str(k): int(v) for k, v in (row.get("errors") or {}).items()}
    stats.ok = max(0, stats.requests - sum(stats.errors.values()))
    stats.success_rate = row.get("success_rate")
    stats.ttft_ms = Dist.from_dict(row.get("ttft_ms"))
    stats.itl_ms = Dist.from_dict(row.get("itl_ms"))
    stats.e2e_ms = Dist.from_dict(row.get("e2e_ms"))
    stats.ttfb_ms = Dist.from_dict(row.get("ttfb_ms"))
    stats.requests_per_s = row.get("requests_per_s")
    stats.output_tokens_per_s = row.get("output_tokens_per_s")
    stats.goodput_rps = row.get("goodput_rps")
    stats.window_s = summary.get("window_s") or summary.get("duration_s")
    per_1k = row.get("cost_per_1k_requests")
    stats.cost = Cost(
        per_1k_requests=per_1k,
        per_request=per_1k / 1000 if isinstance(per_1k, int | float) else None,
        price_note=str(row.get("price_source") or ""),
        price_source=(
            "documented"
            if str(row.get("price_source") or "").lower().startswith("documented")
            else ("assumed" if row.get("price_source") else "none")
        ),
    )


def _warn_duplicates(report: Report) -> None:
    seen = Counter((g.provider, g.model) for g in report.groups)
    for (provider, model), count in seen.items():
        if count > 1:
            report.warnings.append(
                f"{report.name(provider)} · {model} appears in {count} load folders; each is "
                "shown separately (see the run column)."
            )


# ----------------------------------------------------------------------------- conformance


def _conformance(folders: list[Results]) -> Conformance | None:
    """The matrix (worst status per provider x check over the folders), and every case's
    findings tallied by check (:func:`chatprobe.metrics.contract_figures`)."""
    if not folders:
        return None
    conf = Conformance()
    sources = set()
    snapshots: dict[str, ProfileSnapshot] = {}
    results: list[dict[str, Any]] = []
    severities: dict[str, str] = {}
    for res in folders:
        contract = res.contract or {}
        sources.add(str(contract.get("data_source") or res.data_source))
        for name, info in (contract.get("checks") or {}).items():
            if isinstance(info, dict):
                conf.descriptions[str(name)] = str(info.get("description") or "")
                severities[str(name)] = str(info.get("severity") or "")
        matrix = contract.get("matrix") or {}
        for provider, row in matrix.items():
            if not isinstance(row, dict):
                continue
            if res.profiles is not None:
                snapshots.setdefault(str(provider), res.profiles)
            target = conf.matrix.setdefault(str(provider), {})
            for check, status in row.items():
                status = str(status)
                old = target.get(str(check))
                if old is None or _rank(status) < _rank(old):
                    target[str(check)] = status
        for result in contract.get("results") or []:
            if not isinstance(result, dict):
                continue
            results.append(result)
            provider = str(result.get("provider") or "?")
            excerpt = str(result.get("output_excerpt") or "")[:500]
            shown = [e for e in conf.excerpts if e[0] == provider]
            if excerpt and len(shown) < 2 and all(e[2] != excerpt for e in shown):
                conf.excerpts.append((provider, str(result.get("model") or ""), excerpt))
    conf.figures = contract_figures(results, severities)
    conf.outcomes = {p: dict(o) for p, o in conf.figures.by_provider.items() if p != "-"}
    for tally in conf.figures.tallies:
        if tally.verdict == "deviation" and not tally.reason:
            # The reason as documented when the run was made (never today's profile).
            snapshot = snapshots.get(tally.provider)
            tally.reason = (
                snapshot.deviation(tally.provider, tally.check) if snapshot else ""
            ) or ""
    conf.tallies = conf.figures.tallies
    conf.data_source = " + ".join(sorted(s for s in sources if s))
    conf.providers = sorted(conf.matrix) or sorted(conf.outcomes)
    checks: set[str] = set()
    for row in conf.matrix.values():
        checks.update(row)
    conf.checks = sorted(checks)
    for provider, row in conf.matrix.items():
        totals = dict.fromkeys(STATUS_ORDER, 0)
        for status in row.values():
            totals[status] = totals.get(status, 0) + 1
        conf.totals[provider] = totals
    return conf


def _rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


# ----------------------------------------------------------------------------- comparisons

_VERSION = re.compile(r"\d+(?:\.\d+)*")


def family_pair(a: str, b: str) -> bool:
    """Are ``a`` and ``b`` two versions of one model family (``gemini-2.0-flash`` and
    ``gemini-1.5-flash``): different names that are the same once version numbers are
    set aside? Unrelated models (``gpt-4o-mini`` and ``llama-3-8b``) are not."""
    if a == b or not _VERSION.search(a) or not _VERSION.search(b):
        return False
    return _VERSION.sub("#", a) == _VERSION.sub("#", b)


def _outcome(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "no_data"
    if high < 1:
        return "a_faster"
    if low > 1:
        return "b_faster"
    return "unclear"


def compare_groups(groups: list[GroupStats]) -> list[Comparison]:
    """TTFT ratios worth showing: two versions of one family at one provider (only real
    family pairs, :func:`family_pair`), and one family across providers (each against the
    fastest)."""
    usable = [g for g in groups if g.ttft_ms.n >= 2]
    out: list[Comparison] = []
    # Versions of one family at one provider: e.g. Gemini 2.0 Flash vs 1.5 Flash.
    by_provider: dict[str, dict[str, GroupStats]] = {}
    for g in usable:
        best = by_provider.setdefault(g.provider, {}).get(g.family)
        if best is None or g.ttft_ms.n > best.ttft_ms.n:
            by_provider[g.provider][g.family] = g
    for provider, families in sorted(by_provider.items()):
        names = sorted(families, reverse=True)  # newer versions sort later: put them first
        for i, fa in enumerate(names):
            for fb in names[i + 1 :]:
                if family_pair(fa, fb):
                    scope = families[fa].provider_display or provider
                    out.append(_compare("family", scope, families[fa], families[fb]))
    # One family across providers: each against the fastest.
    by_family: dict[str, list[GroupStats]] = {}
    for g in usable:
        by_family.setdefault(g.family, []).append(g)
    for family, members in sorted(by_family.items()):
        if len({m.provider for m in members}) < 2:
            continue
        members = sorted(members, key=lambda m: m.ttft_ms.p50 or math.inf)
        base = members[0]
        for other in members[1:]:
            if other.provider != base.provider:
                out.append(_compare("provider", family, other, base))
    return out


def _compare(kind: str, scope: str, a: GroupStats, b: GroupStats) -> Comparison:
    va, vb = a.ttft_sorted, b.ttft_sorted
    if va and vb:
        ratio, low, high = median_ratio_ci(
            va,
            vb,
            ci_a=(a.ttft_ms.p50_low, a.ttft_ms.p50_high),
            ci_b=(b.ttft_ms.p50_low, b.ttft_ms.p50_high),
            seed=11,
        )
    elif a.ttft_ms.p50 and b.ttft_ms.p50:  # summary-only folders: no CI
        ratio, low, high = a.ttft_ms.p50 / b.ttft_ms.p50, None, None
    else:
        ratio = low = high = None
    return Comparison(
        kind=kind,
        scope=scope,
        a=a.model if kind == "family" else a.label,
        b=b.model if kind == "family" else b.label,
        a_p50=a.ttft_ms.p50,
        b_p50=b.ttft_ms.p50,
        n_a=a.ttft_ms.n,
        n_b=b.ttft_ms.n,
        ratio=ratio,
        low=low,
        high=high,
        outcome=_outcome(low, high) if ratio is not None else "no_data",
    )
