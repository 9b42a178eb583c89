"""The report's sections as formatted tables and charts, shared by the HTML and Markdown
renderers, so both carry exactly the same tables (a test compares them cell by cell).

Reading order: the summary, then what failed or deviated (findings grouped by check, with
counts and one example each), then the measurements and their charts, and only then the
full conformance matrix, whose checks that pass everywhere are collapsed (a ``collapsed``
table: HTML folds it in ``<details>``, Markdown only counts its rows), then the runs and the
method. Providers are shown by their display names (:meth:`Report.name`).

Cells hold plain text; escaping is the renderers' job (Jinja2 autoescape for HTML, a
Markdown cell filter for ``report.md``). Provider-returned text passes through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatprobe.metrics import Dist
from chatprobe.report.charts import PALETTE, LineChart, line_chart
from chatprobe.report.formatting import DASH, NA, ci, count, ms, pct, rate, ratio, tokens, usd
from chatprobe.report.headline import contract_tally, headline, verdict_text
from chatprobe.report.model import CapacityTarget, GroupStats, Report

__all__ = ["Cell", "Section", "Table", "build_sections"]


@dataclass
class Cell:
    text: str
    cls: str = ""  # num | pass | fail | deviation | skip | provider-text | ...


@dataclass
class Table:
    id: str
    caption: str
    headers: list[str]
    rows: list[list[Cell]]
    numeric: list[bool]
    note: str = ""
    # Folded away by default: HTML shows ``fold`` as the <details> summary, Markdown shows
    # ``fold`` alone (the rows stay in index.html and report.json).
    collapsed: bool = False
    fold: str = ""


@dataclass
class Section:
    id: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    blocks: list[Table | LineChart] = field(default_factory=list)
    callouts: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- cells


def num(text: str) -> Cell:
    return Cell(text, "num")


def table(
    id: str,
    caption: str,
    headers: list[str],
    rows: list[list[Cell]],
    note: str = "",
    *,
    fold: str = "",
) -> Table:
    """A table; with ``fold``, collapsed behind that line (see :class:`Table`)."""
    numeric = [bool(rows) and all(r[i].cls == "num" for r in rows) for i in range(len(headers))]
    return Table(
        id=id,
        caption=caption,
        headers=headers,
        rows=rows,
        numeric=numeric,
        note=note,
        collapsed=bool(fold),
        fold=fold,
    )


# ----------------------------------------------------------------------------- sections


def build_sections(report: Report) -> list[Section]:
    """The sections in reading order (module docstring)."""
    sections = [_summary(report)]
    if report.conformance is not None:
        sections.append(_findings(report))
    if report.groups:
        sections += [
            _latency(report),
            _throughput(report),
            _workload(report),
            _errors(report),
            _cost(report),
        ]
    if report.capacity:
        sections.append(_capacity(report))
    if report.comparisons:
        sections.append(_comparison(report))
    if report.conformance is not None:
        sections.append(_conformance(report))
    sections += [_runs(report), _method(report)]
    return sections


def _mixed(report: Report) -> bool:
    return report.emulated and len(report.data_sources) > 1


def _label(report: Report, provider: str, model: str) -> str:
    """A series label; in a report mixing sources, emulated series say so."""
    label = f"{report.name(provider)} · {model}"
    if _mixed(report):
        source = next(
            (g.data_source for g in report.groups if (g.provider, g.model) == (provider, model)),
            "",
        )
        if source == "emulated":
            label += " [emulated]"
    return label


def _colors(report: Report) -> dict[str, str]:
    """One colour per provider x model, the same in every chart."""
    labels: list[str] = []
    for g in report.groups:
        label = _label(report, g.provider, g.model)
        if label not in labels:
            labels.append(label)
    return {label: PALETTE[k % len(PALETTE)] for k, label in enumerate(labels)}


def _source_badge(report: Report) -> str:
    if _mixed(report):
        return "CONTAINS EMULATED DATA · marked [emulated]"
    if report.emulated:
        return "EMULATED DATA · not provider measurements"
    return ""


def _summary(report: Report) -> Section:
    section = Section("summary", "Summary", paragraphs=headline(report))
    section.callouts = [w for w in report.warnings if w.strip()]
    return section


def _runs(report: Report) -> Section:
    rows = []
    for run in report.runs:
        m = run.machine
        machine = (
            f"{m.get('hostname', '?')} · {m.get('cpus', '?')} CPUs · Python {m.get('python', '?')}"
        )
        rows.append(
            [
                Cell(run.run_id),
                Cell(run.kind),
                Cell(run.data_source, f"src-{run.data_source}"),
                Cell(run.started_at),
                Cell(run.finished_at or ("interrupted" if run.interrupted else "unfinished")),
                Cell(machine),
                Cell(run.harness_version),
                num(count(run.samples)),
                Cell(_command(run.command)),
            ]
        )
    section = Section("runs", "Runs")
    section.paragraphs.append(
        f"Report {report.report_id}, generated {report.generated_at} by chatprobe "
        f"{report.harness_version} from {len(report.runs)} results folder(s). "
        f"Data source: {report.source_label}."
    )
    scheduled = [run for run in report.runs if run.latency_origin == "t_sched"]
    section.blocks.append(
        table(
            "runs-table",
            "Results folders",
            [
                "run",
                "kind",
                "source",
                "started (UTC)",
                "finished (UTC)",
                "machine",
                "harness",
                "samples",
                "command",
            ],
            rows,
        )
    )
    if scheduled:
        section.blocks.append(
            table(
                "schedule-table",
                "Open-loop schedule",
                [
                    "run",
                    "requested req/s",
                    "achieved req/s",
                    "lag p50 (ms)",
                    "lag p99 (ms)",
                    "lag max (ms)",
                    "client",
                ],
                [
                    [
                        Cell(run.run_id),
                        num(rate(run.requested_rate)),
                        num(rate(run.achieved_rate)),
                        num(_lag(run.lag_ms.p50)),
                        num(_lag(run.lag_ms.p99)),
                        num(_lag(run.lag_ms.max)),
                        Cell("saturated" if run.client_saturated else "kept up"),
                    ]
                    for run in scheduled
                ],
                note="Lag: how late each request went out after its scheduled time (a trace "
                "replay: its trace time, scaled); open-loop latencies count from the schedule.",
            )
        )
    return section


def _lag(x: float | None) -> str:
    """Schedule lag: usually well under a millisecond, so three decimals."""
    return NA if x is None else f"{x:,.3f}"


def _command(argv: list[str]) -> str:
    """The command line as typed: the program as ``chatprobe``, not a path to it."""
    if not argv:
        return ""
    program = argv[0].replace("\\", "/").rsplit("/", 1)[-1]
    if program in ("chatprobe", "cli.py", "__main__.py"):
        program = "chatprobe"
    return " ".join([program, *argv[1:]])


VERDICT_TEXT = {"fail": "FAIL", "deviation": "deviation", "warn": "warning"}


def _findings(report: Report) -> Section:
    """What failed, deviated or warned: per provider totals, then every finding grouped by
    check x provider with its counts and one example (nothing is cut)."""
    conf = report.conformance
    assert conf is not None
    section = Section("findings", "Findings")
    section.paragraphs += contract_tally(conf.figures)
    section.paragraphs.append(
        f"Contract checks of {conf.data_source or 'unknown'} responses. A failure breaks what "
        "the provider documents; a deviation differs from OpenAI where the provider's "
        "profile documents it (shown with that reason, never hidden); a warning is reported "
        "without failing the case. Each row counts every case and every finding of one check "
        "at one provider, with the first case as an example."
    )
    totals = []
    for provider in conf.providers:
        t = conf.totals.get(provider, {})
        o = conf.outcomes.get(provider, {})
        totals.append(
            [
                Cell(report.name(provider), "name"),
                num(count(t.get("pass", 0))),
                num(count(t.get("deviation", 0))),
                num(count(t.get("fail", 0))),
                num(count(t.get("skip", 0))),
                num(count(sum(o.values()))),
            ]
        )
    section.blocks.append(
        table(
            "conformance-totals",
            "Checks per provider",
            ["provider", "pass", "deviation", "fail", "skip", "cases run"],
            totals,
        )
    )
    if conf.tallies:
        section.blocks.append(
            table(
                "findings-by-check",
                "Findings by check: failures, documented deviations, warnings",
                [
                    "verdict",
                    "check",
                    "provider",
                    "cases",
                    "findings",
                    "example case",
                    "example (as received)",
                    "documented reason",
                ],
                [
                    [
                        Cell(VERDICT_TEXT.get(t.verdict, t.verdict), f"st-{t.verdict}"),
                        Cell(t.check, "check"),
                        Cell(report.name(t.provider), "name"),
                        num(count(t.cases)),
                        num(count(t.findings)),
                        Cell(
                            f"{t.example_case} ({t.example_model})"
                            if t.example_model
                            else t.example_case
                        ),
                        Cell(t.example or NA, "provider-text"),
                        Cell(t.reason or ("(no reason given)" if t.verdict == "deviation" else NA)),
                    ]
                    for t in conf.tallies
                ],
            )
        )
    return section


def _conformance(report: Report) -> Section:
    """The full matrix: checks with a failure or deviation shown, the rest folded away."""
    conf = report.conformance
    assert conf is not None
    section = Section("conformance", "Conformance matrix")
    section.paragraphs.append(
        f"Each contract check per provider ({conf.data_source or 'unknown'} responses): the "
        "worst status over the cases it judged (skip: it applied to no case)."
    )
    symbols = {"pass": "pass", "fail": "FAIL", "deviation": "deviation", "skip": "skip"}
    headers = ["check", *(report.name(p) for p in conf.providers), "what it checks"]
    flagged: list[list[Cell]] = []
    passing: list[list[Cell]] = []
    for check in conf.checks:
        statuses = [conf.matrix.get(provider, {}).get(check, "") for provider in conf.providers]
        row = [Cell(check, "check")]
        for status in statuses:
            row.append(Cell(symbols.get(status, status or NA), f"st-{status or 'none'}"))
        row.append(Cell(conf.descriptions.get(check, "")))
        (flagged if {"fail", "deviation"} & set(statuses) else passing).append(row)
    if flagged:
        section.blocks.append(
            table(
                "conformance-matrix",
                "Checks with a failure or a documented deviation",
                headers,
                flagged,
            )
        )
    if passing:
        skipped = len([row for row in passing if any(c.text == "skip" for c in row[1:-1])])
        n = len(passing)
        fold = (
            f"{n} other check{'' if n == 1 else 's'} "
            f"{'passes' if n == 1 else 'pass'} for every provider wherever "
            f"{'it applies' if n == 1 else 'they apply'}"
            + (f" ({skipped} skipped somewhere: not applicable)" if skipped else "")
        )
        section.blocks.append(
            table("conformance-passing", "Checks that pass", headers, passing, fold=fold)
        )
    if conf.excerpts:
        section.blocks.append(
            table(
                "contract-output",
                "Sample model output (as returned, shown as text)",
                ["provider", "model", "output"],
                [
                    [Cell(report.name(p)), Cell(m), Cell(text, "provider-text")]
                    for p, m, text in conf.excerpts
                ],
            )
        )
    return section


def _who(g: GroupStats) -> str:
    """The group's provider as people read it."""
    return g.provider_display or g.provider


