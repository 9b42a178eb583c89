"""Acceptance: real load runs against the emulator, locust always in a subprocess.

Each run is bounded by its scenario (seconds) and by a subprocess timeout. The ground truth
the emulator writes (``emulator_truth.jsonl`` in the results folder) is the reference for
TTFT accuracy, request counts and error classes, matched per request by
``X-Chatprobe-Request-Id``.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from chatprobe.paths import project_root
from chatprobe.results import load_results
from tests.load_support import wait_for_requests

pytestmark = pytest.mark.slow

ROOT = project_root()


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def _load(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "load", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def _read(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    summary = orjson.loads((folder / "summary.json").read_bytes())
    samples = [orjson.loads(line) for line in (folder / "samples.jsonl").read_bytes().splitlines()]
    truth = {}
    for line in (folder / "emulator_truth.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        truth[record["request_id"]] = record
    return summary, samples, truth


def _pct(values: list[float], q: float) -> float:
    from chatprobe.stats import percentile

    return percentile(sorted(values), q)


def test_ttft_matches_the_emulator_at_20_streams(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        """
targets: [{provider: openrouter, model: gemini-2.0-flash-001}]
max_tokens: 32
shape: {users: 20}
duration: 10s
warmup: 1s
emulator: {ttft_ms: 50, itl_ms: 5, sigma: 0.05, output_tokens: 32}
""",
    )
    done = _load(str(scenario), "--out", str(tmp_path), "--run-id", "fidelity", "--emulator")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "fidelity"
    summary, samples, truth = _read(folder)
    meta = orjson.loads((folder / "meta.json").read_bytes())

    # every request the emulator completed is one sample, and nothing else
    assert summary["samples"] == len(samples) == meta["emulator_stats"]["completed"]
    assert {s["server_request_id"] for s in samples} == set(truth)
    assert summary["errors"] == {} and summary["aborted"] == 0

    (group,) = summary["groups"]
    ok = [s for s in samples if not s["warmup"]]

    def true_ttft_ms(sample: dict[str, Any]) -> float:
        record = truth[sample["server_request_id"]]
        return (record["t_first_content_ns"] - record["t_received_ns"]) / 1e6

    true_ttft = [true_ttft_ms(s) for s in ok]
    errors = [s["ttft_ms"] - true_ttft_ms(s) for s in ok]
    measured_p50 = group["ttft_ms"]["p50"]
    truth_p50 = _pct(true_ttft, 50)
    print(
        f"\nTTFT at 20 streams, n={len(ok)}: measured p50 {measured_p50:.3f} ms, "
        f"emulator truth p50 {truth_p50:.3f} ms, difference {measured_p50 - truth_p50:+.3f} ms; "
        f"per-request error p50 {_pct(errors, 50):+.3f} ms p99 {_pct(errors, 99):+.3f} ms; "
        f"ITL p50 {group['itl_ms']['p50']:.3f} ms; client CPU "
        f"{summary['client_cpu']['cpu_ms_per_request']:.3f} ms/request"
    )
    assert abs(measured_p50 - truth_p50) <= 2.0
    assert 45 <= truth_p50 <= 56  # the emulator did what it was told (50 ms, sigma 0.05)
    assert group["itl_ms"]["p50"] == pytest.approx(5.0, abs=1.0)
    assert group["token_source"] == {"usage": len(ok)}
    assert summary["groups"][0]["output_tokens"]["p50"] == 32
    # each sample says what was asked: the prompt's length as sent and the output cap
    plan = orjson.loads((folder / "plan.json").read_bytes())
    assert {s["max_tokens"] for s in samples} == {32}
    assert {s["input_tokens"] for s in samples} <= set(plan["prompt_tokens"])
    assert all(s["input_tokens"] > 0 for s in samples)
    # locust's own CSV is written beside the exact samples: one event per real request, so
    # its count is the request count (locust writes it before the last requests in hand,
    # one per user, end); the timings are a table of their own, complete
    with open(folder / "locust_stats.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {row["Type"] for row in rows} == {"POST", ""}  # "" is the Aggregated row
    (aggregated,) = [row for row in rows if row["Name"] == "Aggregated"]
    assert len(samples) - 20 <= int(aggregated["Request Count"]) <= len(samples)
    with open(folder / "locust_timings.csv", newline="") as fh:
        timings = {row["Type"]: int(row["Count"]) for row in csv.DictReader(fh)}
    assert timings == {"TTFT": len(samples), "ITL": len(samples), "E2E": len(samples)}


def test_two_processes_merge_every_sample(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        """
targets:
  - {provider: openrouter, model: gemini-2.0-flash-001}
  - {provider: aimlapi, model: gemini-2.0-flash-exp}
