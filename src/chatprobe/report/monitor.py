"""``chatprobe report --monitor DB``: a monitor's history as HTML, Markdown and JSON.

The same family as the comparison report: a data model of plain dataclasses
(:class:`MonitorReport`, figures only, written as ``report.json``), sections of tables and
charts built from it (:class:`~chatprobe.report.views.Section`, the cells plain text), and
two renderers of the same sections: ``index.html`` (Jinja2 with autoescape, inline SVG, no
JavaScript) and ``report.md`` (every value through the Markdown escaping filters). Model and
provider text (finding messages, error details) is never marked safe.

Per target: uptime over 5m/1h/1d/7d at the last probe, TTFT percentiles over time, TTFT
median per probe series over time, uptime by hour, a findings timeline (when each check's
finding was present) and the events. Figures come from the history
(:mod:`chatprobe.monitor.store`), uptime through :func:`chatprobe.metrics.availability`,
percentiles through :mod:`chatprobe.stats`; raw probes give exact percentiles per time bin,
rolled-up hours the percentiles computed when they were rolled up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import orjson

from chatprobe._version import __version__
from chatprobe.metrics import Dist, availability, jsonable
from chatprobe.monitor.clock import iso
from chatprobe.monitor.detect import FINDING_STATUSES, LatencyRule, participates
from chatprobe.monitor.store import ALL_PROBES, History, TargetRow
from chatprobe.monitor.uptime import UPTIME_WINDOWS
from chatprobe.report.charts import PALETTE, line_chart
from chatprobe.report.formatting import NA, count, ms, pct
from chatprobe.report.render import md_cell, md_text
from chatprobe.report.views import Cell, Section, num, table
from chatprobe.results.folder import REPORT_HTML, REPORT_JSON, REPORT_MD, write_text_atomic
from chatprobe.scrub import scrub_obj, scrub_text
from chatprobe.stats import describe_sorted, percentile

__all__ = [
    "MONITOR_REPORT_SCHEMA",
    "MonitorReport",
    "build_monitor_report",
    "build_monitor_sections",
    "render_monitor_html",
    "render_monitor_json",
    "render_monitor_markdown",
    "write_monitor_report",
]

MONITOR_REPORT_SCHEMA = 1
HOURS_SHOWN = 48  # rows of the uptime-by-hour table (the chart shows every hour)
_TEMPLATES = Path(__file__).parent / "templates"


# ----------------------------------------------------------------------------- model


@dataclass
class WindowUptime:
    window: str
    ok: int
    errored: int
    rate_limited: int
    uptime: float | None


@dataclass
class TimeBin:
    """Probes sent in ``[start_t, start_t + seconds)``."""

    start_t: float
    seconds: float
    requests: int = 0
    ok: int = 0
    errored: int = 0
    rate_limited: int = 0
    uptime: float | None = None
    ttft_ms: Dist = field(default_factory=Dist)
    series_p50: dict[str, float] = field(default_factory=dict)  # probe name -> TTFT p50
    rolled_up: bool = False


@dataclass
class FindingSpan:
    """One check failing on one case, from ``first_t`` to ``last_t`` (its probes)."""

    case: str
    check: str
    severity: str
    status: str
    first_t: float
    last_t: float
    probes: int
    message: str
    open: bool  # still present on the case's last answered probe


@dataclass
class EventRow:
    t: float
    kind: str
    subject: str
    message: str
    delivered: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PromptSize:
    """A latency probe's requested input size against what the provider reported."""

    name: str
    requested: int | None
    reported_p50: float | None
    probes: int


@dataclass
class TargetReport:
    provider: str
    model: str
    data_source: str
    probes: int = 0
    first_t: float | None = None
    last_t: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    uptime: list[WindowUptime] = field(default_factory=list)
    bins: list[TimeBin] = field(default_factory=list)
    hours: list[TimeBin] = field(default_factory=list)
    findings: list[FindingSpan] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    prompts: list[PromptSize] = field(default_factory=list)
    label: str = ""  # provider · model, and the data source when a history has both


