"""A locustfile of one's own: the example of docs/load.md, run by a real short locust run.

The example is read from the docs (so the docs cannot drift from what works), written to a
file and run with ``locust -f`` against the emulator in a subprocess, bounded in time.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from chatprobe.paths import project_root

ROOT = project_root()
DOC = ROOT / "docs" / "load.md"


def _example() -> str:
    section = DOC.read_text().split("## Your own locustfile", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_importing_the_package_drags_in_no_gevent() -> None:
    code = (
        "import sys, chatprobe.load, chatprobe.load.targets, chatprobe.load.polite;"
        "assert 'gevent' not in sys.modules and 'locust' not in sys.modules;"
        "print(sorted(chatprobe.load.__all__))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['ChatUser', 'OpenLoopUser']"


@pytest.mark.slow
def test_the_documented_locustfile_runs(tmp_path: Path) -> None:
    from chatprobe.emulator import Emulator, EmulatorConfig

    locustfile = tmp_path / "my_locustfile.py"
    locustfile.write_text(_example())
    assert "class Chat(ChatUser)" in locustfile.read_text()
    out = tmp_path / "mine"
    config = EmulatorConfig(providers=("aimlapi",), ttft_ms=5, itl_ms=1, output_tokens=(8, 8))
    with Emulator.in_subprocess(config) as emu:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env["CHATPROBE_OUT"] = str(out)
        done = subprocess.run(
            [
                *(sys.executable, "-m", "locust", "-f", str(locustfile), "--headless"),
                *("-u", "2", "-t", "4s", "--host", emu.base_url("aimlapi")),
                *("--csv", str(out / "locust")),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = orjson.loads((out / "summary.json").read_bytes())
    (group,) = summary["groups"]
    assert group["provider"] == "aimlapi" and summary["errors"] == {}
    # constant(1) between requests: a handful per user in 4 s, never a flood
    assert 2 <= summary["samples"] <= 2 * 6, summary["samples"]
    assert "Chat" in done.stderr  # locust names the user class it ran
    with open(out / "locust_stats.csv", newline="") as fh:
        kinds = {row["Type"] for row in csv.DictReader(fh)}
    assert kinds == {"POST", ""}
    assert (out / "locust_timings.csv").is_file() and (out / "samples.jsonl").is_file()
