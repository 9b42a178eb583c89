"""The report: model figures from synthetic results, renderers, escaping, CLI errors."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatprobe.cli import cli, main
from chatprobe.profiles import load_profile
from chatprobe.report import build_report_files, resolve_folders
from chatprobe.report.headline import headline
from chatprobe.report.model import build_report
from chatprobe.report.render import md_cell, render_html, render_markdown
from chatprobe.report.synthetic import HOSTILE_ERROR, HOSTILE_OUTPUT, make_run
from chatprobe.results import META, SAMPLES, SUMMARY, load_results
from chatprobe.scrub import register_secret

CANARY = "sk-or-v1-reportcanary0123456789abcdef"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("results")
    return make_run(root, n_samples=3000, hostile=True, seed=3)


@pytest.fixture(scope="module")
def report(run):
    return build_report([load_results(run.contract_dir), load_results(run.load_dir)])


class TableParser(HTMLParser):
    """Collects every <table> as {id: [[cell text, ...], ...]} (header row first); the ids of
    tables folded inside ``<details class="fold">`` go to ``folded``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.folded: set[str] = set()
        self._details = 0
        self._id: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "details":
            self._details += 1
        elif tag == "table":
            self._id = dict(attrs).get("id") or f"t{len(self.tables)}"
            self.tables[self._id] = []
            if self._details:
                self.folded.add(self._id)
        elif tag == "tr" and self._id:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self._details -= 1
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._id:
            self.tables[self._id].append(self._row)
            self._row = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def md_tables(text: str) -> list[list[list[str]]]:
    """Markdown tables as rows of unescaped cell text (separator rows dropped)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            if all(re.fullmatch(r"\s*-+:?\s*", c) for c in cells):
                continue
            current.append([md_unescape(c.strip()) for c in cells])
        elif current:
            tables.append(current)
            current = []
    return tables


def md_unescape(cell: str) -> str:
    return html.unescape(re.sub(r"\\(.)", r"\1", cell))


def norm(text: str) -> str:
    return " ".join(text.split())


def test_model_figures_are_plausible(report) -> None:
    groups = {(g.provider, g.model): g for g in report.groups}
    assert len(groups) == 5 and report.emulated
    fast = groups[("aimlapi", "gemini-2.0-flash-exp")]
    slow = groups[("aimlapi", "gemini-1.5-flash")]
    # The emulator's medians are 45 and 110 ms (specs/providers/aimlapi.yaml).
    assert 0 < fast.ttft_ms.p50 < slow.ttft_ms.p50
    assert fast.ttft_ms.p50_low <= fast.ttft_ms.p50 <= fast.ttft_ms.p50_high
    assert fast.ttft_ms.p50 <= fast.ttft_ms.p90 <= fast.ttft_ms.p99 <= fast.ttft_ms.max
    assert 0.9 < fast.success_rate < 1.0 and sum(fast.errors.values()) == fast.requests - fast.ok
    assert fast.requests_per_s > 0 and fast.output_tokens_per_s > fast.requests_per_s
    assert 0 < fast.goodput_rps <= fast.requests_per_s
    # Cost: documented for OpenRouter's own pages, assumed elsewhere; :free costs nothing.
    assert groups[("openrouter", "gemini-2.0-flash-001")].cost.price_source == "documented"
    cost = fast.cost
    assert cost.price_source == "assumed" and cost.per_1k_requests == pytest.approx(
        1000 * (cost.mean_prompt_tokens * 0.10 + cost.mean_output_tokens * 0.40) / 1e6
    )
    assert groups[("openrouter", "gemini-2.0-flash-exp:free")].cost.per_1k_requests == 0


def test_family_comparison_supports_the_seed_claim(report) -> None:
    family = [c for c in report.comparisons if c.kind == "family"]
    assert len(family) == 1
    c = family[0]
    assert (c.scope, c.a, c.b) == ("aimlapi", "gemini-2.0-flash-exp", "gemini-1.5-flash")
    assert c.low < c.ratio < c.high < 1 and c.outcome == "a_faster"


def test_sweep_and_conformance(report) -> None:
    users = sorted({p.users for p in report.sweep})
    assert users == [1, 4, 16]
    for provider in ("aimlapi", "openrouter"):
        points = sorted((p for p in report.sweep if p.provider == provider), key=lambda p: p.users)
        assert points[0].requests_per_s < points[-1].requests_per_s
    conf = report.conformance
    assert conf.matrix["apilaplas"]["max_tokens_honoured"] == "fail"
    reasons = {(t.provider, t.check): t.reason for t in conf.tallies if t.verdict == "deviation"}
    assert "message.refusal" in reasons[("aimlapi", "strict_response_schema")]
    assert "code" in reasons[("openrouter", "strict_error_envelope")]
    assert conf.totals["apilaplas"]["fail"] == 1
    # Findings by check: failures first, each with its counts and one example.
    first = conf.tallies[0]
    assert (first.verdict, first.check, first.provider) == (
        "fail",
        "max_tokens_honoured",
        "apilaplas",
    )
    apilaplas_models = len(load_profile("apilaplas").models)  # one case per model
    assert first.cases == first.findings == apilaplas_models
    assert first.example_case == "core::max_tokens_honoured" and first.example_source
    assert [t.verdict for t in conf.tallies] == sorted(
        (t.verdict for t in conf.tallies), key=("fail", "deviation", "warn").index
    )
    assert {(t.check, t.provider) for t in conf.tallies if t.verdict == "warn"} == {
        ("retry_after_on_429", "openrouter")
    }
    lines = headline(report)
    assert any(line.startswith("Most conformant: openrouter") for line in lines)
    assert any(line.startswith("Fastest first token: aimlapi") for line in lines)


def test_html_escapes_provider_text_and_never_uses_safe(report) -> None:
    page = render_html(report)
    assert "<script>alert(1)</script>" not in page
    assert html.escape(HOSTILE_OUTPUT, quote=False) in page.replace("&#34;", '"').replace(
        "&#39;", "'"
    )
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    assert "<script" not in page.lower()  # the report needs no JavaScript at all
    templates = Path(__file__).parents[1] / "src/chatprobe/report/templates"
    for template in templates.iterdir():
        assert not re.search(r"\{\{[^}]*\|\s*safe", template.read_text()), template
    package = templates.parent
    assert not any("Markup(" in f.read_text() for f in package.glob("*.py"))


def test_markdown_carries_the_same_tables_as_html(report) -> None:
    """Every table reads the same in both, but for the folded ones (checks that pass
    everywhere), which Markdown only counts."""
    parser = TableParser()
    parser.feed(render_html(report))
    html_tables = [
        [[norm(c) for c in row] for row in t]
        for tid, t in parser.tables.items()
        if tid not in parser.folded
    ]
    markdown = render_markdown(report)
    md = [[[norm(c) for c in row] for row in t] for t in md_tables(markdown)]
    assert len(html_tables) >= 10
    assert md == html_tables
    assert parser.folded == {"conformance-passing"}
    passing = len(parser.tables["conformance-passing"]) - 1  # the header row aside
    assert passing > 0
    assert f"{passing} other checks pass for every provider wherever they apply" in markdown
    assert "<script>" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown


def test_md_cell_escapes_pipes_html_and_newlines() -> None:
    assert md_cell("a|b\n<i>c</i> *d*") == r"a\|b &lt;i&gt;c&lt;/i&gt; \*d\*"
    assert md_cell("") == " "


def test_report_files_json_schema_and_no_secret(run, tmp_path: Path) -> None:
    register_secret(CANARY)
    # A provider echoing the key in an error message must not leak into the report.
    with open(run.load_dir / SAMPLES, "rb") as fh:
        first = dict(json.loads(fh.readline()), warmup=False)
    leaked = dict(first, error_class="http_status", error_detail=f"bad key {CANARY}")
    copy = tmp_path / "results" / run.load_dir.name
    copy.mkdir(parents=True)
    for name in (META, SUMMARY):
        (copy / name).write_bytes((run.load_dir / name).read_bytes())
    (copy / SAMPLES).write_text(json.dumps(first) + "\n" + json.dumps(leaked) + "\n")
    index = build_report_files([copy], out=tmp_path / "out")
    for name in ("index.html", "report.md", "report.json"):
        assert CANARY not in (index.parent / name).read_text()
    data = json.loads((index.parent / "report.json").read_text())
    assert data["schema_version"] == 3
    assert {"runs", "groups", "conformance", "comparisons", "warnings"} <= set(data)
    assert "summary" not in data  # sentences belong to the views, not the model
    assert "ttft_sorted" not in data["groups"][0]


def test_cli_builds_default_last_run(run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATPROBE_RESULTS", str(run.load_dir.parent))
    assert set(resolve_folders()) == {run.load_dir, run.contract_dir}
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 0, result.output
    index = Path(result.output.strip())
    assert index.resolve() == (tmp_path / "reports" / run.group / "index.html").resolve()
    assert index.is_file()
    assert (index.parent / "report.md").is_file()


@pytest.mark.parametrize("kind", ["missing", "empty", "file", "bad-meta"])
def test_cli_unreadable_results_one_line_exit_2(tmp_path: Path, kind: str, capsys) -> None:
    target = tmp_path / "res"
    if kind == "empty":
        target.mkdir()
    elif kind == "file":
        target.write_text("hello")
    elif kind == "bad-meta":
        target.mkdir()
        (target / META).write_text("[1, 2")
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(target), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chatprobe: error: ") and str(target) in err
    assert "Traceback" not in err


def test_summary_only_folder_still_reports(run, tmp_path: Path) -> None:
    folder = tmp_path / run.load_dir.name
    folder.mkdir()
    for name in (META, SUMMARY):
        (folder / name).write_bytes((run.load_dir / name).read_bytes())
    report = build_report([load_results(folder)])
    assert len(report.groups) == 5 and report.groups[0].ttft_ms.p50 is not None
    assert "Latency" in render_markdown(report)


def test_hostile_error_message_in_model(report) -> None:
    messages = [m for g in report.groups for _, m, _ in g.error_messages]
    assert any(HOSTILE_ERROR in m for m in messages)


def test_untrustworthy_runs_are_flagged(run, tmp_path: Path) -> None:
    folder = tmp_path / run.load_dir.name
    folder.mkdir()
    (folder / META).write_bytes((run.load_dir / META).read_bytes())
    (folder / SAMPLES).write_bytes((run.load_dir / SAMPLES).read_bytes())
    summary = json.loads((run.load_dir / SUMMARY).read_text())
    summary["client_saturated"] = True
    summary["workers"] = {"expected": 2, "reported": 1, "lost": ["worker-1"]}
    (folder / SUMMARY).write_text(json.dumps(summary))
    report = build_report([load_results(folder)])
    text = " ".join(report.warnings)
    assert "saturated" in text and "1 load worker(s) were lost" in text
    assert "saturated" in render_markdown(report)


def test_mixed_sources_mark_emulated_series(tmp_path: Path) -> None:
    live = make_run(
        tmp_path, n_samples=300, providers=("openrouter",), data_source="live", with_contract=False
    )
    emulated = make_run(tmp_path, n_samples=300, providers=("aimlapi",), with_contract=False)
    report = build_report([load_results(live.load_dir), load_results(emulated.load_dir)])
    assert report.data_sources == ["emulated", "live"]
    page = render_html(report)
    assert "CONTAINS EMULATED DATA" in page
    assert "aimlapi · gemini-1.5-flash [emulated]" in page
    assert "openrouter · gemini-2.0-flash-001 [emulated]" not in page
