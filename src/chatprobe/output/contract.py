"""What ``chatprobe check`` prints from ``contract.json``, in each ``--format``.

``text`` (and the first part of ``github``): the conformance matrix of the checks that
failed, deviated or warned somewhere (``-v``: every check) with the others counted, the
documented deviations with the profiles' reasons, each failing case with its suite file and
line and what failed, and the tally, failures first (:func:`chatprobe.report.headline.
contract_tally`)::

    2 cases fail: strict_error_envelope 2.
    527 cases conform to their provider's documented contract, 521 of them with documented
    deviations from OpenAI: status_openai 273, strict_response_schema 250, ...

``json``: :func:`contract_document`. ``github``: the text, then one ``::error`` annotation
per failing case at its suite file and line (:func:`github_annotations`).
Providers are shown by their display names (``contract.json``'s ``display_names``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from chatprobe.metrics import ContractFigures, contract_figures, jsonable
from chatprobe.output.github import annotation, workspace_path
from chatprobe.output.tables import Column, TextTable, print_lines, print_table
from chatprobe.results.folder import CONTRACT

__all__ = [
    "contract_document",
    "contract_figures_of",
    "failing_cases",
    "github_annotations",
    "print_contract",
]

_STYLE = {
    "pass": "green",
    "pass*": "green",
    "fail": "bold red",
    "deviation": "yellow",
    "skip": "dim",
}


def _names(contract: Mapping[str, Any]) -> dict[str, str]:
    shown = contract.get("display_names")
    return {str(k): str(v) for k, v in shown.items()} if isinstance(shown, Mapping) else {}


def contract_figures_of(contract: Mapping[str, Any]) -> ContractFigures:
    """The run's tallies (:func:`chatprobe.metrics.contract_figures`)."""
    checks = contract.get("checks") or {}
    severities = {
        str(name): str(info.get("severity") or "")
        for name, info in checks.items()
        if isinstance(info, Mapping)
    }
    results = [r for r in contract.get("results") or [] if isinstance(r, Mapping)]
    return contract_figures(results, severities)


