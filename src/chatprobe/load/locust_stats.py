"""What locust itself shows of a load run: one row per real request, timings in a table apart.

Locust's request table (terminal, web UI, ``locust_stats.csv``) gets exactly one ``POST``
event per request sent, named by its target (a failure carries its error class and status),
so its request count and Aggregated req/s are the real ones. TTFT, ITL and E2E go to a
:class:`locust.stats.RequestStats` of their own (:attr:`LocustStats.timings`): workers ship
it to the master with their reports, and the local or master process logs it at the end
as a percentile table and writes ``locust_timings.csv``. Like locust's own CSV these are
rounded, for reference; the exact figures are ``samples.jsonl`` and ``summary.json``.

Locust child only (gevent).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from locust.stats import RequestStats, StatsEntry, console_logger, print_percentile_stats

from chatprobe.record import RequestRecord

__all__ = ["TIMING_KINDS", "LocustStats", "RequestFailed"]

TIMING_KINDS = ("TTFT", "ITL", "E2E")
PERCENTILES = (0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


class RequestFailed(Exception):
    """What locust's failure table shows: the error class (and status)."""


class LocustStats:
    """Fires locust's request event once per request and keeps the timing rows apart."""

    def __init__(self) -> None:
        self.timings = RequestStats()
        self.environment: Any = None
        self.runner: Any = None

    def bind(self, role: str, environment: Any, runner: Any) -> None:
        self.environment = environment
        self.runner = runner
        events = environment.events
        if role == "worker":
            self.timings = RequestStats(use_response_times_cache=False)
            events.report_to_master.add_listener(self._on_report_to_master)
        elif role == "master":
            events.worker_report.add_listener(self._on_worker_report)
            runner.register_message("chatprobe_timings", self._on_timings)

    def request(self, record: RequestRecord, name: str, received: int) -> None:
        """One finished request: its ``POST`` row, and its timings when it succeeded."""
        error = record.error_class
        exception = None
        if error is not None:
            status = f" {record.status}" if record.status else ""
            exception = RequestFailed(f"{error.value}{status}")
        self.environment.events.request.fire(
            request_type="POST",
            name=name,
            response_time=record.total_ms or 0.0,
            response_length=received,
            exception=exception,
            context={},
        )
        if error is not None:
            return
        log = self.timings.log_request
        for kind, value in zip(
            TIMING_KINDS, (record.ttft_ms, record.itl_ms, record.e2e_ms), strict=True
        ):
            if value is not None:
                log(kind, name, value, 0)  # type: ignore[arg-type]  # locust takes floats

    # ------------------------------------------------------------------ distributed
    def _stripped(self) -> list[Any]:
        return [e.get_stripped_report() for e in self.timings.entries.values() if e.num_requests]

    def _on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        rows = self._stripped()
        if rows:
            data["chatprobe_timings"] = rows

    def ship_rest(self) -> None:
        """Worker, at its end: what the last report did not carry."""
        rows = self._stripped()
        if rows:
            self.runner.send_message("chatprobe_timings", rows)

    def _merge(self, rows: Any) -> None:
        for row in rows or []:
            entry = StatsEntry.unserialize(row, self.timings)
            self.timings.get(row["name"], row["method"]).extend(entry)

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        self._merge(data.get("chatprobe_timings"))

    def _on_timings(self, environment: Any, msg: Any, **_: Any) -> None:
        self._merge(msg.data)

    # ------------------------------------------------------------------ the end
    def write(self, path: Path) -> None:
        """Log the timing table and write it as CSV (local or master)."""
        entries = [e for e in self.timings.entries.values() if e.num_requests]
        if not entries:
            return
        console_logger.info("chatprobe timings per target, ms (a table apart: TTFT, ITL, E2E)")
        print_percentile_stats(self.timings)
        columns = ["Type", "Name", "Count", "Average", "Min", "Max"]
        columns += [f"{p:.1%}".replace(".0%", "%") for p in PERCENTILES]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for e in sorted(entries, key=lambda e: (e.name, TIMING_KINDS.index(e.method))):
                writer.writerow(
                    [
                        e.method,
                        e.name,
                        e.num_requests,
                        round(e.avg_response_time, 3),
                        round(e.min_response_time or 0, 3),
                        round(e.max_response_time, 3),
                        *(e.get_response_time_percentile(p) for p in PERCENTILES),
                    ]
                )
