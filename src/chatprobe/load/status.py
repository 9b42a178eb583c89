"""Running counts of a load run and the ``status.json`` the parent's live line reads.

Pure (no gevent): :class:`Progress` is fed every sample the process keeps (a local run's
own, a master's from its workers); :func:`write_status` replaces ``status.json`` atomically.
The display is best effort: the samples are what matter.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from chatprobe.results import STATUS
from chatprobe.stats import percentile

__all__ = ["Progress", "write_status"]


class Progress:
    """Running counts for the live display (exact, but TTFT p50 over the last 2000)."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.recent_ttft: deque[float] = deque(maxlen=2000)

    def add(self, sample: dict[str, Any]) -> None:
        self.requests += 1
        if sample.get("error_class"):
            self.errors += 1
        elif sample.get("ttft_ms") is not None and not sample.get("warmup"):
            self.recent_ttft.append(sample["ttft_ms"])

    def ttft_p50(self) -> float | None:
        if not self.recent_ttft:
            return None
        return percentile(sorted(self.recent_ttft), 50.0)


def write_status(out_dir: Path, status: dict[str, Any]) -> None:
    """Replace ``<out_dir>/status.json`` with ``status`` (never a half-written file)."""
    path = out_dir / STATUS
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(orjson.dumps(status))
        os.replace(tmp, path)
    except OSError:
        pass  # the display is best effort; the samples are what matter
