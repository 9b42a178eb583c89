"""The capacity section of the report: model, report.json, Markdown and HTML, and the
``capacity.json`` a folder carries (searches on fake steps: no load run needed)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from chatprobe.report import build_report_files
from chatprobe.report.headline import headline
from chatprobe.report.model import build_report
from chatprobe.results import load_results
from tests.capacity_support import make_capacity_run

HOSTILE = '<script>alert("x")</script>'


def _report(tmp_path: Path, **kwargs: object) -> Path:
    make_capacity_run(
        tmp_path / "results",
        [("openrouter", "gemini-2.0-flash-001", 42.0), ("aimlapi", "gpt-4o-mini", 17.0)],
        **kwargs,  # type: ignore[arg-type]
    )
    return build_report_files([tmp_path / "results"], out=tmp_path / "report").parent


def test_the_model_reads_capacity_json(tmp_path: Path) -> None:
    folder = make_capacity_run(tmp_path, [("openrouter", "m", 42.0)])
    report = build_report([load_results(folder)])
    (target,) = report.capacity
    assert target.unit == "req/s" and target.end == "edge"
    assert target.capacity is not None and abs(target.capacity - 42) / 42 <= 0.1
    assert target.points == sorted(target.points, key=lambda p: p.level)
    assert all("p95_low" in p.latency["ttft_ms"] for p in target.points)
    assert target.statement.startswith("sustains ")
    assert any(line.startswith("Capacity: openrouter · m: sustains ") for line in headline(report))


def test_report_json_markdown_and_html_carry_the_capacities(tmp_path: Path) -> None:
    out = _report(tmp_path)
    data = orjson.loads((out / "report.json").read_bytes())
    capacities = {t["model"]: t["capacity"] for t in data["capacity"]}
    assert set(capacities) == {"gemini-2.0-flash-001", "gpt-4o-mini"}
    assert all(c is not None for c in capacities.values())
    md = (out / "report.md").read_text()
    assert "## Capacity under SLO" in md and "**Capacities side by side**" in md
    row = next(line for line in md.splitlines() if line.startswith("| openrouter | gemini"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    shown = capacities["gemini-2.0-flash-001"]
    assert f"{shown:.3g}" in cells or f"{shown:.0f}" in cells
    html = (out / "index.html").read_text()
    for chart in ("chart-capacity-ttft", "chart-capacity-itl", "chart-capacity-goodput"):
        assert f'id="{chart}"' in html
    assert "ci-band" in html and "SLO p95 TTFT 100 ms" in html and "edge: " in html
    # markdown and HTML tables agree on the side-by-side row count
    assert len(re.findall(r"\| (?:openrouter|aimlapi) \| ", md)) >= 2


def test_model_text_in_capacity_results_is_escaped(tmp_path: Path) -> None:
    out = _report(tmp_path, hostile_model=HOSTILE)
    html = (out / "index.html").read_text()
    assert HOSTILE not in html and "&lt;script&gt;" in html
