"""locust glue: one :class:`LoadSession` per process wires the user, the samples and the end.

Imported only by ``loadtests/locustfile.py`` inside the locust child (it imports gevent).
:func:`install` returns the classes the locustfile exposes: a concrete user (closed loop
``ChatUser`` or open-loop ``OpenLoopUser``) and, when chatprobe manages the run, a
``LoadTestShape`` that applies the plan's stages and ends the run itself.

Where samples go, by process role (each built by :func:`chatprobe.results.build_sample`,
encoded by :func:`~chatprobe.results.encode_sample`, written by the one
:class:`~chatprobe.results.SampleWriter`):

* local (one process): appended to ``samples.jsonl`` and flushed, one line per request.
* worker: kept in memory as JSON lines and shipped to the master every half second
  (``chatprobe_batch`` messages) and with locust's own ``report_to_master`` (every 3 s);
  when the worker's users have stopped, the rest goes in one ``chatprobe_final`` message
  with the worker's total, so the master knows it has everything. A killed worker loses at
  most its last half second.
* master: writes what ``chatprobe_batch``, ``worker_report`` and ``chatprobe_final`` bring.

How a run ends (when managed): at the planned end, when the request count is reached, or
on SIGUSR1 (``chatprobe load`` sends it on Ctrl-C), the shape's ``tick`` ends the run
(:meth:`LoadSession.end_run`: users finish the request in hand, up to the stop timeout;
the master waits for every live worker's final batch), and only then returns None so
locust quits. This order matters: locust's master fires ``test_stop`` and even quits
before the last worker reports arrive if left to itself. ``summary.json`` is written on
``quitting``; a worker that went missing is listed in ``workers.lost``, never fatal.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import orjson
from gevent.event import Event
from gevent.pool import Pool
from locust import LoadTestShape, constant, events
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from chatprobe.load.conformance import LoadChecker
from chatprobe.load.plan import EMULATOR_KEY, PLAN_ENV, RunPlan, TargetPlan, read_plan
from chatprobe.load.polite import Backoff, TargetHold, after_request
from chatprobe.load.scenario import Stage
from chatprobe.load.schedule import arrival_offsets, position_at, split_quota, tick
from chatprobe.load.summary import build_summary, read_sample_table
from chatprobe.load.user import (
    ChatStreamUser,
    OpenLoopStreamUser,
    RequestTemplate,
    stream_exchange,
)
from chatprobe.record import RequestRecord
from chatprobe.results import (
    SAMPLES,
    STATUS,
    SUMMARY,
    ProfileSnapshot,
    SampleWriter,
    build_sample,
    encode_sample,
)
from chatprobe.scrub import scrub_headers
from chatprobe.stats import percentile
from chatprobe.transport import TLSConfig, request_headers

__all__ = ["LoadSession", "PreparedTarget", "RequestFailed", "install"]

ABORT_GRACE_S = 2.0  # on an interrupt, requests in flight get this long to finish
FINAL_WAIT_S = 10.0  # after stop, how long the master waits for workers' last samples
SHIP_INTERVAL_S = 0.5  # workers send samples to the master at least this often
EXCERPTS_PER_TARGET = 3
BARE_SCENARIO = "locustfile"  # the plan of a bare `locust -f loadtests/locustfile.py` run


class RequestFailed(Exception):
    """What locust's failure table shows: the error class (and status)."""


class PreparedTarget:
    """A target with everything the hot path needs precomputed: headers, bodies, names."""

    __slots__ = (
        "excerpts",
        "headers",
        "hold",
        "index",
        "label",
        "plan",
        "request",
        "request_headers",
        "url",
    )

    def __init__(self, index: int, plan: TargetPlan) -> None:
        self.index = index
        self.plan = plan
        self.label = plan.label
        self.url = plan.url
        headers = request_headers(plan.headers, stream=True, api_key=plan.api_key())
        self.headers = headers
        self.request_headers = scrub_headers(headers)
        self.request = RequestTemplate(plan.url, headers)  # the head, encoded once
        self.excerpts = 0
        self.hold = TargetHold()  # Retry-After: until when this target's users wait


