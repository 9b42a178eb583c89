"""The run's clock and its end: where a request falls in the plan, and how a run stops.

* :class:`Timeline`: the run's start (``perf_counter_ns``), the offset of any moment from it,
  and the stage (and warm-up) of the plan at an offset. Every sample is placed with it.
* :class:`RunEnd`: the managed timeline, locust's ``LoadTestShape.tick`` (:meth:`shape_tick`)
  and the end of the run. At the planned end, when the request count is reached, or on
  SIGUSR1 (``chatprobe load`` sends it on Ctrl-C), :meth:`end_run` stops the users (they
  finish the request in hand, up to the stop timeout; a master drains its workers and waits
  for every live worker's final batch), and only then does the shape return None so locust
  quits. This order matters: locust's master fires ``test_stop`` and even quits before the
  last worker reports arrive if left to itself. ``stopping`` is set as soon as users are
  being stopped: a user holding back (Retry-After, backoff) wakes on it and sends nothing.

Locust child only (gevent).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event

from chatprobe.load.plan import RunPlan
from chatprobe.load.schedule import Position, position_at, tick

__all__ = ["ABORT_GRACE_S", "FINAL_WAIT_S", "RunEnd", "Timeline"]

ABORT_GRACE_S = 2.0  # on an interrupt, requests in flight get this long to finish
FINAL_WAIT_S = 10.0  # after stop, how long the master waits for workers' last samples


class Timeline:
    """The run's start and where a moment falls in the plan's stages."""

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self.t_start_ns: int | None = None

    @property
    def started(self) -> bool:
        return self.t_start_ns is not None

    def start(self) -> None:
        """Start the clock (once: the shape or the test start, whichever comes first)."""
        if self.t_start_ns is None:
            self.t_start_ns = time.perf_counter_ns()

    def offset_s(self, t_ns: int | None = None) -> float:
        """Seconds from the run start to ``t_ns`` (default now); 0 before the start."""
        if self.t_start_ns is None:
            return 0.0
        return ((t_ns or time.perf_counter_ns()) - self.t_start_ns) / 1e9

    def position(self, offset_s: float) -> Position:
        return position_at(self.plan.stages, offset_s)


class RunEnd:
    """The managed shape and the end of the run (module docstring)."""

    def __init__(self, plan: RunPlan, timeline: Timeline) -> None:
        self.plan = plan
        self.timeline = timeline
        self.wake = Event()  # set when the run must end early (count reached, stop asked)
        self.stopping = Event()  # set when users are being stopped
        self.stop_requested = False
        self.ended = False
        self.end_reason = ""
        self.end_offset_s: float | None = None
        self.role = "local"
        self.runner: Any = None
        self.environment: Any = None
        self._last_tick: tuple[int, float] | None = None
        self._requests_reached: Callable[[], bool] = lambda: False
        self._waiting_for: Callable[[], list[str]] = list
        self._after_drain: Callable[[], None] = lambda: None

    def bind(
        self,
        role: str,
        environment: Any,
        runner: Any,
        *,
        requests_reached: Callable[[], bool],
        waiting_for: Callable[[], list[str]],
        after_drain: Callable[[], None],
    ) -> None:
        """``requests_reached``: did the run make its request count; ``waiting_for`` (master):
        live workers without a final batch; ``after_drain`` (worker): ship the final batch."""
        self.role = role
        self.environment = environment
        self.runner = runner
        self._requests_reached = requests_reached
        self._waiting_for = waiting_for
        self._after_drain = after_drain
        if role == "worker":
            runner.register_message("chatprobe_drain", self._on_drain)

    def shape_tick(self) -> tuple[int, float] | None:
        """The managed timeline: the current stage, or None after ending the run."""
        self.timeline.start()
        if self.ended:
            return None
        offset = self.timeline.offset_s()
        current = tick(self.plan.stages, offset, self.plan.drivers)
        if self.wake.is_set() or current is None:
            self._end()
            return None
        if current != self._last_tick:
            self._last_tick = current
            return current
        # Unchanged: wait here for an early end, the next stage or the planned end.
        boundary = self.plan.duration_s
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
        current = tick(self.plan.stages, self.timeline.offset_s(), self.plan.drivers)
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
        elif self.plan.requests is not None and self._requests_reached():
            reason = "requests reached"
        else:
            reason = "completed"
        self.end_run(reason)

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
        self.end_offset_s = self.timeline.offset_s()
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

    def _on_drain(self, environment: Any, msg: Any, **_: Any) -> None:
        """Worker: stop our users gracefully, then ship the final batch."""
        grace = float(msg.data.get("grace", self.plan.stop_timeout_s))

        def drain() -> None:
            self.stopping.set()
            environment.stop_timeout = grace
            self.runner.stop()
            self._after_drain()  # test_stop already did, unless the runner was stopped

        gevent.spawn(drain)
