"""`chatprobe check --suites FILE` collects a suite wherever it lives, and reports it well."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GOOD = """\
cases:
  - name: hello-outside
    request:
      body: {messages: [{role: user, content: Say hello.}], max_tokens: 8}
"""

BAD = """\
cases:
  - name: typo
    request: {bdy: 1}
"""


def _check(cwd: Path, suite: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "check", "--suites", str(suite), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_suite_outside_a_suites_folder_runs(tmp_path: Path) -> None:
    suite = tmp_path / "mine.yaml"
    suite.write_text(GOOD)
    done = _check(tmp_path, suite, "--provider", "openrouter", "--live", "--emulator")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not found" not in done.stdout


def test_broken_suite_outside_a_suites_folder_names_file_and_line(tmp_path: Path) -> None:
    suite = tmp_path / "broken.yaml"
    suite.write_text(BAD)
    done = _check(tmp_path, suite)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{suite}:3: cases[0].request.bdy" in done.stderr
    assert "Traceback" not in done.stderr