@dataclass
class MonitorReport:
    schema_version: int
    generated_at: str
    database: str
    harness_version: str
    clock: float
    emulated: bool
    start_t: float | None
    end_t: float | None
    bin_s: float
    runs: list[dict[str, Any]] = field(default_factory=list)
    targets: list[TargetReport] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(len(t.events) for t in self.targets)


def _bin_seconds(span: float) -> float:
    """The time bin of the over-time charts: at most 36 bins up to a day and a half, hourly
    up to two weeks, then six hours."""
    for seconds in (300.0, 900.0, 3600.0):
        if span <= seconds * 36:
            return seconds
    return 3600.0 if span <= 14 * 86400 else 6 * 3600.0


def build_monitor_report(history: History) -> MonitorReport:
    """Read the history into the report model (see the module docstring)."""
    targets = history.targets()
    probes = {t.id: history.probes(t.id) for t in targets}
    hourly = {t.id: history.hourly(t.id) for t in targets}
    times = [p["t"] for rows in probes.values() for p in rows]
    times += [h["hour"] for rows in hourly.values() for h in rows]
    start = min(times, default=None)
    end = max(times, default=None)
    span = 0.0 if start is None or end is None else end - start
    bin_s = max(_bin_seconds(span), 3600.0 if any(hourly.values()) else 0.0)
    report = MonitorReport(
        schema_version=MONITOR_REPORT_SCHEMA,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        database=history.path.name,
        harness_version=__version__,
        clock=history.clock.factor,
        emulated=any(t.data_source == "emulated" for t in targets),
        start_t=start,
        end_t=end,
        bin_s=bin_s,
        runs=history.runs(),
    )
    for target in targets:
        report.targets.append(_target(history, target, probes[target.id], hourly[target.id], bin_s))
    pairs = [(t.provider, t.model) for t in report.targets]
    for t in report.targets:
        t.label = f"{t.provider} · {t.model}"
        if pairs.count((t.provider, t.model)) > 1:
            t.label += f" [{t.data_source}]"
    return report


def _counts(rows: Sequence[dict[str, Any]]) -> tuple[int, int, int]:
    counted = [r for r in rows if r["counted"]]
    ok = sum(1 for r in counted if r["up"] == 1)
    limited = sum(1 for r in counted if r["outcome"] == "rate_limited")
    errored = sum(1 for r in counted if r["up"] == 0)
    return ok, errored, limited


