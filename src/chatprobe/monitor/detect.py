"""Change detection: what turns a probe (or a round of probes) into an event.

Pure rules over the history; :class:`~chatprobe.monitor.store.History` feeds them the rows
they need, inside the transaction that writes the probe, so a restarted monitor continues
exactly where the last one stopped (nothing is kept in memory between probes). Every event
has a monitor time (:mod:`chatprobe.monitor.clock`), a kind, a subject and a one-line message.

Availability (``outage_started``, ``outage_ended``)
    Per target, over the probes counted in uptime (those expecting success: up 1 or 0;
    rate-limited and error-case probes are not counted). The state before the first probe is
    *up*; a counted probe that fails while the state is up starts an outage, the first one
    that succeeds ends it. A probe not counted (an error case) starts one too when the
    provider could not serve it at all (no response, or a 5xx instead of the expected 4xx),
    but never ends one. The state is the last availability event's, so it survives a
    restart. A monitor started during an outage therefore reports it at once.

Findings (``finding_appeared``, ``finding_disappeared``)
    Per target, case and check, over the probes the server answered with a status below 500
    other than 429 (a failed exchange or an outage says nothing about the contract; the
    availability events cover it). A finding is a check with status ``fail`` or ``warn`` on
    the probe (documented deviations and expected failures are not news). Compared with the
    previous answered probe of the same case: a check failing now and not then appeared, one
    failing then and not now disappeared. Before the first probe no check fails, so a
    finding present from the start is reported once.

Latency shift (``latency_shift``)
    Per target, once per round, over the successful probes' TTFT (every probe kind: each
    series, e.g. ``latency-1000`` or ``stream-usage``, is divided by the median of its own
    baseline values, so series of different scale can be pooled). A *recent window* is the
    latest k rounds, taken whole (k = ``min_rounds`` to ``max_rounds``, smallest first,
    skipping windows with fewer than ``min_recent`` values); its *baseline* is up to
    ``max_baseline`` values before it, and needs at least ``min_baseline``. A shift is
    reported when, for some window, a two-sided Mann-Whitney U test
    (:func:`chatprobe.stats.mann_whitney_u`) of recent against baseline gives p < ``alpha``
    **and** the median ratio (recent / baseline, both normalised) is at least ``min_ratio``
    or at most 1 / ``min_ratio`` in every round of the window: sustained (two rounds at
    least), significant and large enough to matter, never one slow sample or one slow round
    (a busy client machine slows a round too). Windows of several rounds catch a step that
    began inside a round (that round, half old and half new, would otherwise sit at the edge
    of the baseline).
    Cooldown: only values from the start of the window that triggered the last shift onwards
    are used, so the new level becomes the baseline and the next test waits until it has
    ``min_baseline`` values plus a recent window (about six rounds with the built-in suite).
    Under no change a round fires with probability at most about ``max_rounds x alpha``
    (2 in 10,000 with the defaults).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatprobe.stats import mann_whitney_u, percentile

__all__ = [
    "EVENT_KINDS",
    "FINDING_APPEARED",
    "FINDING_DISAPPEARED",
    "FINDING_STATUSES",
    "LATENCY_SHIFT",
    "OUTAGE_ENDED",
    "OUTAGE_STARTED",
    "Event",
    "FindingState",
    "LatencyRule",
    "LatencySample",
    "availability_change",
    "finding_changes",
    "latency_shift",
    "participates",
]

OUTAGE_STARTED = "outage_started"
OUTAGE_ENDED = "outage_ended"
FINDING_APPEARED = "finding_appeared"
FINDING_DISAPPEARED = "finding_disappeared"
LATENCY_SHIFT = "latency_shift"
EVENT_KINDS = (OUTAGE_STARTED, OUTAGE_ENDED, FINDING_APPEARED, FINDING_DISAPPEARED, LATENCY_SHIFT)

FINDING_STATUSES = ("fail", "warn")
"""Check statuses that count as a finding for change detection."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something that changed, at monitor time ``t``."""

    kind: str
    t: float
    subject: str  # "" (availability), "<case>/<check>" (findings), "ttft" (latency)
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def participates(status: int | None) -> bool:
    """Whether a probe's answer can say anything about the contract (see the module doc)."""
    return status is not None and status < 500 and status != 429


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def availability_change(
    previous_up: int | None,
    up: int | None,
    *,
    t: float,
    probe: str,
    outcome: str,
    detail: str,
    down_since: float | None = None,
) -> Event | None:
    """The availability event a probe's observation ``up`` causes, if any
    (``previous_up`` None: nothing observed yet, judged against *up*)."""
    if up is None:
        return None
    before = 1 if previous_up is None else previous_up
    if up == before:
        return None
    if up == 0:
        what = f"{outcome}: {detail}" if detail else outcome
        return Event(
            OUTAGE_STARTED,
            t,
            "",
            f"probe {probe} failed ({what})",
            {"probe": probe, "outcome": outcome},
        )
    details: dict[str, Any] = {"probe": probe}
    message = f"probe {probe} succeeded again"
    if down_since is not None:
        details["down_s"] = round(t - down_since, 3)
        message += f" after {_duration(t - down_since)} down"
    return Event(OUTAGE_ENDED, t, "", message, details)


@dataclass(frozen=True, slots=True)
class FindingState:
    """One check's finding on a probe."""

    severity: str
    status: str
    message: str