def _group_cells(g: GroupStats) -> list[Cell]:
    return [
        Cell(_who(g), "name"),
        Cell(g.model, "name"),
        Cell(g.data_source, f"src-{g.data_source}"),
    ]


def _emulated_note(report: Report) -> str:
    return (
        "EMULATED DATA: figures measure the emulator, not the providers." if report.emulated else ""
    )


def _latency_table(report: Report, metric: str, title: str, tid: str) -> Table:
    rows = []
    for g in report.groups:
        d: Dist = getattr(g, metric)
        rows.append(
            [
                *_group_cells(g),
                num(count(d.n)),
                num(ms(d.p50)),
                num(ci(d)),
                num(ms(d.p90)),
                num(ms(d.p95)),
                num(ms(d.p99)),
                num(ms(d.max)),
                num(ms(d.mean)),
            ]
        )
    return table(
        tid,
        title,
        [
            "provider",
            "model",
            "source",
            "n",
            "p50",
            "p50 95% CI",
            "p90",
            "p95",
            "p99",
            "max",
            "mean",
        ],
        rows,
        note=_emulated_note(report),
    )


def _first_token_table(report: Report) -> Table:
    """TTFT with TTFB beside it: headers that arrive long before the first token mean the
    wait is the model's; headers held until the first token mean a buffering proxy."""
    rows = []
    for g in report.groups:
        b, t = g.ttfb_ms, g.ttft_ms
        rows.append(
            [
                *_group_cells(g),
                num(count(t.n)),
                num(ms(b.p50)),
                num(ms(b.p99)),
                num(ms(t.p50)),
                num(ci(t)),
                num(ms(t.p90)),
                num(ms(t.p95)),
                num(ms(t.p99)),
                num(ms(t.max)),
                num(ms(t.mean)),
            ]
        )
    return table(
        "latency-ttft",
        "Time to first byte (response headers) and to first token (ms)",
        [
            "provider",
            "model",
            "source",
            "n",
            "TTFB p50",
            "TTFB p99",
            "TTFT p50",
            "TTFT p50 95% CI",
            "TTFT p90",
            "TTFT p95",
            "TTFT p99",
            "TTFT max",
            "TTFT mean",
        ],
        rows,
        note=_emulated_note(report),
    )


