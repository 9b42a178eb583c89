"""Shared by the reliability tests: run the real command line, read what a run wrote.

Every command runs as ``python -m chatprobe.cli`` in a subprocess with no provider key in its
environment (unless a test adds one), results under the test's temporary folder, and a
timeout, so a hung command fails its test instead of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from chatprobe.paths import project_root

__all__ = ["ROOT", "clean_env", "cli_command", "read_run", "run_cli"]

ROOT = project_root()


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``*_API_KEY``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def cli_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "chatprobe.cli", *argv]


def run_cli(
    *argv: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``chatprobe ARGV`` to its end; ``env`` is added to a key-free environment."""
    return subprocess.run(
        cli_command(*argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(env),
        cwd=cwd,
    )


def read_run(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """``(summary, samples, meta)`` of a load results folder."""
    summary = orjson.loads((folder / "summary.json").read_bytes())
    samples = [orjson.loads(line) for line in (folder / "samples.jsonl").read_bytes().splitlines()]
    meta = orjson.loads((folder / "meta.json").read_bytes())
    return summary, samples, meta
