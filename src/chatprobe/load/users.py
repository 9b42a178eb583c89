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
  arrivals (Poisson or constant) up to ``concurrency`` in flight, whatever the responses do.

The shipped locustfile exposes one of :class:`PlanChatUser` / :class:`PlanOpenLoopUser` and
the plan's shape (:func:`chatprobe.load.plugin.install`). Locust child only (gevent).
"""

from __future__ import annotations

import time
from typing import Any

from gevent.pool import Pool
from geventhttpclient.connectionpool import ConnectionPool
from locust import User, task
from locust.exception import StopUser

from chatprobe.load.exchange import connection_pool
from chatprobe.load.process import LoadRun, current_run, install_hooks
from chatprobe.load.schedule import arrival_offsets, split_quota
from chatprobe.load.targets import Choice, PreparedTarget

__all__ = ["ChatUser", "OpenLoopUser", "PlanChatUser", "PlanOpenLoopUser", "StreamUser"]

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
        """Send requests at scheduled times, whatever the responses do, until the end."""
        run = self.load_run
        plan = run.plan
        ol = plan.open_loop
        if ol is None:
            raise StopUser()  # a closed-loop plan: nothing to schedule
        drivers = plan.drivers
        limit = None
        if plan.requests is not None:
            limit = split_quota(plan.requests, drivers, run.worker_index)
        pool = Pool(self.concurrency)
        stopping = run.end.stopping
        run.timeline.start()
        start = run.timeline.t_start_ns or time.perf_counter_ns()
        for offset in arrival_offsets(
            ol.rate / drivers,
            arrival=ol.arrival,
            seed=f"{plan.seed}:{run.worker_index}",
            end_s=plan.stages[0].duration_s,
            limit=limit,
        ):
            t_sched_ns = start + int(offset * 1e9)
            delay = (t_sched_ns - time.perf_counter_ns()) / 1e9
            if delay > 0 and stopping.wait(timeout=delay):
                break
            if stopping.is_set():
                break
            choice = self.next_choice()
            if run.held_for(choice.target, self.backoff) > 0:
                run.held_skips += 1  # held back: this arrival is not sent at all
                continue
            if pool.full():
                run.cap_hits += 1
            pool.spawn(self._one, choice, t_sched_ns)
        pool.join()
        raise StopUser()

    def _one(self, choice: Choice, t_sched_ns: int) -> None:
        run = self.load_run
        run.in_flight += 1
        try:
            run.path.send(
                self.http_for(choice.target), choice, t_sched_ns=t_sched_ns, backoff=self.backoff
            )
        finally:
            run.in_flight -= 1


class PlanChatUser(ChatUser):
    """The shipped locustfile's closed-loop user: the plan, as it is."""


class PlanOpenLoopUser(OpenLoopUser):
    """The shipped locustfile's open-loop user: the plan, as it is."""
