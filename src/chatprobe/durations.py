"""Durations as people write them: ``12``, ``2.5``, ``"500ms"``, ``"10s"``, ``"2m"``, ``"1h"``,
``"7d"``.

One parser for every duration a user types: scenario fields (``duration: 30s``), timeouts in
scenarios and on the command line (``--idle-timeout 2s``), the emulator's schedules
(:mod:`chatprobe.emulator.schedule`) and every command's duration options.
A mistake raises :class:`~chatprobe.errors.ConfigError` naming what was being read.
"""

from __future__ import annotations

import re
from typing import Any

from chatprobe.errors import ConfigError

__all__ = ["DISABLED", "parse_duration", "parse_timeout"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}

DISABLED = ("none", "off")
"""Words that switch a timeout off (``--total-timeout none``, ``total: off``)."""


def parse_duration(value: Any, *, what: str = "duration") -> float:
    """Seconds from ``12``, ``2.5``, ``"500ms"``, ``"10s"``, ``"2m"``, ``"1h"`` or ``"7d"``."""
    if isinstance(value, bool):
        raise ConfigError(f"expected a duration like 10s, got {value!r}", field=what)
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(f"must not be negative, got {value}", field=what)
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(
            f"expected a duration like 500ms, 10s, 2m or 1h, got {value!r}", field=what
        )
    return float(match.group(1)) * _UNIT[match.group(2)]


def parse_timeout(value: Any, *, what: str = "timeout") -> float | None:
    """A timeout: a duration above zero, or ``None``/``"none"``/``"off"`` (no limit)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in DISABLED):
        return None
    seconds = parse_duration(value, what=what)
    if seconds <= 0:
        raise ConfigError(f"must be more than 0 (or none for no limit), got {value!r}", field=what)
    return seconds
