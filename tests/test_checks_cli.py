"""``chatprobe check``: offline from the committed cassettes, results folder, matrix, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import yaml

from tests.cli_support import ROOT, only_run, run_cli


def test_offline_check_passes_and_writes_results(tmp_path: Path) -> None:
    done = run_cli("check", "--suites", str(ROOT / "suites" / "basic.yaml"), "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    run = only_run(tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["kind"] == "contract" and meta["data_source"] == "replayed"
    assert meta["finished_at"] and not meta["interrupted"]
    assert any("emulator" in note for note in meta["notes"])
    contract = json.loads((run / "contract.json").read_text())
    assert contract["schema_version"] == 1
    assert contract["data_source"] == "replayed (emulated recording)"
    assert set(contract["matrix"]) == {"aimlapi", "apilaplas", "openrouter"}
    assert contract["matrix"]["aimlapi"]["status_openai"] == "deviation"
    assert contract["matrix"]["apilaplas"]["usage_arithmetic"] == "pass"
    assert contract["checks"]["usage_arithmetic"]["severity"] == "error"
    for result in contract["results"]:
        assert set(result) >= {"case", "suite", "provider", "model", "outcome", "duration_s"}
        assert result["outcome"] in ("passed", "deviation")
    assert (run / "junit.xml").read_text().startswith("<?xml")
    assert "status_openai" in done.stdout and "deviation" in done.stdout
    assert "AI/ML API documents 201" in done.stdout


def test_a_broken_cassette_fails_the_run(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    shutil.copytree(ROOT / "cassettes" / "aimlapi" / "basic", cassettes / "aimlapi" / "basic")
    target = cassettes / "aimlapi" / "basic" / "hello--gemini-2.0-flash-exp.yaml"
    data = yaml.safe_load(target.read_text())
    body = orjson.loads(data["interactions"][0]["response"]["body"]["string"])
    body["usage"]["total_tokens"] += 1
    data["interactions"][0]["response"]["body"]["string"] = orjson.dumps(body).decode()
    target.write_text(yaml.safe_dump(data))
    done = run_cli(
        "check",
        "--suites",
        str(ROOT / "suites" / "basic.yaml"),
        "--provider",
        "aimlapi",
        "--cassette-dir",
        str(cassettes),
        "--out",
        str(tmp_path / "results"),
        "-k",
        "hello and not stream",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "usage_arithmetic at /body/usage/total_tokens" in done.stdout
    contract = json.loads((only_run(tmp_path / "results") / "contract.json").read_text())
    assert contract["matrix"]["aimlapi"]["usage_arithmetic"] == "fail"
    outcomes = {r["id"]: r["outcome"] for r in contract["results"]}
    assert outcomes["hello[aimlapi-gemini-2.0-flash-exp]"] == "failed"


def test_unknown_provider_is_one_line(tmp_path: Path) -> None:
    done = run_cli("check", "--provider", "acme", "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "chatprobe: error: unknown provider 'acme' (known: aimlapi, apilaplas, openrouter)"
    ]


def test_no_case_selected_is_a_failure(tmp_path: Path) -> None:
    done = run_cli(
        "check",
        "--suites",
        str(ROOT / "suites" / "basic.yaml"),
        "-k",
        "nothing_matches_this",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 1
    assert "no case matched" in done.stderr


def test_list_checks_and_docs_name_every_check() -> None:
    from chatprobe.checks import registered

    done = run_cli("check", "--list-checks")
    assert done.returncode == 0, done.stderr
    docs = (ROOT / "docs" / "suites.md").read_text(encoding="utf-8")
    for name, chk in registered().items():
        assert name in done.stdout
        assert f"| `{name}` | {chk.severity.value} |" in docs, f"docs/suites.md lacks {name}"
