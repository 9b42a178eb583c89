"""The idle gate: users that finished a stream pass one at a time, each when the event loop is
idle, so a read that became ready meanwhile is taken before the next user's work."""

from __future__ import annotations

import time
from collections.abc import Iterator

import gevent
import gevent.socket
import pytest

from chatprobe.load.conformance import IdleJudge, LoadChecker
from chatprobe.load.idlegate import IdleGate
from chatprobe.record import RequestRecord


@pytest.fixture
def socket_pair() -> Iterator[tuple[gevent.socket.socket, gevent.socket.socket]]:
    a, b = gevent.socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_parked_users_pass_in_order_and_a_ready_read_goes_between_them(
    socket_pair: tuple[gevent.socket.socket, gevent.socket.socket],
) -> None:
    a, b = socket_pair
    gate = IdleGate()
    order: list[str] = []

    def reader() -> None:
        a.recv(16)
        order.append("read")

    def user(name: str, send: bool) -> None:
        gate.wait()
        if send:  # this user's work makes a read ready
            b.sendall(b"x")
        order.append(name)

    greenlets = [gevent.spawn(reader)]
    gevent.sleep(0)  # the reader waits on its socket
    greenlets += [gevent.spawn(user, "first", True), gevent.spawn(user, "second", False)]
    gevent.joinall(greenlets, timeout=5, raise_error=True)
    # all at once (no gate) would run both users before the loop polled the socket
    assert order == ["first", "read", "second"]
    assert gate.passed == 2 and gate.waiting == 0
    waits = gate.figures()  # each user's wait is measured for the summary
    assert waits["n"] == 2 and waits["max_ms"] is not None and waits["max_ms"] >= 0
    assert waits["share"] is None  # no exchange time given: no share of it


def test_the_share_of_time_users_spent_waiting() -> None:
    gate = IdleGate()
    exchange_started = time.perf_counter_ns() - 50_000_000  # a 50 ms exchange just ended

    def busy() -> None:
        for _ in range(20):
            gevent.sleep(0)  # keeps the loop from being idle for a while

    gevent.joinall([gevent.spawn(gate.wait, exchange_started), gevent.spawn(busy)], timeout=5)
    share = gate.figures()["share"]
    assert share is not None and 0 < share < 1


def test_a_user_waits_while_other_greenlets_keep_the_loop_busy() -> None:
    gate = IdleGate()
    order: list[str] = []

    def busy() -> None:
        for _ in range(20):
            order.append("busy")
            gevent.sleep(0)  # always ready again: the loop is never idle meanwhile

    def user() -> None:
        gate.wait()
        order.append("user")

    gevent.joinall([gevent.spawn(user), gevent.spawn(busy)], timeout=5, raise_error=True)
    assert order == ["busy"] * 20 + ["user"]


def test_a_user_killed_while_parked_does_not_hold_up_the_next() -> None:
    gate = IdleGate()
    passed: list[str] = []

    def user(name: str) -> None:
        gate.wait()
        passed.append(name)

    doomed = gevent.spawn(user, "doomed")
    survivor = gevent.spawn(user, "survivor")
    gevent.sleep(0)  # both parked, the loop not yet idle for the worker
    doomed.kill(block=False)
    survivor.join(timeout=5)
    assert passed == ["survivor"] and doomed.dead and gate.waiting == 0


def test_the_conformance_judge_waits_for_parked_users() -> None:
    class Recording(LoadChecker):
        def judge(self, record: RequestRecord, sent_body: object) -> list[str] | None:
            order.append("judged")
            return []

    order: list[str] = []
    gate, judge = IdleGate(), IdleJudge(Recording(1.0))
    record = RequestRecord(provider="openrouter", model="m", model_id="m", url="u")
    judge.submit(record, b"{}", lambda broken: None)  # queued first

    def user(name: str) -> None:
        gate.wait()
        order.append(name)

    users = [gevent.spawn(user, f"user{i}") for i in range(3)]
    gevent.joinall(users, timeout=5, raise_error=True)
    gevent.sleep(0.05)
    assert order == ["user0", "user1", "user2", "judged"]
