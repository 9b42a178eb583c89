"""The HTML report in a real headless Chromium (Debian's /usr/bin/chromium via playwright).

Never downloads a browser. Skipped only when chromium is absent outside CI; in CI
(``CI`` set) it must run, and a missing browser fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatprobe.report import build_report_files
from chatprobe.report.synthetic import HOSTILE_ERROR, HOSTILE_OUTPUT, make_run
from tests.report_support import md_tables

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    make_run(root / "results", n_samples=4000, hostile=True, seed=5)
    return build_report_files([root / "results"], out=root / "report").parent


def test_report_renders_in_chromium(browser, report_dir: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    dialogs: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((report_dir / "index.html").as_uri())
    page.wait_for_load_state("load")

    shot = report_dir / "screenshot.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    print(f"\nscreenshot: {shot}")

    # Self-contained: the page itself is the only request; no script fired a dialog.
    assert requests == [(report_dir / "index.html").as_uri()]
    assert dialogs == [] and problems == []

    headings = page.locator("main h2").all_inner_texts()
    # Reading order: what failed or deviated, then the measurements and their charts, and
    # only then the full conformance matrix, the runs and the method.
    assert headings == [
        "Summary",
        "Findings",
        "Latency",
        "Throughput",
        "Lengths, reasoning and cache",
        "Errors and availability",
        "Cost",
        "Model comparison",
        "Conformance matrix",
        "Runs",
        "How these numbers were made",
    ]
    assert page.locator("nav.toc a").count() == len(headings)
    assert "EMULATED" in page.locator("header.runbar").inner_text()
    assert page.locator("header.runbar").is_visible()

    for table_id in (
        "conformance-totals",
        "findings-by-check",
        "conformance-matrix",
        "latency-ttft",
        "latency-ttfa",
        "latency-itl",
        "latency-e2e",
        "throughput-table",
        "lengths-table",
        "reasoning-table",
        "sweep-table",
        "errors-table",
        "cost-table",
        "comparison-table",
    ):
        table = page.locator(f"table#{table_id}")
        box = table.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 60, table_id
        assert table.locator("tbody tr").count() >= 3, table_id

    for chart_id in ("chart-ttft-cdf", "chart-ttft-time", "chart-sweep"):
        svg = page.locator(f"svg#{chart_id}")
        box = svg.bounding_box()
        assert box and box["width"] > 400 and box["height"] > 200, chart_id
        lines = svg.locator("polyline")
        assert lines.count() == 5, chart_id
        for k in range(lines.count()):
            line_box = lines.nth(k).bounding_box()
            assert line_box and line_box["width"] > 20, chart_id
        assert "EMULATED DATA" in svg.text_content()  # every latency figure says so
        assert svg.locator("text.axis-label").count() == 2
        assert svg.locator("g.legend").count() == 5

    # TTFB sits beside TTFT.
    headers = page.locator("table#latency-ttft thead th").all_inner_texts()
    assert headers.index("TTFB p50") + 2 == headers.index("TTFT p50")

    # Hostile provider text shows as text, never as markup: in the findings too.
    body = page.locator("body").inner_text()
    assert HOSTILE_OUTPUT in body
    assert HOSTILE_ERROR in body
    assert HOSTILE_OUTPUT in page.locator("table#findings-by-check").inner_text()
    assert page.locator("main script, main img, main b, main i").count() == 0
    assert page.locator(".callout:empty").count() == 0
    page.close()


def test_passing_checks_are_collapsed_after_the_charts(browser, report_dir: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto((report_dir / "index.html").as_uri())
    fold = page.locator("details#conformance-passing-fold")
    assert fold.count() == 1
    assert fold.get_attribute("open") is None  # collapsed by default
    passing = fold.locator("table#conformance-passing")
    assert not passing.is_visible()
    summary = fold.locator("summary")
    assert re.match(r"\d+ other checks? pass", summary.inner_text())

    # The charts come before the full matrix, the failing/deviating rows of which show.
    def top(selector: str) -> float:
        box = page.locator(selector).bounding_box()
        assert box is not None, selector
        return box["y"]

    assert top("svg#chart-ttft-cdf") < top("table#conformance-matrix") < top("details.fold")
    assert "FAIL" in page.locator("table#conformance-matrix").inner_text()

    summary.click()  # a click on the summary opens it, without any script
    assert fold.get_attribute("open") is not None
    assert passing.is_visible()
    box = passing.bounding_box()
    assert box and box["height"] > 60
    assert passing.locator("tbody tr").count() >= 3
    assert "FAIL" not in passing.inner_text() and "deviation" not in passing.inner_text()
    page.close()


def test_markdown_tables_match_the_rendered_page(browser, report_dir: Path) -> None:
    page = browser.new_page()
    page.goto((report_dir / "index.html").as_uri())
    # Markdown only counts the folded tables (checks that pass everywhere).
    dom = page.evaluate(
        """() => [...document.querySelectorAll('table')]
            .filter(t => !t.closest('details.fold')).map(t =>
            [...t.querySelectorAll('tr')].map(r =>
                [...r.querySelectorAll('th,td')].map(c => c.textContent)))"""
    )
    page.close()

    def norm(rows: list[list[str]]) -> list[list[str]]:
        return [[re.sub(r"\s+", " ", c).strip() for c in row] for row in rows]

    md = md_tables((report_dir / "report.md").read_text())
    assert [norm(t) for t in md] == [norm(t) for t in dom]


@pytest.fixture(scope="module")
def capacity_report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.capacity_support import make_capacity_run

    root = tmp_path_factory.mktemp("capacity-browser")
    make_capacity_run(
        root / "results",
        [("openrouter", "gemini-2.0-flash-001", 42.0), ("aimlapi", "gpt-4o-mini", 17.0)],
    )
    return build_report_files([root / "results"], out=root / "report").parent


def test_capacity_chart_shows_curves_bands_and_the_edge(browser, capacity_report_dir: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto((capacity_report_dir / "index.html").as_uri())
    page.wait_for_load_state("load")
    chart = page.locator("svg#chart-capacity-ttft")
    chart.scroll_into_view_if_needed()
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 200
    # two targets x p50/p95/p99, each curve with its CI band
    assert chart.locator("polyline").count() == 6
    assert chart.locator("polygon.ci-band").count() == 6
    assert chart.locator("line.limit").count() == 1
    assert "SLO p95 TTFT 100 ms" in chart.locator("text.limit-text").first.text_content() or ""
    edges = chart.locator("rect.band")
    assert edges.count() == 2
    assert all("edge: " in t for t in chart.locator("text.band-text").all_text_contents())
    # the edge span sits at the found capacity on the x axis: between the 3rd and 4th step
    tick_x = {
        (t.text_content() or ""): float(t.get_attribute("x") or 0)
        for t in chart.locator("text.tick[text-anchor='middle']").all()
    }
    assert tick_x and all(x > 0 for x in tick_x.values())
    for i in range(edges.count()):
        width = float(edges.nth(i).get_attribute("width") or 0)
        assert 0 < width < box["width"] / 2
    table = page.locator("table#capacity-table")
    assert table.locator("tbody tr").count() == 2
    shot = capacity_report_dir / "capacity.png"
    chart.screenshot(path=str(shot))
    assert shot.stat().st_size > 5_000
    assert problems == []
    page.close()
