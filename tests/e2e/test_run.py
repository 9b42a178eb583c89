"""``chatprobe run`` end to end against the emulator (no keys): checks, load, report.

Bounded: a few seconds of load; each child has its own time limits. Run as a subprocess so
locust and pytest never share a process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

KEY_VARS = ("AIMLAPI_API_KEY", "APILAPLAS_API_KEY", "OPENROUTER_API_KEY")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env["CHATPROBE_RESULTS"] = str(tmp_path / "results")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "chatprobe.cli", "run", *args]


def test_run_without_keys_builds_an_emulated_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        _cmd("--duration", "9"),
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    index = Path(proc.stdout.strip().splitlines()[-1])
    index = index if index.is_absolute() else tmp_path / index
    assert index.name == "index.html" and index.parent.parent == tmp_path / "reports"
    data = json.loads((index.parent / "report.json").read_text())
    assert data["data_sources"] == ["emulated"]
    kinds = sorted(run["kind"] for run in data["runs"])
    assert kinds == ["contract", "load"]
    providers = {g["provider"] for g in data["groups"]}
    assert providers == {"aimlapi", "apilaplas", "openrouter"}
    assert set(data["conformance"]["providers"]) == providers
    assert any(c["kind"] == "family" for c in data["comparisons"])
    markdown = (index.parent / "report.md").read_text()
    assert "EMULATED" in markdown and "| check |" in markdown
    # Both folders of the run share its group; a later plain `chatprobe report` finds them.
    groups = {
        json.loads((d / "meta.json").read_text())["group"] for d in (tmp_path / "results").iterdir()
    }
    assert groups == {index.parent.name}


def test_run_interrupted_during_load_still_reports(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        _cmd("--duration", "60", "--provider", "openrouter", "--skip-check"),
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        samples: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            samples = [
                p for p in (tmp_path / "results").glob("*/samples.jsonl") if p.stat().st_size
            ]
            if samples and samples[0].read_bytes().count(b"\n") >= 20:
                break
            time.sleep(0.3)
        assert samples, "the load run wrote no samples in time"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    index = Path(out.strip().splitlines()[-1])
    index = index if index.is_absolute() else tmp_path / index
    data = json.loads((index.parent / "report.json").read_text())
    assert data["groups"] and data["groups"][0]["provider"] == "openrouter"
    assert any("interrupted" in w for w in data["warnings"])
    meta = json.loads((samples[0].parent / "meta.json").read_text())
    assert meta["interrupted"] is True and meta["finished_at"]
