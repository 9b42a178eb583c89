"""The monitor's clock: Unix time, optionally running faster than the wall clock.

*Monitor time* is what every stored probe and event is stamped with, what ``--every``,
``--duration``, ``--retention`` and the uptime windows are measured in:

    t = epoch + (wall - epoch) x factor

``factor`` is ``--clock`` (1 by default: monitor time is the wall clock; 1440 runs a day in a
minute, matching ``chatprobe emulate --clock``), ``epoch`` the wall time at which the history
database was created, so a monitor that is stopped and restarted on the same database
continues the same timeline (the time it was down passes too, compressed like the rest).
Within one process the clock advances by the monotonic clock from an anchor taken at start,
so a wall-clock step (NTP) cannot move probes in time. Latencies are never compressed: they
are measured by the transport in real milliseconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["MonitorClock", "iso"]


def iso(t: float) -> str:
    """A monitor time as ISO 8601 UTC with seconds, e.g. ``2026-12-03T10:05:00Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class MonitorClock:
    """Monitor time for one process (see the module docstring)."""

    factor: float = 1.0
    epoch: float = 0.0  # wall time (Unix s) at which monitor time equals the wall clock
    _start_t: float = field(init=False, repr=False)
    _start_mono: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError(f"clock factor must be positive, got {self.factor}")
        wall, mono = time.time(), time.monotonic()
        self._start_t = self.epoch + (wall - self.epoch) * self.factor
        self._start_mono = mono

    def now(self) -> float:
        """Monitor time now (Unix seconds on the compressed timeline)."""
        return self._start_t + (time.monotonic() - self._start_mono) * self.factor

    def real_seconds(self, monitor_seconds: float) -> float:
        """How long ``monitor_seconds`` of monitor time last on the wall clock."""
        return monitor_seconds / self.factor

    def monitor_seconds(self, real_seconds: float) -> float:
        """How much monitor time passes in ``real_seconds`` (a server's Retry-After, say)."""
        return real_seconds * self.factor