def _latency(report: Report) -> Section:
    section = Section("latency", "Latency")
    section.paragraphs.append(
        "Milliseconds, from exact per-request values of successful requests outside the "
        "warm-up (open-loop runs count from the scheduled send time). TTFT: request sent "
        "until the first token of any kind, reasoning included (never the role-only "
        "chunk). TTFA: until the first answer token (content, refusal or tool call; "
        "reasoning excluded), the same as TTFT for a model that does not reason. TTFB, "
        "beside TTFT: until the response headers (close to TTFT when a server or proxy holds "
        "its headers until the first token). ITL: (last token - first token) / (output "
        "tokens - 1), per request; an "
        "answer of one token has none. E2E: request sent until the last token. The CI is "
        "the 95% interval of the median."
    )
    badge = _source_badge(report)
    section.blocks.append(_first_token_table(report))
    section.blocks.append(
        _latency_table(
            report,
            "ttfa_ms",
            "Time to first answer token, reasoning excluded (ms)",
            "latency-ttfa",
        )
    )
    cdf = line_chart(
        id="chart-ttft-cdf",
        title="TTFT distribution (CDF)",
        x_label="time to first token, ms (log scale)",
        y_label="fraction of requests",
        data=[(_label(report, g.provider, g.model), g.cdf) for g in report.groups if g.cdf],
        log_x=True,
        y_min=0.0,
        badge=badge,
        colors=_colors(report),
        caption="Each line: the share of requests whose first token arrived by the time on "
        "the x axis. Left and steep is fast and consistent.",
    )
    section.blocks.append(cdf)
    section.blocks.append(
        _latency_table(report, "itl_ms", "Inter-token latency (ms)", "latency-itl")
    )
    section.blocks.append(
        _latency_table(report, "e2e_ms", "End-to-end latency (ms)", "latency-e2e")
    )
    warmups = _warmup_bands(report)
    section.blocks.append(
        line_chart(
            id="chart-ttft-time",
            title="Median TTFT over the run",
            x_label="seconds since the run started",
            y_label="median TTFT, ms",
            data=[
                (_label(report, g.provider, g.model), g.timeline)
                for g in report.groups
                if g.timeline
            ],
            y_min=0.0,
            badge=badge,
            bands=warmups,
            colors=_colors(report),
            caption="Median TTFT of successful requests in each time slice; the shaded band "
            "is the warm-up, left out of every table.",
        )
    )
    return section