def _bins(
    rows: Sequence[dict[str, Any]], hourly: Sequence[dict[str, Any]], seconds: float
) -> list[TimeBin]:
    grouped: dict[float, list[dict[str, Any]]] = {}
    for r in rows:
        grouped.setdefault((r["t"] // seconds) * seconds, []).append(r)
    out: dict[float, TimeBin] = {}
    for start, items in grouped.items():
        ok, errored, limited = _counts(items)
        success = [r for r in items if r["up"] == 1 and r["ttft_ms"] is not None]
        values = sorted(r["ttft_ms"] for r in success)
        series: dict[str, list[float]] = {}
        for r in success:
            series.setdefault(r["name"], []).append(r["ttft_ms"])
        out[start] = TimeBin(
            start,
            seconds,
            requests=len(items),
            ok=ok,
            errored=errored,
            rate_limited=limited,
            uptime=availability(ok, errored + limited, limited),
            ttft_ms=Dist(**describe_sorted(values)),  # type: ignore[arg-type]
            series_p50={k: percentile(sorted(v), 50.0) for k, v in sorted(series.items())},
        )
    by_hour: dict[float, list[dict[str, Any]]] = {}
    for h in hourly:
        by_hour.setdefault((h["hour"] // seconds) * seconds, []).append(h)
    for start, items in by_hour.items():
        pooled = next((h for h in items if h["name"] == ALL_PROBES), None)
        if pooled is None or start in out:
            continue
        ok, errored, limited = pooled["ok"], pooled["errored"], pooled["rate_limited"]
        out[start] = TimeBin(
            start,
            seconds,
            requests=pooled["requests"],
            ok=ok,
            errored=errored,
            rate_limited=limited,
            uptime=availability(ok, errored + limited, limited),
            ttft_ms=Dist.from_dict(pooled["ttft"]),
            series_p50={
                h["name"]: h["ttft"]["p50"]
                for h in items
                if h["name"] != ALL_PROBES and h["ttft"].get("p50") is not None
            },
            rolled_up=True,
        )
    return [out[k] for k in sorted(out)]


def _spans(
    rows: Sequence[dict[str, Any]],
    findings: Sequence[dict[str, Any]],
    hourly_findings: Sequence[dict[str, Any]],
) -> list[FindingSpan]:
    """Consecutive answered probes of a case on which a check had a finding."""
    by_probe: dict[int, list[dict[str, Any]]] = {}
    for f in findings:
        if f["status"] in FINDING_STATUSES:
            by_probe.setdefault(f["probe_id"], []).append(f)
    answered: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] == "contract" and participates(r["status"]):
            answered.setdefault(r["name"], []).append(r)
    spans: list[FindingSpan] = []
    for case, items in answered.items():
        open_spans: dict[str, FindingSpan] = {}
        for r in items:
            present = {f["check"]: f for f in by_probe.get(r["id"], [])}
            for check in list(open_spans):
                if check not in present:
                    spans.append(open_spans.pop(check))
            for check, f in present.items():
                span = open_spans.get(check)
                if span is None:
                    open_spans[check] = FindingSpan(
                        case,
                        check,
                        f["severity"],
                        f["status"],
                        r["t"],
                        r["t"],
                        1,
                        scrub_text(f["message"]),
                        False,
                    )
                else:
                    span.last_t = r["t"]
                    span.probes += 1
        for span in open_spans.values():
            span.open = True
            spans.append(span)
    for h in hourly_findings:  # rolled-up hours: one span per hour with a finding
        if h["status"] in FINDING_STATUSES:
            spans.append(
                FindingSpan(
                    h["name"],
                    h["check"],
                    h["severity"],
                    h["status"],
                    h["hour"],
                    h["hour"] + 3600,
                    h["count"],
                    scrub_text(h["message"]),
                    False,
                )
            )
    return sorted(spans, key=lambda s: (s.first_t, s.case, s.check))


def _target(
    history: History,
    target: TargetRow,
    rows: list[dict[str, Any]],
    hourly: list[dict[str, Any]],
    bin_s: float,
) -> TargetReport:
    out = TargetReport(target.provider, target.model, target.data_source)
    pooled = [h for h in hourly if h["name"] == ALL_PROBES]
    out.probes = len(rows) + sum(h["requests"] for h in pooled)
    times = [r["t"] for r in rows] + [h["hour"] for h in pooled]
    out.first_t = min(times, default=None)
    out.last_t = max(times, default=None)
    outcomes: dict[str, int] = {}
    for r in rows:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    out.outcomes = dict(sorted(outcomes.items()))
    if out.last_t is not None:
        out.uptime = [
            WindowUptime(u.window, u.ok, u.errored, u.rate_limited, u.uptime)
            for u in history.uptime(target.id, out.last_t, UPTIME_WINDOWS)
        ]
    out.bins = _bins(rows, hourly, bin_s)
    out.hours = _bins(rows, hourly, 3600.0)
    out.findings = _spans(rows, history.findings(target.id), history.hourly_findings(target.id))
    out.events = [
        EventRow(
            e.event.t,
            e.event.kind,
            e.event.subject,
            scrub_text(e.event.message),
            e.delivered,
            e.event.details,
        )
        for e in history.events(target.id)
    ]
    sizes: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] == "latency":
            sizes.setdefault(r["name"], []).append(r)
    for name, items in sorted(sizes.items(), key=lambda kv: kv[1][0]["input_tokens"] or 0):
        reported = sorted(float(r["prompt_tokens"]) for r in items if r["prompt_tokens"])
        out.prompts.append(
            PromptSize(
                name,
                items[0]["input_tokens"],
                percentile(reported, 50.0) if reported else None,
                len(items),
            )
        )
    return out


# ----------------------------------------------------------------------------- sections


@dataclass
class TimelineRow:
    label: str
    y: float
    bars: list[tuple[float, float, str]]  # x0, width, tooltip
    color: str


@dataclass
class Timeline:
    """A findings timeline: one row per case/check, a bar where its finding was present."""

    id: str
    title: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_ticks: list[tuple[float, str]]
    rows: list[TimelineRow]
    caption: str = ""
    kind: str = "timeline"


def _hours_axis(report: MonitorReport) -> tuple[float, str]:
    """The x origin of every chart (the first probe) and its label."""
    start = report.start_t or 0.0
    clock = f", monitor clock x{report.clock:g}" if report.clock != 1 else ""
    return start, f"hours since {iso(start)}{clock}"


def _timeline(report: MonitorReport, t: TargetReport, tid: str) -> Timeline | None:
    if not t.findings or report.start_t is None or report.end_t is None:
        return None
    start, x_label = _hours_axis(report)
    end = max(report.end_t, start + 1.0)
    labels = list(dict.fromkeys(f"{s.case}/{s.check}" for s in t.findings))
    left, right, top, row_h, width = 260, 24, 28, 24, 860
    plot_w = width - left - right
    height = top + row_h * len(labels) + 40

    def sx(x: float) -> float:
        return round(left + (x - start) / (end - start) * plot_w, 1)

    rows = []
    colors = {"fail": "#B42318", "warn": "#E69F00"}
    for k, label in enumerate(labels):
        bars = []
        for s in t.findings:
            if f"{s.case}/{s.check}" != label:
                continue
            x0 = sx(s.first_t)
            # a finding seen on one probe lasts until the next round: at least a few pixels
            x1 = max(sx(s.last_t + report.bin_s / 4), x0 + 3)
            tip = f"{s.status} {iso(s.first_t)} to {iso(s.last_t)}, {s.probes} probe(s)"
            bars.append((x0, round(x1 - x0, 1), tip))
        status = next(s.status for s in t.findings if f"{s.case}/{s.check}" == label)
        rows.append(TimelineRow(label, top + k * row_h, bars, colors.get(status, "#7a7a7a")))
    span_h = (end - start) / 3600
    step = next((s for s in (0.25, 0.5, 1, 2, 3, 6, 12, 24, 48, 168) if span_h / s <= 8), 336)
    ticks = []
    v = 0.0
    while v <= span_h + 1e-9:
        ticks.append((sx(start + v * 3600), f"{v:g}"))
        v += step
    return Timeline(
        id=tid,
        title="Findings over time",
        width=width,
        height=height,
        left=left,
        right=width - right,
        top=top,
        bottom=top + row_h * len(labels),
        x_ticks=ticks,
        rows=rows,
        caption=f"x: {x_label}. A bar spans the probes on which the check failed (red) or "
        "warned (amber).",
    )


def _emulated_badge(report: MonitorReport) -> str:
    return "EMULATED DATA · not provider measurements" if report.emulated else ""


def _hour(t: float) -> str:
    return iso(t)[:16].replace("T", " ")


def build_monitor_sections(report: MonitorReport) -> list[Section]:
    sections = [_summary(report), _uptime(report)]
    for i, t in enumerate(report.targets):
        sections.append(_target_section(report, t, i))
    sections += [_runs(report), _method(report)]
    return sections


def _summary(report: MonitorReport) -> Section:
    lines = []
    if report.start_t is None:
        lines.append("The history holds no probe yet.")
    else:
        span = (report.end_t or report.start_t) - report.start_t
        clock = (
            f" (monitor clock x{report.clock:g}: {span / report.clock:.0f} s of wall time)"
            if report.clock != 1
            else ""
        )
        lines.append(
            f"{len(report.targets)} target(s) probed from {iso(report.start_t)} to "
            f"{iso(report.end_t or report.start_t)}, {span / 3600:.1f} h of monitor time{clock}; "
            f"{report.events} event(s)."
        )
    for t in report.targets:
        day = next((u for u in t.uptime if u.window == "1d"), None)
        kinds: dict[str, int] = {}
        for e in t.events:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        what = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no events"
        lines.append(
            f"{t.label}: {count(t.probes)} probes, uptime over the last day "
            f"{pct(day.uptime if day else None)}; {what}."
        )
    return Section("summary", "Summary", paragraphs=lines)


def _uptime(report: MonitorReport) -> Section:
    headers = ["target", "source", *[f"uptime {w}" for w, _ in UPTIME_WINDOWS], "probes"]
    rows = []
    for t in report.targets:
        by = {u.window: u for u in t.uptime}
        cells = [Cell(t.label, "name"), Cell(t.data_source, f"src-{t.data_source}")]
        for w, _ in UPTIME_WINDOWS:
            u = by.get(w)
            text = NA if u is None or u.uptime is None else pct(u.uptime)
            if u is not None and u.uptime is not None:
                text += f" ({u.ok}/{u.ok + u.errored})"
            cells.append(num(text))
        cells.append(num(count(t.probes)))
        rows.append(cells)
    note = "Each window ends at the target's last probe."
    return Section(
        "uptime",
        "Uptime",
        paragraphs=[
            "Uptime = successful / (successful + errored) probes, as OpenRouter computes it: "
            "rate-limited probes (429) count in neither, and only probes expecting success "
            "count (an error case such as a wrong key does not)."
        ],
        blocks=[table("uptime-table", "Uptime by window", headers, rows, note)],
    )


def _target_section(report: MonitorReport, t: TargetReport, i: int) -> Section:
    sid = f"target-{i + 1}"
    section = Section(sid, t.label)
    start, x_label = _hours_axis(report)
    badge = _emulated_badge(report)
    outcomes = ", ".join(f"{k} {v}" for k, v in t.outcomes.items()) or "none"
    section.paragraphs.append(
        f"{count(t.probes)} probes ({t.data_source}); outcomes of the raw probes: {outcomes}."
    )

    def hours(x: float) -> float:
        return (x - start) / 3600

    mid = report.bin_s / 2
    pct_series = [
        (
            label,
            [
                (hours(b.start_t + mid), getattr(b.ttft_ms, key))
                for b in t.bins
                if getattr(b.ttft_ms, key) is not None
            ],
        )
        for label, key in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"))
    ]
    if any(points for _, points in pct_series):
        section.blocks.append(
            line_chart(
                id=f"{sid}-ttft",
                title="TTFT percentiles over time",
                x_label=x_label,
                y_label="TTFT (ms)",
                data=pct_series,
                y_min=0,
                markers=len(t.bins) <= 60,
                badge=badge,
                caption=f"Every successful probe, per {report.bin_s / 60:g}-minute bin.",
                colors={"p50": PALETTE[0], "p90": PALETTE[1], "p99": PALETTE[2]},
            )
        )
    names = list(dict.fromkeys(n for b in t.bins for n in b.series_p50))
    if names:
        section.blocks.append(
            line_chart(
                id=f"{sid}-series",
                title="TTFT median by probe",
                x_label=x_label,
                y_label="TTFT p50 (ms)",
                data=[
                    (
                        name,
                        [
                            (hours(b.start_t + mid), b.series_p50[name])
                            for b in t.bins
                            if name in b.series_p50
                        ],
                    )
                    for name in names
                ],
                y_min=0,
                markers=len(t.bins) <= 60,
                badge=badge,
                caption="Latency probes differ by input size (latency-N: about N prompt "
                "tokens); a plain answer's TTFT is its whole answer.",
            )
        )
    if t.hours:
        section.blocks.append(
            line_chart(
                id=f"{sid}-uptime",
                title="Uptime by hour",
                x_label=x_label,
                y_label="uptime (%)",
                data=[
                    (
                        "uptime",
                        [
                            (hours(h.start_t + 1800), 100 * h.uptime)
                            for h in t.hours
                            if h.uptime is not None
                        ],
                    )
                ],
                y_min=0,
                markers=True,
                badge=badge,
            )
        )
        rows = []
        for h in t.hours[-HOURS_SHOWN:]:
            rows.append(
                [
                    Cell(_hour(h.start_t) + (" (rolled up)" if h.rolled_up else ""), "name"),
                    num(count(h.requests)),
                    num(count(h.ok)),
                    num(count(h.errored)),
                    num(count(h.rate_limited)),
                    num(pct(h.uptime)),
                    num(ms(h.ttft_ms.p50)),
                    num(ms(h.ttft_ms.p90)),
                    num(ms(h.ttft_ms.p99)),
                ]
            )
        note = (
            f"The last {HOURS_SHOWN} hours; the chart shows all."
            if len(t.hours) > HOURS_SHOWN
            else ""
        )
        section.blocks.append(
            table(
                f"{sid}-hours",
                f"Uptime and TTFT by hour (UTC, monitor time): {t.label}",
                ["hour", "probes", "ok", "errored", "429", "uptime", "TTFT p50", "p90", "p99"],
                rows,
                note,
            )
        )
    timeline = _timeline(report, t, f"{sid}-findings-chart")
    if timeline is not None:
        section.blocks.append(timeline)  # type: ignore[arg-type]
    if t.findings:
        section.blocks.append(
            table(
                f"{sid}-findings",
                f"Findings timeline: {t.label}",
                ["case", "check", "status", "severity", "from", "to", "probes", "still", "message"],
                [
                    [
                        Cell(s.case, "name"),
                        Cell(s.check, "check"),
                        Cell(s.status, f"st-{s.status}"),
                        Cell(s.severity),
                        Cell(iso(s.first_t)),
                        Cell(iso(s.last_t)),
                        num(count(s.probes)),
                        Cell("yes" if s.open else "no"),
                        Cell(s.message, "provider-text"),
                    ]
                    for s in t.findings
                ],
            )
        )
    else:
        section.paragraphs.append("No check failed or warned on an answered probe.")
    if t.events:
        section.blocks.append(
            table(
                f"{sid}-events",
                f"Events: {t.label}",
                ["time", "event", "subject", "message", "webhook"],
                [
                    [
                        Cell(iso(e.t)),
                        Cell(e.kind, f"ev-{e.kind}"),
                        Cell(e.subject or NA),
                        Cell(e.message, "provider-text"),
                        Cell(e.delivered or NA),
                    ]
                    for e in t.events
                ],
            )
        )
    else:
        section.paragraphs.append("No events.")
    if t.prompts:
        section.blocks.append(
            table(
                f"{sid}-prompts",
                f"Latency probes: requested and reported prompt tokens: {t.label}",
                ["probe", "requested (approx.)", "reported p50", "probes"],
                [
                    [
                        Cell(p.name, "name"),
                        num(count(p.requested)),
                        num(NA if p.reported_p50 is None else f"{p.reported_p50:,.0f}"),
                        num(count(p.probes)),
                    ]
                    for p in t.prompts
                ],
                "Requested sizes use an estimate of 4 characters per token; providers tokenize "
                "differently, so the reported count is the one to trust.",
            )
        )
    return section


def _runs(report: MonitorReport) -> Section:
    rows = []
    for run in report.runs:
        rows.append(
            [
                num(str(run["id"])),
                Cell(iso(run["started_t"])),
                Cell(iso(run["ended_t"]) if run["ended_t"] else NA),
                Cell(run["ended"] or "running"),
                num(count(run["probes"])),
                Cell(f"{run['host']} (pid {run['pid']})"),
                Cell(" ".join(str(a) for a in run["argv"]) or NA, "provider-text"),
            ]
        )
    return Section(
        "runs",
        "Monitor runs",
        paragraphs=[
            "Each start of `chatprobe monitor` on this history. A run marked lost was killed "
            "or crashed; it ends at its last stored probe, and the next run continued the "
            "history."
        ],
        blocks=[
            table(
                "runs-table",
                "Runs",
                ["run", "started", "ended", "how", "probes", "host", "command"],
                rows,
            )
        ],
    )


def _method(report: MonitorReport) -> Section:
    rule = LatencyRule()
    return Section(
        "method",
        "Method",
        paragraphs=[
            "Each round sends the monitor suite's contract cases and one streamed latency "
            "probe per input size, each prompt starting with a fresh nonce so no prefix cache "
            "serves it. Times are monitor time"
            + (f" (compressed x{report.clock:g})" if report.clock != 1 else "")
            + ", UTC.",
            "Uptime: successful / (successful + errored) probes expecting success, 429 "
            "excluded (OpenRouter's definition), over trailing windows.",
            "Events: an outage starts at the first failed counted probe and ends at the next "
            "success; a finding appears or disappears when a check's fail/warn status changes "
            "between two answered probes of a case; a latency shift is reported when the "
            f"TTFT of the latest {rule.min_rounds} to {rule.max_rounds} rounds (each probe "
            "series divided by its baseline median) differs from the baseline by a two-sided "
            f"Mann-Whitney U test at p < {rule.alpha:g} and by a median ratio of at least "
            f"{rule.min_ratio:g}x in every one of those rounds, with a cooldown while the new "
            "level becomes the baseline.",
            "Percentiles are exact over the probes of each bin; hours older than the "
            "retention were rolled up with exact per-hour percentiles and show per hour.",
        ],
    )


# ----------------------------------------------------------------------------- rendering


@cache
def _env(markdown: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=not markdown,  # HTML: every {{ }} escaped, never |safe
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    if markdown:
        env.filters["cell"] = md_cell
        env.filters["text"] = md_text
    return env


def render_monitor_html(report: MonitorReport, sections: list[Section] | None = None) -> str:
    sections = sections if sections is not None else build_monitor_sections(report)
    page = (
        _env(False)
        .get_template("monitor.html.j2")
        .render(report=report, sections=sections, iso=iso)
    )
    return scrub_text(page)


def render_monitor_markdown(report: MonitorReport, sections: list[Section] | None = None) -> str:
    sections = sections if sections is not None else build_monitor_sections(report)
    text = (
        _env(True).get_template("monitor.md.j2").render(report=report, sections=sections, iso=iso)
    )
    return scrub_text(re.sub(r"\n{3,}", "\n\n", text))


def render_monitor_json(report: MonitorReport) -> bytes:
    data = {"schema_version": report.schema_version, **jsonable(report)}
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(scrub_obj(data), option=options) + b"\n"


def write_monitor_report(history: History, out_dir: Path | str) -> Path:
    """Write ``index.html``, ``report.md`` and ``report.json`` for the history into
    ``out_dir``; returns the path of ``index.html``."""
    report = build_monitor_report(history)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = build_monitor_sections(report)
    write_text_atomic(out / REPORT_MD, render_monitor_markdown(report, sections))
    write_text_atomic(out / REPORT_JSON, render_monitor_json(report))
    return write_text_atomic(out / REPORT_HTML, render_monitor_html(report, sections))
