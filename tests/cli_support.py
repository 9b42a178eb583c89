"""The one way tests run the command line: ``python -m chatprobe.cli`` in a subprocess.

Each command runs with no provider key in its environment (unless a test adds one), a wide
terminal so tables never wrap, no stdin, and a timeout, so a hung command fails its test
instead of the suite. The ``cli`` fixture in ``conftest.py`` binds it to a test's temporary
results folder; modules that need module-scoped runs call :func:`run_cli` directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chatprobe.paths import project_root

__all__ = ["ROOT", "clean_env", "cli_command", "only_run", "run_cli"]

ROOT = project_root()


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``*_API_KEY``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.setdefault("COLUMNS", "200")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def cli_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "chatprobe.cli", *argv]


def run_cli(
    *argv: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``chatprobe ARGV`` to its end; ``env`` is added to a key-free environment."""
    return subprocess.run(
        cli_command(*argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def only_run(out: Path) -> Path:
    """The one results folder a command wrote under ``out``."""
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]