def _workload(report: Report) -> Section:
    """Requested against delivered lengths, rates per output token, reasoning, cache."""
    section = Section("workload", "Lengths, reasoning and cache")
    section.paragraphs.append(
        "Successful requests outside the warm-up. Input: the provider's usage.prompt_tokens "
        "divided by chatprobe's count of the prompt sent (tokenizer cl100k_base, message "
        "text only, so chat templates and other tokenizers read above or below 1). Output: "
        "usage.completion_tokens divided by the max_tokens requested; hosted APIs do not "
        "honour ignore_eos, so a model that ends its answer early reads below 1. Per output "
        "token: E2E / output tokens, and the decode speed one stream saw (1000 / ITL)."
    )
    rows = []
    for g in report.groups:
        lengths = g.lengths
        rows.append(
            [
                *_group_cells(g),
                num(tokens(lengths.input_requested.p50)),
                num(_ratio_span(lengths.input_ratio)),
                num(tokens(lengths.output_requested.p50)),
                num(_ratio_span(lengths.output_ratio)),
                num(pct(lengths.output_at_cap, 1)),
                num(ms(lengths.ms_per_output_token.p50)),
                num(rate(lengths.stream_tokens_per_s.p50)),
            ]
        )
    section.blocks.append(
        table(
            "lengths-table",
            "Requested against delivered lengths, and rates per output token",
            [
                "provider",
                "model",
                "source",
                "input sent p50",
                f"prompt / sent p50 (min{DASH}max)",
                "max_tokens p50",
                f"output / max p50 (min{DASH}max)",
                "reached max",
                "ms per output token p50",
                "tokens/s per stream p50",
            ],
            rows,
        )
    )
    if any(g.reasoning.reasoned or g.reasoning.unknown or g.cache.requests for g in report.groups):
        rows = []
        for g in report.groups:
            r, c = g.reasoning, g.cache
            rows.append(
                [
                    *_group_cells(g),
                    num(f"{count(r.reasoned)} / {count(r.requests)}"),
                    num(count(r.tokens_total)),
                    num(tokens(r.tokens.p50)),
                    num(tokens(r.tokens.p90)),
                    num(count(r.unknown)),
                    num(pct(c.hit_rate, 1)),
                    num(f"{count(c.cached_tokens)} / {count(c.prompt_tokens)}"),
                ]
            )
        section.blocks.append(
            table(
                "reasoning-table",
                "Reasoning tokens and prompt-cache hits",
                [
                    "provider",
                    "model",
                    "source",
                    "reasoned / requests",
                    "reasoning tokens",
                    "per request p50",
                    "per request p90",
                    "encrypted, no count",
                    "cache hit rate",
                    "cached / prompt tokens",
                ],
                rows,
                note="Cache hit rate: cached prompt tokens / prompt tokens as the provider "
                "reported them (usage.prompt_tokens_details.cached_tokens).",
            )
        )
    if any(g.sessions for g in report.groups):
        section.blocks.extend(_sessions(report))
    return section


def _sessions(report: Report) -> list[Table]:
    """Sessions (conversations, trace sessions): per session, then turn by turn."""
    rows, turn_rows = [], []
    for g in report.groups:
        f = g.sessions
        if f is None:
            continue
        complete = NA if f.complete is None else f"{count(f.complete)} / {count(f.sessions)}"
        rows.append(
            [
                *_group_cells(g),
                num(count(f.sessions)),
                num(complete),
                num(tokens(f.turns.p50)),
                num(_seconds(f.duration_s.p50)),
                num(_seconds(f.duration_s.p90)),
                num(pct(g.cache.hit_rate, 1)),
            ]
        )
        for turn in f.by_turn:
            turn_rows.append(
                [
                    *_group_cells(g),
                    num(str(turn.turn)),
                    num(f"{count(turn.ok)} / {count(turn.requests)}"),
                    num(ms(turn.ttft_ms.p50)),
                    num(ms(turn.ttft_ms.p90)),
                    num(tokens(turn.input_tokens.p50)),
                    num(pct(turn.cache.hit_rate, 1)),
                ]
            )
    head = ["provider", "model", "source"]
    return [
        table(
            "sessions-table",
            "Sessions",
            [
                *head,
                "sessions",
                "complete",
                "requests per session p50",
                "duration p50 (s)",
                "duration p90 (s)",
                "cache hit rate",
            ],
            rows,
            note="Sessions whose first turn was measured. Duration: first turn sent to last "
            "answer, think time and tool latency included. Complete: every planned turn "
            "answered.",
        ),
        table(
            "turns-table",
            "Turn by turn",
            [
                *head,
                "turn",
                "ok / requests",
                "TTFT p50 (ms)",
                "TTFT p90 (ms)",
                "input sent p50",
                "cache hit rate",
            ],
            turn_rows,
            note="Turn k's request holds the answers of turns 1..k-1, so the input grows and a "
            "prefix cache finds more of it turn by turn.",
        ),
    ]


