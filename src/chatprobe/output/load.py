"""What ``chatprobe load`` prints from ``summary.json``, in each ``--format``.

``text``: a latency table (TTFB beside TTFT) and a throughput table, one row per target
named as people read it (``127.0.0.1:4000/my-model``: ``summary.json``'s ``display_names``),
then the SLO and availability line, the errors by class with the most common message of
each, notes and anomalies, and why the run failed, if it did. Every value is the one
``summary.json`` holds (:mod:`chatprobe.metrics` computed it); this module only formats.
``json``: :func:`load_document`. ``github``: the text, then one ``::error`` annotation per
reason the run failed (:func:`github_annotations`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from chatprobe.output.github import annotation
from chatprobe.output.tables import Column, TextTable, print_lines, print_table

__all__ = [
    "TABLES",
    "fmt_seconds",
    "github_annotations",
    "load_document",
    "print_summary",
    "summary_row",
    "target_label",
]

TABLES = (
    ("requests", "errors", "TTFB p50", "TTFT p50", "TTFT p99", "ITL p50", "E2E p50"),
    ("req/s", "tok/s", "goodput", "SLO met", "avail", "$/1k req"),
)
"""The columns of the two terminal tables (:func:`summary_row` fills them)."""


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def fmt_usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def summary_row(g: Mapping[str, Any]) -> dict[str, str]:
    """One target's cells of the terminal tables, by column name (:data:`TABLES`)."""

    def p(block: str, key: str) -> str:
        return fmt_ms((g.get(block) or {}).get(key))

    return {
        "requests": str(g.get("requests", 0)),
        "errors": str(sum((g.get("errors") or {}).values())),
        "TTFB p50": p("ttfb_ms", "p50"),
        "TTFT p50": p("ttft_ms", "p50"),
        "TTFT p99": p("ttft_ms", "p99"),
        "ITL p50": p("itl_ms", "p50"),
        "E2E p50": p("e2e_ms", "p50"),
        "req/s": fmt_rate(g.get("requests_per_s")),
        "tok/s": fmt_rate(g.get("output_tokens_per_s")),
        "goodput": fmt_rate(g.get("goodput_rps")),
        "SLO met": fmt_pct((g.get("slo") or {}).get("attainment")),
        "avail": fmt_pct(g.get("availability")),
        "$/1k req": fmt_usd((g.get("cost") or {}).get("per_1k_requests")),
    }


def target_label(summary: Mapping[str, Any], g: Mapping[str, Any]) -> str:
    """``provider/model`` with the provider as people read it."""
    shown = summary.get("display_names") or {}
    provider = str(g.get("provider"))
    return f"{shown.get(provider, provider)}/{g.get('model')}"


