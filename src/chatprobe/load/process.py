"""One locust process's run: the load engine's collaborators, wired once, and locust's hooks.

:class:`LoadRun` owns one of each part and connects them one way (no part knows the run):

* :class:`~chatprobe.load.targets.RequestChooser`: what each request is;
* :class:`~chatprobe.load.quota.RequestQuota`: whether one more may start;
* :class:`~chatprobe.load.timeline.Timeline` and :class:`~chatprobe.load.timeline.RunEnd`:
  where a request falls in the plan, the shape and the end of the run;
* :class:`~chatprobe.load.request.RequestPath`: sending one request and keeping its sample;
* a :class:`~chatprobe.load.sink.SampleSink` for the process's role (local, worker,
  master) and :class:`~chatprobe.load.locust_stats.LocustStats` for locust's own tables;
* :class:`~chatprobe.load.status.Progress` for the live ``status.json``.

There is one run per process (:func:`current_run`): the users
(:mod:`chatprobe.load.users`) find it there, the plan comes from :func:`use_plan` or the
environment (:func:`chatprobe.load.bare.plan_from_environment`). :func:`install_hooks`
registers the run's locust event listeners once; importing :mod:`chatprobe.load.users`
calls it, so a locustfile that only subclasses :class:`chatprobe.load.ChatUser` is wired
too. ``summary.json`` is written on ``quitting``; a worker that went missing is listed in
``workers.lost``, never fatal.

Locust child only (gevent).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from chatprobe.kernelclock import keep_timestamping_on
from chatprobe.load.bare import BARE_SCENARIO, bare_target, plan_from_environment, write_bare_meta
from chatprobe.load.idlegate import TURN_SHARE_LIMIT
from chatprobe.load.locust_stats import LocustStats
from chatprobe.load.loopwatch import (
    LOOP_LAG_LIMIT_MS,
    LoopWatch,
    freeze_startup_objects,
    warm_caller_lookup,
    worst_of,
)
from chatprobe.load.plan import RunPlan
from chatprobe.load.polite import Backoff
from chatprobe.load.quota import RequestQuota
from chatprobe.load.request import RequestPath
from chatprobe.load.scenario import Stage
from chatprobe.load.sink import LocalSink, MasterSink, SampleSink, WorkerSink
from chatprobe.load.status import Progress, write_status
from chatprobe.load.summary import build_summary, read_sample_table
from chatprobe.load.targets import PreparedTarget, RequestChooser
from chatprobe.load.timeline import RunEnd, Timeline
from chatprobe.load.workloads import SessionMaker, warm_up
from chatprobe.results import (
    LOCUST_TIMINGS,
    SAMPLES,
    SUMMARY,
    ProfileSnapshot,
    write_json_atomic,
)

__all__ = ["LoadRun", "PlanShape", "current_run", "install_hooks", "use_plan"]


class LoadRun:
    """Everything one locust process knows about the run (module docstring)."""

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self.role = "local"
        self.worker_index = 0
        self.environment: Any = None
        self.runner: Any = None
        self.timeline = Timeline(plan)
        self.end = RunEnd(plan, self.timeline)
        self.quota = RequestQuota(plan.requests)
        self.chooser = RequestChooser(plan)
        self.sessions = SessionMaker(plan, self.chooser)  # conversations (a plan with one)
        self.stats = LocustStats()
        self.progress = Progress()
        self.sink: SampleSink = SampleSink()  # replaced by the role's sink in bind()
        self.path = RequestPath(plan, self.timeline, self.sink, self.stats, users_at=self.users_at)
        self.in_flight = 0  # open loop: requests in flight in this process
        self.cap_hits = 0  # open loop: arrivals that found the concurrency cap full
        self.held_skips = 0  # open loop: arrivals not sent while held back
        self._users = 0
        self._cpu_start: float | None = None
        self.loop = LoopWatch()  # the event loop's wake-up lateness (load processes)

    @property
    def out_dir(self) -> Path:
        return Path(self.plan.out_dir)

    # ------------------------------------------------------------------ wiring
    def bind(self, environment: Any, runner: Any) -> None:
        """Take this process's role and build the parts that depend on it."""
        self.environment = environment
        self.runner = runner
        sink: SampleSink
        waiting_for: Any = list
        if isinstance(runner, WorkerRunner):
            self.role = "worker"
            self.worker_index = max(0, int(getattr(runner, "worker_index", 0)))
            self.chooser = RequestChooser(self.plan, salt=f":{self.worker_index}")
            self.sessions = SessionMaker(self.plan, self.chooser, worker_index=self.worker_index)
            shipping = WorkerSink(runner, self._final_totals)
            environment.events.report_to_master.add_listener(shipping.on_report_to_master)
            shipping.start()
            sink = shipping
        elif isinstance(runner, MasterRunner):
            self.role = "master"
            self.out_dir.mkdir(parents=True, exist_ok=True)
            ingest = MasterSink(self.out_dir / SAMPLES, runner, self._count)
            environment.events.worker_report.add_listener(ingest.on_worker_report)
            environment.events.worker_connect.add_listener(ingest.on_worker_connect)
            waiting_for = ingest.waiting_for
            sink = ingest
        if self.role != "worker":
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if self.role == "local":
                sink = LocalSink(self.out_dir / SAMPLES, self._count)
            gevent.spawn(self._status_loop)
            if hasattr(signal, "SIGUSR1"):
                gevent.signal_handler(signal.SIGUSR1, self.end.request_stop)
            if not self.plan.manage_end:
                write_bare_meta(self.plan)
        self.sink = self.path.sink = sink
        warm_up(self.plan)
        self.path.worker = f"worker-{self.worker_index}" if self.role == "worker" else "local"
        self.quota.bind(self.role, runner)
        self.stats.bind(self.role, environment, runner)
        self.end.bind(
            self.role,
            environment,
            runner,
            requests_reached=self._requests_reached,
            waiting_for=waiting_for,
            after_drain=self._ship_final,
        )

    def _count(self, sample: dict[str, Any]) -> None:
        """Every sample this process keeps: the progress, and the request-count end."""
        self.progress.add(sample)
        if self._requests_reached():
            self.end.wake.set()

    def _requests_reached(self) -> bool:
        return self.plan.requests is not None and self.progress.requests >= self.plan.requests

    def _final_totals(self) -> dict[str, Any]:
        """What a worker's final message carries besides its samples."""
        return {
            "aborted": self.path.aborted,
            "held_skips": self.held_skips,
            "index": self.worker_index,
            "cpu_s": self.cpu_used_s(),
            "loop_lag_ms": self.loop.figures(),
            "end_turn_ms": self.path.gate.figures(),
        }

    def _ship_final(self) -> None:
        if isinstance(self.sink, WorkerSink) and not self.sink.final_sent:
            self.path.judge.flush()
            self.stats.ship_rest()
            self.sink.ship_final()

    # ------------------------------------------------------------------ for the users
    def next_user_index(self) -> int:
        index = self._users * self.plan.drivers + self.worker_index
        self._users += 1
        return index

    def users_at(self, stage: Stage) -> int:
        """The concurrency a sample records for a request sent in ``stage``."""
        if stage.rate is not None:
            return self.in_flight
        if self.plan.manage_end:
            return stage.users
        return int(getattr(self.runner, "user_count", stage.users))  # locust decides

    def new_backoff(self, index: int) -> Backoff:
        """A user's (or an open-loop driver's) backoff, its jitter seeded by the run."""
        return Backoff(rng=random.Random(f"chatprobe-backoff:{self.plan.seed}:{index}"))

    def held_for(self, target: PreparedTarget, backoff: Backoff) -> float:
        """Seconds a sender must still wait before its next request to ``target``."""
        now = time.monotonic()
        return max(target.hold.remaining(now), backoff.resume_at - now)

    def wait_turn(self, target: PreparedTarget, backoff: Backoff) -> bool:
        """Wait out ``target``'s Retry-After and the sender's backoff, cut short by the end
        of the run; False when the run is ending (send nothing)."""
        delay = self.held_for(target, backoff)
        if delay > 0 and self.end.stopping.wait(timeout=delay):
            return False
        return not self.end.stopping.is_set()

    # ------------------------------------------------------------------ events
    def on_test_start(self, environment: Any, **_: Any) -> None:
        host = getattr(environment, "host", None)
        if self.plan.scenario == BARE_SCENARIO and host:
            target = bare_target(host)
            if target.url != self.plan.targets[0].url:  # typed in the web UI
                self.plan.targets = [target]
                self.plan.data_source = target.data_source
                self.chooser.prepare()
        self.timeline.start()
        if self._cpu_start is None:
            self._cpu_start = time.process_time()
        if self.role != "master":
            keep_timestamping_on()  # before the first response: its stamps (kernelclock)
            self.path.checker.warm([t.provider for t in self.plan.targets])
            warm_caller_lookup()
            freeze_startup_objects()
            self.loop.start()

    def on_test_stopping(self, environment: Any, **_: Any) -> None:
        self.end.stopping.set()
        self.loop.stop()

    def on_test_stop(self, environment: Any, **_: Any) -> None:
        self.path.judge.flush()  # streams still waiting for their checks
        self._ship_final()

    def cpu_used_s(self) -> float:
        """CPU seconds this process spent since the test started (imports excluded)."""
        if self._cpu_start is None:
            return 0.0
        return time.process_time() - self._cpu_start

    # ------------------------------------------------------------------ status and summary
    def _status_loop(self) -> None:
        while True:
            self.write_status("running")
            gevent.sleep(self.plan.status_interval_s)

    def write_status(self, state: str) -> None:
        started = self.timeline.started
        write_status(
            self.out_dir,
            {
                "state": state,
                "pid": os.getpid(),
                "elapsed_s": round(self.timeline.offset_s(), 3) if started else 0.0,
                "planned_s": self.plan.duration_s if self.plan.manage_end else None,
                "requests": self.progress.requests,
                "errors": self.progress.errors,
                "ttft_p50_ms": self.progress.ttft_p50(),
                "users": getattr(self.runner, "user_count", 0),
                "stage": (
                    self.timeline.position(self.timeline.offset_s()).stage.name if started else None
                ),
                "workers": len(self.sink.workers_seen) if isinstance(self.sink, MasterSink) else 0,
                "end_reason": self.end.end_reason or None,
            },
        )

    def client_cpu(self) -> dict[str, Any]:
        """CPU the load generator used: the cost per request, a saturation hint, and how
        late its event loop woke (:mod:`chatprobe.load.loopwatch`; a distributed run's
        worst worker)."""
        own = self.cpu_used_s()
        master = self.sink if isinstance(self.sink, MasterSink) else None
        workers: dict[str, float] = {}
        generating = own
        if master is not None:
            workers = {
                master.worker_name(cid): round(float(final.get("cpu_s", 0.0)), 3)
                for cid, final in sorted(master.finals.items())
            }
            generating = master.final_total("cpu_s")
        wall = self.end.end_offset_s or self.timeline.offset_s()
        loop: dict[str, Any] = dict(self.loop.figures())
        turn: dict[str, Any] = dict(self.path.gate.figures())
        if master is not None:  # the worst worker's (its p99)
            finals = sorted(master.finals.items())
            loop = worst_of((master.worker_name(c), f.get("loop_lag_ms") or {}) for c, f in finals)
            turn = worst_of((master.worker_name(c), f.get("end_turn_ms") or {}) for c, f in finals)
        loop["limit_ms"] = LOOP_LAG_LIMIT_MS
        turn["share_limit"] = TURN_SHARE_LIMIT
        return {
            "process": self.role,
            "cpu_s": round(generating, 3),
            "master_cpu_s": round(own, 3) if master is not None else None,
            "workers": workers,
            "cpu_ms_per_request": (
                generating * 1000 / self.progress.requests if self.progress.requests else None
            ),
            "busy_fraction": (
                generating / (wall * max(1, len(workers) if master is not None else 1))
                if wall
                else None
            ),
            "loop_lag_ms": loop,
            "end_turn_ms": turn,
        }

    def on_quitting(self, environment: Any, **_: Any) -> None:
        if self.role == "worker":
            return
        self.path.judge.flush()
        self.sink.close()
        end = self.end
        interrupted = False
        if not end.ended:
            if self.plan.manage_end:
                interrupted = True
                end.end_reason = "interrupted"
            else:
                end.end_reason = "locust stopped"
            end.end_offset_s = self.timeline.offset_s() if self.timeline.started else None
        elif end.end_reason == "interrupted":
            interrupted = True
        master = self.sink if isinstance(self.sink, MasterSink) else None
        summary = build_summary(
            self.plan,
            read_sample_table(self.out_dir / SAMPLES),
            run_id=self.out_dir.name,
            profiles=ProfileSnapshot.read(self.out_dir),
            end_offset_s=end.end_offset_s,
            interrupted=interrupted,
            end_reason=end.end_reason,
            workers=master.workers_summary(self.plan.drivers) if master else None,
            aborted=self.path.aborted + int(master.final_total("aborted") if master else 0),
            cap_hits=self.cap_hits,
            held_skips=self.held_skips + int(master.final_total("held_skips") if master else 0),
            client_cpu=self.client_cpu(),
        )
        write_json_atomic(self.out_dir / SUMMARY, summary)
        self.stats.write(self.out_dir / LOCUST_TIMINGS)
        self.write_status("done")


