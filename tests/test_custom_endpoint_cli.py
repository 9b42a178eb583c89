"""``chatprobe check / load / run / report`` against endpoints chatprobe has no profile for.

The "foreign" servers are the emulator in a thread of this process, addressed only by URL,
key variable and model id, the way a user points chatprobe at vLLM, llama.cpp, Ollama or a
gateway. Every chatprobe command runs in a subprocess; each is bounded in time.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig
from tests.cli_support import run_cli

pytestmark = pytest.mark.slow

OPENAI_LIKE = """
# A server that behaves like plain OpenAI: 200, chatcmpl- ids, OpenAI's envelope,
# usage in streams only with stream_options.include_usage, refusal in messages.
name: openai-like
title: OpenAI-like test server
base_url: https://api.openai-like.test/v1
api_key_env: OPENAI_LIKE_KEY
schema_level: openai-strict
conventions:
  success_status: [200]
  id_pattern: '^chatcmpl-[A-Za-z0-9]{29}$'
  error_envelope: openai
  stream_usage: include_usage
models:
  tiny-chat:
    id: tiny-chat-1
    emulator: {ttft_ms: 2, itl_ms: 0.5}
"""
# Checks that have nothing to judge on a well-behaved server answering these suites.
NEVER_APPLY = {
    "id_format",
    "retry_after_429",
    "midstream_error_shape",
    "error_status_matches_code",
    # Judges reasoning streams only; this server's model does not reason.
    "answer_after_reasoning",
    # An openai-strict endpoint's schema problems are strict_response_schema's and
    # strict_error_envelope's alone (reported once, issue 12).
    "provider_response_schema",
    "provider_error_envelope",
}


def _chatprobe(
    tmp_path: Path, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """``chatprobe ARGS`` with this test's results and profile folders."""
    folders = {
        "CHATPROBE_RESULTS": str(tmp_path / "results"),
        "CHATPROBE_PROFILE_DIR": str(tmp_path / "profiles"),
    }
    return run_cli(*args, env={**folders, **env}, timeout=timeout)