def _seconds(x: float | None) -> str:
    return NA if x is None else f"{x:,.2f}"


def _ratio_span(d: Dist) -> str:
    """A ratio's median and range: ``0.98 (0.91-1.00)``."""
    if d.p50 is None or d.min is None or d.max is None:
        return NA
    return f"{ratio(d.p50)} ({ratio(d.min)}{DASH}{ratio(d.max)})"


def _warmup_bands(report: Report) -> list[tuple[float, float, str]]:
    bands = []
    for run in report.runs:
        if run.warmup_s:
            bands.append((run.warmup_start_s or 0.0, run.warmup_s, "warm-up"))
    return bands[:1]


def _throughput(report: Report) -> Section:
    section = Section("throughput", "Throughput")
    slo = ", ".join(f"{k.removesuffix('_ms').upper()} ≤ {v:g} ms" for k, v in report.slo.items())
    if report.slo_source == "mixed":
        slo = "each run's own"
    section.paragraphs.append(
        "Over the measured window: each stage from the end of its warm-up to its end, cut "
        "where the run ended (a request-count run ends at its last completion). Requests/s "
        "counts every request sent in it; goodput counts the successful ones that met every "
        f"SLO limit ({slo}; an answer of one token has no ITL and meets an ITL limit), and "
        "errors count against it."
    )
    rows = []
    for g in report.groups:
        rows.append(
            [
                *_group_cells(g),
                num(f"{g.window_s:.1f}" if g.window_s is not None else NA),
                num(rate(g.requests_per_s)),
                num(rate(g.output_tokens_per_s)),
                num(rate(g.goodput_rps)),
                num(pct(g.slo.attainment, 1)),
            ]
        )
    section.blocks.append(
        table(
            "throughput-table",
            "Throughput per provider and model",
            [
                "provider",
                "model",
                "source",
                "window s",
                "requests/s",
                "output tokens/s",
                "goodput req/s",
                "met SLO",
            ],
            rows,
        )
    )
    if report.sweep:
        section.paragraphs.append("Concurrency sweep: each stage ran at a fixed number of users.")
        section.blocks.append(
            table(
                "sweep-table",
                "Throughput vs concurrency",
                [
                    "provider",
                    "model",
                    "users",
                    "requests",
                    "requests/s",
                    "output tokens/s",
                    "TTFT p50 ms",
                ],
                [
                    [
                        Cell(report.name(p.provider)),
                        Cell(p.model),
                        num(count(p.users)),
                        num(count(p.requests)),
                        num(rate(p.requests_per_s)),
                        num(rate(p.output_tokens_per_s)),
                        num(ms(p.ttft_ms.p50)),
                    ]
                    for p in report.sweep
                ],
            )
        )
        series: dict[str, list[tuple[float, float]]] = {}
        for p in report.sweep:
            if p.output_tokens_per_s is not None:
                series.setdefault(_label(report, p.provider, p.model), []).append(
                    (float(p.users), p.output_tokens_per_s)
                )
        section.blocks.append(
            line_chart(
                id="chart-sweep",
                title="Output tokens/s vs concurrency",
                x_label="concurrent users (log scale)",
                y_label="output tokens/s",
                data=list(series.items()),
                y_min=0.0,
                markers=True,
                log_x=True,
                x_ticks_at=sorted({p.users for p in report.sweep if p.users > 0}),
                colors=_colors(report),
                badge=_source_badge(report),
                caption="Each point is one sweep stage.",
            )
        )
    return section


