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

Locust child only (gevent).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gevent
import gevent.event

__all__ = ["IdleGate"]


class IdleGate:
    """A FIFO of parked greenlets, released one per idle turn of the event loop."""

    def __init__(self) -> None:
        self._queue: deque[gevent.event.Event] = deque()
        self._wake = gevent.event.Event()
        self._worker: gevent.Greenlet[Any, Any] | None = None
        self.passed = 0

    def wait(self) -> None:
        """Park the calling greenlet until its turn (returns at once outside a run)."""
        turn = gevent.event.Event()
        self._queue.append(turn)
        if self._worker is None or self._worker.dead:
            self._worker = gevent.spawn(self._run)
        self._wake.set()
        try:
            turn.wait()
        finally:
            turn.set()  # killed while parked: the worker skips it
        self.passed += 1

    def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._wake.clear()
                self._wake.wait()
                continue
            gevent.idle()  # every ready read and timer goes first
            while queue:
                turn = queue.popleft()
                if not turn.is_set():
                    # the parked greenlet runs from the hub once this one waits again;
                    # then the loop polls before the next idle turn
                    turn.set()
                    break

    @property
    def waiting(self) -> int:
        return len(self._queue)
