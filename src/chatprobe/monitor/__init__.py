"""``chatprobe monitor``: the same checks and metrics, continuously, with history.

A monitor probes each target (provider x model) every few minutes with a small contract
suite and latency probes at fixed input sizes, judges each answer with the registered
checks, keeps every probe in a SQLite history, computes uptime as OpenRouter does, turns
changes into events (an outage, a finding appearing or disappearing, a latency shift judged
by a statistical test), and can serve Prometheus metrics and post events to a webhook.

Modules, in the order data flows (imports point down this list, never back up):

* :mod:`~chatprobe.monitor.clock`: monitor time, compressible (``--clock``);
* :mod:`~chatprobe.monitor.targets`: provider x model pairs, live or emulated;
* :mod:`~chatprobe.monitor.probes`: a round's probes, nonces, sending and judging one;
* :mod:`~chatprobe.monitor.detect`: the change-detection rules (pure);
* :mod:`~chatprobe.monitor.uptime`: uptime windows over :func:`chatprobe.metrics.availability`;
* :mod:`~chatprobe.monitor.store`: the SQLite history (schema, migrations, retention);
* :mod:`~chatprobe.monitor.exposition`: OpenMetrics/Prometheus series;
* :mod:`~chatprobe.monitor.webhook`: event delivery;
* :mod:`~chatprobe.monitor.runner`: the loop tying them together.

``chatprobe report --monitor DB`` (:mod:`chatprobe.report.monitor`) reads the history.
"""

from chatprobe.monitor.clock import MonitorClock
from chatprobe.monitor.detect import EVENT_KINDS, Event, LatencyRule
from chatprobe.monitor.runner import Monitor, MonitorSettings, MonitorSummary
from chatprobe.monitor.store import SCHEMA_VERSION, History
from chatprobe.monitor.targets import MonitorTarget, place_targets, target_pairs
from chatprobe.monitor.uptime import UPTIME_WINDOWS, Uptime

__all__ = [
    "EVENT_KINDS",
    "SCHEMA_VERSION",
    "UPTIME_WINDOWS",
    "Event",
    "History",
    "LatencyRule",
    "Monitor",
    "MonitorClock",
    "MonitorSettings",
    "MonitorSummary",
    "MonitorTarget",
    "Uptime",
    "place_targets",
    "target_pairs",
]
