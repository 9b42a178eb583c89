"""Report build time and peak memory at scale (issue B4: 1,000,000 samples, < 10 s, < 1 GiB).

The default run builds a 100,000-sample report; ``CHATPROBE_SCALE=1`` adds the
1,000,000-sample case (about a minute with data generation). Time is measured and printed,
never asserted (the machine is shared); memory is asserted against the 1 GiB budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatprobe.report.synthetic import make_run

pytestmark = pytest.mark.slow

CHILD = """
import json, resource, sys, time
from chatprobe.report import build_report_files
t0 = time.perf_counter()
index = build_report_files([sys.argv[1]], out=sys.argv[2])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "cpu_s": time.process_time(),
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

SIZES = [100_000]
if os.environ.get("CHATPROBE_SCALE"):
    SIZES.append(1_000_000)


@pytest.mark.parametrize("n", SIZES)
def test_large_report_builds_within_memory(tmp_path: Path, n: int) -> None:
    run = make_run(tmp_path / "results", n_samples=n, seed=11)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "results"), str(tmp_path / "report")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"\n{n:,} samples: {figures['seconds']:.1f} s wall, {figures['cpu_s']:.1f} s CPU, "
        f"peak RSS {figures['max_rss_mb']:.0f} MB"
    )
    assert figures["max_rss_mb"] < 1024
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    load = next(r for r in data["runs"] if r["run_id"] == run.load_dir.name)
    assert load["samples"] == n and load["skipped_lines"] == 0
    assert n // 2 < sum(g["requests"] for g in data["groups"]) <= n
