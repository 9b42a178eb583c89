"""check, load and run against each real server, and what chatprobe must get right on both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatprobe.load.scenario import load_scenario

from .conftest import LOAD_SCENARIO, Lab, ServerUnderTest
from .verdicts import matrix_differences

pytestmark = [pytest.mark.realserver, pytest.mark.slow, pytest.mark.timeout(900)]

SERVER_NAMES = ["litellm", "litserve"]


@pytest.fixture(params=SERVER_NAMES)
def sut(request: pytest.FixtureRequest, realservers: Lab) -> ServerUnderTest:
    return realservers(request.param)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# ---------------------------------------------------------------------------- check


def test_check_exits_1_with_the_matrix_each_server_deserves(sut: ServerUnderTest) -> None:
    done = sut.check()
    assert done.returncode == 1, done.explain()  # cases fail: exit 1, no crash
    assert "Traceback" not in done.stderr, done.explain()
    contract = sut.contract()
    assert contract.data["data_source"] == "live"
    assert str(sut.server.port) in contract.provider  # one endpoint, named after its port
    outcomes = {r["outcome"] for r in contract.data["results"]}
    assert outcomes <= {"passed", "failed", "skipped"}, outcomes  # no "error": nothing crashed
    assert not matrix_differences(sut.name, contract.matrix), "\n".join(
        matrix_differences(sut.name, contract.matrix)
    )


def test_check_skips_only_what_needs_the_emulator(sut: ServerUnderTest) -> None:
    skipped = [r for r in sut.contract().data["results"] if r["outcome"] == "skipped"]
    assert skipped and all("real endpoint (--base-url)" in r["message"] for r in skipped)
    assert {r["suite"] for r in skipped} == {"errors", "faults"}


def test_check_gives_the_same_findings_twice(sut: ServerUnderTest) -> None:
    """A second run finds the same, case by case: no transport noise such as a false
    connection_reset on a connection the server closed after an error (issue 12)."""

    def signature(contract: Any) -> dict[str, tuple[str, frozenset[str]]]:
        return {
            f"{r['suite']}::{r['case']}": (
                r["outcome"],
                frozenset(f["check"] for f in r["findings"]),
            )
            for r in contract.data["results"]
        }

    first, second = sut.contract(), sut.contract("check-again")
    assert signature(first) == signature(second)
    for contract in (first, second):
        assert "connection_reset" not in json.dumps(contract.data)


def test_schema_findings_reported_once(sut: ServerUnderTest) -> None:
    """For an openai-strict endpoint each schema problem is reported once (issue 12 item 6)."""
    repeated = []
    for result in sut.contract().data["results"]:
        seen: dict[tuple[str, str], str] = {}
        for finding in result["findings"]:
            if not finding["check"].endswith(("_schema", "_error_envelope")):
                continue
            key = (finding.get("path") or "", finding["message"])
            if key in seen and seen[key] != finding["check"]:
                repeated.append((result["case"], seen[key], finding["check"], key[0]))
            seen.setdefault(key, finding["check"])
    assert not repeated, repeated[:5]


# ---------------------------------------------------------------------------- load


def test_load_measures_every_request(sut: ServerUnderTest) -> None:
    done = sut.load()
    assert done.returncode == 0, done.explain()
    folder = done.only_folder()
    samples = _lines(folder / "samples.jsonl")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    cap = load_scenario(LOAD_SCENARIO).requests
    assert cap is not None and 0 < len(samples) <= cap
    assert summary["data_source"] == "live" and summary["errors"] == {}
    assert {s["error_class"] for s in samples} == {None}  # no client_error, nor any other
    assert {s["status"] for s in samples} == {200}
    assert {s["provider"] for s in samples} == {sut.contract().provider}
    assert {s["token_source"] for s in samples} == {"usage"}
    for s in samples:
        assert s["output_tokens"] > 0 and s["chunks"] > 0, s
        assert s["ttft_ms"] > 0 and s["itl_ms"] is not None, s  # order: next test
    (group,) = summary["groups"]
    assert group["success_rate"] == 1.0 and group["ok"] == group["requests"] > 0
    assert group["ttft_ms"]["n"] == group["requests"]


@pytest.mark.parametrize("name", SERVER_NAMES)
def test_load_timings_are_ordered(realservers: Lab, name: str) -> None:
    """0 <= TTFB <= TTFT <= E2E <= total and ITL >= 0 in every sample, or a reason in the
    sample's anomalies."""
    samples = _lines(realservers(name).load().only_folder() / "samples.jsonl")
    disordered = [
        (s["ttfb_ms"], s["ttft_ms"], s["e2e_ms"], s["total_ms"], s["itl_ms"])
        for s in samples
        if not (0 <= s["ttfb_ms"] <= s["ttft_ms"] <= s["e2e_ms"] <= s["total_ms"])
        or s["itl_ms"] < 0
        if not s.get("anomalies")
    ]
    assert not disordered, f"{len(disordered)} of {len(samples)}: {disordered[:3]}"
    # and none needed the excuse: one clock per sample, the head's bytes included
    impossible = [s for s in samples if any("impossible timing" in a for a in s["anomalies"])]
    assert not impossible, impossible[:3]


