"""The idle judge: conformance checks under load wait for an idle event loop, never for a
place in a full queue, and nothing queued is lost at the end of a run."""

from __future__ import annotations

from typing import Any

import gevent

from chatprobe.load.conformance import IdleJudge, LoadChecker
from chatprobe.record import RequestRecord


class CountingChecker(LoadChecker):
    """Judges nothing, counts the calls: the queue's behaviour is what is under test."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.judged: list[RequestRecord] = []

    def judge(self, record: RequestRecord, sent_body: bytes | dict[str, Any]) -> list[str] | None:
        self.judged.append(record)
        return []


def records(n: int) -> list[RequestRecord]:
    return [
        RequestRecord(provider="openrouter", model="m", model_id="m", url="u") for _ in range(n)
    ]


def test_a_full_queue_keeps_streams_unjudged_at_once_and_the_rest_when_idle() -> None:
    checker = CountingChecker()
    judge = IdleJudge(checker, limit=2)
    kept: list[tuple[int, list[str] | None]] = []
    for i, record in enumerate(records(5)):
        judge.submit(record, b"{}", lambda broken, i=i: kept.append((i, broken)))
    # no yield yet: two wait for an idle loop, three found the queue full
    assert kept == [(2, None), (3, None), (4, None)]
    assert judge.skipped == 3 and judge.waiting == 2 and not checker.judged
    gevent.sleep(0.05)
    assert sorted(kept) == [(0, []), (1, []), (2, None), (3, None), (4, None)]
    assert judge.waiting == 0 and len(checker.judged) == 2


def test_flush_judges_and_keeps_everything_still_queued() -> None:
    checker = CountingChecker()
    judge = IdleJudge(checker)
    kept: list[list[str] | None] = []
    for record in records(3):
        judge.submit(record, {"messages": []}, kept.append)
    judge.flush()  # before the loop was ever idle
    assert kept == [[], [], []] and judge.waiting == 0 and judge.skipped == 0
    gevent.sleep(0.01)  # the worker finds nothing left and keeps nothing twice
    assert len(kept) == 3 and len(checker.judged) == 3


def test_the_judge_keeps_working_after_its_queue_ran_dry() -> None:
    checker = CountingChecker()
    judge = IdleJudge(checker)
    kept: list[list[str] | None] = []
    for record in records(2):
        judge.submit(record, b"{}", kept.append)
        gevent.sleep(0.02)
    assert kept == [[], []]


def test_warming_builds_each_providers_checks_without_counting_a_stream() -> None:
    checker = LoadChecker(1.0)
    checker.warm(["openrouter", "aimlapi", "openrouter"])
    assert sorted(checker._contexts) == ["aimlapi", "openrouter"]
    assert checker.seen == 0  # the share of real streams is unchanged
    off = LoadChecker(0.0)
    off.warm(["openrouter"])  # checks switched off: nothing to build
    assert not off._contexts
