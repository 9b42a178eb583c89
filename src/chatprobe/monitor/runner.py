"""The monitor loop: a thread per target, probing every ``every`` seconds of monitor time.

Per target, a round starts every ``every_s`` (jittered by a seeded factor in
``1 +- jitter``, so several monitors do not fall into step), counted from the previous
round's start, in monitor time (:mod:`chatprobe.monitor.clock`). Polite by construction:

* one request in flight per target (``parallel`` raises it);
* a round stops at the first probe the provider could not serve (no response, a 5xx or a
  429): the rest of the round waits for the next one;
* ``Retry-After`` on a 429 or 503 holds every request to that target until it has passed
  (real seconds, converted to monitor time);
* consecutive failed rounds back off: the interval doubles per failed round, up to
  ``max_interval_s`` (default twice ``every_s``), and returns to ``every_s`` after a round
  without failure.

Stopping (:meth:`Monitor.run`'s ``stop`` event, set by SIGINT/SIGTERM in the command, or the
end of ``duration_s``): each target finishes the probe in hand and starts no other; the run
is marked ended in the history. A process killed outright loses at most the probes in flight
(:mod:`chatprobe.monitor.store`).

Retention runs at start and at every hour of monitor time: raw probes older than
``retention_s`` are rolled up into hourly rows.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from chatprobe.client import ChatClient, new_http_client
from chatprobe.monitor.clock import iso
from chatprobe.monitor.detect import LatencyRule
from chatprobe.monitor.exposition import Exposition
from chatprobe.monitor.probes import DEFAULT_SIZES, ProbeResult, ProbeSpec, run_probe, unavailable
from chatprobe.monitor.store import History, ProbeRow, StoredEvent, StoredFinding, TargetRow
from chatprobe.monitor.targets import MonitorTarget
from chatprobe.monitor.uptime import Uptime
from chatprobe.monitor.webhook import Webhook
from chatprobe.scrub import scrub_text
from chatprobe.transport import DEFAULT_TIMEOUTS, Timeouts, TLSConfig, retry_after_s

__all__ = ["Monitor", "MonitorSettings", "MonitorSummary", "format_duration"]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """How the monitor probes (times in monitor seconds)."""

    every_s: float = 300.0
    jitter: float = 0.1
    duration_s: float | None = None
    sizes: tuple[int, ...] = DEFAULT_SIZES
    parallel: int = 1
    max_interval_s: float | None = None  # None: twice every_s
    retention_s: float = 30 * DAY
    seed: int | None = None
    latency: LatencyRule = field(default_factory=LatencyRule)
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    tls: TLSConfig = field(default_factory=TLSConfig)

    def __post_init__(self) -> None:
        if not self.every_s > 0:
            raise ValueError("every_s must be positive")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.parallel < 1:
            raise ValueError("parallel must be at least 1")
        if self.retention_s < DAY:
            raise ValueError("retention must be at least one day")

    @property
    def longest_interval_s(self) -> float:
        return max(self.every_s, self.max_interval_s or 2 * self.every_s)


def format_duration(seconds: float) -> str:
    """``3h 05m``, ``12m 30s``, ``5m``, ``45s``."""
    whole = max(0, round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


@dataclass
class MonitorSummary:
    """What one run did, for the closing line."""

    reason: str  # stopped | duration
    probes: int
    events: int
    monitor_s: float
    uptime: dict[str, Uptime]  # target label -> the 1h window at the end
    db: Path

    def line(self) -> str:
        ups = ", ".join(
            f"{label} {'n/a' if u.uptime is None else f'{100 * u.uptime:.2f}%'}"
            for label, u in self.uptime.items()
        )
        return (
            f"chatprobe monitor: {self.reason} after {format_duration(self.monitor_s)} of "
            f"monitor time: {self.probes} probe(s) of {len(self.uptime)} target(s), "
            f"{self.events} event(s); uptime 1h: {ups or 'n/a'}; history: {self.db}"
        )


@dataclass
class _Target:
    target: MonitorTarget
    row: TargetRow
    specs: list[ProbeSpec]
    rng: random.Random
    client: ChatClient
    hold_until: float = -math.inf
    failures: int = 0


class Monitor:
    """Probes targets until stopped; see the module docstring.

    ``specs`` maps each target's label to its round (contract and latency probes, in order).
    ``say`` receives one line per event and per problem (the command prints them to stderr).
    """

    def __init__(
        self,
        history: History,
        targets: Sequence[MonitorTarget],
        specs: Mapping[str, Sequence[ProbeSpec]],
        settings: MonitorSettings | None = None,
        *,
        exposition: Exposition | None = None,
        webhook: Webhook | None = None,
        say: Callable[[str], None] = lambda line: None,
        argv: Sequence[str] = (),
    ) -> None:
        self.history = history
        self.clock = history.clock
        self.targets = list(targets)
        self.specs = {label: list(s) for label, s in specs.items()}
        self.settings = settings or MonitorSettings()
        self.exposition = exposition
        self.webhook = webhook
        self.say = say
        self.argv = list(argv)
        self._halt = threading.Event()
        self._count_lock = threading.Lock()
        self._probes = 0
        self._events = 0
        self._mono_start = 0.0
        self._run_id = 0
        self._errors: list[BaseException] = []

    # ------------------------------------------------------------------ the run
    def run(self, stop: threading.Event | None = None) -> MonitorSummary:
        """Probe until ``stop`` is set or ``duration_s`` of monitor time has passed."""
        stop = stop or threading.Event()
        s = self.settings
        run_id = self._run_id = self.history.start_run(argv=self.argv, every_s=s.every_s)
        start_t = self.clock.now()
        self._mono_start = time.monotonic()
        end_t = None if s.duration_s is None else start_t + s.duration_s
        http = new_http_client(s.tls)
        seed = s.seed if s.seed is not None else random.SystemRandom().randrange(2**32)
        states = []
        for target in self.targets:
            row = self.history.target(
                target.provider,
                target.model,
                model_id=target.profile.model(target.model).id,
                url=target.profile.base_url,
                data_source=target.data_source,
            )
            client = ChatClient(
                target.send_to, api_key=target.api_key, timeouts=s.timeouts, http=http
            )
            rng = random.Random(f"{seed}:{target.label}")
            states.append(_Target(target, row, self.specs[target.label], rng, client))
            if self.exposition is not None:
                self.exposition.set_uptime(
                    target.provider, target.model, self.history.uptime(row.id, start_t)
                )
        self._retention(start_t)
        threads = [
            threading.Thread(
                target=self._guarded, args=(st,), name=f"monitor {st.target.label}", daemon=True
            )
            for st in states
        ]
        for thread in threads:
            thread.start()
        reason = "stopped"
        next_rollup = (start_t // 3600 + 1) * 3600
        try:
            while any(t.is_alive() for t in threads):
                now = self.clock.now()
                if stop.is_set():
                    break
                if end_t is not None and now >= end_t:
                    reason = "duration"
                    break
                if now >= next_rollup:
                    self._retention(now)
                    next_rollup = (now // 3600 + 1) * 3600
                wake = min(next_rollup, end_t if end_t is not None else math.inf) - now
                stop.wait(min(1.0, max(0.001, self.clock.real_seconds(wake))))
            else:
                reason = "failed"
        finally:
            self._halt.set()
            for thread in threads:
                thread.join()
            http.close()
            self.history.end_run(run_id, reason)
        if self._errors:
            raise self._errors[0]
        end = self.clock.now()
        uptime = {
            st.target.label: self.history.uptime(st.row.id, end, (("1h", 3600.0),))[0]
            for st in states
        }
        return MonitorSummary(
            reason, self._probes, self._events, end - start_t, uptime, self.history.path
        )

    def _guarded(self, st: _Target) -> None:
        try:
            self._loop(st)
        except BaseException as exc:  # a bug: stop everything and let run() raise it
            self._errors.append(exc)
            self._halt.set()

    def _retention(self, now: float) -> None:
        rolled = self.history.rollup(now - self.settings.retention_s)
        if rolled:
            self.say(f"retention: {rolled} probe(s) older than the retention rolled up by hour")

    # ------------------------------------------------------------------ one target
    def _loop(self, st: _Target) -> None:
        s = self.settings
        next_t = self.clock.now()
        while not self._halt.is_set():
            now = self.clock.now()
            due = max(next_t, st.hold_until)
            if due > now:
                self._halt.wait(self.clock.real_seconds(due - now))
                continue
            failed = self._round(st)
            st.failures = st.failures + 1 if failed else 0
            interval = s.every_s
            if st.failures:
                interval = min(s.every_s * 2 ** min(st.failures, 30), s.longest_interval_s)
            next_t = now + interval * st.rng.uniform(1 - s.jitter, 1 + s.jitter)

    def _round(self, st: _Target) -> bool:
        """One round; True when a probe found the provider unavailable."""
        round_no = self.history.next_round(st.row.id)
        abort = threading.Event()
        wrote = [False]

        def one(spec: ProbeSpec) -> None:
            if self._halt.is_set() or abort.is_set() or self.clock.now() < st.hold_until:
                return
            t = self.clock.now()
            result = run_probe(
                st.client,
                spec,
                profile=st.target.profile,
                model=st.target.model,
                api_key=st.target.api_key,
                emulated=st.target.data_source == "emulated",
                t_offset_s=time.monotonic() - self._mono_start,
                rng=st.rng,
            )
            self._record(st, round_no, t, result)
            wrote[0] = True
            if unavailable(result.record):
                abort.set()
                record = result.record
                wait = retry_after_s(record.response_headers.get("retry-after"))
                if wait is not None and record.status in (429, 503):
                    st.hold_until = self.clock.now() + self.clock.monitor_seconds(wait)

        if self.settings.parallel == 1:
            for spec in st.specs:
                one(spec)
        else:
            with ThreadPoolExecutor(self.settings.parallel) as pool:
                list(pool.map(one, st.specs))
        if wrote[0]:
            now = self.clock.now()
            for stored in self.history.end_round(st.row.id, t=now, rule=self.settings.latency):
                self._emit(st, stored)
            if self.exposition is not None:
                self.exposition.set_uptime(
                    st.target.provider, st.target.model, self.history.uptime(st.row.id, now)
                )
        return abort.is_set()

    def _record(self, st: _Target, round_no: int, t: float, result: ProbeResult) -> None:
        record = result.record
        findings = []
        if result.evaluation is not None:
            for check in result.evaluation.results.values():
                for f in check.findings:
                    findings.append(
                        StoredFinding(f.check, f.severity.value, check.status, f.message, f.path)
                    )
        detail = record.error_detail or (f"HTTP {record.status}" if record.status else "")
        row = ProbeRow(
            run_id=self._run_id,
            target_id=st.row.id,
            round=round_no,
            t=t,
            kind=result.spec.kind,
            name=result.spec.name,
            counted=result.spec.counted,
            outcome=result.outcome,
            sample=result.sample,
            input_tokens=result.spec.input_tokens,
            case_outcome=None if result.evaluation is None else result.evaluation.outcome,
            findings=findings,
            detail=scrub_text(detail[:200]),
        )
        _, events = self.history.write_probe(row)
        with self._count_lock:
            self._probes += 1
        if self.exposition is not None:
            self.exposition.observe(
                st.target.provider,
                st.target.model,
                probe=row.name,
                t=t,
                outcome=row.outcome,
                up=row.availability,
                sample=row.sample,
                findings=[(f.check, f.severity, f.status) for f in findings],
            )
        for stored in events:
            self._emit(st, stored)

    def _emit(self, st: _Target, stored: StoredEvent) -> None:
        event = stored.event
        with self._count_lock:
            self._events += 1
        self.say(f"{iso(event.t)} {st.target.label} {event.kind}: {event.message}")
        if self.exposition is not None:
            self.exposition.count_event(st.target.provider, st.target.model, event)
        if self.webhook is not None:
            self.webhook.post(st.row, stored, clock=self.clock.factor)