class Progress:
    """Running counts for the live display (exact, but TTFT p50 over the last 2000)."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.recent_ttft: deque[float] = deque(maxlen=2000)

    def add(self, sample: dict[str, Any]) -> None:
        self.requests += 1
        if sample.get("error_class"):
            self.errors += 1
        elif sample.get("ttft_ms") is not None and not sample.get("warmup"):
            self.recent_ttft.append(sample["ttft_ms"])

    def ttft_p50(self) -> float | None:
        if not self.recent_ttft:
            return None
        return percentile(sorted(self.recent_ttft), 50.0)


class LoadSession:
    """Everything one locust process knows about the run."""

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self.checker = LoadChecker(plan.conformance_share)  # conformance under load
        self.environment: Any = None
        self.runner: Any = None
        self.role = "local"
        self.worker_index = 0
        self.worker_label = "local"
        self.targets: list[PreparedTarget] = []
        self.bodies: list[list[bytes]] = []
        self.t_start_ns: int | None = None
        self.end_offset_s: float | None = None
        self.ended = False
        self.end_reason = ""
        self.wake = Event()  # set when the run must end early (count reached, stop asked)
        self.stopping = Event()  # set when users are being stopped
        self.stop_requested = False
        self.aborted = 0  # requests killed in flight at the end
        self.cap_hits = 0
        self.held_skips = 0  # open loop: arrivals not sent while held back
        self.produced = 0  # samples made in this process
        self.in_flight = 0  # open loop: requests in flight in this process
        self.progress = Progress()
        self.sample_file: SampleWriter | None = None
        self.pending: list[bytes] = []  # worker: JSON lines not yet shipped
        self._final_sent = False
        self._cpu_start: float | None = None
        self.worker_cpu: dict[str, float] = {}
        self._users = 0
        self._turn = 0
        self._rng = random.Random(f"chatprobe-order:{plan.seed}")
        self._last_tick: tuple[int, float] | None = None
        self._last_status = 0.0
        # request count (closed loop): a local counter, or tickets granted by the master
        self._remaining = plan.requests
        self._tickets = 0
        self._exhausted = False
        self._asking = False
        self._granted = Event()
        # master bookkeeping
        self.workers_seen: dict[str, int] = {}  # client id -> worker index
        self.worker_samples: dict[str, int] = {}
        self.worker_final: dict[str, int] = {}  # client id -> total the worker produced
        self.worker_aborted: dict[str, int] = {}
        self.worker_held_skips: dict[str, int] = {}

    # ------------------------------------------------------------------ setup
    @property
    def out_dir(self) -> Path:
        return Path(self.plan.out_dir)

    def bind(self, environment: Any, runner: Any) -> None:
        self.environment = environment
        self.runner = runner
        if isinstance(runner, WorkerRunner):
            self.role = "worker"
            self.worker_index = max(0, int(getattr(runner, "worker_index", 0)))
            self.worker_label = f"worker-{self.worker_index}"
            runner.register_message("chatprobe_grant", self._on_grant)
            runner.register_message("chatprobe_drain", self._on_drain)
            self._rng = random.Random(f"chatprobe-order:{self.plan.seed}:{self.worker_index}")
            gevent.spawn(self._ship_loop)
        elif isinstance(runner, MasterRunner):
            self.role = "master"
            runner.register_message("chatprobe_final", self._on_final)
            runner.register_message("chatprobe_batch", self._on_batch)
            runner.register_message("chatprobe_tickets", self._on_tickets)
        if self.role != "worker":
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.sample_file = SampleWriter(self.out_dir / SAMPLES)
            gevent.spawn(self._status_loop)
            if hasattr(signal, "SIGUSR1"):
                gevent.signal_handler(signal.SIGUSR1, self.request_stop)
        self.prepare_targets()

    def prepare_targets(self) -> None:
        self.targets = [PreparedTarget(i, t) for i, t in enumerate(self.plan.targets)]
        self.bodies = [
            [self._body(t.plan, messages) for messages in self.plan.prompts] for t in self.targets
        ]

    def _body(self, target: TargetPlan, messages: list[dict[str, Any]]) -> bytes:
        body: dict[str, Any] = {
            "model": target.model_id,
            "messages": messages,
            "max_tokens": self.plan.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        body.update(self.plan.request)
        body["stream"] = True
        return orjson.dumps(body)

    def next_user_index(self) -> int:
        index = self._users * self.plan.drivers + self.worker_index
        self._users += 1
        return index

    def offset_s(self, t_ns: int | None = None) -> float:
        if self.t_start_ns is None:
            return 0.0
        return ((t_ns or time.perf_counter_ns()) - self.t_start_ns) / 1e9

    # ------------------------------------------------------------------ choosing requests
    def pick(self, user_index: int, turn: int) -> tuple[PreparedTarget, bytes]:
        n = len(self.targets)
        if self.plan.mix == "together":
            target = self.targets[user_index % n]
        else:
            target = self.targets[(user_index + turn) % n]
        prompts = self.bodies[target.index]
        if self.plan.prompt_order == "random":
            body = prompts[self._rng.randrange(len(prompts))]
        else:
            body = prompts[self._turn % len(prompts)]
            self._turn += 1
        return target, body

    def take_ticket(self) -> bool:
        """May one more request start? Always yes unless the run counts requests."""
        if self.plan.requests is None:
            return True
        if self.role != "worker":
            assert self._remaining is not None
            if self._remaining <= 0:
                return False
            self._remaining -= 1
            return True
        while True:
            if self._tickets > 0:
                self._tickets -= 1
                return True
            if self._exhausted:
                return False
            if not self._asking:
                self._asking = True
                self._granted.clear()
                want = max(1, self.runner.user_count)
                self.runner.send_message("chatprobe_tickets", {"n": want})
            if not self._granted.wait(timeout=5.0):
                self._asking = False  # ask again

    def _on_grant(self, environment: Any, msg: Any, **_: Any) -> None:
        self._tickets += int(msg.data["n"])
        self._exhausted = bool(msg.data["exhausted"])
        self._asking = False
        self._granted.set()

    def _on_tickets(self, environment: Any, msg: Any, **_: Any) -> None:
        assert self._remaining is not None
        grant = max(0, min(int(msg.data["n"]), self._remaining))
        self._remaining -= grant
        self.runner.send_message(
            "chatprobe_grant",
            {"n": grant, "exhausted": self._remaining <= 0},
            client_id=msg.node_id,
        )

    def user_out_of_requests(self, user: Any) -> None:
        raise StopUser()

    # ------------------------------------------------------------------ holding back
    def new_backoff(self, index: int) -> Backoff:
        """A user's (or an open-loop driver's) backoff, its jitter seeded by the run."""
        return Backoff(rng=random.Random(f"chatprobe-backoff:{self.plan.seed}:{index}"))

    def held_for(self, target: PreparedTarget, backoff: Backoff) -> float:
        """Seconds a sender must still wait before its next request to ``target``."""
        now = time.monotonic()
        return max(target.hold.remaining(now), backoff.resume_at - now)

    def wait_turn(self, target: PreparedTarget, backoff: Backoff) -> bool:
        """Closed loop: wait out ``target``'s Retry-After and the user's backoff, cut short
        by the end of the run; False when the run is ending (send nothing)."""
        delay = self.held_for(target, backoff)
        if delay > 0 and self.stopping.wait(timeout=delay):
            return False
        return not self.stopping.is_set()

    # ------------------------------------------------------------------ one request
    def run_request(
        self,
        http: Any,
        target: PreparedTarget,
        body: bytes,
        *,
        t_sched_ns: int | None,
        backoff: Backoff,
    ) -> None:
        record = RequestRecord(
            provider=target.plan.provider,
            model=target.plan.model,
            model_id=target.plan.model_id,
            url=target.url,
            stream=True,
            request_headers=target.request_headers,
        )
        record.t_sched_ns = t_sched_ns
        try:
            received = stream_exchange(
                http, target.request, body, record, timeouts=self.plan.timeouts
            )
        except gevent.GreenletExit:
            self.aborted += 1  # stopped mid-request at the end of the run: no sample
            raise
        record.finish()
        now = time.monotonic()
        retry_after, pause = after_request(record, backoff, target.hold, now)
        if pause is not None:
            backoff.resume_at = max(backoff.resume_at, now + pause)
        broken = None
        if record.events and self.checker.due():  # timing is final: judged off its path
            broken = self.checker.judge(record, body)
        self.complete(
            record,
            target,
            received,
            retry_after_s=retry_after,
            backoff_s=pause,
            checks_broken=broken,
        )

    def complete(
        self,
        record: RequestRecord,
        target: PreparedTarget,
        received: int,
        *,
        retry_after_s: float | None = None,
        backoff_s: float | None = None,
        checks_broken: list[str] | None = None,
    ) -> None:
        """Fire locust's events and keep the exact sample."""
        sent_ns = record.t_sched_ns if record.t_sched_ns is not None else record.t0_ns
        offset = self.offset_s(sent_ns)
        position = position_at(self.plan.stages, offset)
        stage = position.stage
        if stage.rate is not None:
            users = self.in_flight
        elif self.plan.manage_end:
            users = stage.users
        else:  # a bare locust run: locust decides the count (-u, or the web UI)
            users = getattr(self.runner, "user_count", stage.users)
        excerpt = record.ok and target.excerpts < EXCERPTS_PER_TARGET
        if excerpt:
            target.excerpts += 1
        sample = build_sample(
            record,
            scenario=self.plan.scenario,
            stage=stage.name,
            users=users,
            worker=self.worker_label,
            t_offset_s=offset,
            warmup=position.warmup,
            excerpt=excerpt,
            retry_after_s=retry_after_s,
            backoff_s=backoff_s,
            checks_broken=checks_broken,
        )
        self.produced += 1
        if self.role == "worker":
            self.pending.append(encode_sample(sample))
        else:
            if self.sample_file is not None:
                self.sample_file.write(sample)
            self._count(sample)
        self._fire(record, target, received)

    def _fire(self, record: RequestRecord, target: PreparedTarget, received: int) -> None:
        fire = self.environment.events.request.fire
        name = target.label
        total = record.total_ms or 0.0
        if record.error_class is not None:
            status = f" {record.status}" if record.status else ""
            fire(
                request_type="POST",
                name=name,
                response_time=total,
                response_length=received,
                exception=RequestFailed(f"{record.error_class.value}{status}"),
                context={},
            )
            return
        fire(
            request_type="POST",
            name=name,
            response_time=total,
            response_length=received,
            exception=None,
            context={},
        )
        for kind, value in (
            ("TTFT", record.ttft_ms),
            ("ITL", record.itl_ms),
            ("E2E", record.e2e_ms),
        ):
            if value is not None:
                fire(
                    request_type=kind,
                    name=name,
                    response_time=value,
                    response_length=0,
                    exception=None,
                    context={},
                )

    def _count(self, sample: dict[str, Any]) -> None:
        self.progress.add(sample)
        if self.plan.requests is not None and self.progress.requests >= self.plan.requests:
            self.wake.set()

    # ------------------------------------------------------------------ open loop
    def drive_open_loop(self, user: Any) -> None:
        """Send requests at scheduled times, whatever the responses do, until the end."""
        ol = self.plan.open_loop
        assert ol is not None
        drivers = self.plan.drivers
        stage: Stage = self.plan.stages[0]
        rate = ol.rate / drivers
        cap = max(1, -(-ol.max_concurrency // drivers))
        limit = None
        if self.plan.requests is not None:
            limit = split_quota(self.plan.requests, drivers, self.worker_index)
        pool = Pool(cap)
        backoff = self.new_backoff(user.index)  # the driver's: one per process
        start = self.t_start_ns or time.perf_counter_ns()
        for turn, offset in enumerate(
            arrival_offsets(
                rate,
                arrival=ol.arrival,
                seed=f"{self.plan.seed}:{self.worker_index}",
                end_s=stage.duration_s,
                limit=limit,
            )
        ):
            t_sched_ns = start + int(offset * 1e9)
            delay = (t_sched_ns - time.perf_counter_ns()) / 1e9
            if delay > 0 and self.stopping.wait(timeout=delay):
                break
            if self.stopping.is_set():
                break
            target, body = self.pick(user.index, turn)
            if self.held_for(target, backoff) > 0:
                self.held_skips += 1  # held back: this arrival is not sent at all
                continue
            if pool.full():
                self.cap_hits += 1
            pool.spawn(self._one_open, user.http_for(target), target, body, t_sched_ns, backoff)
        pool.join()
        raise StopUser()

    def _one_open(
        self, http: Any, target: PreparedTarget, body: bytes, t_sched_ns: int, backoff: Backoff
    ) -> None:
        self.in_flight += 1
        try:
            self.run_request(http, target, body, t_sched_ns=t_sched_ns, backoff=backoff)
        finally:
            self.in_flight -= 1

    # ------------------------------------------------------------------ shape and end
    def shape_tick(self) -> tuple[int, float] | None:
        """The managed timeline: the current stage, or None after ending the run."""
        if self.t_start_ns is None:
            self.t_start_ns = time.perf_counter_ns()
        end = self.plan.duration_s
        if self.ended:
            return None
        offset = self.offset_s()
        current = tick(self.plan.stages, offset, self.plan.drivers)
        if self.wake.is_set() or current is None:
            self._end()
            return None
        if current != self._last_tick:
            self._last_tick = current
            return current
        # Unchanged: wait here for an early end, the next stage or the planned end.
        boundary = end
        start = 0.0
        for stage in self.plan.stages:
            start += stage.duration_s
            if start > offset:
                boundary = start
                break
        remaining = boundary - offset
        timeout = remaining if remaining <= 1.05 else 0.9
        if self.wake.wait(timeout=max(0.0, timeout)):
            self._end()
            return None
        current = tick(self.plan.stages, self.offset_s(), self.plan.drivers)
        if current is None:
            self._end()
            return None
        self._last_tick = current
        return current

    def request_stop(self) -> None:
        """SIGUSR1 (sent by ``chatprobe load`` on Ctrl-C): end early, keep what we have."""
        self.stop_requested = True
        self.wake.set()

    def _end(self) -> None:
        if self.stop_requested:
            reason = "interrupted"
        elif self.plan.requests is not None and self.progress.requests >= self.plan.requests:
            reason = "requests reached"
        else:
            reason = "completed"
        self.end_run(reason)
        return None

    def end_run(self, reason: str) -> None:
        """Stop the users, collect every worker's last samples, then let locust quit.

        Locally this is ``runner.stop()``: users finish the request in hand (up to the stop
        timeout). A master does not use its ``stop()``, which sends workers a "stop" whose
        handler then sleeps the whole stop timeout and so cannot take the "quit" that
        follows (locust's ``--processes`` parent does not wait for such workers, which then
        outlive the run). Instead each worker gets ``chatprobe_drain``: it stops its own
        users the same graceful way and sends its final batch; the master waits for those
        (a worker that went missing is lost), then lets locust quit them all at once.
        """
        if self.ended:
            return
        self.end_reason = reason
        self.end_offset_s = self.offset_s()
        grace = self.plan.stop_timeout_s
        if reason == "interrupted":
            grace = min(grace, ABORT_GRACE_S)
        if self.role == "master":
            self.runner.send_message("chatprobe_drain", {"grace": grace})
            deadline = time.monotonic() + grace + FINAL_WAIT_S
            while time.monotonic() < deadline and self._waiting_for():
                gevent.sleep(0.05)
        else:
            self.environment.stop_timeout = grace
            self.runner.stop()
        self.ended = True

    def _waiting_for(self) -> list[str]:
        """Workers that are alive and have not yet sent their final batch."""
        missing = {c.id for c in self.runner.clients.missing}
        return [
            cid for cid in self.workers_seen if cid not in self.worker_final and cid not in missing
        ]

    def _on_drain(self, environment: Any, msg: Any, **_: Any) -> None:
        """Worker: stop our users gracefully, then ship the final batch (on test_stop)."""
        grace = float(msg.data.get("grace", self.plan.stop_timeout_s))

        def drain() -> None:
            self.stopping.set()
            environment.stop_timeout = grace
            self.runner.stop()
            self._ship_final()  # test_stop already did, unless the runner was stopped

        gevent.spawn(drain)

    # ------------------------------------------------------------------ events
    def on_test_start(self, environment: Any, **_: Any) -> None:
        host = getattr(environment, "host", None)
        if self.plan.scenario == BARE_SCENARIO and host:
            target = bare_target(host)
            if target.url != self.plan.targets[0].url:  # typed in the web UI
                self.plan.targets = [target]
                self.plan.data_source = target.data_source
                self.prepare_targets()
        if self.t_start_ns is None:
            self.t_start_ns = time.perf_counter_ns()
        if self._cpu_start is None:
            self._cpu_start = time.process_time()

    def cpu_used_s(self) -> float:
        """CPU seconds this process spent since the test started (imports excluded)."""
        if self._cpu_start is None:
            return 0.0
        return time.process_time() - self._cpu_start

    def on_test_stopping(self, environment: Any, **_: Any) -> None:
        self.stopping.set()

    def on_test_stop(self, environment: Any, **_: Any) -> None:
        if self.role == "worker":
            self._ship_final()

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            data["chatprobe"] = {"blob": b"".join(batch), "n": len(batch)}

    def _ship_loop(self) -> None:
        """Worker: ship samples every half second as well, so a killed worker loses little."""
        while not self._final_sent:
            gevent.sleep(SHIP_INTERVAL_S)
            if self.pending and not self._final_sent:
                batch, self.pending = self.pending, []
                try:
                    self.runner.send_message(
                        "chatprobe_batch", {"blob": b"".join(batch), "n": len(batch)}
                    )
                except Exception:  # the master is gone or reconnecting: retry next time
                    self.pending[:0] = batch

    def _ship_final(self) -> None:
        if self._final_sent:
            return
        self._final_sent = True
        batch, self.pending = self.pending, []
        self.runner.send_message(
            "chatprobe_final",
            {
                "blob": b"".join(batch),
                "n": len(batch),
                "produced": self.produced,
                "aborted": self.aborted,
                "held_skips": self.held_skips,
                "index": self.worker_index,
                "cpu_s": self.cpu_used_s(),
            },
        )

    def on_worker_connect(self, client_id: str, **_: Any) -> None:
        self.workers_seen.setdefault(client_id, self.runner.get_worker_index(client_id))

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        batch = data.get("chatprobe")
        if batch:
            self._ingest(client_id, batch["blob"], int(batch["n"]))

    def _on_batch(self, environment: Any, msg: Any, **_: Any) -> None:
        self._ingest(msg.node_id, msg.data["blob"], int(msg.data["n"]))

    def _on_final(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data
        self.workers_seen.setdefault(msg.node_id, int(data.get("index", 0)))
        self._ingest(msg.node_id, data["blob"], int(data["n"]))
        self.worker_final[msg.node_id] = int(data["produced"])
        self.worker_aborted[msg.node_id] = int(data.get("aborted", 0))
        self.worker_held_skips[msg.node_id] = int(data.get("held_skips", 0))
        self.worker_cpu[msg.node_id] = float(data.get("cpu_s", 0.0))

    def _ingest(self, client_id: str, blob: bytes, n: int) -> None:
        if not blob:
            return
        self.workers_seen.setdefault(client_id, self.runner.get_worker_index(client_id))
        self.worker_samples[client_id] = self.worker_samples.get(client_id, 0) + n
        if self.sample_file is not None:
            self.sample_file.write_lines(blob, n)
        for line in blob.splitlines():
            try:
                self._count(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue

    # ------------------------------------------------------------------ status and summary
    def _status_loop(self) -> None:
        while True:
            self.write_status("running")
            gevent.sleep(self.plan.status_interval_s)

    def write_status(self, state: str) -> None:
        status = {
            "state": state,
            "pid": os.getpid(),
            "elapsed_s": round(self.offset_s(), 3) if self.t_start_ns else 0.0,
            "planned_s": self.plan.duration_s if self.plan.manage_end else None,
            "requests": self.progress.requests,
            "errors": self.progress.errors,
            "ttft_p50_ms": self.progress.ttft_p50(),
            "users": getattr(self.runner, "user_count", 0),
            "stage": (
                position_at(self.plan.stages, self.offset_s()).stage.name
                if self.t_start_ns
                else None
            ),
            "workers": len(self.workers_seen),
            "end_reason": self.end_reason or None,
        }
        path = self.out_dir / STATUS
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_bytes(orjson.dumps(status))
            os.replace(tmp, path)
        except OSError:
            pass  # the display is best effort; the samples are what matter

    def workers_summary(self) -> dict[str, Any]:
        if self.role != "master":
            return {"expected": 0, "reported": 0, "lost": []}
        lost = [
            {
                "worker": f"worker-{index}",
                "client_id": cid,
                "samples_received": self.worker_samples.get(cid, 0),
            }
            for cid, index in sorted(self.workers_seen.items(), key=lambda kv: kv[1])
            if cid not in self.worker_final
        ]
        incomplete = [
            {
                "worker": f"worker-{self.workers_seen[cid]}",
                "produced": produced,
                "received": self.worker_samples.get(cid, 0),
            }
            for cid, produced in self.worker_final.items()
            if produced != self.worker_samples.get(cid, 0)
        ]
        return {
            "expected": self.plan.drivers,
            "seen": len(self.workers_seen),
            "reported": len(self.worker_final),
            "lost": lost,
            "incomplete": incomplete,
        }

    def client_cpu(self) -> dict[str, Any]:
        """CPU the load generator used: the cost per request, and a saturation hint."""
        own = self.cpu_used_s()
        workers = {
            f"worker-{self.workers_seen.get(cid, 0)}": round(cpu, 3)
            for cid, cpu in sorted(self.worker_cpu.items())
        }
        generating = sum(self.worker_cpu.values()) if self.role == "master" else own
        wall = self.end_offset_s or self.offset_s()
        return {
            "process": self.role,
            "cpu_s": round(generating, 3),
            "master_cpu_s": round(own, 3) if self.role == "master" else None,
            "workers": workers,
            "cpu_ms_per_request": (
                generating * 1000 / self.progress.requests if self.progress.requests else None
            ),
            "busy_fraction": (
                generating / (wall * max(1, len(self.worker_cpu) if self.role == "master" else 1))
                if wall
                else None
            ),
        }

    def on_quitting(self, environment: Any, **_: Any) -> None:
        if self.role == "worker":
            return
        if self.sample_file is not None:
            self.sample_file.close()
        interrupted = False
        if not self.ended:
            if self.plan.manage_end:
                interrupted = True
                self.end_reason = "interrupted"
            else:
                self.end_reason = "locust stopped"
            self.end_offset_s = self.offset_s() if self.t_start_ns else None
        elif self.end_reason == "interrupted":
            interrupted = True
        aborted = self.aborted + sum(self.worker_aborted.values())
        summary = build_summary(
            self.plan,
            read_sample_table(self.out_dir / SAMPLES),
            run_id=self.out_dir.name,
            profiles=ProfileSnapshot.read(self.out_dir),
            end_offset_s=self.end_offset_s,
            interrupted=interrupted,
            end_reason=self.end_reason,
            workers=self.workers_summary(),
            aborted=aborted,
            cap_hits=self.cap_hits,
            held_skips=self.held_skips + sum(self.worker_held_skips.values()),
            client_cpu=self.client_cpu(),
        )
        from chatprobe.results import write_json_atomic

        write_json_atomic(self.out_dir / SUMMARY, summary)
        self.write_status("done")


# ---------------------------------------------------------------------------- plans


def plan_from_environment() -> RunPlan:
    """The plan ``chatprobe load`` wrote, or one for a bare ``locust -f`` run (see docs)."""
    path = os.environ.get(PLAN_ENV)
    if path:
        return read_plan(path)
    return _bare_plan()


def bare_target(host: str | None) -> TargetPlan:
    """The one target of a bare ``locust -f loadtests/locustfile.py --host URL`` run.

    The provider is the ``/<provider>/v1`` path segment of the host when it names a profile
    (the emulator's layout), else ``$CHATPROBE_PROVIDER`` (default openrouter); the model is
    ``$CHATPROBE_MODEL`` or the profile's first model that is not a rate-limited ``:free``
    variant. A loopback host gets the emulator's demo key, any other host the profile's key
    variable; ``$CHATPROBE_API_KEY`` overrides both.
    """
    from chatprobe.profiles import list_profiles, load_profile

    provider = os.environ.get("CHATPROBE_PROVIDER")
    if host and not provider:
        segments = [s for s in urlsplit(host).path.split("/") if s]
        provider = next((s for s in segments if s in list_profiles()), None)
    profile = load_profile(provider or "openrouter")
    model_name = os.environ.get("CHATPROBE_MODEL") or next(
        (name for name, m in profile.models.items() if not m.free), next(iter(profile.models))
    )
    info = profile.model(model_name)
    base = (host or profile.base_url).rstrip("/")
    loopback = urlsplit(base).hostname in ("127.0.0.1", "localhost", "::1")
    explicit = os.environ.get("CHATPROBE_API_KEY")
    return TargetPlan(
        provider=profile.name,
        model=info.name,
        model_id=info.id,
        url=base + "/chat/completions",
        data_source="emulated" if loopback else "live",
        headers=dict(profile.headers),
        key_env="CHATPROBE_API_KEY" if explicit else (None if loopback else profile.api_key_env),
        demo_key=None if explicit or not loopback else EMULATOR_KEY,
    )


def _bare_plan() -> RunPlan:
    """A plan for a bare locust run: :func:`bare_target`, one prompt, locust's own end.

    In the web UI the host is typed after start-up: the target is resolved again from
    locust's host when the test starts (:meth:`LoadSession.on_test_start`).
    """
    from chatprobe.load.prompts import build_prompts
    from chatprobe.load.scenario import PromptSpec

    target = bare_target(_host_from_argv())
    out = os.environ.get("CHATPROBE_OUT")
    if not out:
        from chatprobe.results import new_run_id, results_root

        out = str(results_root() / new_run_id())
    prompt = os.environ.get("CHATPROBE_PROMPT")
    spec = PromptSpec(texts=(prompt,)) if prompt else PromptSpec()
    users = int(_option_from_argv(("-u", "--users")) or 1)
    return RunPlan(
        scenario=BARE_SCENARIO,
        out_dir=out,
        data_source=target.data_source,
        targets=[target],
        prompts=build_prompts(spec, 1),
        stages=[Stage(f"{users} users", 10**9, users)],
        max_tokens=int(os.environ.get("CHATPROBE_MAX_TOKENS") or 64),
        manage_end=False,
        tls=TLSConfig.resolve(),  # $SSL_CERT_FILE / $REQUESTS_CA_BUNDLE, as chatprobe load
    )


def _option_from_argv(names: tuple[str, ...]) -> str | None:
    import sys

    argv = sys.argv
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _host_from_argv() -> str | None:
    return _option_from_argv(("-H", "--host")) or os.environ.get("LOCUST_HOST")


# ---------------------------------------------------------------------------- install


def install(plan: RunPlan | None = None) -> dict[str, type]:
    """Register the event hooks and return the classes a locustfile must expose."""
    plan = plan or plan_from_environment()
    session = LoadSession(plan)

    def on_init(environment: Any, runner: Any = None, **_: Any) -> None:
        session.bind(environment, runner or environment.runner)
        if not plan.manage_end and session.role != "worker":
            _write_bare_meta(session)

    events.init.add_listener(on_init)
    events.test_start.add_listener(session.on_test_start)
    events.test_stopping.add_listener(session.on_test_stopping)
    events.test_stop.add_listener(session.on_test_stop)
    events.report_to_master.add_listener(session.on_report_to_master)
    events.worker_report.add_listener(session.on_worker_report)
    events.worker_connect.add_listener(session.on_worker_connect)
    events.quitting.add_listener(session.on_quitting)

    host = plan.targets[0].url.rsplit("/chat/completions", 1)[0]
    attrs: dict[str, Any] = {
        "session": session,
        "abstract": False,
        "host": host,
        "wait_time": constant(plan.think_time_s),
    }
    classes: dict[str, type] = {}
    if plan.open_loop is not None:
        attrs["concurrency"] = max(1, -(-plan.open_loop.max_concurrency // plan.drivers))
        classes["OpenLoopUser"] = type("OpenLoopUser", (OpenLoopStreamUser,), attrs)
    else:
        classes["ChatUser"] = type("ChatUser", (ChatStreamUser,), attrs)
    if plan.manage_end:
        classes["ChatprobeShape"] = type(
            "ChatprobeShape",
            (LoadTestShape,),
            {"tick": lambda self: session.shape_tick(), "abstract": False},
        )
    return classes


def _write_bare_meta(session: LoadSession) -> None:
    """A bare ``locust -f`` run has no parent to write meta.json (and the profile
    snapshot): write them here."""
    from chatprobe.profiles import load_profile
    from chatprobe.results import write_meta, write_profiles

    plan = session.plan
    session.out_dir.mkdir(parents=True, exist_ok=True)
    write_meta(
        session.out_dir,
        kind="load",
        data_source=plan.data_source,
        providers=[t.provider for t in plan.targets],
        models=[t.model for t in plan.targets],
        notes=[f"bare locust run on {socket.gethostname()}"],
        scenario=plan.scenario,
    )
    write_profiles(session.out_dir, [load_profile(t.provider) for t in plan.targets])
