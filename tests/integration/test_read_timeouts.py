"""The load reader's timeouts (``chatprobe.load.receive``): one lazy timer per exchange
keeps the limits instead of the socket's timeout. A read past its limit is interrupted; the
timer never interrupts the greenlet anywhere but inside a read, and a closed reader's timer
is gone."""

from __future__ import annotations

import time

import gevent
import gevent.socket
import pytest

from chatprobe.load.receive import StampedReader
from chatprobe.transport import TotalTimeout

Pair = tuple[gevent.socket.socket, gevent.socket.socket]  # the tcp_pair fixture (conftest)


def _reader(sock: gevent.socket.socket, *, deadline_s: float | None = None) -> StampedReader:
    now = time.perf_counter_ns()
    deadline = None if deadline_s is None else now + int(deadline_s * 1e9)
    return StampedReader(sock, 65536, kernel=False, t_min_ns=now, deadline_ns=deadline)


def test_a_read_past_its_limit_times_out(tcp_pair: Pair) -> None:
    _writer, sock = tcp_pair
    reader = _reader(sock)
    reader.arm(0.05)
    with pytest.raises(TimeoutError):
        reader.read()  # nothing is ever sent
    reader.close()


def test_every_read_gets_the_whole_limit(tcp_pair: Pair) -> None:
    """Reads that each come within the limit never time out, however long they add up to."""
    writer, sock = tcp_pair
    reader = _reader(sock)
    reader.arm(0.1)

    def drip() -> None:
        for _ in range(6):
            gevent.sleep(0.04)
            writer.sendall(b"x")

    feeder = gevent.spawn(drip)
    got = b""
    while len(got) < 6:
        got += reader.read()
    feeder.join()
    assert got == b"x" * 6
    reader.close()


def test_the_timer_never_interrupts_the_greenlet_between_reads(tcp_pair: Pair) -> None:
    writer, sock = tcp_pair
    reader = _reader(sock)
    reader.arm(0.03)
    writer.sendall(b"data")
    assert reader.read() == b"data"
    gevent.sleep(0.1)  # well past the limit, but not in a read: nothing raised here
    reader.close()
    gevent.sleep(0.05)  # closed: nothing fires later either


def test_the_total_limit_raises_its_own_error(tcp_pair: Pair) -> None:
    _writer, sock = tcp_pair
    reader = _reader(sock, deadline_s=0.05)
    reader.arm(10.0)  # the phase's limit is far; what is left of the total is not
    with pytest.raises(TotalTimeout):
        reader.read()
    reader.close()


class Hung(Exception):
    """The read was not interrupted by its own limit (a guard far beyond it)."""


def test_a_shorter_limit_takes_over_from_a_longer_one(tcp_pair: Pair) -> None:
    """The head waits under the first-byte limit, the body under the shorter idle one: the
    timer set for the long limit must not be what ends a stall of the body."""
    writer, sock = tcp_pair
    reader = _reader(sock)
    reader.arm(60.0)  # first byte
    writer.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    assert reader.read()
    reader.arm(0.05)  # idle: the body stalls from here
    with gevent.Timeout(5, Hung), pytest.raises(TimeoutError):
        reader.read()
    reader.close()
