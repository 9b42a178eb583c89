"""Reports for the endpoint you test (issue 12 item 7): a custom endpoint's report names it
as people read it, shows every kind of finding (grouped by check, counted, one example
each), TTFB beside TTFT, no empty callout, and no model-family sentence above unrelated
models. Folders are written by the real builders (contract.json by the plugin's
``build_contract``; load folders by ``tests.results_support``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatprobe.endpoints import materialise_endpoint
from chatprobe.load.scenario import Stage
from chatprobe.profiles import load_profile
from chatprobe.pytest_plugin.results import build_contract, display_names_of
from chatprobe.report import build_report_files
from chatprobe.results import CONTRACT, SUMMARY, new_run_dir, write_json_atomic, write_meta
from chatprobe.results import write_profiles as write_profiles_json
from tests.results_support import plan_for, sample_of, target, write_load_folder
from tests.unit.test_figures_agree import answer

URL = "http://127.0.0.1:4000/v1"
MODELS = ("my-model", "other-model")  # unrelated models: no family sentence


@pytest.fixture(scope="module")
def endpoint() -> str:
    return str(materialise_endpoint(URL, "LOCAL_LLM_KEY", list(MODELS), require_key=False))


def _entry(
    case: str, outcome: str, checks: dict[str, str], findings: list[tuple[str, str]], provider: str
) -> dict[str, Any]:
    return {
        "case": case,
        "suite": "basic",
        "provider": provider,
        "model": MODELS[0],
        "outcome": outcome,
        "duration_s": 0.01,
        "findings": [
            {"check": c, "severity": "error", "message": m, "path": ""} for c, m in findings
        ],
        "deviations": [],
        "id": f"{case}[{provider}-{MODELS[0]}]",
        "message": "",
        "checks": checks,
        "source": f"suites/basic.yaml:{10 + len(case)}",
        "output_excerpt": "Hello <b>there</b>",
    }


@pytest.fixture(scope="module")
def report_md(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("results")
    profile = load_profile(endpoint)
    ident = profile.name
    # A contract run in which every case repeats the same schema warnings first: the
    # stream-usage, tool-call, stop and stream-id findings must still be shown.
    refusal = "/choices/0/message/refusal: missing"
    schema = [("strict_response_schema", f"{refusal} ({k})") for k in range(6)]
    later = {
        "stream-usage": ("stream_include_usage", "no usage chunk after the last choice"),
        "tool-call": ("tool_call_arguments_json", "arguments are not JSON: '{\"a\": '"),
        "stop": ("stop_honoured", "the text contains the stop sequence 'END'"),
        "stream-id": ("stream_same_id_created", "chunk 3 has id 'b', the first 'a'"),
    }
    entries = [
        _entry(
            case,
            "failed",
            {"strict_response_schema": "fail", check: "fail"},
            [*schema, (check, message)],
            ident,
        )
        for case, (check, message) in later.items()
    ]
    entries.append(_entry("hello", "passed", {"status_openai": "pass"}, [], ident))
    contract_dir = new_run_dir(root)
    write_meta(
        contract_dir,
        kind="contract",
        data_source="live",
        providers=[ident],
        command=["chatprobe", "check", "--live", "--base-url", URL],
    )
    write_profiles_json(contract_dir, [profile])
    shown = display_names_of(entries, {ident: endpoint})
    write_json_atomic(contract_dir / CONTRACT, build_contract(entries, shown))

    def samples() -> list[dict[str, Any]]:
        rows = []
        for i in range(40):
            key = (ident, MODELS[i % 2])
            record = answer(key, ttft_ms=40.0 + i % 9, gap_ms=3.0, tokens=12, prompt_tokens=20)
            rows.append(sample_of(record, stage="2 users", users=2, t_offset_s=i * 0.2))
        return rows

    write_load_folder(
        root,
        lambda folder: plan_for(
            folder,
            [target(ident, MODELS[0]), target(ident, MODELS[1])],
            [Stage("2 users", 8.0, 2, 0.0, 0.0)],
        ),
        [profile],
        [samples()],
        end_offset_s=8.0,
    )
    index = build_report_files([root], out=root.parent / "report")
    return (index.parent / "report.md").read_text(encoding="utf-8")


def test_the_endpoint_is_named_by_host_and_port(report_md: str) -> None:
    assert "127.0.0.1:4000 · my-model" in report_md
    assert "| 127.0.0.1:4000 |" in report_md  # table cells too
    assert "127-0-0-1-4000" not in report_md


def test_every_kind_of_finding_shows_with_its_counts(report_md: str) -> None:
    for check in (
        "stream\\_include\\_usage",
        "tool\\_call\\_arguments\\_json",
        "stop\\_honoured",
        "stream\\_same\\_id\\_created",
    ):
        row = next(line for line in report_md.splitlines() if f"| FAIL | {check} |" in line)
        assert "| 1 | 1 |" in row  # one case, one finding
    schema = next(line for line in report_md.splitlines() if "| FAIL | strict\\_response" in line)
    assert "| 4 | 24 |" in schema  # four cases, every one of their 24 findings counted
    assert "4 cases fail: strict\\_response\\_schema 4, " in report_md
    assert "1 case conforms to its provider's documented contract." in report_md


def test_no_empty_callout_no_family_sentence_and_ttfb_beside_ttft(report_md: str) -> None:
    notes = [line for line in report_md.splitlines() if line.startswith("> **Note:**")]
    assert all(len(line) > len("> **Note:** 20260101-000000-abcd: xx") for line in notes), notes
    assert "median TTFT ratio" not in report_md and "Gemini" not in report_md
    assert "| TTFB p50 | TTFB p99 | TTFT p50 |" in report_md


def test_summary_and_contract_carry_display_names(endpoint: str, tmp_path: Path) -> None:
    entries = [_entry("hello", "passed", {"status_openai": "pass"}, [], "127-0-0-1-4000")]
    contract = build_contract(entries, display_names_of(entries, {"127-0-0-1-4000": endpoint}))
    assert contract["display_names"] == {"127-0-0-1-4000": "127.0.0.1:4000"}
    profile = load_profile(endpoint)
    folder = write_load_folder(
        tmp_path,
        lambda f: plan_for(f, [target(profile.name, MODELS[0])], [Stage("1", 2.0, 1, 0.0, 0.0)]),
        [profile],
        [
            [
                sample_of(
                    answer(
                        (profile.name, MODELS[0]), ttft_ms=5, gap_ms=1, tokens=3, prompt_tokens=4
                    )
                )
            ]
        ],
    )
    summary = json.loads((folder / SUMMARY).read_text())
    assert summary["display_names"] == {"127-0-0-1-4000": "127.0.0.1:4000"}
    assert summary["groups"][0]["provider"] == "127-0-0-1-4000"  # ids stay the keys