max_tokens: 16
shape: {users: 8}
duration: 6s
emulator: {ttft_ms: 20, itl_ms: 2, sigma: 0.1, output_tokens: 16}
""",
    )
    done = _load(str(scenario), "--out", str(tmp_path), "--run-id", "multi", "--processes", "2")
    assert done.returncode == 0, done.stderr
    summary, samples, truth = _read(tmp_path / "multi")
    meta = orjson.loads((tmp_path / "multi" / "meta.json").read_bytes())
    assert summary["samples"] == len(samples) == meta["emulator_stats"]["completed"] > 50
    assert {s["server_request_id"] for s in samples} == set(truth)
    assert {s["worker"] for s in samples} == {"worker-0", "worker-1"}
    workers = summary["workers"]
    assert workers["expected"] == 2 and workers["reported"] == 2
    assert workers["lost"] == [] and workers["incomplete"] == []
    assert {(g["provider"], g["requests"] > 0) for g in summary["groups"]} == {
        ("openrouter", True),
        ("aimlapi", True),
    }


def test_a_killed_worker_is_reported_and_the_run_finishes(tmp_path: Path) -> None:
    import psutil

    scenario = _scenario(
        tmp_path,
        """
targets: [{provider: openrouter, model: gemini-2.0-flash-001}]
max_tokens: 16
shape: {users: 6}
duration: 10s
emulator: {ttft_ms: 20, itl_ms: 2, output_tokens: 16}
""",
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    args = ["--quiet", str(scenario), "--out", str(tmp_path), "--run-id", "lost"]
    child = subprocess.Popen(
        [sys.executable, "-m", "chatprobe.cli", "load", *args, "--processes", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    folder = tmp_path / "lost"
    try:
        requests = wait_for_requests(folder, 50)
        assert requests >= 50, "the run did not get going"
        family = psutil.Process(child.pid).children(recursive=True)
        workers = [p for p in family if "locust" in " ".join(p.cmdline()) and p.ppid() != child.pid]
        assert len(workers) == 2, [p.cmdline() for p in family]
        os.kill(workers[-1].pid, signal.SIGKILL)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, stderr
    summary, samples, truth = _read(folder)
    assert summary["end_reason"] == "completed" and summary["interrupted"] is False
    workers_info = summary["workers"]
    assert workers_info["expected"] == 2 and workers_info["reported"] == 1
    (lost,) = workers_info["lost"]
    assert lost["worker"].startswith("worker-")
    survivor = "worker-1" if lost["worker"] == "worker-0" else "worker-0"
    assert summary["samples"] == len(samples) <= len(truth)
    assert sum(s["worker"] == lost["worker"] for s in samples) == lost["samples_received"]
    # the surviving worker ran to the end
    assert max(s["t_offset_s"] for s in samples if s["worker"] == survivor) > 8


def test_injected_faults_are_counted_exactly(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        """
targets: [{provider: openrouter, model: gemini-2.0-flash-001}]
max_tokens: 16
shape: {users: 10}
duration: 6s
emulator:
  ttft_ms: 10
  itl_ms: 1
  output_tokens: 16
  faults: {rate_limit_429: 0.10, midstream_error: 0.05, missing_done: 0.15}
