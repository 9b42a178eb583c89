"""Interruptions: SIGINT and SIGTERM during ``chatprobe load`` and ``chatprobe run``, and a
locust worker killed in the middle of a distributed run (whose listening sockets, the
emulator's and locust's master's, must all be on loopback).

After a signal the results folder must be complete and loadable (summary written by rename,
no ``.tmp`` left, every line of ``samples.jsonl`` whole), hold the samples so far, equal in
number to the requests the emulator received (nothing lost, nothing aborted), and
``chatprobe report`` must build from it. A killed worker is listed under ``workers.lost`` and
the master finishes the run on its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from chatprobe.results import load_results
from tests.load_support import requests_so_far, wait_for_requests
from tests.reliability_support import (
    ROOT,
    clean_env,
    cli_command,
    listening,
    process_tree,
    read_run,
    run_cli,
)

pytestmark = pytest.mark.slow

SCENARIO = """
targets: [{provider: apilaplas, model: gemini-2.0-flash-exp}]
max_tokens: 16
shape: {users: 4}
duration: 60s
emulator: {ttft_ms: 20, itl_ms: 2, output_tokens: 16}
"""
SIGNALS = [signal.SIGINT, signal.SIGTERM]
MIN_REQUESTS = 20


def _signal_when_busy(
    child: subprocess.Popen[str], status: tuple[Path, str], sig: int, *, wait_s: float = 60
) -> tuple[str, str]:
    """Send ``sig`` once the run has made MIN_REQUESTS requests; return (stdout, stderr)."""
    base, pattern = status
    try:
        count = wait_for_requests(
            base, MIN_REQUESTS, pattern=pattern, timeout_s=wait_s, child=child
        )
        assert count >= MIN_REQUESTS, "the run did not get going"
        child.send_signal(sig)
        return child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _assert_complete(folder: Path) -> None:
    """A loadable folder with every sample of every request the emulator received."""
    summary, samples, meta = read_run(folder)
    assert summary["interrupted"] is True
    assert meta["interrupted"] is True and meta["finished_at"]
    assert not list(folder.glob("*.tmp"))
    assert (folder / "samples.jsonl").read_bytes().endswith(b"\n")  # no half line
    results = load_results(folder)
    assert results.skipped_lines == 0 and not results.truncated_tail
    assert results.samples is not None and len(results.samples) == summary["samples"]
    received = meta["emulator_stats"]["received"]
    assert len(samples) == summary["samples"] == received >= MIN_REQUESTS
    assert summary["aborted"] == 0


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_during_load_keeps_a_complete_folder(tmp_path: Path, sig: int) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(SCENARIO)
    child = subprocess.Popen(
        cli_command("load", "--quiet", str(scenario), "--out", str(tmp_path), "--run-id", "r"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )
    _, stderr = _signal_when_busy(child, (tmp_path, "r/status.json"), sig)
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr
    folder = tmp_path / "r"
    _assert_complete(folder)
    done = run_cli("report", str(folder), "--out", str(tmp_path / "report"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report" / "index.html").is_file()


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_during_run_still_builds_the_report(tmp_path: Path, sig: int) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(SCENARIO)
    results = tmp_path / "results"
    report = tmp_path / "report"
    child = subprocess.Popen(
        cli_command(
            "run",
            "--provider",
            "apilaplas",
            "--scenario",
            str(scenario),
            "--duration",
            "60",
            "--results",
            str(results),
            "--out",
            str(report),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )
    stdout, stderr = _signal_when_busy(child, (results, "*/status.json"), sig)
    assert child.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stdout.strip().splitlines()[-1] == str(report / "index.html")
    (load_folder,) = [p.parent for p in results.glob("*/status.json")]
    _assert_complete(load_folder)
    kinds = sorted(load_results(p).kind for p in results.iterdir() if (p / "meta.json").exists())
    assert kinds == ["contract", "load"]
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "interrupted" in page.lower()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _locust_workers(load_pid: int) -> list[int]:
    """The forked locust workers: grandchildren of ``chatprobe load`` under the locust master
    (the emulator is its other child, with no children of its own)."""
    return [w for child in _children(load_pid) for w in _children(child)]


def test_killed_worker_is_reported_and_the_master_finishes(tmp_path: Path) -> None:
    scenario = tmp_path / "short.yaml"
    scenario.write_text(SCENARIO.replace("duration: 60s", "duration: 8s"))
    child = subprocess.Popen(
        cli_command(
            "load", "--quiet", str(scenario), "--out", str(tmp_path), "--run-id", "w",
            "--processes", "2",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )  # fmt: skip
    sockets: set[tuple[str, int]] = set()
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline:
            workers = _locust_workers(child.pid)
            sockets |= listening(process_tree(child.pid))
            if len(workers) == 2 and requests_so_far(tmp_path, "w/status.json") >= 10:
                break
            time.sleep(0.2)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = child.communicate(timeout=90)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    # the emulator and locust's master (which would bind every interface) are on loopback
    assert len({port for _, port in sockets}) >= 2, sockets
    assert {host for host, _ in sockets} <= {"127.0.0.1", "::1"}, sockets
    folder = tmp_path / "w"
    summary, samples, meta = read_run(folder)
    workers_info = summary["workers"]
    assert workers_info["expected"] == 2 and workers_info["reported"] == 1
    assert workers_info["seen"] == 2, workers_info  # no worker of another run joined
    (lost,) = workers_info["lost"]
    assert lost["samples_received"] >= 1
    received = meta["emulator_stats"]["received"]
    assert 0 < len(samples) == summary["samples"] <= received
    survivors = {s["worker"] for s in samples}
    assert survivors == {"worker-0", "worker-1"}  # the dead one's shipped samples are kept
    assert load_results(folder).samples is not None
    print(
        f"\nkilled worker: {lost['worker']} shipped {lost['samples_received']} samples; "
        f"{received - len(samples)} of {received} requests had no sample (in flight or "
        "unshipped when it died)"
    )
