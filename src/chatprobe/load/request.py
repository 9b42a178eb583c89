"""The per-request path: one chosen request, sent, measured, placed in the run, kept.

:meth:`RequestPath.send` is everything that happens to one request, in order:

1. a :class:`~chatprobe.record.RequestRecord` for the :class:`~chatprobe.load.targets.Choice`
   (target, body, the prompt's token count and the output cap asked for);
2. the exchange over the wire (:func:`chatprobe.load.exchange.stream_exchange`); once its
   reads are over the user waits for its turn at the
   :class:`~chatprobe.load.idlegate.IdleGate` (other streams' reads go first), then the
   stream is decoded and :meth:`RequestRecord.finish` interprets it;
3. polite load (:func:`chatprobe.load.polite.after_request`): a Retry-After holds the
   target, a connection failure sets the sender's backoff;
4. the sample (:func:`chatprobe.results.build_sample`), placed on the run's
   :class:`~chatprobe.load.timeline.Timeline` (stage, warm-up, offset, concurrency);
5. the sample to the process's :class:`~chatprobe.load.sink.SampleSink`, and the request to
   locust's table (:class:`~chatprobe.load.locust_stats.LocustStats`); a stream due for the
   conformance checks is kept once :class:`~chatprobe.load.conformance.IdleJudge` has judged
   it (the owner calls ``judge.flush()`` when the users have stopped).

``listeners`` see each finished record before its sample is built (a benchmark copies the
stamps; a conformance check could judge the record). Locust child only (gevent).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent

from chatprobe.load.conformance import IdleJudge, LoadChecker
from chatprobe.load.exchange import stream_exchange
from chatprobe.load.idlegate import IdleGate
from chatprobe.load.locust_stats import LocustStats
from chatprobe.load.plan import RunPlan
from chatprobe.load.polite import Backoff, after_request
from chatprobe.load.scenario import Stage
from chatprobe.load.sink import SampleSink
from chatprobe.load.targets import Choice
from chatprobe.load.timeline import Timeline
from chatprobe.record import RequestRecord
from chatprobe.results import build_sample

__all__ = ["EXCERPTS_PER_TARGET", "RequestPath"]

EXCERPTS_PER_TARGET = 3

Listener = Callable[[RequestRecord, Choice, int], None]


class RequestPath:
    """Sends one request and keeps its sample (module docstring).

    ``users_at(stage)`` says the concurrency a sample records for a request sent in
    ``stage``; ``worker`` names the process in samples (``local``, ``worker-<n>``).
    """

    def __init__(
        self,
        plan: RunPlan,
        timeline: Timeline,
        sink: SampleSink,
        stats: LocustStats,
        *,
        users_at: Callable[[Stage], int],
        worker: str = "local",
    ) -> None:
        self.plan = plan
        self.timeline = timeline
        self.sink = sink
        self.stats = stats
        self.users_at = users_at
        self.worker = worker
        self.aborted = 0  # requests killed in flight at the end of the run: no sample
        self.checker = LoadChecker(plan.conformance_share)  # conformance under load
        self.judge = IdleJudge(self.checker)  # off the timing path: flush() at the end
        self.gate = IdleGate()  # end-of-stream work, one user per idle turn
        self.listeners: list[Listener] = []

    def send(
        self, http: Any, choice: Choice, *, t_sched_ns: int | None, backoff: Backoff
    ) -> RequestRecord:
        """Send ``choice`` over ``http`` (a connection pool for its host) and keep it;
        returns the finished record (a conversation builds its next turn on the answer)."""
        target = choice.target
        record = RequestRecord(
            provider=target.plan.provider,
            model=target.plan.model,
            model_id=target.plan.model_id,
            url=target.url,
            stream=True,
            request_headers=target.request_headers,
            input_tokens=choice.input_tokens,
            max_tokens=choice.max_tokens,
        )
        record.t_sched_ns = t_sched_ns
        try:
            received = stream_exchange(
                http,
                target.request,
                choice.body,
                record,
                timeouts=self.plan.timeouts,
                # the rest waits for an idle loop: other streams' reads first
                turn=lambda: self.gate.wait(record.t0_ns),
            )
        except gevent.GreenletExit:
            self.aborted += 1
            raise
        record.finish()
        now = time.monotonic()
        retry_after, pause = after_request(record, backoff, target.hold, now)
        if pause is not None:
            backoff.resume_at = max(backoff.resume_at, now + pause)
        for listener in self.listeners:
            listener(record, choice, received)

        def keep(broken: list[str] | None) -> None:
            self.keep(
                record,
                choice,
                received,
                retry_after_s=retry_after,
                backoff_s=pause,
                checks_broken=broken,
            )

        if record.events and self.checker.due():  # judged when the loop is idle, then kept
            self.judge.submit(record, choice.body, keep)
        else:
            keep(None)
        return record

    def keep(
        self,
        record: RequestRecord,
        choice: Choice,
        received: int,
        *,
        retry_after_s: float | None = None,
        backoff_s: float | None = None,
        checks_broken: list[str] | None = None,
    ) -> None:
        """Place a finished record in the run, hand its sample to the sink, tell locust."""
        target = choice.target
        sent_ns = record.t_sched_ns if record.t_sched_ns is not None else record.t0_ns
        offset = self.timeline.offset_s(sent_ns)
        position = self.timeline.position(offset)
        excerpt = record.ok and target.excerpts < EXCERPTS_PER_TARGET
        if excerpt:
            target.excerpts += 1
        sample = build_sample(
            record,
            scenario=self.plan.scenario,
            stage=position.stage.name,
            users=self.users_at(position.stage),
            worker=self.worker,
            t_offset_s=offset,
            warmup=position.warmup,
            excerpt=excerpt,
            retry_after_s=retry_after_s,
            backoff_s=backoff_s,
            session=choice.session,
            turn=choice.turn,
            checks_broken=checks_broken,
        )
        self.sink.add(sample)
        self.stats.request(record, target.label, received)