""",
    )
    done = _load(str(scenario), "--out", str(tmp_path), "--run-id", "faults", "--format", "github")
    # About 15% of the requests fail: above the default --max-error-rate of 5%.
    assert done.returncode == 1, done.stderr
    assert "error rate" in done.stdout and "(--max-error-rate)" in done.stdout
    assert "errors by class" in done.stdout and "rate_limited x" in done.stdout
    # --format github: the text, then an annotation naming why the run failed
    (note,) = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert (
        note.startswith("::error title=chatprobe load::error rate ")
        and "(--max-error-rate)" in note
    )
    summary, samples, truth = _read(tmp_path / "faults")
    assert summary["samples"] == len(samples) == len(truth)
    expected_class = {"rate_limit_429": "rate_limited", "midstream_error": "midstream_error"}
    expected: dict[str, int] = {}
    no_done = 0
    for sample in samples:
        faults = [f.partition("=")[0] for f in truth[sample["server_request_id"]]["faults"]]
        if faults == ["missing_done"]:  # complete but for [DONE]: measured, noted
            assert sample["error_class"] is None and sample["ttft_ms"] is not None, sample
            assert sample["anomalies"][0].startswith("missing_done"), sample
            no_done += not sample["warmup"]
            continue
        want = expected_class[faults[0]] if faults else None
        assert sample["error_class"] == want, (sample, faults)
        if want:
            expected[want] = expected.get(want, 0) + 1
            if want == "rate_limited":
                assert sample["status"] == 429
    assert summary["errors"] == dict(sorted(expected.items()))
    assert set(expected) == {"rate_limited", "midstream_error"}  # both kinds occurred
    (group,) = summary["groups"]
    ok = len(samples) - sum(expected.values())
    assert group["requests"] == len(samples) and group["ok"] == ok
    # A stream without [DONE] keeps its TTFT, ITL and tokens in the percentiles.
    assert no_done > 0 and group["anomalies"] == {"missing_done": no_done}
    assert group["ttft_ms"]["n"] == group["itl_ms"]["n"] == group["output_tokens"]["n"] == ok
    # Availability leaves the 429s out, as OpenRouter's uptime does.
    rate_limited = expected["rate_limited"]
    assert group["rate_limited"]["count"] == rate_limited
    assert group["availability"] == pytest.approx(ok / (len(samples) - rate_limited))


def test_open_loop_keeps_its_schedule(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        """
targets:
  - {provider: openrouter, model: gemini-2.0-flash-001}
  - {provider: aimlapi, model: gemini-2.0-flash-exp}