class PlanShape(LoadTestShape):
    """The plan's stages as locust's shape; it ends the run itself (``chatprobe load``)."""

    abstract = False

    def tick(self) -> tuple[int, float] | None:
        return current_run().end.shape_tick()


# ---------------------------------------------------------------------------- the process's run

_RUN: LoadRun | None = None
_PLAN: RunPlan | None = None
_HOOKED = False


def use_plan(plan: RunPlan) -> LoadRun:
    """Make ``plan`` this process's run (before locust starts); returns the run."""
    global _RUN, _PLAN
    _PLAN, _RUN = plan, LoadRun(plan)
    return _RUN


def current_run() -> LoadRun:
    """This process's run: the plan given to :func:`use_plan`, else the environment's."""
    global _RUN
    if _RUN is None:
        _RUN = LoadRun(_PLAN or plan_from_environment())
    return _RUN


def install_hooks() -> None:
    """Register the run's locust event listeners (once per process)."""
    global _HOOKED
    if _HOOKED:
        return
    _HOOKED = True

    def on_init(environment: Any, runner: Any = None, **_: Any) -> None:
        current_run().bind(environment, runner or environment.runner)

    events.init.add_listener(on_init)
    events.test_start.add_listener(lambda **kw: current_run().on_test_start(**kw))
    events.test_stopping.add_listener(lambda **kw: current_run().on_test_stopping(**kw))
    events.test_stop.add_listener(lambda **kw: current_run().on_test_stop(**kw))
    events.quitting.add_listener(lambda **kw: current_run().on_quitting(**kw))
