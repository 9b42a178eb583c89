"""What ``chatprobe capacity`` prints from ``capacity.json``, in each ``--format``.

``text``: per target one table of the steps (level, verdict, requests, the SLO percentiles
with their CIs, throughput, goodput, client health), the answer as a sentence, then the
capacities side by side and why the command failed, if it did. ``json``:
:func:`capacity_document`. ``github``: the text, then one ``::error`` per failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from chatprobe.capacity.search import fmt_level
from chatprobe.capacity.slo import metric_label
from chatprobe.output.github import annotation
from chatprobe.output.load import fmt_rate
from chatprobe.output.tables import Column, TextTable, print_lines, print_table

__all__ = ["capacity_document", "github_annotations", "print_capacity"]


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def _check_cell(check: Mapping[str, Any]) -> str:
    if check.get("value") is None:
        return "-"
    low, high = check.get("low"), check.get("high")
    low_text = "?" if low is None else _ms(low)
    high_text = "?" if high is None else _ms(high)
    return f"{_ms(check['value'])} [{low_text}-{high_text}]"


def print_capacity(
    document: Mapping[str, Any],
    path: Path | None,
    failures: list[str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """The ``text`` output (module docstring)."""
    unit = str(document.get("unit", "req/s"))
    slo = document.get("slo") or {}
    pct = f"p{slo.get('percentile', 95):g}"
    metrics = list((slo.get("limits") or {}).keys())
    for t in document.get("targets") or []:
        title = f"{t['provider']}/{t['model']}: capacity steps ({slo.get('text', '')})"
        columns = [
            Column(unit, align="right"),
            Column("verdict"),
            Column("requests", align="right"),
            *(Column(f"{pct} {metric_label(m)} [CI]", align="right") for m in metrics),
            Column("errors", align="right"),
            Column("done/s", align="right"),
            Column("goodput", align="right"),
            Column("client"),
        ]
        table = TextTable(columns, title)
        for step in t.get("steps") or []:
            checks = {c["metric"]: c for c in (step.get("judgement") or {}).get("checks") or []}
            errors = checks.get("error_rate") or {}
            health = step.get("health") or {}
            verdict = str(step.get("outcome"))
            if step.get("saturated"):
                verdict += " (saturated)"
            if step.get("stopped_early"):
                verdict += " *"
            table.add_row(
                fmt_level(step.get("level"), unit),
                verdict,
                str(step.get("requests", 0)),
                *(_check_cell(checks.get(m) or {}) for m in metrics),
                "-" if errors.get("value") is None else f"{100 * errors['value']:.1f}%",
                fmt_rate(step.get("throughput_rps")),
                fmt_rate(step.get("goodput_rps")),
                "ok" if health.get("valid", True) else "LIMIT",
            )
        print_table(table, stream)
        lines = [f"{t['provider']}/{t['model']}: {t.get('statement', '')}"]
        lines.append(
            f"  {t.get('steps_used', 0)} of at most {t.get('max_steps', 0)} steps; "
            f"ended: {t.get('end')} ({t.get('message') or '-'}); * = stopped early, "
            "its verdict clear"
        )
        for step in t.get("steps") or []:
            for problem in (step.get("health") or {}).get("problems") or []:
                lines.append(
                    f"  invalid step at {fmt_level(step.get('level'), unit)} {unit}: {problem}"
                )
        lines += [f"  advice: {a}" for a in t.get("advice") or []]
        print_lines(lines, stream)
    side = TextTable(
        [
            Column("target"),
            Column(f"capacity {unit}", align="right"),
            Column("interval", align="right"),
            Column("limit"),
            Column("ended"),
        ],
        "capacity under SLO, side by side",
    )
    for t in document.get("targets") or []:
        low, high = t.get("low"), t.get("high")
        side.add_row(
            f"{t['provider']}/{t['model']}",
            fmt_level(t.get("capacity"), unit),
            f"{fmt_level(low, unit) if low is not None else '0'}-"
            f"{fmt_level(high, unit) if high is not None else '?'}",
            metric_label(str(t.get("limit") or "-")),
            str(t.get("end")),
        )
    print_table(side, stream)
    tail = [f"FAILED {reason}" for reason in failures or []]
    spent = document.get("spent_usd")
    if spent is not None:
        tail.insert(0, f"spent ${spent:.4f} at the captured prices")
    if path is not None:
        tail.append(f"results: {path}")
    print_lines(tail, stream)


def capacity_document(
    document: Mapping[str, Any] | None,
    *,
    path: Path | None,
    failures: list[str],
    exit_status: int,
) -> dict[str, Any]:
    """``--format json``: where the results are, the exit status, why the command failed,
    and ``capacity.json`` as written."""
    return {
        "command": "capacity",
        "results_dir": str(path.resolve()) if path is not None else None,
        "exit_status": exit_status,
        "failures": list(failures),
        "capacity": dict(document) if document is not None else None,
    }


def github_annotations(failures: list[str], path: Path | None) -> list[str]:
    """``--format github``: one ``::error`` per failure."""
    where = f" (results: {path})" if path is not None else ""
    return [annotation("error", r + where, title="chatprobe capacity") for r in failures]