def _errors(report: Report) -> Section:
    section = Section("errors", "Errors and availability")
    classes = sorted({c for g in report.groups for c in g.errors})
    rows = []
    for g in report.groups:
        rows.append(
            [
                *_group_cells(g),
                num(count(g.requests)),
                num(count(g.ok)),
                num(pct(g.success_rate)),
                num(pct(g.availability)),
                num(count(g.rate_limited.count)),
                num(f"{g.rate_limited.time_s:.1f}"),
                num(f"{g.held.retry_after_s:.1f}"),
                num(f"{g.held.backoff_s:.1f}"),
                *[num(count(g.errors.get(c, 0))) for c in classes],
            ]
        )
    section.paragraphs.append(
        "Every request outside the warm-up, with its error class (one per request). "
        "Success: a complete, well-formed response. Availability is computed as OpenRouter "
        "computes uptime: successful / (successful + errored), rate-limited requests (429) "
        "counted in neither; they are counted and timed on their own (the time they took). "
        "Held s: how long the target's users held back honouring Retry-After (429, 503); "
        "backoff s: the user-seconds spent backing off after connection failures."
    )
    section.blocks.append(
        table(
            "errors-table",
            "Success rate, availability and error classes",
            [
                "provider",
                "model",
                "source",
                "requests",
                "ok",
                "success",
                "availability",
                "rate-limited",
                "rate-limited s",
                "held s",
                "backoff s",
                *classes,
            ],
            rows,
        )
    )
    bounds = [
        [
            Cell(_who(g)),
            Cell(g.model),
            Cell(", ".join(f"{k} {v}" for k, v in g.timing_bound.stamps.items()) or "-"),
            num(count(g.timing_bound.samples)),
            num(ms(g.timing_bound.ttft_ms.p50)),
            num(ms(g.timing_bound.ttft_ms.p99)),
            num(ms(g.timing_bound.read_ms.p99)),
            Cell("above the limit: timing uncertain" if g.timing_bound.exceeded else "ok"),
        ]
        for g in report.groups
        if g.timing_bound.samples or g.timing_bound.unbounded
    ]
    if bounds:
        section.blocks.append(
            table(
                "timing-bound",
                "Client timing error bound: how far TTFT can be off by the load client's own "
                "lateness (request write + how late the first token's read was stamped)",
                [
                    "provider",
                    "model",
                    "stamps",
                    "requests",
                    "TTFT bound p50",
                    "TTFT bound p99",
                    "worst read p99",
                    "verdict",
                ],
                bounds,
            )
        )
    conformance = [
        [
            Cell(_who(g)),
            Cell(g.model),
            num(count(g.conformance.checked)),
            Cell(name, "check"),
            num(count(n)),
            num(pct(g.conformance.share.get(name))),
        ]
        for g in report.groups
        for name, n in (g.conformance.broken.items() or [("(none broken)", 0)])
        if g.conformance.checked
    ]
    if conformance:
        section.blocks.append(
            table(
                "conformance-under-load",
                "Conformance under load: streams of the load run that broke each stream check",
                ["provider", "model", "streams checked", "check", "broken", "share"],
                conformance,
            )
        )
    anomalies = [
        [Cell(_who(g)), Cell(g.model), Cell(tag, "check"), num(count(n))]
        for g in report.groups
        for tag, n in g.anomalies.items()
    ]
    if anomalies:
        section.blocks.append(
            table(
                "anomalies",
                "Anomalies: oddities that did not fail the request (e.g. a missing [DONE])",
                ["provider", "model", "anomaly", "requests"],
                anomalies,
            )
        )
    messages = [
        [
            Cell(_who(g)),
            Cell(g.model),
            Cell(cls),
            Cell(msg or "(no message)", "provider-text"),
            num(count(n)),
        ]
        for g in report.groups
        for cls, msg, n in g.error_messages[:4]
    ]
    if messages:
        section.blocks.append(
            table(
                "error-messages",
                "Most frequent error messages (as returned, shown as text)",
                ["provider", "model", "class", "message", "count"],
                messages,
            )
        )
    excerpts = [
        [Cell(_who(g)), Cell(g.model), Cell(text, "provider-text")]
        for g in report.groups
        for text in g.excerpts[:1]
    ]
    if excerpts:
        section.blocks.append(
            table(
                "load-output",
                "Sample model output from the load run (shown as text)",
                ["provider", "model", "output"],
                excerpts,
            )
        )
    return section


def _cost(report: Report) -> Section:
    section = Section("cost", "Cost")
    section.paragraphs.append(
        "USD for the successful requests outside the warm-up: their prompt and output tokens "
        "times the price captured in the results folder when the run was made (never a "
        "profile edited since). 'documented' prices come from the provider's page; 'assumed' "
        "prices are stand-ins (see the note) until the provider documents its own. A request "
        "reporting 0 prompt tokens for its non-empty prompt is counted under '0 prompt "
        "tokens': its cost reads low."
    )
    rows = []
    for g in report.groups:
        c = g.cost
        rows.append(
            [
                Cell(_who(g), "name"),
                Cell(g.model, "name"),
                num(tokens(c.mean_prompt_tokens)),
                num(tokens(c.mean_output_tokens)),
                num(usd(c.per_request)),
                num(usd(c.per_1k_requests)),
                Cell(c.price_source, f"price-{c.price_source}"),
                num(usd(c.reported_per_request)),
                num(count(c.prompt_tokens_zero)),
                Cell(c.price_note, "note"),
            ]
        )
    section.blocks.append(
        table(
            "cost-table",
            "Cost per request",
            [
                "provider",
                "model",
                "prompt tokens",
                "output tokens",
                "$ / request",
                "$ / 1k requests",
                "price",
                "reported $ / request",
                "0 prompt tokens",
                "price note",
            ],
            rows,
        )
    )
    return section


