"""B4, offline commands: contract replay time, and report build time and peak memory.

* Replay: ``chatprobe check`` offline (cassettes, no network) over every suite and provider,
  wall time in a fresh process. Skipped with a note while the command or its suites and
  cassettes are not in the tree.
* Report: a synthetic results folder of 1,000,000 load samples (``--quick``: 100,000), made
  by :func:`chatprobe.report.synthetic.make_run` (not timed), then ``chatprobe report`` on it,
  wall time and peak resident memory measured around that one command by
  :mod:`benchmarks.measure` (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a fresh process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.budget import Budget
from benchmarks.harness import REPO
from benchmarks.section import Goal, Section, fmt

REPLAY_GOAL_S = 5.0
REPORT_GOAL_S = 10.0
REPORT_GOAL_MIB = 1024.0
SAMPLES = 1_000_000


def measure(cmd: list[str], *, cwd: Path = REPO, timeout: float = 600) -> dict[str, Any]:
    """Wall time, CPU time and peak RSS of ``cmd``, run in a fresh measuring process."""
    with tempfile.TemporaryDirectory(prefix="chatprobe-measure-") as tmp:
        out = os.path.join(tmp, "m.json")
        subprocess.run(
            [sys.executable, "-m", "benchmarks.measure", out, "--", *cmd],
            cwd=cwd,
            timeout=timeout,
            check=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        with open(out, "rb") as f:
            return orjson.loads(f.read())  # type: ignore[no-any-return]


def _commands() -> dict[str, Any]:
    from chatprobe.cli import COMMANDS

    return COMMANDS


def run(budget: Budget) -> Section:
    n = budget.report_samples
    section = Section(
        "B4",
        "Offline commands: contract replay, report on many samples",
        [
            "command",
            "what",
            "wall s",
            "CPU s",
            "peak RSS MiB (largest process)",
            "peak RSS MiB (process tree)",
            "exit",
        ],
        config={"report_samples": n},
    )
    if budget.replay:
        _replay(section)
    else:
        section.notes.append("replay not run in a smoke run")
    _report(section, n)
    return section


def _chatprobe(*args: str) -> list[str]:
    return [sys.executable, "-m", "chatprobe.cli", *args]


def _replay(section: Section) -> None:
    commands = _commands()
    suites = [p for p in (REPO / "suites").glob("**/*.y*ml")] if (REPO / "suites").is_dir() else []
    cassettes = (
        list((REPO / "cassettes").glob("**/*.y*ml")) if (REPO / "cassettes").is_dir() else []
    )
    if "check" not in commands or not suites or not cassettes:
        missing = [
            what
            for what, ok in (
                ("the `check` command", "check" in commands),
                ("suites/", bool(suites)),
                ("cassettes/", bool(cassettes)),
            )
            if not ok
        ]
        section.rows.append(
            ["chatprobe check", "replay, all suites x providers", "-", "-", "-", "-", "skipped"]
        )
        section.notes.append(f"replay skipped: {', '.join(missing)} not in the tree yet")
        section.goals.append(
            Goal(
                "B4 contract replay",
                f"< {REPLAY_GOAL_S:g} s",
                "-",
                None,
                "not measured: " + ", ".join(missing) + " missing",
            )
        )
        return
    with tempfile.TemporaryDirectory(prefix="chatprobe-replay-") as tmp:
        m = measure(_chatprobe("check", "--out", tmp))
    section.raw["replay"] = m
    section.rows.append(
        [
            "chatprobe check",
            f"replay {len(suites)} suite files x providers ({len(cassettes)} cassettes)",
            fmt(m["wall_s"], 2),
            fmt(m["cpu_s"], 2),
            fmt(m["max_rss_mib"], 0),
            fmt(m["tree_peak_rss_mib"], 0),
            m["exit"],
        ]
    )
    ok = m["exit"] in (0, 1)  # 1: some checks failed, which is a result, not a crash
    section.goals.append(
        Goal(
            "B4 contract replay",
            f"< {REPLAY_GOAL_S:g} s",
            f"{m['wall_s']:.2f} s ({m['cpu_s']:.2f} s CPU)",
            ok and m["wall_s"] < REPLAY_GOAL_S,
            "" if ok else f"exit {m['exit']}: {m['stderr_tail'][-200:]}",
        )
    )


def _report(section: Section, n: int) -> None:
    partial = n != SAMPLES
    if "report" not in _commands():
        section.rows.append(["chatprobe report", f"{n:,} samples", "-", "-", "-", "-", "skipped"])
        section.goals.append(
            Goal(
                "B4 report",
                f"< {REPORT_GOAL_S:g} s, < 1 GiB",
                "-",
                None,
                "not measured: no `report` command yet",
            )
        )
        return
    from chatprobe.report.synthetic import make_run
    from chatprobe.results import SAMPLES as SAMPLES_FILE

    with tempfile.TemporaryDirectory(prefix="chatprobe-report-") as tmp:
        t = time.perf_counter()
        synthetic = make_run(Path(tmp) / "results", n_samples=n)
        made_s = time.perf_counter() - t
        size = (synthetic.load_dir / SAMPLES_FILE).stat().st_size
        folders = [str(synthetic.load_dir)]
        if synthetic.contract_dir is not None:
            folders.append(str(synthetic.contract_dir))
        m = measure(_chatprobe("report", *folders, "--out", str(Path(tmp) / "report")))
    section.raw["report"] = {**m, "samples": n, "samples_bytes": size, "synthesis_s": made_s}
    section.rows.append(
        [
            "chatprobe report",
            f"{n:,} samples ({size / 2**20:.0f} MiB JSONL)",
            fmt(m["wall_s"], 2),
            fmt(m["cpu_s"], 2),
            fmt(m["max_rss_mib"], 0),
            fmt(m["tree_peak_rss_mib"], 0),
            m["exit"],
        ]
    )
    ok = m["exit"] == 0
    why = "" if ok else f"exit {m['exit']}: {m['stderr_tail'][-200:]}"
    if partial and ok:
        why = f"{n:,} samples, not 1,000,000 (quick or smoke run)"
    section.goals.append(
        Goal(
            "B4 report, 1M samples",
            f"< {REPORT_GOAL_S:g} s and < 1024 MiB",
            f"{m['wall_s']:.2f} s ({m['cpu_s']:.2f} s CPU), {m['tree_peak_rss_mib']:.0f} MiB",
            (ok and m["wall_s"] < REPORT_GOAL_S and m["tree_peak_rss_mib"] < REPORT_GOAL_MIB)
            if not partial
            else None,
            why,
        )
    )