max_tokens: 16
shape: {open_loop: {rate: 20, arrival: constant, max_concurrency: 50}}
requests: 40
emulator: {ttft_ms: 150, itl_ms: 5, output_tokens: 16}
""",
    )
    done = _load(str(scenario), "--out", str(tmp_path), "--run-id", "open", "--format", "json")
    assert done.returncode == 0, done.stderr
    printed = orjson.loads(done.stdout)  # --format json: stdout is one JSON document
    assert printed["command"] == "load" and printed["exit_status"] == 0
    assert printed["results_dir"] == str(tmp_path / "open") and printed["failures"] == []
    summary, samples, truth = _read(tmp_path / "open")
    assert printed["summary"] == summary
    assert summary["samples"] == len(samples) == len(truth) == 40
    assert summary["end_reason"] == "requests reached"
    # arrivals every 50 ms whatever the responses (each takes about 230 ms) are doing
    offsets = sorted(s["t_offset_s"] for s in samples)
    assert offsets == pytest.approx([i * 0.05 for i in range(40)], abs=1e-6)
    assert max(s["users"] for s in samples) >= 3  # several requests in flight at once
    assert summary["lag_ms"]["n"] == 40 and summary["lag_ms"]["min"] >= 0
    assert summary["requested_rate"] == 20
    assert summary["achieved_rate"] == pytest.approx(20, rel=0.2)
    assert summary["concurrency_cap"] == {"limit": 50, "hits": 0}
    assert {g["provider"]: g["requests"] for g in summary["groups"]} == {
        "openrouter": 20,
        "aimlapi": 20,
    }


def test_bare_locust_command_works(tmp_path: Path) -> None:
    from chatprobe.emulator import Emulator, EmulatorConfig

    config = EmulatorConfig(
        providers=("aimlapi",), ttft_ms=10, itl_ms=1, output_tokens=(8, 8), seed=3
    )
    with Emulator.in_subprocess(config) as emu:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env["CHATPROBE_OUT"] = str(tmp_path / "bare")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                "loadtests/locustfile.py",
                "--headless",
                "-u",
                "5",
                "-t",
                "5s",
                "--host",
                emu.base_url("aimlapi"),
                "--csv",
                str(tmp_path / "bare" / "locust"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=ROOT,
        )
        stats = emu.stats()
    assert done.returncode == 0, done.stderr[-2000:]
    folder = tmp_path / "bare"
    summary = orjson.loads((folder / "summary.json").read_bytes())
    assert summary["groups"][0]["provider"] == "aimlapi"
    assert summary["groups"][0]["model"] == "gemini-2.0-flash-exp"
    assert summary["errors"] == {}
    # locust's -t kills users mid-request: each killed request is counted as aborted, and it
    # may or may not have been written completely by the emulator before the kill.
    complete = stats["by_outcome"].get("complete", 0)
    assert complete > 20
    assert summary["samples"] <= complete <= summary["samples"] + summary["aborted"]
    assert summary["aborted"] <= 5  # at most one request in flight per user
    with open(folder / "locust_stats.csv", newline="") as fh:
        rows = {(row["Type"], row["Name"]) for row in csv.DictReader(fh)}
    assert ("POST", "aimlapi/gemini-2.0-flash-exp") in rows
    assert not {kind for kind, _ in rows} & {"TTFT", "ITL", "E2E"}
    with open(folder / "locust_timings.csv", newline="") as fh:
        rows = {(row["Type"], row["Name"]) for row in csv.DictReader(fh)}
    for kind in ("TTFT", "ITL", "E2E"):
        assert (kind, "aimlapi/gemini-2.0-flash-exp") in rows
    assert load_results(folder).samples is not None


def test_sigint_leaves_a_loadable_folder(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        """
targets: [{provider: apilaplas, model: gemini-2.0-flash-exp}]
max_tokens: 16
shape: {users: 4}
duration: 60s
emulator: {ttft_ms: 20, itl_ms: 2, output_tokens: 16}
""",
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatprobe.cli",
            "load",
            "--quiet",
            str(scenario),
            "--out",
            str(tmp_path),
            "--run-id",
            "stopped",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    folder = tmp_path / "stopped"
    try:
        requests = wait_for_requests(folder, 30)
        assert requests >= 30, "the run did not get going"
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=40)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, stderr
    summary = orjson.loads((folder / "summary.json").read_bytes())
    assert summary["interrupted"] is True and summary["end_reason"] == "interrupted"
    assert summary["duration_s"] < 60  # stopped before the scenario's 60 s
    results = load_results(folder)
    assert results.meta["interrupted"] is True and results.meta["finished_at"]
    assert results.samples is not None
    assert len(results.samples) == summary["samples"] >= 30
    assert not list(folder.glob("*.tmp"))


def test_invalid_scenario_names_file_line_and_field(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        "targets: [{provider: openrouter, model: gemini-2.0-flash-001}]\nshape:\n  users: -3\n",
    )
    done = _load(str(scenario), timeout=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{scenario}:3: shape.users:" in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--provider", "nosuch"], "unknown provider 'nosuch'"),
        (["--provider", "aimlapi", "--model", "gpt-9"], "unknown model for provider 'aimlapi'"),
        (["--no-emulator", "--provider", "aimlapi"], "AIMLAPI_API_KEY is not set"),
        (["--users", "2", "--rate", "3"], "--users and --rate exclude each other"),
        (["--duration", "soon"], "soon"),
        (["no-such-scenario"], "unknown scenario 'no-such-scenario'"),
    ],
)
def test_bad_command_lines_fail_in_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    done = _load(*args, "--out", str(tmp_path), timeout=30)
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing started, nothing written
