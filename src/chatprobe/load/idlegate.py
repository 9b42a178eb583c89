"""Work after a stream ends waits for the event loop to be idle, one stream at a time.

Why: in a closed loop with a steady server, streams stay in step. Users that started
together end together, and each then does its end-of-stream work in one slice: interpret
the stream (decode every event), apply the polite-load rules, pick and send the next
request. That is about 0.3 ms per user. The event loop runs every user whose last read came
back in one pass and polls the sockets again only after the pass. 30 users ending together
kept it from polling for 10 ms. A first token that arrived meanwhile was read one
inter-token gap late and carried the next packet's kernel stamp (TCP merges the two
buffers). Benchmarks B2 found about 1% of first tokens late by one ITL at 64 streams, in
bursts every stream length.

:class:`IdleGate` parks each user that finished reading and lets them through one at a
time, each only once the loop has nothing else ready (``gevent.idle``). Between two users'
end-of-stream work the loop polls the sockets, and every read that arrived is taken
first. The reads and stamps of the finished stream are already taken, so waiting costs
them nothing. A busy client delays the next request of a closed-loop user, never a read.
Conformance judging (:class:`~chatprobe.load.conformance.IdleJudge`) waits at a lower idle
priority, so it runs only when no user is parked here.

The waits are measured (``summary.json``'s ``client_cpu.end_turn_ms``), with the share of
the users' time they took (waiting / (waiting + exchanging)). A client with CPU to spare
passes users through in well under a millisecond. A large share means the client is
saturated: a closed-loop user spends the wait between two requests, so that share fewer
streams are in flight than the plan asks for, and the summary says so in a note.

Locust child only (gevent).
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from typing import Any, Generic, TypeVar

import gevent
import gevent.event

from chatprobe.load.loopwatch import wait_figures

__all__ = ["TURN_SHARE_LIMIT", "IdleGate", "IdleQueue"]

T = TypeVar("T")

TURN_SHARE_LIMIT = 0.05
"""Above this share of the users' time spent waiting for their turn, the summary notes that
the client ran fewer streams than planned (about that share fewer)."""


class IdleQueue(Generic[T]):
    """A FIFO served one item per idle turn of the event loop, by one worker greenlet
    started on demand: the loop shared by :class:`IdleGate` and the conformance judge.

    ``priority`` is libev's idle priority: a turn at a lower priority comes only when no
    watcher of a higher one is pending, so the judge (below) never runs while a user is
    parked at the gate (0)."""

    priority = 0

    def __init__(self) -> None:
        self._queue: deque[T] = deque()
        self._wake = gevent.event.Event()
        self._worker: gevent.Greenlet[Any, Any] | None = None

    def _push(self, item: T) -> None:
        self._queue.append(item)
        if self._worker is None or self._worker.dead:
            self._worker = gevent.spawn(self._run)
        self._wake.set()

    def _serve(self, queue: deque[T]) -> None:
        """One idle turn: take the next item(s) from ``queue`` (which may be empty now)."""
        raise NotImplementedError

    def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._wake.clear()
                self._wake.wait()
                continue
            gevent.idle(self.priority)  # every ready read and timer goes first
            self._serve(queue)

    @property
    def waiting(self) -> int:
        return len(self._queue)


class IdleGate(IdleQueue[gevent.event.Event]):
    """A FIFO of parked greenlets, released one per idle turn of the event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.passed = 0
        self.waits_ms = array("d")  # how long each user waited for its turn
        self.waited_ns = 0  # in total
        self.exchanged_ns = 0  # the exchanges of those waits, from send to last byte

    def wait(self, since_ns: int | None = None) -> None:
        """Park the calling greenlet until its turn; ``since_ns``: when the exchange that
        just ended started (``perf_counter_ns``), for the share of time spent waiting."""
        start = time.perf_counter_ns()
        if since_ns is not None and since_ns <= start:
            self.exchanged_ns += start - since_ns
        turn = gevent.event.Event()
        self._push(turn)
        try:
            turn.wait()
        finally:
            turn.set()  # killed while parked: the worker skips it
        self.passed += 1
        waited = time.perf_counter_ns() - start
        self.waited_ns += waited
        self.waits_ms.append(waited / 1e6)

    def figures(self) -> dict[str, float | int | None]:
        """``{"n", "p50_ms", "p99_ms", "max_ms", "share"}`` of the waits so far; ``share``:
        waiting / (waiting + exchanging), the part of the users' time spent here."""
        total = self.waited_ns + self.exchanged_ns
        share = round(self.waited_ns / total, 4) if self.exchanged_ns else None
        return {**wait_figures(self.waits_ms), "share": share}

    def _serve(self, queue: deque[gevent.event.Event]) -> None:
        while queue:
            turn = queue.popleft()
            if not turn.is_set():  # set already: its greenlet was killed while parked
                # the parked greenlet runs from the hub once the worker waits again;
                # then the loop polls before the next idle turn
                turn.set()
                return
