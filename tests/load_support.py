"""Helpers for tests that drive `chatprobe load` in a child process."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson


def requests_so_far(base: Path, pattern: str = "status.json") -> int:
    """Requests a running load run reports in its ``status.json`` (0 until it has one)."""
    for status in base.glob(pattern):
        try:
            return int(orjson.loads(status.read_bytes())["requests"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return 0
    return 0


def wait_for_requests(
    base: Path,
    n: int,
    *,
    pattern: str = "status.json",
    timeout_s: float = 40,
    child: subprocess.Popen[str] | None = None,
) -> int:
    """Poll until the run has made ``n`` requests or ``timeout_s`` passes; return the count.

    With ``child``, a child that exits early fails at once with its output.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = requests_so_far(base, pattern)
        if count >= n:
            return count
        if child is not None:
            assert child.poll() is None, child.communicate()
        time.sleep(0.2)
    return requests_so_far(base, pattern)
