"""The benchmark runner works end to end (``python -m benchmarks --smoke``).

One smallest run of every benchmark in a subprocess: pinned client subprocesses against a
pinned emulator, ground truth joined, the report command measured, tables printed, results
JSON and Markdown written. Figures from so short a run mean nothing, so nothing here
asserts a speed: only that every benchmark produced its figures and that they hang
together (streams counted, truth joined, goals judged).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatprobe.paths import project_root

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="the benchmarks pin client and emulator to 2 CPUs"
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out-dir", str(out)],
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "smoke.json").read_text()), done.stdout, out


def _section(doc: dict, key: str) -> dict:
    return next(s for s in doc["sections"] if s["key"] == key)


def test_every_benchmark_ran_and_results_were_written(smoke: tuple[dict, str, Path]) -> None:
    doc, stdout, out = smoke
    assert doc["budget"] == "smoke" and doc["git"]["commit"]
    assert doc["machine"]["cpus"] >= 2
    assert [s["key"] for s in doc["sections"]] == ["B1", "B2", "B3", "B4", "B5"]
    for section in doc["sections"]:
        assert "failed" not in section["title"], section["rows"]
    assert "Goals" in stdout and "B1:" in stdout
    markdown = (out / "smoke.md").read_text()
    assert "| goal | target | measured | status | why |" in markdown


def test_b1_counts_streams_and_cpu_for_each_client(smoke: tuple[dict, str, Path]) -> None:
    figures = _section(smoke[0], "B1")["raw"]["figures"]
    for label in ("chatprobe", "locust-httpuser"):
        f = figures[label]
        assert f["completed"] > 0 and f["errors"] == 0, (label, f)
        assert f["cpu_ms_per_stream"] > 0 and f["emulator_cpu_pct"] is not None
    assert figures["locust-httpuser"]["ratio_streams"] == 1.0
    assert figures["chatprobe"]["ratio_streams"] > 0


def test_b2_joins_client_samples_with_emulator_truth(smoke: tuple[dict, str, Path]) -> None:
    f = _section(smoke[0], "B2")["raw"]["figures"]["chatprobe@4"]
    assert f["n"] > 0 and f["errors"] == 0
    # Each joined stream has a TTFT error; the emulator's truth is never after the client.
    assert f["ttft_err_ms"]["n"] == f["n"] and f["recv_ms"]["min"] >= -0.5
    # the `chatprobe load --processes auto` row: the command chose, ran and was joined
    auto = _section(smoke[0], "B2")["raw"]["figures"]["chatprobe-auto@4"]
    assert auto["n"] > 0 and auto["errors"] == 0 and auto["processes"] >= 1
    assert auto["calibration_ttft_err_p99"] is not None and auto["bound_covers"] is not None


def test_b3_and_b4_report_their_figures(smoke: tuple[dict, str, Path]) -> None:
    b3 = _section(smoke[0], "B3")["raw"]["figures"]["16"]
    assert b3["streams_per_s"] > 0 and b3["streams_per_emulator_core_s"] > 0
    b4 = _section(smoke[0], "B4")["raw"]["report"]
    assert b4["exit"] == 0 and b4["samples"] == 2000 and b4["max_rss_mib"] > 0


def test_b5_replays_what_it_recorded(smoke: tuple[dict, str, Path]) -> None:
    figures = _section(smoke[0], "B5")["raw"]["figures"]
    for speed in ("1x", "2x"):
        f = figures[speed]
        assert f["errors"] == 0 and f["ttft_diff_ms"]["n"] == f["streams"] == 2, (speed, f)
        assert f["event_diff_ms"]["n"] >= 2 * 16  # every content event compared