def print_summary(
    summary: Mapping[str, Any],
    path: Path | None,
    failures: list[str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """The ``text`` output (module docstring)."""
    origin = summary.get("latency_origin", "t0")
    titles = (
        f"{summary.get('scenario')} ({summary.get('data_source')}): latency, ms from {origin}",
        f"throughput over the {fmt_seconds(summary.get('window_s'))} measured window",
    )
    for title, columns in zip(titles, TABLES, strict=True):
        table = TextTable([Column("target"), *(Column(c, align="right") for c in columns)], title)
        for g in summary.get("groups", []):
            cells = summary_row(g)
            table.add_row(target_label(summary, g), *(cells[c] for c in columns))
        print_table(table, stream)
    lines = []
    slo = summary.get("slo") or {}
    limits = ", ".join(f"{k} <= {v:g}" for k, v in (slo.get("limits") or {}).items())
    rl = summary.get("rate_limited") or {}
    lines.append(
        f"SLO ({slo.get('source', 'default')}): {limits or 'none'}; "
        f"availability {fmt_pct(summary.get('availability'))} "
        f"(successful / (successful + errored), rate-limited excluded); "
        f"rate-limited {rl.get('count', 0)} ({fmt_pct(rl.get('share'))}, "
        f"{fmt_seconds(rl.get('time_s'))})"
    )
    held = summary.get("held") or {}
    parts = []
    if held.get("retry_after"):
        parts.append(
            f"Retry-After honoured {held['retry_after']}x, "
            f"targets held {fmt_seconds(held.get('retry_after_s'))}"
        )
    if held.get("backoffs"):
        parts.append(
            f"connection backoff {held['backoffs']}x, "
            f"{fmt_seconds(held.get('backoff_s'))} waited by users"
        )
    if parts:
        lines.append("held back: " + "; ".join(parts))
    classes = summary.get("error_classes") or []
    if classes:
        lines.append("errors by class (most common message):")
        for item in classes:
            message = item.get("message") or "(no message)"
            lines.append(
                f"  {item['error_class']} x{item['count']}: {message} "
                f"(x{item.get('message_count', 0)})"
            )
    else:
        lines.append("errors: none")
    if origin == "t_sched":
        lag = summary.get("lag_ms") or {}
        lines.append(
            f"schedule: requested {fmt_rate(summary.get('requested_rate'))} req/s, achieved "
            f"{fmt_rate(summary.get('achieved_rate'))} req/s; lag p50 {_lag(lag.get('p50'))} ms, "
            f"p99 {_lag(lag.get('p99'))} ms, max {_lag(lag.get('max'))} ms"
        )
    for g in summary.get("groups", []):
        label = target_label(summary, g)
        sessions = g.get("sessions")
        if sessions:
            cache = (g.get("cache") or {}).get("hit_rate")
            duration = (sessions.get("duration_s") or {}).get("p50")
            complete = sessions.get("complete")
            done = "" if complete is None else f", {complete} complete"
            lines.append(
                f"sessions: {label}: {sessions.get('sessions', 0)} begun after the warm-up"
                f"{done}, duration p50 {fmt_seconds(duration)}; cache hit rate {fmt_pct(cache)}"
            )
            by_turn = sessions.get("by_turn") or []
            if by_turn:
                turns = [
                    f"{t.get('turn')}: {fmt_ms((t.get('ttft_ms') or {}).get('p50'))}"
                    for t in by_turn[:8]
                ]
                more = ", ..." if len(by_turn) > 8 else ""
                lines.append(f"  TTFT p50 by turn (ms): {', '.join(turns)}{more}")
        zero = (g.get("cost") or {}).get("prompt_tokens_zero") or 0
        if zero:
            lines.append(
                f"note: {label}: {zero} successful request(s) reported 0 prompt tokens for a "
                "non-empty prompt; its cost reads low"
            )
        anomalies = ", ".join(f"{tag} x{n}" for tag, n in (g.get("anomalies") or {}).items())
        if anomalies:
            lines.append(f"anomalies: {label}: {anomalies}")
    flags = []
    if summary.get("interrupted"):
        flags.append("interrupted")
    if summary.get("client_saturated"):
        flags.append("client saturated: schedule lag p99 above threshold")
    bound = summary.get("timing_bound") or {}
    if bound.get("message"):
        lines.append(("WARNING " if bound.get("exceeded") else "") + str(bound["message"]))
    for g in summary.get("groups", []):
        conf = g.get("conformance") or {}
        if conf.get("checked"):
            broke = ", ".join(
                f"{name} {share:.1%}" for name, share in (conf.get("share") or {}).items()
            )
            lines.append(
                f"conformance under load: {target_label(summary, g)}: {conf['checked']} streams "
                f"checked; broken: {broke or 'none'}"
            )
    lost = (summary.get("workers") or {}).get("lost") or []
    if lost:
        flags.append(f"{len(lost)} worker(s) lost")
    lines.append(
        f"samples {summary.get('samples')} ({summary.get('warmup_samples', 0)} warm-up)"
        + "".join(f"; {flag}" for flag in flags)
    )
    lines += [f"FAILED {reason}" for reason in failures or []]
    if path is not None:
        lines.append(f"results: {path}")
    print_lines(lines, stream)


def _lag(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def load_document(
    summary: Mapping[str, Any] | None,
    *,
    path: Path | None,
    failures: list[str],
    exit_status: int,
) -> dict[str, Any]:
    """``--format json``: where the results are (an absolute path), the exit status, why the
    run failed, and
    the run's ``summary.json`` as written (None when the run left none)."""
    return {
        "command": "load",
        "results_dir": str(path.resolve()) if path is not None else None,
        "exit_status": exit_status,
        "failures": list(failures),
        "summary": dict(summary) if summary is not None else None,
    }


def github_annotations(failures: list[str], path: Path | None) -> list[str]:
    """``--format github``: one ``::error`` per reason the run failed."""
    where = f" (results: {path})" if path is not None else ""
    return [annotation("error", reason + where, title="chatprobe load") for reason in failures]
