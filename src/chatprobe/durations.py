"""Durations as people write them in scenarios, schedules and on the command line.

One rule everywhere: a number of seconds (``12``, ``2.5``) or a number with a unit,
``"500ms"``, ``"10s"``, ``"2m"``, ``"1h"``. Scenario files (:mod:`chatprobe.load.scenario`),
the emulator's schedules (:mod:`chatprobe.emulator.schedule`) and the commands' duration
options all parse with :func:`parse_duration`.
"""

from __future__ import annotations

import re
from typing import Any

from chatprobe.errors import ConfigError

__all__ = ["parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any, *, what: str = "duration") -> float:
    """Seconds from ``12``, ``2.5``, ``"500ms"``, ``"10s"``, ``"2m"`` or ``"1h"``."""
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
