"""``chatprobe report --monitor DB`` in a real headless Chromium (the comparison report's
browser fixture): self-contained, no script errors, charts drawn, hostile text shown as text,
and the Markdown tables equal to the rendered ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatprobe.report.monitor import write_monitor_report
from tests.monitor_support import HOSTILE, synthetic_history
from tests.report_support import md_tables

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor-browser")
    with synthetic_history(root / "monitor.sqlite", hours=8) as history:
        return write_monitor_report(history, root / "report").parent


def test_the_monitor_report_renders_in_chromium(browser, report_dir: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    dialogs: list[str] = []
    requests: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    page.goto((report_dir / "index.html").as_uri())
    page.wait_for_load_state("load")
    shot = report_dir / "screenshot.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    print(f"\nscreenshot: {shot}")

    assert requests == [(report_dir / "index.html").as_uri()]  # self-contained
    assert dialogs == [] and problems == []
    headings = page.locator("main h2").all_inner_texts()
    assert headings == [
        "Summary",
        "Uptime",
        "openrouter · gemini-2.0-flash-001",
        "aimlapi · gemini-2.0-flash-exp",
        "Monitor runs",
        "Method",
    ]
    assert page.locator("nav.toc a").count() == len(headings)
    assert "EMULATED" in page.locator("header.runbar").inner_text()

    for chart_id in ("target-1-ttft", "target-1-series", "target-1-uptime"):
        svg = page.locator(f"svg#{chart_id}")
        box = svg.bounding_box()
        assert box and box["width"] > 400 and box["height"] > 200, chart_id
        lines = svg.locator("polyline")
        assert lines.count() >= 1, chart_id
        for k in range(lines.count()):
            line_box = lines.nth(k).bounding_box()
            assert line_box and line_box["width"] > 100, chart_id
        assert "EMULATED DATA" in svg.text_content()
    timeline = page.locator("svg#target-1-findings-chart")
    bar = timeline.locator("rect[fill]").first
    bar_box = bar.bounding_box()
    assert bar_box and bar_box["width"] > 10  # the half hour the check failed
    for table_id in ("uptime-table", "target-1-hours", "target-1-findings", "target-1-events"):
        table = page.locator(f"table#{table_id}")
        assert table.locator("tbody tr").count() >= 1, table_id
    events = page.locator("table#target-1-events tbody tr").all_inner_texts()
    assert [e.split("\t")[1] for e in events] == [
        "outage_started",
        "outage_ended",
        "finding_appeared",
        "finding_disappeared",
        "latency_shift",
    ]
    body = page.locator("body").inner_text()
    assert HOSTILE in body  # provider text shows as text ...
    assert page.locator("main script, main b").count() == 0  # ... never as markup
    page.close()


def test_monitor_markdown_tables_match_the_rendered_page(browser, report_dir: Path) -> None:
    page = browser.new_page()
    page.goto((report_dir / "index.html").as_uri())
    dom = page.evaluate(
        """() => [...document.querySelectorAll('table')].map(t =>
            [...t.querySelectorAll('tr')].map(r =>
                [...r.querySelectorAll('th,td')].map(c => c.textContent)))"""
    )
    page.close()

    def norm(rows: list[list[str]]) -> list[list[str]]:
        return [[re.sub(r"\s+", " ", c).strip() for c in row] for row in rows]

    md = md_tables((report_dir / "report.md").read_text())
    assert [norm(t) for t in md] == [norm(t) for t in dom]
