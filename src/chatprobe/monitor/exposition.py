"""OpenMetrics / Prometheus exposition of a running monitor (``--metrics-port``).

Served by ``prometheus_client`` from a registry of its own (never the process-global one),
bound to 127.0.0.1 unless ``--metrics-host`` says otherwise; text format 0.0.4 by default,
OpenMetrics when the scraper asks for it (``Accept: application/openmetrics-text``). Every
series is labelled ``provider`` and ``model``; latencies are in seconds, the Prometheus base
unit. Counters and histograms start at zero with each monitor process (Prometheus handles
the reset); the history database keeps everything.

==========================================  =========  ======================================
name                                        type       labels (besides provider, model)
==========================================  =========  ======================================
chatprobe_monitor_ttft_seconds              histogram  probe
chatprobe_monitor_itl_seconds               histogram  probe
chatprobe_monitor_e2e_seconds               histogram  probe
chatprobe_monitor_probes_total              counter    probe, outcome (``ok`` or error class)
chatprobe_monitor_findings_total            counter    probe, check, severity, status
chatprobe_monitor_events_total              counter    kind
chatprobe_monitor_uptime_ratio              gauge      window (5m, 1h, 1d, 7d)
chatprobe_monitor_up                        gauge      (0 from an outage's start to its end)
chatprobe_monitor_prompt_tokens             gauge      probe (reported by the provider)
chatprobe_monitor_last_probe_timestamp_     gauge      (monitor time of the last probe)
seconds
chatprobe_monitor_info                      info       version, clock
==========================================  =========  ======================================

Histograms observe successful probes only; ``docs/grafana/chatprobe-monitor.json`` is a
dashboard built on these series.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest, start_http_server

from chatprobe._version import __version__
from chatprobe.monitor.detect import Event
from chatprobe.monitor.uptime import Uptime

__all__ = ["E2E_BUCKETS", "ITL_BUCKETS", "METRIC_NAMES", "TTFT_BUCKETS", "Exposition"]

TTFT_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0,
    60.0,
)  # fmt: skip
"""Time to first token: from a local server (10 ms) to a long prompt behind a queue (60 s)."""
ITL_BUCKETS = (
    0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0,
)  # fmt: skip
"""Inter-token latency: 500 to 1 token per second."""
E2E_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0,
    120.0, 300.0,
)  # fmt: skip
"""Whole answers: a short plain reply to a long reasoning stream."""

PREFIX = "chatprobe_monitor_"
METRIC_NAMES = tuple(
    PREFIX + name
    for name in (
        "ttft_seconds",
        "itl_seconds",
        "e2e_seconds",
        "probes_total",
        "findings_total",
        "events_total",
        "uptime_ratio",
        "up",
        "prompt_tokens",
        "last_probe_timestamp_seconds",
        "info",
    )
)
"""Every series family this module exposes (the Grafana dashboard's test checks against it)."""

_TARGET = ("provider", "model")


class Exposition:
    """The monitor's metrics; :meth:`serve` starts the HTTP endpoint."""

    def __init__(self, *, clock: float = 1.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ttft = Histogram(
            PREFIX + "ttft_seconds",
            "Time to first token of successful probes (first content, reasoning or tool-call "
            "delta; the whole answer for a plain request).",
            (*_TARGET, "probe"),
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            PREFIX + "itl_seconds",
            "Inter-token latency of successful probes: (last token - first token) / "
            "(output tokens - 1).",
            (*_TARGET, "probe"),
            buckets=ITL_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            PREFIX + "e2e_seconds",
            "End-to-end latency of successful probes: request sent to last content event.",
            (*_TARGET, "probe"),
            buckets=E2E_BUCKETS,
            registry=r,
        )
        self.probes = Counter(
            PREFIX + "probes",
            "Probes sent, by outcome: ok, or the error class that ended the request.",
            (*_TARGET, "probe", "outcome"),
            registry=r,
        )
        self.findings = Counter(
            PREFIX + "findings",
            "Check findings on contract probes (fail, warn, deviation, expected).",
            (*_TARGET, "probe", "check", "severity", "status"),
            registry=r,
        )
        self.events = Counter(
            PREFIX + "events",
            "Events detected: outages, findings appearing or disappearing, latency shifts.",
            (*_TARGET, "kind"),
            registry=r,
        )
        self.uptime = Gauge(
            PREFIX + "uptime_ratio",
            "Uptime as OpenRouter computes it: successful / (successful + errored) probes, "
            "429 excluded, over a trailing window of monitor time.",
            (*_TARGET, "window"),
            registry=r,
        )
        self.up = Gauge(
            PREFIX + "up",
            "0 while an outage lasts (a counted probe failed, or any probe got no answer or a "
            "5xx), 1 once a counted probe succeeded.",
            _TARGET,
            registry=r,
        )
        self.prompt_tokens = Gauge(
            PREFIX + "prompt_tokens",
            "Prompt tokens the provider reported for the last probe of this name.",
            (*_TARGET, "probe"),
            registry=r,
        )
        self.last_probe = Gauge(
            PREFIX + "last_probe_timestamp_seconds",
            "Monitor time (Unix seconds; compressed with --clock) of the last probe.",
            _TARGET,
            registry=r,
        )
        info = Info(PREFIX.rstrip("_"), "The monitor process.", registry=r)
        info.info({"version": __version__, "clock": f"{clock:g}"})
        self._server: Any = None
        self._thread: Any = None

    # ------------------------------------------------------------------ updates
    def observe(
        self,
        provider: str,
        model: str,
        *,
        probe: str,
        t: float,
        outcome: str,
        up: int | None,
        sample: dict[str, Any],
        findings: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        """One probe: its outcome, its latencies when it succeeded, its findings as
        ``(check, severity, status)``."""
        self.probes.labels(provider, model, probe, outcome).inc()
        self.last_probe.labels(provider, model).set(t)
        if up is not None:
            self.up.labels(provider, model).set(up)
        if outcome == "ok":
            for hist, key in ((self.ttft, "ttft_ms"), (self.itl, "itl_ms"), (self.e2e, "e2e_ms")):
                value = sample.get(key)
                if value is not None:
                    hist.labels(provider, model, probe).observe(value / 1000.0)
        if sample.get("prompt_tokens") is not None:
            self.prompt_tokens.labels(provider, model, probe).set(sample["prompt_tokens"])
        for check, severity, status in findings:
            self.findings.labels(provider, model, probe, check, severity, status).inc()

    def set_uptime(self, provider: str, model: str, uptimes: Sequence[Uptime]) -> None:
        for u in uptimes:
            value = u.uptime
            if value is not None:
                self.uptime.labels(provider, model, u.window).set(value)

    def count_event(self, provider: str, model: str, event: Event) -> None:
        self.events.labels(provider, model, event.kind).inc()

    def text(self) -> bytes:
        """The exposition as the endpoint serves it by default (text format 0.0.4)."""
        return generate_latest(self.registry)

    # ------------------------------------------------------------------ serving
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve ``/metrics`` on ``host:port`` (0: a free port) in a daemon thread; returns
        the URL."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        bound = self._server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{bound}/metrics"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
