"""The locust users a locustfile imports and subclasses, the locust way.

::

    from locust import between
    from chatprobe.load import ChatUser

    class Chat(ChatUser):
        wait_time = between(0.5, 2)   # think time; default: the plan's think_time

Both classes are ``abstract`` (locust runs only their subclasses) and read everything else
from the process's run (:func:`chatprobe.load.process.current_run`): the targets, prompts,
timeouts and TLS settings of the plan ``chatprobe load`` wrote, or, for a bare
``locust -f ... --host URL``, of the plan made from the host (:mod:`chatprobe.load.bare`).
Importing this module installs the run's locust hooks, so such a locustfile writes
``samples.jsonl`` and ``summary.json`` like ``chatprobe load`` does.

* :class:`ChatUser`, closed loop: one streamed chat completion after another, then
  ``wait_time``; it holds back while its target is held by a Retry-After or it is backing
  off (:mod:`chatprobe.load.polite`), and stops when a request-count run has sent its count.
* :class:`OpenLoopUser`, open loop: one per process, whose task schedules the plan's
  arrivals (Poisson or constant, or a trace's lines) up to ``concurrency`` in flight,
  whatever the responses do.

With a ``conversation`` in the plan, a closed-loop task is one whole session and an
open-loop arrival starts one (:mod:`chatprobe.load.workloads`).

The shipped locustfile exposes one of :class:`PlanChatUser` / :class:`PlanOpenLoopUser` and
the plan's shape (:func:`chatprobe.load.plugin.install`). Locust child only (gevent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import gevent
from gevent.pool import Pool
from geventhttpclient.connectionpool import ConnectionPool
from locust import User, task
from locust.exception import StopUser

from chatprobe.load.conversation import Conversation, run_session
from chatprobe.load.exchange import connection_pool
from chatprobe.load.process import LoadRun, current_run, install_hooks
from chatprobe.load.schedule import arrival_offsets, split_quota
from chatprobe.load.targets import Choice, PreparedTarget
from chatprobe.load.work import WorkItem
from chatprobe.load.workloads import choice_of, trace_arrivals
from chatprobe.record import RequestRecord

__all__ = ["ChatUser", "OpenLoopUser", "PlanChatUser", "PlanOpenLoopUser", "StreamUser"]

SPIN_NS = 1_500_000
"""Open loop: the last 1.5 ms before an arrival are waited by yielding to the other
greenlets, not on a timer (the event loop's timers wake up to a millisecond late)."""

Job = Callable[[int], None]

install_hooks()


class StreamUser(User):
    """What both users share: the process's run, a connection pool per host, a backoff.

    ``concurrency``: connections per host in this user's pool.
    """

    abstract = True
    concurrency = 1

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.load_run: LoadRun = current_run()
        self.index = self.load_run.next_user_index()
        self.backoff = self.load_run.new_backoff(self.index)
        self.turn = 0
        self._pools: dict[tuple[bool, str, int], ConnectionPool] = {}

    def wait_time(self) -> float:
        """The plan's think time (a subclass may set locust's ``between`` and the like)."""
        return self.load_run.plan.think_time_s

    def http_for(self, target: PreparedTarget) -> ConnectionPool:
        """This user's connection pool for ``target``'s host (shared by targets on it)."""
        request = target.request
        key = (request.tls, request.host, request.port)
        pool = self._pools.get(key)
        if pool is None:
            plan = self.load_run.plan
            pool = self._pools[key] = connection_pool(
                request, size=self.concurrency, timeouts=plan.timeouts, tls=plan.tls
            )
        return pool

    def next_choice(self) -> Choice:
        """The request this user sends next (the plan's mix and prompt order)."""
        choice = self.load_run.chooser.pick(self.index, self.turn)
        self.turn += 1
        return choice

    def converse(
        self,
        target: PreparedTarget,
        conversation: Conversation,
        *,
        t_sched_ns: int | None = None,
        open_loop: bool = False,
    ) -> int:
        """Every turn of one session, with think time (or tool latency) between them;
        returns the turns sent.

        Closed loop: each turn takes a ticket of a request-count run (out of tickets, the
        user stops) and waits out its target's hold. Open loop: the first turn goes at its
        scheduled time (its lag is measured; the driver checked the hold); later turns go
        when their pause and any hold are over.
        """
        run = self.load_run
        http = self.http_for(target)
        out_of_requests = False

        def send(item: WorkItem) -> RequestRecord | None:
            nonlocal out_of_requests
            if not open_loop and not run.quota.take():
                out_of_requests = True
                return None
            first = item.turn == 1
            if not (open_loop and first) and not run.wait_turn(target, self.backoff):
                return None  # the run ends while holding back
            sched = t_sched_ns if first else None
            counted = 1 if open_loop else 0  # open loop: the sample's users = in flight
            run.in_flight += counted
            try:
                choice = choice_of(target, item)
                return run.path.send(http, choice, t_sched_ns=sched, backoff=self.backoff)
            finally:
                run.in_flight -= counted

        def wait(seconds: float) -> bool:
            return bool(run.end.stopping.wait(timeout=seconds)) if seconds > 0 else False

        sent = run_session(conversation, send, wait)
        if out_of_requests:
            raise StopUser()
        return sent

    def on_stop(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


class ChatUser(StreamUser):
    """Closed loop: one streamed chat completion after another (then ``wait_time``)."""

    abstract = True

    @task
    def chat(self) -> None:
        run = self.load_run
        if run.plan.conversation is not None:  # one whole session per task
            self.converse(*run.sessions.new(self.index))
            return
        if not run.quota.take():
            raise StopUser()
        choice = self.next_choice()
        if not run.wait_turn(choice.target, self.backoff):
            return  # the run ends while this user was holding back
        run.path.send(self.http_for(choice.target), choice, t_sched_ns=None, backoff=self.backoff)


class OpenLoopUser(StreamUser):
    """Open loop: one per process; its task sends the plan's arrivals until the run ends.

    Arrivals for a target that is held back (or while the driver backs off) are not sent:
    the run counts them in ``held_skips``. Arrivals that find ``concurrency`` requests in
    flight wait for a free slot and are counted in ``concurrency_cap.hits``.
    """

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        plan = self.load_run.plan
        if plan.open_loop is not None and "concurrency" not in type(self).__dict__:
            self.concurrency = max(1, -(-plan.open_loop.max_concurrency // plan.drivers))

    @task
    def drive(self) -> None:
        """Send requests at scheduled times, whatever the responses do, until the end.

        The next arrival's work (its body; for a trace line, its prompt built to length) is
        made before waiting for its time, and each arrival starts the moment it is due,
        before the next is made.
        """
        run = self.load_run
        if run.plan.open_loop is None:
            raise StopUser()  # a closed-loop plan: nothing to schedule
        pool = Pool(self.concurrency)
        run.timeline.start()
        start = run.timeline.t_start_ns or time.perf_counter_ns()
        for offset, target, job in self.arrivals():
            t_sched_ns = start + int(offset * 1e9)
            if not self._wait_until(t_sched_ns):
                break
            if run.held_for(target, self.backoff) > 0:
                run.held_skips += 1  # held back: this arrival is not sent at all
                continue
            if pool.full():
                run.cap_hits += 1
            pool.spawn(job, t_sched_ns)
            gevent.sleep(0)  # let it send now, before the next arrival's work is made
        pool.join()
        raise StopUser()

    def arrivals(self) -> Iterator[tuple[float, PreparedTarget, Job]]:
        """``(offset_s, target, job)`` per arrival of this process: a trace's lines, or the
        arrival process's times, each with a request or (with a conversation) a session."""
        run = self.load_run
        plan = run.plan
        ol = plan.open_loop
        assert ol is not None
        drivers = plan.drivers
        if plan.trace is not None:
            for offset, choice in trace_arrivals(
                plan, run.chooser.targets, run.worker_index, drivers
            ):
                yield offset, choice.target, partial(self._one, choice)
            return
        limit = None
        if plan.requests is not None and plan.conversation is None:
            limit = split_quota(plan.requests, drivers, run.worker_index)
        for offset in arrival_offsets(
            ol.rate / drivers,
            arrival=ol.arrival,
            seed=f"{plan.seed}:{run.worker_index}",
            end_s=plan.stages[0].duration_s,
            limit=limit,
        ):
            if plan.conversation is not None:
                target, conversation = run.sessions.new(self.index)
                yield offset, target, partial(self._session, target, conversation)
                continue
            choice = self.next_choice()
            yield offset, choice.target, partial(self._one, choice)

    def _wait_until(self, t_ns: int) -> bool:
        """Wait for ``t_ns`` (perf_counter); False when the run ends first (:data:`SPIN_NS`)."""
        stopping = self.load_run.end.stopping
        delay = (t_ns - SPIN_NS - time.perf_counter_ns()) / 1e9
        if delay > 0 and stopping.wait(timeout=delay):
            return False
        while time.perf_counter_ns() < t_ns and not stopping.is_set():
            gevent.sleep(0)
        return not stopping.is_set()

    def _one(self, choice: Choice, t_sched_ns: int) -> None:
        run = self.load_run
        run.in_flight += 1
        try:
            run.path.send(
                self.http_for(choice.target), choice, t_sched_ns=t_sched_ns, backoff=self.backoff
            )
        finally:
            run.in_flight -= 1

    def _session(self, target: PreparedTarget, conversation: Conversation, t_sched_ns: int) -> None:
        self.converse(target, conversation, t_sched_ns=t_sched_ns, open_loop=True)


class PlanChatUser(ChatUser):
    """The shipped locustfile's closed-loop user: the plan, as it is."""


class PlanOpenLoopUser(OpenLoopUser):
    """The shipped locustfile's open-loop user: the plan, as it is."""
