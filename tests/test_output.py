"""Output that reads well in CI logs (issue 13 item 5): tables never cut ids when piped or at
80 columns, ``--format text|json|github``, results on stdout and progress on stderr, and a
tally that says what a user needs, failures first."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chatprobe.checks import registered
from chatprobe.output.github import annotation, workspace_path
from chatprobe.output.tables import Column, TextTable, print_table
from tests.cli_support import ROOT, only_run, run_cli

LONG = "127.0.0.1:40000/google/gemini-2.0-flash-001"


# ---------------------------------------------------------------------------- tables


def test_a_plain_table_keeps_every_cell_whole() -> None:
    table = TextTable([Column("target"), Column("TTFT p50", align="right")], title="latency")
    table.add_row(LONG, "56.7")
    table.add_row("a/b", "1,234.5")
    out = io.StringIO()  # not a terminal: the plain layout
    print_table(table, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "latency"
    assert lines[1].split() == ["target", "TTFT", "p50"]
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert lines[3] == f"{LONG}      56.7"
    assert lines[4].startswith("a/b ") and lines[4].endswith("   1,234.5")  # numbers right
    assert len({len(line) for line in lines[1:]}) == 1  # columns line up


def test_on_a_narrow_terminal_a_table_that_does_not_fit_is_laid_out_plainly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Narrow(io.StringIO):
        def isatty(self) -> bool:
            return True

    table = TextTable([Column("target"), Column("requests", align="right")])
    table.add_row(LONG * 2, "10")
    out = Narrow()
    monkeypatch.setenv("COLUMNS", "60")
    print_table(table, out)
    assert LONG * 2 in out.getvalue()  # whole, on one line


def test_list_checks_piped_at_80_columns_shows_whole_names() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    done = subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "check", "--list-checks"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "COLUMNS": "80"},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    names = [line.split()[0] for line in lines[3:] if line.strip()]
    assert names == list(registered())
    for line in lines[3:]:
        assert "…" not in line and "│" not in line


def test_list_checks_as_json() -> None:
    done = run_cli("check", "--list-checks", "--format", "json", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert list(data) == list(registered())
    assert data["status_openai"]["severity"] == "error"


# ---------------------------------------------------------------------------- github


def test_annotations_escape_what_github_reads_as_syntax() -> None:
    line = annotation(
        "error",
        "50% failed\nsecond line",
        file="suites/a,b.yaml",
        line=12,
        title="chatprobe: x",
    )
    assert line == (
        "::error file=suites/a%2Cb.yaml,line=12,title=chatprobe%3A x::50%25 failed%0Asecond line"
    )
    assert annotation("warning", "plain") == "::warning::plain"
    with pytest.raises(ValueError):
        annotation("fatal", "x")


def test_annotation_paths_are_relative_to_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    (tmp_path / "suites").mkdir()
    assert workspace_path(str(tmp_path / "suites" / "basic.yaml") + ":7") == (
        "suites/basic.yaml",
        7,
    )
    assert workspace_path("suites/basic.yaml:7") == ("suites/basic.yaml", 7)
    assert workspace_path("/elsewhere/site-packages/suites/basic.yaml:3") == (None, None)


# ---------------------------------------------------------------------------- check


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """``chatprobe check`` in each format against a cassette whose usage does not add up,
    run from a copy of the project so the suite file is in the workspace."""
    work = tmp_path_factory.mktemp("project")
    (work / "chatprobe.toml").write_text("builtin_suites = false\n")
    (work / "suites").mkdir()
    shutil.copy(ROOT / "suites" / "basic.yaml", work / "suites" / "basic.yaml")
    cassettes = work / "cassettes"
    shutil.copytree(ROOT / "cassettes" / "aimlapi" / "basic", cassettes / "aimlapi" / "basic")
    target = cassettes / "aimlapi" / "basic" / "hello--gemini-2.0-flash-exp.yaml"
    data = yaml.safe_load(target.read_text())
    body = json.loads(data["interactions"][0]["response"]["body"]["string"])
    body["usage"]["total_tokens"] += 1
    data["interactions"][0]["response"]["body"]["string"] = json.dumps(body)
    target.write_text(yaml.safe_dump(data))
    runs = {}
    for fmt in ("text", "json", "github"):
        runs[fmt] = run_cli(
            *("check", "--suites", "suites/basic.yaml", "--provider", "aimlapi"),
            *("--cassette-dir", "cassettes", "--out", f"results-{fmt}", "--format", fmt),
            *("-k", "hello"),
            cwd=work,
        )
    return {"work": work, **runs}


def test_text_names_the_failure_where_it_is_then_the_tally(broken: dict) -> None:
    done = broken["text"]
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "FAIL basic::hello[aimlapi-gemini-2.0-flash-exp] (" in out
    assert "suites/basic.yaml:" in out and "usage_arithmetic at /body/usage/total_tokens" in out
    assert out.index("failures:") < out.index("1 case fails: usage_arithmetic 1.")
    assert "conform to their provider's documented contract" in out
    assert "results: " in out
    # pytest's progress went to stderr, not among the results
    assert "deviation in" in done.stderr or "failed" in done.stderr
    assert "DDD" not in out and "short test summary" not in out


def test_json_is_the_only_thing_on_stdout(broken: dict) -> None:
    done = broken["json"]
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["command"] == "check" and doc["exit_status"] == 1
    assert Path(doc["results_dir"]) == only_run(broken["work"] / "results-json")
    assert doc["outcomes"]["failed"] == 1 and doc["failing_checks"] == {"usage_arithmetic": 1}
    assert doc["tally"][0] == "1 case fails: usage_arithmetic 1."
    (failure,) = doc["failures"]
    assert failure["checks"] == ["usage_arithmetic"] and failure["provider"] == "aimlapi"
    assert failure["findings"]["usage_arithmetic"]["path"] == "/body/usage/total_tokens"
    assert failure["source"].endswith(tuple(f"basic.yaml:{n}" for n in range(1, 200)))
    findings = {(f["verdict"], f["check"]) for f in doc["findings"]}
    assert ("fail", "usage_arithmetic") in findings and ("deviation", "status_openai") in findings
    assert doc["display_names"] == {"aimlapi": "aimlapi"}
    assert "results: " in done.stderr


def test_github_annotates_the_failing_case_at_its_line(broken: dict) -> None:
    done = broken["github"]
    assert done.returncode == 1, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert len(notes) == 1, notes
    suite = (broken["work"] / "suites" / "basic.yaml").read_text().splitlines()
    head, message = notes[0].split("::", 2)[1:]
    props = dict(p.split("=", 1) for p in head.removeprefix("error ").split(","))
    assert (
        props["file"] == "suites/basic.yaml" and props["title"] == "chatprobe%3A usage_arithmetic"
    )
    assert suite[int(props["line"]) - 1].strip() == "- name: hello"
    assert message.startswith("basic::hello[aimlapi-gemini-2.0-flash-exp] failed%0A")
    assert "usage_arithmetic at /body/usage/total_tokens" in message
    assert "failures:" in done.stdout  # the text comes first