def _only_folder(root: Path) -> Path:
    folders = [p for p in root.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture
def openai_like(tmp_path: Path) -> Iterator[tuple[Emulator, Path]]:
    """The emulator serving one OpenAI-like profile file, at http://127.0.0.1:PORT/v1."""
    profile = tmp_path / "openai-like.yaml"
    profile.write_text(textwrap.dedent(OPENAI_LIKE).lstrip(), encoding="utf-8")
    config = EmulatorConfig(
        providers=(str(profile),), output_tokens=(4, 12), rate_limit_rpm=0, seed=3
    )
    with Emulator.in_thread(config) as emulator:
        yield emulator, profile


def _print_matrix(contract: dict[str, Any]) -> None:
    for provider, cells in contract["matrix"].items():
        print(f"\nconformance of {provider} ({contract['data_source']}):")
        for check, cell in cells.items():
            print(f"  {check:28} {cell}")


def test_check_live_against_an_openai_like_server_passes(
    tmp_path: Path, openai_like: tuple[Emulator, Path]
) -> None:
    emulator, _ = openai_like
    url = emulator.base_url()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
    done = _chatprobe(
        tmp_path,
        *("check", "--live", "--base-url", url, "--api-key-env", "OPENAI_LIKE_KEY"),
        *("--model", "tiny-chat-1"),
        OPENAI_LIKE_KEY=DEMO_KEY,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    folder = _only_folder(tmp_path / "results")
    contract = _json(folder / "contract.json")
    _print_matrix(contract)
    name = f"127-0-0-1-{emulator.port}"
    assert list(contract["matrix"]) == [name]
    cells = contract["matrix"][name]
    assert {c for c in cells.values()} == {"pass", "skip"}
    assert {c for c, cell in cells.items() if cell == "skip"} == NEVER_APPLY
    assert contract["warnings"] == {}
    outcomes = {r["outcome"] for r in contract["results"]}
    assert outcomes == {"passed", "skipped"}
    skipped = [r for r in contract["results"] if r["outcome"] == "skipped"]
    assert {r["suite"] for r in skipped} == {"errors", "faults"}
    assert all("real endpoint (--base-url)" in r["message"] for r in skipped)
    passed = [r for r in contract["results"] if r["outcome"] == "passed"]
    assert len(passed) >= 45 and all(r["data_source"] == "live" for r in passed)
    assert {r["suite"] for r in passed} >= {"basic", "errors", "streaming", "tools"}
    assert not any(r["suite"].startswith("derived/") for r in contract["results"])
    meta = _json(folder / "meta.json")
    assert meta["providers"] == [name] and meta["data_source"] == "live"
    copied = (folder / f"profile-{name}.yaml").read_text()
    assert f"base_url: {url}" in copied and DEMO_KEY not in copied
    assert "Conformance (live)" in done.stdout and f"127.0.0.1:{emulator.port}" in done.stdout


def test_the_same_server_as_a_profile_file_is_held_to_its_id_pattern(
    tmp_path: Path, openai_like: tuple[Emulator, Path]
) -> None:
    """`--provider FILE`: the file's own conventions apply (here: OpenAI's id format, which
    the emulator produces for the openai envelope)."""
    emulator, profile = openai_like
    text = profile.read_text().replace("https://api.openai-like.test/v1", emulator.base_url())
    served = tmp_path / "served.yaml"
    served.write_text(text)
    done = _chatprobe(
        tmp_path,
        *("check", "--live", "--provider", str(served), "-k", "hello or stream-basic"),
        OPENAI_LIKE_KEY=DEMO_KEY,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    contract = _json(_only_folder(tmp_path / "results") / "contract.json")
    _print_matrix(contract)
    assert contract["matrix"]["openai-like"]["id_format"] == "pass"
    assert contract["counts"] == {"passed": 3}  # hello, hello-stream, stream-basic
    assert {r["suite"] for r in contract["results"]} == {"basic", "streaming"}


def test_a_misbehaving_endpoint_fails_by_check_name(tmp_path: Path) -> None:
    """AI/ML API's dialect (201, no message.refusal) checked as a plain OpenAI endpoint."""
    config = EmulatorConfig(providers=("aimlapi",), zero_latency=True, output_tokens=(4, 8))
    with Emulator.in_thread(config) as emulator:
        done = _chatprobe(
            tmp_path,
            *("check", "--live", "--base-url", emulator.base_url(), "--api-key-env", "K"),
            *("--model", "google/gemini-2.0-flash-exp", "-k", "basic or streaming or errors"),
            K=DEMO_KEY,
        )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    contract = _json(_only_folder(tmp_path / "results") / "contract.json")
    _print_matrix(contract)
    cells = next(iter(contract["matrix"].values()))
    for check in ("status_openai", "status_documented", "expected_status"):
        assert cells[check] == "fail"  # 201
    assert cells["strict_response_schema"] == "fail"  # no message.refusal
    assert cells["strict_error_envelope"] == "fail"  # AI/ML API's flat envelope
    assert cells["sse_framing"] == "pass" and cells["stream_done_last"] == "pass"
    results = contract["results"]
    assert {r["outcome"] for r in results} <= {"passed", "failed", "skipped"}  # no crash
    hello = next(r for r in results if r["case"] == "hello")
    assert "status_openai at /status" in hello["message"]
    assert "refusal" in hello["message"]
    assert not any("crashed" in r["message"] for r in results)


def test_load_against_a_foreign_server_then_report(tmp_path: Path) -> None:
    config = EmulatorConfig(providers=("openrouter",), ttft_ms=3, itl_ms=0.5, output_tokens=(4, 12))
    with Emulator.in_thread(config) as emulator:
        url = emulator.url() + "/openrouter/api/v1"
        done = _chatprobe(
            tmp_path,
            *("load", "--quiet", "--base-url", url, "--api-key-env", "SOMEVAR"),
            *("--model", "google/gemini-2.0-flash-001", "--users", "2", "--duration", "3s"),
            SOMEVAR=DEMO_KEY,
        )
        served = emulator.stats()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    folder = _only_folder(tmp_path / "results")
    name = f"127-0-0-1-{emulator.port}"
    summary = _json(folder / "summary.json")
    assert summary["data_source"] == "live"
    [group] = summary["groups"]
    assert (group["provider"], group["model"]) == (name, "google/gemini-2.0-flash-001")
    assert group["requests"] > 0 and group["errors"] == {}
    samples = (folder / "samples.jsonl").read_text().splitlines()
    assert len(samples) == summary["samples"] > 0
    assert served  # the emulator (our "foreign" server) answered them
    plan = _json(folder / "plan.json")
    [target] = plan["targets"]
    assert target["url"] == url + "/chat/completions"
    assert (target["key_env"], target["demo_key"]) == ("SOMEVAR", None)
    assert DEMO_KEY not in (folder / "plan.json").read_text()
    assert (folder / f"profile-{name}.yaml").is_file()
    assert not (folder / "emulator_truth.jsonl").exists()  # no emulator of chatprobe's own

    report = _chatprobe(tmp_path, "report", str(folder), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    shown = f"127.0.0.1:{emulator.port}"  # people read host:port; files and ids keep the name
    assert shown in (tmp_path / "report" / "report.md").read_text()
    assert name not in (tmp_path / "report" / "report.md").read_text()
    report_json = _json(tmp_path / "report" / "report.json")
    assert report_json["display_names"] == {name: shown} and summary["display_names"] == {
        name: shown
    }


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--emulator",), "always loaded live"),
        (("--emulator-url", "http://127.0.0.1:9"), "always loaded live"),
        (("--provider", "aimlapi"), "not both"),
    ],
)
def test_load_refuses_to_emulate_a_custom_endpoint(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    done = _chatprobe(
        tmp_path,
        *("load", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "K", "--model", "m"),
        *args,
        K="x",
    )
    assert done.returncode == 2 and words in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_an_unset_key_variable_fails_before_anything_starts(tmp_path: Path) -> None:
    for command in ("check", "load", "run"):
        done = _chatprobe(
            tmp_path,
            *(command, "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "NOT_SET_KEY"),
            *("--model", "m"),
        )
        assert done.returncode == 2, (command, done.stderr)
        assert "environment variable NOT_SET_KEY is not set" in done.stderr
        assert "set it to any value" in done.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_load_a_profile_file_provider(tmp_path: Path) -> None:
    """`--provider FILE` without its key: the run's own emulator serves the file's profile."""
    profile = tmp_path / "openai-like.yaml"
    profile.write_text(textwrap.dedent(OPENAI_LIKE).lstrip(), encoding="utf-8")
    done = _chatprobe(
        tmp_path,
        *("load", "--quiet", "--provider", str(profile), "--users", "2", "--duration", "3s"),
        "--no-pin",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    folder = _only_folder(tmp_path / "results")
    summary = _json(folder / "summary.json")
    assert summary["data_source"] == "emulated"
    [group] = summary["groups"]
    assert (group["provider"], group["model"]) == ("openai-like", "tiny-chat")
    assert group["requests"] > 0 and group["errors"] == {}
    assert (folder / "profile-openai-like.yaml").is_file()


def test_run_checks_loads_and_reports_a_custom_endpoint(
    tmp_path: Path, openai_like: tuple[Emulator, Path]
) -> None:
    emulator, _ = openai_like
    done = _chatprobe(
        tmp_path,
        *("run", "--base-url", emulator.base_url(), "--api-key-env", "OPENAI_LIKE_KEY"),
        *("--model", "tiny-chat-1", "--scenario", "smoke", "--duration", "3"),
        *("--out", str(tmp_path / "report")),
        OPENAI_LIKE_KEY=DEMO_KEY,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip() == str(tmp_path / "report" / "index.html")
    name = f"127-0-0-1-{emulator.port}"
    metas = [_json(p / "meta.json") for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert sorted(m["kind"] for m in metas) == ["contract", "load"]
    assert {m["data_source"] for m in metas} == {"live"}
    assert all(m["providers"] == [name] for m in metas)
    assert len({m["group"] for m in metas}) == 1
    report = (tmp_path / "report" / "report.md").read_text()
    shown = f"127.0.0.1:{emulator.port}"
    assert shown in report and name not in report
    assert f"(live: {shown}; emulated: none)" in done.stderr.replace("\n", "")
