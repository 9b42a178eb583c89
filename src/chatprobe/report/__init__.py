"""Provider comparison reports: results folders -> data model -> HTML, Markdown and JSON.

``build_report_files(paths)`` is the one call ``chatprobe report`` and ``chatprobe run`` make:
it resolves results folders, loads them (:mod:`chatprobe.results`), computes the model
(:mod:`chatprobe.report.model`), lays out the sections (:mod:`chatprobe.report.views`) and
writes ``index.html``, ``report.md`` and ``report.json`` (:mod:`chatprobe.report.render`).
"""

from __future__ import annotations

from pathlib import Path

from chatprobe.report.model import REPORT_SCHEMA_VERSION, Report, build_report
from chatprobe.report.render import render_html, render_json, render_markdown, write_report
from chatprobe.results import (
    META,
    latest_run_folders,
    load_results,
    results_root,
)

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "Report",
    "build_report",
    "build_report_files",
    "render_html",
    "render_json",
    "render_markdown",
    "resolve_folders",
    "write_report",
]


def resolve_folders(paths: list[Path] | tuple[Path, ...] = ()) -> list[Path]:
    """Results folders for the given paths: a folder with ``meta.json`` is itself; any other
    folder (a results root such as ``results/``) stands for its last run; no paths means
    the last run under :func:`~chatprobe.results.results_root`."""
    if not paths:
        return latest_run_folders(results_root())
    folders: list[Path] = []
    for path in paths:
        path = Path(path)
        if (path / META).exists() or not path.is_dir():
            folders.append(path)  # load_results reports a missing or broken folder
        else:
            folders.extend(latest_run_folders(path))
    first: dict[Path, Path] = {}  # each folder once, where it first appears
    for folder in folders:
        first.setdefault(folder.resolve(), folder)
    return list(first.values())


def build_report_files(
    paths: list[Path] | tuple[Path, ...] = (),
    *,
    out: Path | str | None = None,
    slo: dict[str, float] | None = None,
    reports_root: Path | str = "reports",
) -> Path:
    """Build the report for ``paths`` (see :func:`resolve_folders`) into ``out`` (default
    ``reports/<run-id>/``); returns the path of ``index.html``."""
    loaded = [load_results(folder) for folder in resolve_folders(paths)]
    report = build_report(loaded, slo=slo)
    target = Path(out) if out is not None else Path(reports_root) / report.report_id
    return write_report(report, target)