def _comparison(report: Report) -> Section:
    section = Section("comparison", "Model comparison")
    section.paragraphs.append(
        "Median TTFT ratios with 95% confidence intervals: versions of one model family at "
        "one provider, and one family across providers (each against the fastest). A ratio "
        "below 1 whose interval excludes 1 means A is faster."
    )
    if any(_gemini_claim(c.a, c.b) for c in report.comparisons if c.kind == "family"):
        section.paragraphs.append(
            "The seeds claim Gemini 2.0 Flash has a much faster time to first token than "
            "Gemini 1.5 Flash; a ratio below 1 whose interval excludes 1 supports it."
        )
    rows = []
    for c in report.comparisons:
        interval = NA if c.low is None or c.high is None else f"{c.low:.2f}{DASH}{c.high:.2f}"
        rows.append(
            [
                Cell("model family" if c.kind == "family" else "provider"),
                Cell(c.scope, "name"),
                Cell(c.a, "name"),
                Cell(c.b, "name"),
                num(ms(c.a_p50)),
                num(ms(c.b_p50)),
                num(NA if c.ratio is None else f"{c.ratio:.2f}"),
                num(interval),
                Cell(verdict_text(c), "note"),
            ]
        )
    note = "EMULATED DATA: ratios reflect the emulator's latency model." if report.emulated else ""
    section.blocks.append(
        table(
            "comparison-table",
            "TTFT ratio A / B (median)",
            ["compared", "at", "A", "B", "A p50 ms", "B p50 ms", "ratio", "95% CI", "verdict"],
            rows,
            note=note,
        )
    )
    return section


def _method(report: Report) -> Section:
    section = Section("method", "How these numbers were made")
    section.paragraphs += [
        "Percentiles are computed from exact per-request values (linear interpolation), "
        "never from a rounded histogram.",
        "Confidence intervals: a seeded percentile bootstrap of the median (400 resamples) up "
        "to 1,000 values; above that, the bootstrap's exact limit, the order statistics at "
        "n/2 ± 1.96·√n/2. Ratios of larger groups combine the two medians' intervals on the "
        "log scale.",
        "Every figure is computed by chatprobe.metrics, the same code that writes the load "
        "run's summary.json, so the two agree; prices, model families and deviation reasons "
        "come from the results folder (profiles.json, written when the run was made).",
        "Output tokens are the provider's final usage.completion_tokens where reported, "
        "else an estimate of about four characters per token.",
        "Provider-returned text (model output, error messages) is shown as escaped text, "
        "and every string is scrubbed of keys before it is written.",
    ]
    return section


def _gemini_claim(a: str, b: str) -> bool:
    """Is this the pair the seeds make a claim about (Gemini 2.0 Flash vs 1.5 Flash)?"""
    return "gemini-2.0-flash" in a and "gemini-1.5-flash" in b


# ----------------------------------------------------------------------------- capacity

_METRIC_NAMES = {"ttfb_ms": "TTFB", "ttft_ms": "TTFT", "itl_ms": "ITL", "e2e_ms": "E2E"}
_PCT_DASH = {"p50": "", "p95": "6 3", "p99": "2 3"}


def _level(value: float | None, unit: str) -> str:
    if value is None:
        return NA
    if unit == "users" or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _interval(t: CapacityTarget) -> str:
    low = _level(t.low, t.unit) if t.low is not None else "0"
    high = _level(t.high, t.unit) if t.high is not None else "?"
    return f"{low}{DASH}{high}"


def _with_ci(block: dict[str, float | int | None], key: str) -> str:
    value = block.get(key)
    if value is None:
        return NA
    low, high = block.get(f"{key}_low"), block.get(f"{key}_high")
    span = f" [{ms(low) if low is not None else '?'}{DASH}{ms(high) if high is not None else '?'}]"
    return ms(float(value)) + span


def _capacity_label(report: Report, t: CapacityTarget) -> str:
    label = t.label
    if _mixed(report) and t.data_source == "emulated":
        label += " [emulated]"
    return label


def _capacity(report: Report) -> Section:
    section = Section("capacity", "Capacity under SLO")
    conf = {f"{100 * t.confidence:g}%" for t in report.capacity}
    section.paragraphs.append(
        "The highest load each target sustained within its SLO, found by a search of short "
        "load steps: the levels are bracketed, then narrowed where the verdict flips. Each "
        "percentile carries a distribution-free confidence interval (order statistics); the "
        f"interval of the edge runs from the highest level that held with {'/'.join(conf)} "
        "confidence to the lowest that failed with it. A step where the client was the limit "
        "is invalid and ends the search; HTTP 429s end it with a rate-limited verdict "
        "(docs/capacity.md)."
    )
    for t in report.capacity:
        section.paragraphs.append(f"{_capacity_label(report, t)}: {t.statement}.")
    rows = []
    for t in report.capacity:
        at = next((p for p in t.points if p.level == t.capacity), None)
        rows.append(
            [
                Cell(report.name(t.provider)),
                Cell(t.model),
                Cell(t.data_source or NA),
                Cell(t.slo_text),
                num(_level(t.capacity, t.unit)),
                num(_interval(t)),
                Cell(t.unit),
                Cell(_METRIC_NAMES.get(t.limit or "", t.limit or NA)),
                Cell(t.end),
                num(f"{t.steps_used}/{t.max_steps}"),
                num(rate(at.goodput_rps) if at is not None else NA),
            ]
        )
    section.blocks.append(
        table(
            "capacity-table",
            "Capacities side by side",
            [
                "provider",
                "model",
                "source",
                "SLO",
                "capacity",
                "edge interval",
                "unit",
                "breaks first",
                "search ended",
                "steps",
                "goodput req/s at capacity",
            ],
            rows,
        )
    )
    step_rows = []
    for t in report.capacity:
        for p in t.points:
            ttft = p.latency.get("ttft_ms") or {}
            itl = p.latency.get("itl_ms") or {}
            outcome = p.outcome + (" (saturated)" if p.saturated else "")
            step_rows.append(
                [
                    Cell(report.name(t.provider)),
                    Cell(t.model),
                    num(_level(p.level, t.unit)),
                    Cell(outcome),
                    num(count(p.requests)),
                    num(ms(_num(ttft.get("p50")))),
                    num(_with_ci(ttft, "p95")),
                    num(ms(_num(ttft.get("p99")))),
                    num(_with_ci(itl, "p95")),
                    num(rate(p.throughput_rps)),
                    num(rate(p.goodput_rps)),
                    Cell("ok" if p.valid else "client limit"),
                ]
            )
    section.blocks.append(
        table(
            "capacity-steps",
            "Every step of the searches",
            [
                "provider",
                "model",
                "level",
                "verdict",
                "requests",
                "TTFT p50 ms",
                "TTFT p95 ms [CI]",
                "TTFT p99 ms",
                "ITL p95 ms [CI]",
                "completed/s",
                "goodput/s",
                "client",
            ],
            step_rows,
        )
    )
    section.blocks += _capacity_charts(report)
    return section