def finding_changes(
    previous: Mapping[str, FindingState],
    current: Mapping[str, FindingState],
    *,
    case: str,
    t: float,
) -> list[Event]:
    """Checks (by name) failing now and not before, then the reverse (see the module doc)."""
    events = []
    for check in sorted(set(current) - set(previous)):
        f = current[check]
        events.append(
            Event(
                FINDING_APPEARED,
                t,
                f"{case}/{check}",
                f"{case}: {check} {f.status} ({f.severity}): {f.message}",
                {"case": case, "check": check, "severity": f.severity, "status": f.status},
            )
        )
    for check in sorted(set(previous) - set(current)):
        f = previous[check]
        events.append(
            Event(
                FINDING_DISAPPEARED,
                t,
                f"{case}/{check}",
                f"{case}: {check} passes again",
                {"case": case, "check": check, "severity": f.severity, "status": f.status},
            )
        )
    return events


@dataclass(frozen=True, slots=True)
class LatencyRule:
    """The latency-shift rule's settings (see the module docstring)."""

    min_recent: int = 5
    min_rounds: int = 2
    max_rounds: int = 4
    min_baseline: int = 20
    max_baseline: int = 60
    alpha: float = 5e-5
    min_ratio: float = 1.5
    metric: str = "ttft_ms"

    def __post_init__(self) -> None:
        if min(self.min_recent, self.min_rounds, self.min_baseline) < 1 or (
            self.max_baseline < self.min_baseline or self.max_rounds < self.min_rounds
        ):
            raise ValueError(
                "latency rule: need 1 <= min_recent and 1 <= min_baseline <= max_baseline"
            )
        if not 0 < self.alpha < 1 or self.min_ratio < 1:
            raise ValueError("latency rule: need 0 < alpha < 1 and min_ratio >= 1")


@dataclass(frozen=True, slots=True)
class LatencySample:
    """One successful probe's value of the rule's metric."""

    round: int
    name: str  # the series: the probe's name
    value: float
    t: float


def _median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50.0)


def latency_shift(samples: Sequence[LatencySample], rule: LatencyRule, *, t: float) -> Event | None:
    """The shift event the latest rounds show, if any; ``samples`` are the values since the
    last shift's window started, oldest first (see the module docstring). Recent windows of
    1 to ``max_rounds`` rounds are tried, smallest first."""
    rounds = sorted({s.round for s in samples}, reverse=True)
    for k in range(rule.min_rounds, min(rule.max_rounds, len(rounds) - 1) + 1):
        taken = set(rounds[:k])
        recent = [s for s in samples if s.round in taken]
        if len(recent) < rule.min_recent:
            continue
        baseline = [s for s in samples if s.round not in taken][-rule.max_baseline :]
        if len(baseline) < rule.min_baseline:
            return None  # a larger window leaves an even smaller baseline
        event = _shift(recent, baseline, rule, t)
        if event is not None:
            return event
    return None


def _shift(
    recent: list[LatencySample], baseline: list[LatencySample], rule: LatencyRule, t: float
) -> Event | None:
    """One test of a recent window against its baseline."""
    by_series: dict[str, list[float]] = {}
    for s in baseline:
        by_series.setdefault(s.name, []).append(s.value)
    scale = {name: _median(v) for name, v in by_series.items()}
    scale = {name: m for name, m in scale.items() if m > 0}
    recent = [s for s in recent if s.name in scale]
    baseline = [s for s in baseline if s.name in scale]
    if len(recent) < rule.min_recent or len(baseline) < rule.min_baseline:
        return None
    a = [s.value / scale[s.name] for s in recent]
    b = [s.value / scale[s.name] for s in baseline]
    test = mann_whitney_u(a, b)
    base_median = _median(b)
    if base_median <= 0:
        return None
    ratio = _median(a) / base_median
    if test.p >= rule.alpha or (1 / rule.min_ratio < ratio < rule.min_ratio):
        return None
    per_round: dict[int, list[float]] = {}
    for s, x in zip(recent, a, strict=True):
        per_round.setdefault(s.round, []).append(x / base_median)
    medians = [_median(v) for v in per_round.values()]
    held = all(m >= rule.min_ratio for m in medians) or all(
        m <= 1 / rule.min_ratio for m in medians
    )
    if not held:  # one slow round among normal ones is not a shift
        return None
    since = min(s.t for s in recent)
    word = "up" if ratio > 1 else "down"
    metric = rule.metric.removesuffix("_ms").upper()
    recent_by: dict[str, list[float]] = {}
    for s in recent:
        recent_by.setdefault(s.name, []).append(s.value)
    return Event(
        LATENCY_SHIFT,
        t,
        rule.metric.removesuffix("_ms"),
        f"{metric} {word} {ratio:.2f}x: median of {len(a)} probes vs {len(b)} before "
        f"(Mann-Whitney p = {test.p:.1e})",
        {
            "metric": rule.metric,
            "direction": word,
            "ratio": round(ratio, 4),
            "p": test.p,
            "u": test.u,
            "exact": test.exact,
            "n_recent": len(a),
            "n_baseline": len(b),
            "since": since,
            "baseline_ms": {k: round(v, 3) for k, v in sorted(scale.items())},
            "recent_ms": {k: round(_median(v), 3) for k, v in sorted(recent_by.items())},
        },
    )
