"""Uptime over trailing windows, as OpenRouter computes it.

``uptime = successful / (successful + errored)`` over the probes *counted* in uptime (the
ones expecting success: latency probes and contract cases whose expected status is a
success; an error case such as a wrong key is not counted), with rate-limited probes (HTTP
429, class ``rate_limited``) in neither term. The formula itself is
:func:`chatprobe.metrics.availability`, the one load runs use for ``availability``; this
module only names the windows and carries the counts. Windows are trailing, in monitor time
(:mod:`chatprobe.monitor.clock`): a probe sent at ``t`` is in the window ending ``now`` when
``now - seconds < t <= now``. Hours already rolled up (:mod:`chatprobe.monitor.store`) count
whole when their start lies inside the window.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatprobe.metrics import availability

__all__ = ["UPTIME_WINDOWS", "Uptime"]

UPTIME_WINDOWS: tuple[tuple[str, float], ...] = (
    ("5m", 300.0),
    ("1h", 3600.0),
    ("1d", 86400.0),
    ("7d", 604800.0),
)
"""Trailing windows shown everywhere (OpenRouter shows 5 minutes and a day)."""


@dataclass(frozen=True, slots=True)
class Uptime:
    """Counted probes in one window and the uptime they give (None: nothing counted)."""

    window: str
    seconds: float
    ok: int = 0
    errored: int = 0  # failed, rate-limited ones excluded
    rate_limited: int = 0

    @property
    def uptime(self) -> float | None:
        return availability(self.ok, self.errored + self.rate_limited, self.rate_limited)

    @property
    def counted(self) -> int:
        return self.ok + self.errored