def _num(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _capacity_charts(report: Report) -> list[Table | LineChart]:
    metrics = [
        m
        for m in ("ttft_ms", "itl_ms")
        if any(m in p.latency for t in report.capacity for p in t.points)
    ]
    for t in report.capacity:
        metrics += [m for m in t.slo if m not in metrics]
    units = {t.unit for t in report.capacity}
    x_label = "offered load, " + " / ".join(sorted(units))
    badge = _source_badge(report)
    colors_by_target = {
        _capacity_label(report, t): PALETTE[k % len(PALETTE)] for k, t in enumerate(report.capacity)
    }
    edges = [
        (
            t.low if t.low is not None else (t.capacity or 0.0),
            t.high if t.high is not None else (t.capacity or 0.0),
            f"edge: {_capacity_label(report, t)}",
        )
        for t in report.capacity
        if t.capacity is not None
    ]
    confidence = "/".join(sorted({f"{100 * t.confidence:g}%" for t in report.capacity}))
    charts: list[Table | LineChart] = []
    for metric in metrics:
        name = _METRIC_NAMES.get(metric, metric)
        data: list[tuple[str, list[tuple[float, float]]]] = []
        bands: dict[str, list[tuple[float, float, float]]] = {}
        colors: dict[str, str] = {}
        dashes: dict[str, str] = {}
        limits: list[tuple[float, str]] = []
        for t in report.capacity:
            base = _capacity_label(report, t)
            valid = [p for p in t.points if p.valid and metric in p.latency]
            for key in ("p50", "p95", "p99"):
                label = f"{base} {key}"
                pts = []
                spans = []
                for p in valid:
                    block = p.latency[metric]
                    value, low, high = (
                        block.get(key),
                        block.get(f"{key}_low"),
                        block.get(f"{key}_high"),
                    )
                    if value is None:
                        continue
                    pts.append((p.level, float(value)))
                    if low is not None and high is not None:
                        spans.append((p.level, float(low), float(high)))
                data.append((label, pts))
                bands[label] = spans
                colors[label] = colors_by_target[base]
                dashes[label] = _PCT_DASH[key]
            if metric in t.slo:
                limits.append((t.slo[metric], f"SLO p{t.percentile:g} {name} {t.slo[metric]:g} ms"))
        charts.append(
            line_chart(
                id=f"chart-capacity-{metric.removesuffix('_ms')}",
                title=f"{name} against load: p50, p95, p99 with {confidence} CIs",
                x_label=x_label,
                y_label=f"{name} ms",
                data=data,
                y_min=0.0,
                markers=True,
                colors=colors,
                dashes=dashes,
                ci=bands,
                hlines=list(dict.fromkeys(limits)),
                bands=edges,
                badge=badge,
                caption="Solid p50, dashed p95, dotted p99; shaded: each percentile's CI; "
                "the grey span marks the SLO edge (from the highest level that held with "
                "confidence to the lowest that failed); invalid steps are left out.",
            )
        )
    data = []
    colors = {}
    for t in report.capacity:
        base = _capacity_label(report, t)
        valid = [p for p in t.points if p.valid]
        data.append(
            (
                f"{base} goodput",
                [(p.level, p.goodput_rps) for p in valid if p.goodput_rps is not None],
            )
        )
        data.append(
            (
                f"{base} completed",
                [(p.level, p.throughput_rps) for p in valid if p.throughput_rps is not None],
            )
        )
        colors[f"{base} goodput"] = colors[f"{base} completed"] = colors_by_target[base]
    charts.append(
        line_chart(
            id="chart-capacity-goodput",
            title="Goodput and completed requests/s against load",
            x_label=x_label,
            y_label="requests/s",
            data=data,
            y_min=0.0,
            markers=True,
            colors=colors,
            dashes={label: ("" if label.endswith("goodput") else "6 3") for label, _ in data},
            bands=edges,
            badge=badge,
            caption="Goodput (solid): successful requests meeting every SLO limit per second; "
            "completed (dashed): successful requests finished per second. Flat completions while "
            "latency climbs is saturation.",
        )
    )
    return charts