def failing_cases(contract: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each failed case (or one that could not run): where it is, which checks failed, and
    the first finding of each (``{check: {path, message}}``; the case's message when no
    check names the failure)."""
    shown = _names(contract)
    out = []
    for r in contract.get("results") or []:
        if not isinstance(r, Mapping) or r.get("outcome") not in ("failed", "error"):
            continue
        statuses = r.get("checks") or {}
        failed = [c for c, s in statuses.items() if s == "fail"]
        findings = [f for f in r.get("findings") or [] if isinstance(f, Mapping)]
        if not failed:  # older entries without "checks": what their findings say
            failed = list(dict.fromkeys(str(f.get("check")) for f in findings if f.get("check")))
        first = {}
        for check in failed:
            mine = next((f for f in findings if f.get("check") == check), None) or {}
            first[check] = {
                "path": str(mine.get("path") or ""),
                "message": str(mine.get("message") or ""),
            }
        provider = str(r.get("provider") or "")
        out.append(
            {
                "id": f"{r.get('suite')}::{r.get('id') or r.get('case')}",
                "suite": r.get("suite"),
                "case": r.get("case"),
                "provider": provider or None,
                "display_name": shown.get(provider, provider) or None,
                "model": r.get("model"),
                "outcome": r.get("outcome"),
                "source": r.get("source") or "",
                "checks": failed,
                "findings": first,
                "message": str(r.get("message") or "").strip(),
            }
        )
    return out


def _failure_lines(case: Mapping[str, Any]) -> list[str]:
    """What failed in one case, one line per failing check (else the case's message)."""
    if case["findings"]:
        lines = []
        for check, first in case["findings"].items():
            where = f" at {first['path']}" if first["path"] else ""
            lines.append(f"{check}{where}: {first['message']}" if first["message"] else check)
        return lines
    message = case["message"].splitlines()
    return [message[0] if message else str(case["outcome"])]


def contract_document(
    contract: Mapping[str, Any], *, run_dir: Path, exit_status: int
) -> dict[str, Any]:
    """``--format json``: the run's result for a program: where the full results are
    (absolute paths), the
    exit status, the tallies (:class:`chatprobe.metrics.ContractFigures`), the matrix,
    the findings by check and every failing case."""
    from chatprobe.report.headline import contract_tally

    figures = contract_figures_of(contract)
    run_dir = run_dir.resolve()
    return {
        "command": "check",
        "results_dir": str(run_dir),
        "contract": str(run_dir / CONTRACT),
        "exit_status": exit_status,
        "data_source": contract.get("data_source"),
        "display_names": _names(contract),
        "tally": contract_tally(figures),
        "cases": figures.cases,
        "outcomes": figures.outcomes,
        "conforming": figures.conforming,
        "deviating_checks": figures.deviating_checks,
        "failing_checks": figures.failing_checks,
        "matrix": contract.get("matrix") or {},
        "findings": jsonable(figures.tallies),
        "failures": failing_cases(contract),
    }


def print_contract(
    contract: Mapping[str, Any], *, verbose: int = 0, stream: TextIO | None = None
) -> None:
    """The ``text`` output (module docstring)."""
    from chatprobe.report.headline import contract_tally

    matrix: dict[str, dict[str, str]] = contract.get("matrix") or {}
    shown = _names(contract)
    checks = contract.get("checks") or {}
    warnings = contract.get("warnings") or {}
    providers = sorted(matrix)
    if matrix:
        table = TextTable(
            [
                Column("check"),
                Column("severity"),
                *(Column(shown.get(p, p), align="center") for p in providers),
            ],
            title=f"Conformance ({contract.get('data_source', '?')})",
            style=lambda k, text: _STYLE.get(text, "dim" if k == 1 else ""),
        )
        others = 0
        for name, info in checks.items():
            cells = []
            for provider in providers:
                cell = matrix[provider].get(name, "skip")
                warned = warnings.get(provider, {}).get(name)
                cells.append(f"{cell}*" if warned and cell == "pass" else cell)
            flagged = any(c in ("fail", "deviation", "pass*") for c in cells)
            if flagged or verbose:
                table.add_row(name, info.get("severity", ""), *cells)
            else:
                others += 1
        notes = []
        if table.rows:
            print_table(table, stream)
            if others:
                notes.append(
                    f"{others} other check{'s' if others != 1 else ''} "
                    f"{'pass' if others != 1 else 'passes'} for every provider wherever "
                    f"{'they apply' if others != 1 else 'it applies'} (-v lists every check)."
                )
        else:
            names = ", ".join(shown.get(p, p) for p in providers)
            notes.append(
                f"{table.title} of {names}: every check passes wherever it applies "
                f"({others} checks; -v lists them)."
            )
        if any(warnings.values()):
            notes.append("* passed with warnings (see contract.json findings)")
        print_lines(notes, stream)
    reasons: dict[tuple[str, str], str] = {}
    for result in contract.get("results") or []:
        for deviation in result.get("deviations") or []:
            key = (str(result.get("provider")), deviation["check"])
            reasons.setdefault(key, deviation["reason"])
    if reasons:
        lines = ["", "documented deviations (each provider's profile gives the reason):"]
        lines += [
            f"  {shown.get(provider, provider)} {name}: {reason}"
            for (provider, name), reason in sorted(reasons.items())
        ]
        print_lines(lines, stream)
    failures = failing_cases(contract)
    if failures:
        lines = ["", "failures:"]
        for case in failures:
            where = f" ({case['source']})" if case["source"] else ""
            for text in _failure_lines(case):
                lines.append(f"  FAIL {case['id']}{where}: {text}")
        print_lines(lines, stream)
    print_lines(["", *contract_tally(contract_figures_of(contract))], stream)


def github_annotations(contract: Mapping[str, Any]) -> list[str]:
    """``--format github``: one ``::error`` per failing case, at its suite file and line."""
    out = []
    for case in failing_cases(contract):
        file, line = workspace_path(case["source"]) if case["source"] else (None, None)
        title = "chatprobe: " + (", ".join(case["checks"]) or str(case["outcome"]))
        message = "\n".join([f"{case['id']} failed", *_failure_lines(case)])
        out.append(annotation("error", message, file=file, line=line, title=title))
    return out