def test_load_reads_the_real_answers(sut: ServerUnderTest) -> None:
    samples = _lines(sut.load().only_folder() / "samples.jsonl")
    excerpts = [s["output_excerpt"] for s in samples if s.get("output_excerpt")]
    opening = {"litellm": "Hello! This is a mock reply", "litserve": "Hello from a tiny LitServe"}
    assert excerpts and all(e.startswith(opening[sut.name]) for e in excerpts)
    # Both models answer the same text every time: the same token count in every sample.
    assert len({s["output_tokens"] for s in samples}) == 1


# ---------------------------------------------------------------------------- run


def _report(sut: ServerUnderTest) -> Path:
    return sut.folder / "run" / "report"


def test_run_checks_loads_and_reports(sut: ServerUnderTest) -> None:
    done = sut.run()
    assert "Traceback" not in done.stderr, done.explain()
    assert str(_report(sut) / "index.html") in done.stdout, done.explain()
    for name in ("index.html", "report.md", "report.json"):
        assert (_report(sut) / name).is_file(), name
    kinds = {}
    for folder in (sut.folder / "run-results").iterdir():
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        kinds[meta["kind"]] = meta
    assert set(kinds) == {"contract", "load"}
    assert {m["data_source"] for m in kinds.values()} == {"live"}
    report = json.loads((_report(sut) / "report.json").read_text(encoding="utf-8"))
    (group,) = report["groups"]
    assert group["requests"] > 0 and group["errors"] == {} and group["success_rate"] == 1.0


def test_run_exits_nonzero_when_the_check_step_fails(sut: ServerUnderTest) -> None:
    assert sut.check().returncode == 1
    assert sut.run().returncode != 0


def test_report_names_the_endpoint_by_host_and_port(sut: ServerUnderTest) -> None:
    sut.run()
    text = (_report(sut) / "report.md").read_text(encoding="utf-8")
    assert f"127.0.0.1:{sut.server.port}" in text
    assert f"127-0-0-1-{sut.server.port}" not in text


def test_report_shows_ttfb_beside_ttft(sut: ServerUnderTest) -> None:
    sut.run()
    assert "| TTFB p50 | TTFB p99 | TTFT p50 |" in (_report(sut) / "report.md").read_text(
        encoding="utf-8"
    )


def test_report_shows_every_finding_by_check_and_no_empty_callout(sut: ServerUnderTest) -> None:
    """Every check with a finding in contract.json has its row in the report's findings, with
    its case count (nothing crowded out by repeated schema findings), and every callout
    says something."""
    sut.run()
    text = (_report(sut) / "report.md").read_text(encoding="utf-8")
    contract = next(
        json.loads((f / "contract.json").read_text(encoding="utf-8"))
        for f in (sut.folder / "run-results").iterdir()
        if (f / "contract.json").is_file()
    )
    rows = [line for line in text.splitlines() if line.startswith("| FAIL |")]
    cases: dict[str, set[str]] = {}
    for result in contract["results"]:
        for check, status in result["checks"].items():
            if status == "fail":
                cases.setdefault(check, set()).add(f"{result['suite']}::{result['case']}")
    assert cases, "each server deserves some failures (docs/real-servers.md)"
    for check, failed in cases.items():
        shown = check.replace("_", "\\_")
        (row,) = [r for r in rows if f"| FAIL | {shown} |" in r]
        assert f"| {len(failed)} |" in row, (check, row)
    for line in text.splitlines():
        if line.startswith("> **Note:**"):
            assert ": " in line.removeprefix("> **Note:** ").split(" ", 1)[-1], line


def test_check_prints_failures_where_they_are_and_the_tally(sut: ServerUnderTest) -> None:
    done = sut.check()
    assert f"127.0.0.1:{sut.server.port}" in done.stdout  # the matrix column
    assert "failures:" in done.stdout and "  FAIL " in done.stdout
    tally = [line for line in done.stdout.splitlines() if " fail: " in line or " fails: " in line]
    assert tally and tally[0].split()[0].isdigit()  # "N cases fail: check n, ..."
    assert "provider's documented contract" in done.stdout  # "N cases conform to their ..."


# ---------------------------------------------------------------------------- secrets


def test_the_key_never_lands_on_disk(litellm: ServerUnderTest) -> None:
    """Whatever chatprobe wrote for LiteLLM (results, profiles, reports, its output) holds no
    trace of the proxy's key (a fresh sk-... per session)."""
    litellm.check()
    litellm.load()
    litellm.run()
    key = litellm.server.key.encode()
    leaks = [p for p in litellm.folder.rglob("*") if p.is_file() and key in p.read_bytes()]
    assert not leaks, leaks
