"""The monitor's history: one SQLite file (stdlib ``sqlite3``), nothing to install or start.

Durability: WAL journal, ``synchronous=FULL``; every probe is written in one transaction
together with its findings and the events it causes, and a round's latency test writes its
event in a transaction of its own. A monitor killed at any moment (SIGKILL included) leaves
every completed probe and nothing half written; the next start continues the same history
(change detection reads its state from the rows, :mod:`chatprobe.monitor.detect`), and marks
the runs that never ended as ``lost``.

Schema versions: ``PRAGMA user_version`` holds the version, ``PRAGMA application_id`` marks
the file as chatprobe's (:data:`APPLICATION_ID`). :data:`MIGRATIONS` is the ordered list of
functions, ``MIGRATIONS[i]`` taking version ``i`` to ``i + 1``, each applied in its own
transaction with the version bump, so an interrupted migration leaves the older, complete
version. Opening a file migrates it; a file from a newer chatprobe is refused. Versions:

1. ``meta`` (clock, creation), ``targets``, ``runs``, ``probes`` (one row per request: probe
   kind and name, uptime fields, the load sample's figures as columns and the whole sample as
   JSON), ``findings`` (check, severity, status, message per probe), ``events``.
2. Retention: ``hourly`` and ``hourly_findings`` (raw rows older than the retention rolled up
   per target, hour and probe name) and ``events.delivered`` (webhook delivery).

Retention and downsampling (:meth:`History.rollup`): raw probes older than the retention
(monitor time, whole hours) become one ``hourly`` row per target, hour and probe name, plus
one pooling every probe of the hour (name :data:`ALL_PROBES`): request, success, error and
rate-limit counts (of the probes counted in uptime), and exact percentiles of TTFT, ITL and
E2E of the successful probes, computed at rollup from that hour's values
(:func:`chatprobe.stats.describe_sorted`: n, mean, std, min, p50, p90, p95, p99, p99.9,
max); their findings become counts per check and status.
Events are kept forever. Percentiles of a rolled-up hour cannot be merged with others
exactly: reports show them per hour.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from chatprobe._version import __version__
from chatprobe.errors import ConfigError
from chatprobe.monitor.clock import MonitorClock
from chatprobe.monitor.detect import (
    FINDING_STATUSES,
    LATENCY_SHIFT,
    OUTAGE_ENDED,
    OUTAGE_STARTED,
    Event,
    FindingState,
    LatencyRule,
    LatencySample,
    availability_change,
    finding_changes,
    latency_shift,
    participates,
)
from chatprobe.monitor.uptime import UPTIME_WINDOWS, Uptime
from chatprobe.record import ErrorClass
from chatprobe.scrub import scrub_obj, scrub_text
from chatprobe.stats import describe_sorted

__all__ = [
    "ALL_PROBES",
    "APPLICATION_ID",
    "MIGRATIONS",
    "PROBE_COLUMNS",
    "SCHEMA_VERSION",
    "History",
    "ProbeRow",
    "StoredEvent",
    "StoredFinding",
    "TargetRow",
]

APPLICATION_ID = 0x63707262  # "cprb"
ALL_PROBES = "*"
"""The ``hourly`` row pooling every probe of a target and hour (uptime, pooled percentiles)."""
RATE_LIMITED = ErrorClass.RATE_LIMITED.value

PROBE_COLUMNS = (
    "status",
    "error_class",
    "ttfb_ms",
    "ttft_ms",
    "itl_ms",
    "e2e_ms",
    "total_ms",
    "output_tokens",
    "prompt_tokens",
    "request_id",
    "server_request_id",
)
"""Load-sample fields (:data:`chatprobe.results.samples.SAMPLE_FIELDS`) kept as columns of
``probes`` for queries; the whole sample is in ``probes.sample``."""


# ---------------------------------------------------------------------------- migrations


def _v1(db: sqlite3.Connection) -> None:
    """The first schema."""
    for statement in (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE targets (
            id INTEGER PRIMARY KEY,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            model_id TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL DEFAULT '',
            data_source TEXT NOT NULL DEFAULT 'live',
            UNIQUE (provider, model, url, data_source))""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started_t REAL NOT NULL,
            ended_t REAL,
            ended TEXT,
            pid INTEGER,
            host TEXT NOT NULL DEFAULT '',
            version TEXT NOT NULL DEFAULT '',
            argv TEXT NOT NULL DEFAULT '[]',
            every_s REAL,
            clock REAL)""",
        """CREATE TABLE probes (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            target_id INTEGER NOT NULL REFERENCES targets(id),
            round INTEGER NOT NULL,
            t REAL NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            input_tokens INTEGER,
            counted INTEGER NOT NULL,
            up INTEGER,
            outcome TEXT NOT NULL,
            case_outcome TEXT,
            status INTEGER,
            error_class TEXT,
            ttfb_ms REAL,
            ttft_ms REAL,
            itl_ms REAL,
            e2e_ms REAL,
            total_ms REAL,
            output_tokens INTEGER,
            prompt_tokens INTEGER,
            request_id TEXT,
            server_request_id TEXT,
            sample TEXT NOT NULL)""",
        "CREATE INDEX probes_target_t ON probes (target_id, t)",
        "CREATE INDEX probes_target_name ON probes (target_id, name, id)",
        """CREATE TABLE findings (
            probe_id INTEGER NOT NULL REFERENCES probes(id) ON DELETE CASCADE,
            check_name TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL,
            message TEXT NOT NULL,
            path TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX findings_probe ON findings (probe_id)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            target_id INTEGER NOT NULL REFERENCES targets(id),
            probe_id INTEGER REFERENCES probes(id) ON DELETE SET NULL,
            t REAL NOT NULL,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX events_target_t ON events (target_id, t)",
    ):
        db.execute(statement)


def _v2(db: sqlite3.Connection) -> None:
    """Retention (hourly rollups) and webhook delivery status."""
    for statement in (
        """CREATE TABLE hourly (
            target_id INTEGER NOT NULL REFERENCES targets(id),
            hour REAL NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            requests INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            errored INTEGER NOT NULL,
            rate_limited INTEGER NOT NULL,
            ttft TEXT NOT NULL DEFAULT '{}',
            itl TEXT NOT NULL DEFAULT '{}',
            e2e TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (target_id, hour, name))""",
        """CREATE TABLE hourly_findings (
            target_id INTEGER NOT NULL REFERENCES targets(id),
            hour REAL NOT NULL,
            name TEXT NOT NULL,
            check_name TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL,
            count INTEGER NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (target_id, hour, name, check_name, status))""",
        "ALTER TABLE events ADD COLUMN delivered TEXT",
    ):
        db.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2)
"""``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``."""
SCHEMA_VERSION = len(MIGRATIONS)


# ---------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class TargetRow:
    id: int
    provider: str
    model: str
    model_id: str
    url: str
    data_source: str

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class StoredFinding:
    check: str
    severity: str
    status: str  # fail | warn | deviation | expected
    message: str
    path: str = ""


@dataclass(slots=True)
class ProbeRow:
    """One probe (one request) to write."""

    run_id: int
    target_id: int
    round: int
    t: float
    kind: str  # contract | latency
    name: str  # case name, or latency-<tokens>
    counted: bool  # counted in uptime (expects success)
    outcome: str  # ok | an error class
    sample: dict[str, Any]  # chatprobe.results.samples.build_sample
    input_tokens: int | None = None  # latency probes: the requested prompt size
    case_outcome: str | None = None  # contract: passed | failed | deviation
    findings: list[StoredFinding] = field(default_factory=list)
    detail: str = ""  # the error in one line (for an outage event's message)

    @property
    def up(self) -> int | None:
        """1 ok, 0 errored, None when not counted or rate-limited."""
        if not self.counted or self.outcome == RATE_LIMITED:
            return None
        return 1 if self.outcome == "ok" else 0

    @property
    def availability(self) -> int | None:
        """What the probe says about the provider being up: a counted probe's ``up``; for
        another probe 0 when the provider could not serve it at all (no response, or a 5xx:
        an error case answered 503 instead of 401 saw the outage too), else None (its
        expected error says nothing about availability).

        Without this, an outage that began just as an error case was probed went unseen:
        the 503 aborted the round, its Retry-After held the monitor until the outage ended,
        and the next counted probe succeeded."""
        if self.counted:
            return self.up
        status = self.sample.get("status")
        if self.outcome != RATE_LIMITED and (status is None or status >= 500):
            return 0
        return None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    target_id: int
    probe_id: int | None
    event: Event
    delivered: str | None = None


# ---------------------------------------------------------------------------- the store


def _json(obj: Any) -> str:
    return orjson.dumps(scrub_obj(obj), option=orjson.OPT_NON_STR_KEYS).decode()


class History:
    """One history database, safe to share between threads (one connection, one lock).

    ``clock`` (the ``--clock`` factor) is recorded when the file is created; opening it
    later with another factor is a :class:`ConfigError` (the stored times would not line
    up). ``create=False`` refuses a path that does not exist (reports).
    """

    def __init__(
        self, path: Path | str, *, clock: float | None = None, create: bool = True
    ) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ConfigError("no such monitor database", path=str(self.path))
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self.db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self.db.execute("PRAGMA busy_timeout = 30000")
            self._check_file()
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self.migrate()
            self.clock = self._clock(clock)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"not a usable monitor database ({exc})", path=str(self.path)
            ) from None

    # ------------------------------------------------------------------ opening
    def _check_file(self) -> None:
        app = self.db.execute("PRAGMA application_id").fetchone()[0]
        tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app != APPLICATION_ID and (app or tables):
            raise ConfigError(
                "not a chatprobe monitor database (another application's SQLite file)",
                path=str(self.path),
            )
        version = self.version
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"written by a newer chatprobe (schema version {version}, this one reads up to "
                f"{SCHEMA_VERSION}): upgrade chatprobe",
                path=str(self.path),
            )

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, until: int = SCHEMA_VERSION) -> None:
        """Apply the pending migrations up to version ``until``, each in one transaction."""
        with self._lock:
            while self.version < until:
                step = self.version
                with self.transaction():
                    if step == 0:
                        self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    MIGRATIONS[step](self.db)
                    self.db.execute(f"PRAGMA user_version = {step + 1}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _clock(self, factor: float | None) -> MonitorClock:
        with self.transaction() as db:
            stored = self._meta("clock")
            if stored is None:
                import time

                epoch = time.time()
                chosen = 1.0 if factor is None else float(factor)
                db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("clock", repr(chosen)),
                        ("epoch", repr(epoch)),
                        ("created_by", f"chatprobe {__version__}"),
                    ],
                )
                return MonitorClock(chosen, epoch)
            epoch_text = self._meta("epoch") or "0"
        if factor is not None and float(stored) != float(factor):
            raise ConfigError(
                f"this history was recorded with --clock {float(stored):g}; continue it with "
                f"the same factor (or use another --db)",
                path=str(self.path),
            )
        return MonitorClock(float(stored), float(epoch_text))

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs and targets
    def start_run(self, *, argv: Sequence[str], every_s: float) -> int:
        """A new run; earlier runs that never ended are marked ``lost`` (killed or crashed),
        ending at their last probe."""
        now = self.clock.now()
        with self.transaction() as db:
            db.execute(
                """UPDATE runs SET ended = 'lost',
                   ended_t = coalesce((SELECT max(t) FROM probes WHERE run_id = runs.id),
                                      started_t)
                   WHERE ended IS NULL"""
            )
            cursor = db.execute(
                "INSERT INTO runs (started_t, pid, host, version, argv, every_s, clock) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    os.getpid(),
                    socket.gethostname(),
                    __version__,
                    _json([scrub_text(a) for a in argv]),
                    every_s,
                    self.clock.factor,
                ),
            )
            return int(cursor.lastrowid or 0)

    def end_run(self, run_id: int, how: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET ended = ?, ended_t = ? WHERE id = ?",
                (how, self.clock.now(), run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT id, started_t, ended_t, ended, pid, host, version, argv, every_s, clock,"
                " (SELECT count(*) FROM probes WHERE run_id = runs.id) FROM runs ORDER BY id"
            ).fetchall()
        keys = (
            "id",
            "started_t",
            "ended_t",
            "ended",
            "pid",
            "host",
            "version",
            "argv",
            "every_s",
            "clock",
            "probes",
        )
        out = []
        for row in rows:
            item = dict(zip(keys, row, strict=True))
            item["argv"] = orjson.loads(item["argv"])
            out.append(item)
        return out

    def target(
        self, provider: str, model: str, *, model_id: str = "", url: str = "", data_source: str
    ) -> TargetRow:
        """The target's row, created on first use. Live and emulated probes of one provider
        and model are two targets: a history never mixes them in one figure."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO targets (provider, model, model_id, url, data_source) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider, model, url, data_source) "
                "DO UPDATE SET model_id = excluded.model_id",
                (provider, model, model_id, url, data_source),
            )
            row = db.execute(
                "SELECT id, provider, model, model_id, url, data_source FROM targets "
                "WHERE provider = ? AND model = ? AND url = ? AND data_source = ?",
                (provider, model, url, data_source),
            ).fetchone()
        return TargetRow(*row)

    def targets(self) -> list[TargetRow]:
        with self._lock:
            rows = self.db.execute(
                "SELECT id, provider, model, model_id, url, data_source FROM targets ORDER BY id"
            ).fetchall()
        return [TargetRow(*row) for row in rows]

    def next_round(self, target_id: int) -> int:
        with self._lock:
            row = self.db.execute(
                "SELECT max(round) FROM probes WHERE target_id = ?", (target_id,)
            ).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    # ------------------------------------------------------------------ writing probes
    def write_probe(self, probe: ProbeRow) -> tuple[int, list[StoredEvent]]:
        """Write one probe, its findings and the availability and finding events it causes,
        in one transaction; returns the probe's id and the events."""
        with self.transaction() as db:
            events: list[Event] = []
            up = probe.availability
            if up is not None:
                # the state is the last availability event's (up before the first)
                row = db.execute(
                    "SELECT kind FROM events WHERE target_id = ? AND kind IN (?, ?) "
                    "ORDER BY id DESC LIMIT 1",
                    (probe.target_id, OUTAGE_STARTED, OUTAGE_ENDED),
                ).fetchone()
                previous = None if row is None else int(row[0] == OUTAGE_ENDED)
                down_since = None
                if up == 1 and previous == 0:
                    started = db.execute(
                        "SELECT max(t) FROM events WHERE target_id = ? AND kind = ?",
                        (probe.target_id, OUTAGE_STARTED),
                    ).fetchone()
                    down_since = None if started[0] is None else float(started[0])
                event = availability_change(
                    previous,
                    up,
                    t=probe.t,
                    probe=probe.name,
                    outcome=probe.outcome,
                    detail=scrub_text(probe.detail),
                    down_since=down_since,
                )
                if event is not None:
                    events.append(event)
            status = probe.sample.get("status")
            if probe.kind == "contract" and participates(status):
                row = db.execute(
                    "SELECT id FROM probes WHERE target_id = ? AND name = ? AND status IS NOT "
                    "NULL AND status < 500 AND status <> 429 ORDER BY id DESC LIMIT 1",
                    (probe.target_id, probe.name),
                ).fetchone()
                previous_findings = {} if row is None else self._findings_of(int(row[0]))
                current = {
                    f.check: FindingState(f.severity, f.status, f.message)
                    for f in probe.findings
                    if f.status in FINDING_STATUSES
                }
                events += finding_changes(previous_findings, current, case=probe.name, t=probe.t)
            sample = probe.sample
            cursor = db.execute(
                f"INSERT INTO probes (run_id, target_id, round, t, kind, name, input_tokens, "
                f"counted, up, outcome, case_outcome, {', '.join(PROBE_COLUMNS)}, sample) "
                f"VALUES ({', '.join('?' * (12 + len(PROBE_COLUMNS)))})",
                (
                    probe.run_id,
                    probe.target_id,
                    probe.round,
                    probe.t,
                    probe.kind,
                    probe.name,
                    probe.input_tokens,
                    int(probe.counted),
                    up,
                    probe.outcome,
                    probe.case_outcome,
                    *(sample.get(name) for name in PROBE_COLUMNS),
                    _json(sample),
                ),
            )
            probe_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO findings (probe_id, check_name, severity, status, message, path) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (probe_id, f.check, f.severity, f.status, scrub_text(f.message), f.path)
                    for f in probe.findings
                ],
            )
            stored = [self._insert_event(probe.target_id, probe_id, e) for e in events]
        return probe_id, stored

    def _findings_of(self, probe_id: int) -> dict[str, FindingState]:
        rows = self.db.execute(
            "SELECT check_name, severity, status, message FROM findings WHERE probe_id = ? "
            f"AND status IN ({', '.join('?' * len(FINDING_STATUSES))})",
            (probe_id, *FINDING_STATUSES),
        ).fetchall()
        return {check: FindingState(sev, status, msg) for check, sev, status, msg in rows}

    def _insert_event(self, target_id: int, probe_id: int | None, event: Event) -> StoredEvent:
        cursor = self.db.execute(
            "INSERT INTO events (target_id, probe_id, t, kind, subject, message, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                target_id,
                probe_id,
                event.t,
                event.kind,
                event.subject,
                scrub_text(event.message),
                _json(event.details),
            ),
        )
        return StoredEvent(int(cursor.lastrowid or 0), target_id, probe_id, event)

    def end_round(self, target_id: int, *, t: float, rule: LatencyRule) -> list[StoredEvent]:
        """The latency-shift test after a round (its own transaction)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT details FROM events WHERE target_id = ? AND kind = ? "
                "ORDER BY id DESC LIMIT 1",
                (target_id, LATENCY_SHIFT),
            ).fetchone()
            since = float(orjson.loads(row[0]).get("since", 0.0)) if row else float("-inf")
            column = {"ttft_ms": "ttft_ms", "e2e_ms": "e2e_ms", "itl_ms": "itl_ms"}[rule.metric]
            where = f"target_id = ? AND up = 1 AND {column} IS NOT NULL AND t >= ?"
            rounds = db.execute(
                f"SELECT DISTINCT round FROM probes WHERE {where} ORDER BY round DESC LIMIT ?",
                (target_id, since, rule.max_rounds),
            ).fetchall()
            if not rounds:
                return []
            first = min(int(r[0]) for r in rounds)  # the oldest round a window can hold
            rows = db.execute(
                f"SELECT round, name, {column}, t, id FROM probes WHERE {where} AND round >= ? "
                f"UNION ALL SELECT * FROM (SELECT round, name, {column}, t, id FROM probes "
                f"WHERE {where} AND round < ? ORDER BY id DESC LIMIT ?) ORDER BY 5",
                (target_id, since, first, target_id, since, first, rule.max_baseline),
            ).fetchall()
            samples = [
                LatencySample(int(r), str(n), float(v), float(tt)) for r, n, v, tt, _ in rows
            ]
            event = latency_shift(samples, rule, t=t)
            if event is None:
                return []
            return [self._insert_event(target_id, None, event)]

    def mark_delivered(self, event_id: int, outcome: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE events SET delivered = ? WHERE id = ?", (outcome, event_id))

    # ------------------------------------------------------------------ uptime
    def uptime(
        self,
        target_id: int,
        now: float,
        windows: Sequence[tuple[str, float]] = UPTIME_WINDOWS,
    ) -> list[Uptime]:
        """Uptime per trailing window ending ``now`` (:mod:`chatprobe.monitor.uptime`)."""
        out = []
        with self._lock:
            for label, seconds in windows:
                start = now - seconds
                ok, errored, limited = self.db.execute(
                    "SELECT coalesce(sum(up = 1), 0), coalesce(sum(up = 0), 0), "
                    "coalesce(sum(outcome = ?), 0) FROM probes "
                    "WHERE target_id = ? AND counted = 1 AND t > ? AND t <= ?",
                    (RATE_LIMITED, target_id, start, now),
                ).fetchone()
                h_ok, h_err, h_rl = self.db.execute(
                    "SELECT coalesce(sum(ok), 0), coalesce(sum(errored), 0), "
                    "coalesce(sum(rate_limited), 0) FROM hourly "
                    "WHERE target_id = ? AND name = ? AND hour >= ? AND hour <= ?",
                    (target_id, ALL_PROBES, start, now),
                ).fetchone()
                counts = (int(ok + h_ok), int(errored + h_err), int(limited + h_rl))
                out.append(Uptime(label, seconds, *counts))
        return out

    # ------------------------------------------------------------------ retention
    def rollup(self, cutoff: float) -> int:
        """Roll raw probes of whole hours before ``cutoff`` (monitor time) into hourly rows
        and delete them (module docstring); returns how many probes were rolled up."""
        hour_cut = (cutoff // 3600) * 3600
        with self.transaction() as db:
            rows = db.execute(
                "SELECT id, target_id, t, kind, name, counted, up, outcome, ttft_ms, itl_ms, "
                "e2e_ms FROM probes WHERE t < ? ORDER BY target_id, t",
                (hour_cut,),
            ).fetchall()
            if not rows:
                return 0
            groups: dict[tuple[int, float, str], list[tuple[Any, ...]]] = {}
            for row in rows:
                hour = (row[2] // 3600) * 3600
                groups.setdefault((int(row[1]), hour, str(row[4])), []).append(row)
                groups.setdefault((int(row[1]), hour, ALL_PROBES), []).append(row)
            for (target_id, hour, name), items in groups.items():
                counted = [r for r in items if r[5]]
                ok = [r for r in items if r[6] == 1]
                dists = []
                for col in (8, 9, 10):
                    values = sorted(float(r[col]) for r in ok if r[col] is not None)
                    dists.append(_json(describe_sorted(values)))
                db.execute(
                    "INSERT INTO hourly (target_id, hour, name, kind, requests, ok, errored, "
                    "rate_limited, ttft, itl, e2e) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (target_id, hour, name) DO UPDATE SET "
                    "requests = requests + excluded.requests, ok = ok + excluded.ok, "
                    "errored = errored + excluded.errored, "
                    "rate_limited = rate_limited + excluded.rate_limited",
                    (
                        target_id,
                        hour,
                        name,
                        items[0][3] if name != ALL_PROBES else ALL_PROBES,
                        len(items),
                        len(ok),
                        sum(1 for r in counted if r[6] == 0),
                        sum(1 for r in counted if r[7] == RATE_LIMITED),
                        *dists,
                    ),
                )
            db.execute(
                "INSERT INTO hourly_findings (target_id, hour, name, check_name, severity, "
                "status, count, message) "
                "SELECT p.target_id, CAST(p.t / 3600 AS INTEGER) * 3600.0, p.name, "
                "f.check_name, max(f.severity), f.status, count(*), min(f.message) "
                "FROM findings f JOIN probes p ON p.id = f.probe_id WHERE p.t < ? "
                "GROUP BY 1, 2, 3, 4, 6 "
                "ON CONFLICT (target_id, hour, name, check_name, status) DO UPDATE SET "
                "count = count + excluded.count",
                (hour_cut,),
            )
            db.execute("DELETE FROM probes WHERE t < ?", (hour_cut,))
        return len(rows)

    # ------------------------------------------------------------------ reading
    def meta(self) -> dict[str, str]:
        with self._lock:
            return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    def probes(self, target_id: int) -> list[dict[str, Any]]:
        """The target's raw probes, oldest first (without the sample JSON)."""
        keys = (
            "id",
            "run_id",
            "round",
            "t",
            "kind",
            "name",
            "input_tokens",
            "counted",
            "up",
            "outcome",
            "case_outcome",
            *PROBE_COLUMNS,
        )
        with self._lock:
            rows = self.db.execute(
                f"SELECT {', '.join(keys)} FROM probes WHERE target_id = ? ORDER BY t, id",
                (target_id,),
            ).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def sample(self, probe_id: int) -> dict[str, Any]:
        with self._lock:
            row = self.db.execute("SELECT sample FROM probes WHERE id = ?", (probe_id,)).fetchone()
        return {} if row is None else dict(orjson.loads(row[0]))

    def findings(self, target_id: int) -> list[dict[str, Any]]:
        """Findings of the target's raw probes with their probe's time and name."""
        keys = ("probe_id", "t", "name", "check", "severity", "status", "message", "path")
        with self._lock:
            rows = self.db.execute(
                "SELECT p.id, p.t, p.name, f.check_name, f.severity, f.status, f.message, "
                "f.path FROM findings f JOIN probes p ON p.id = f.probe_id "
                "WHERE p.target_id = ? ORDER BY p.t, p.id",
                (target_id,),
            ).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def hourly(self, target_id: int) -> list[dict[str, Any]]:
        keys = ("hour", "name", "kind", "requests", "ok", "errored", "rate_limited")
        with self._lock:
            rows = self.db.execute(
                f"SELECT {', '.join(keys)}, ttft, itl, e2e FROM hourly WHERE target_id = ? "
                "ORDER BY hour, name",
                (target_id,),
            ).fetchall()
        out = []
        for row in rows:
            item = dict(zip(keys, row[: len(keys)], strict=True))
            for name, text in zip(("ttft", "itl", "e2e"), row[len(keys) :], strict=True):
                item[name] = orjson.loads(text)
            out.append(item)
        return out

    def hourly_findings(self, target_id: int) -> list[dict[str, Any]]:
        keys = ("hour", "name", "check", "severity", "status", "count", "message")
        with self._lock:
            rows = self.db.execute(
                "SELECT hour, name, check_name, severity, status, count, message "
                "FROM hourly_findings WHERE target_id = ? ORDER BY hour, name, check_name",
                (target_id,),
            ).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def events(self, target_id: int | None = None) -> list[StoredEvent]:
        query = (
            "SELECT id, target_id, probe_id, t, kind, subject, message, details, delivered "
            "FROM events"
        )
        args: tuple[Any, ...] = ()
        if target_id is not None:
            query += " WHERE target_id = ?"
            args = (target_id,)
        with self._lock:
            rows = self.db.execute(query + " ORDER BY t, id", args).fetchall()
        return [
            StoredEvent(
                int(i),
                int(tid),
                None if pid is None else int(pid),
                Event(str(kind), float(t), str(subject), str(msg), dict(orjson.loads(details))),
                delivered,
            )
            for i, tid, pid, t, kind, subject, msg, details, delivered in rows
        ]

    def counts(self) -> dict[str, int]:
        """Rows per table (tests, the summary line)."""
        with self._lock:
            return {
                table: int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("probes", "findings", "events", "hourly", "runs", "targets")
            }

    def integrity(self) -> str:
        """``PRAGMA integrity_check`` and the foreign-key check, ``"ok"`` when both pass."""
        with self._lock:
            result = str(self.db.execute("PRAGMA integrity_check").fetchone()[0])
            broken = self.db.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            return f"{len(broken)} rows break a foreign key"
        return result
