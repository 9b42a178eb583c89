"""The client timing error bound (``chatprobe.load.receive``): an event that ends its read is
exact on the kernel clock; the others a late read completed are bounded by the time since
the previous read.

Real sockets (a TCP connection on loopback, kernel receive stamps on): a read that drains
two events written apart is bounded by at least their distance for the first (the kernel
merged them and stamped both with the newer time), exact for the last; an event followed by
part of the next is not exact; on the user clock the bound covers the client's delay.
"""

from __future__ import annotations

import time

import gevent.socket
import pytest

from chatprobe.load.receive import KERNEL_TIMESTAMPS, StampedReader, want_timestamps
from chatprobe.record import RequestRecord

pytestmark = pytest.mark.skipif(not KERNEL_TIMESTAMPS, reason="needs Linux kernel stamps")


Pair = tuple[gevent.socket.socket, gevent.socket.socket]  # the tcp_pair fixture (conftest)


def _reader(sock: gevent.socket.socket, *, kernel: bool) -> StampedReader:
    return StampedReader(
        sock, 65536, kernel=kernel, t_min_ns=time.perf_counter_ns(), deadline_ns=None, bounded=True
    )


def _head_reader(tcp_pair: Pair) -> tuple[gevent.socket.socket, StampedReader]:
    """The writer, and a kernel-stamped reader that expects a response head first."""
    writer, sock = tcp_pair
    want_timestamps(sock)
    reader = _reader(sock, kernel=True)
    reader.expect_head()
    time.sleep(0.002)  # after the reader's floor by more than the clock mapping's error
    return writer, reader


def _after_head(
    tcp_pair: Pair, head: bytes = b"HTTP/1.1 200 OK\r\n\r\n"
) -> tuple[gevent.socket.socket, StampedReader]:
    """The writer, and a kernel-stamped reader that has read the response head ``head``."""
    writer, reader = _head_reader(tcp_pair)
    writer.sendall(head)
    assert reader.read()
    return writer, reader


def _apart(writer: gevent.socket.socket, first: bytes, second: bytes) -> None:
    """Write ``first``, then ``second`` 10 ms later, and let both arrive unread."""
    writer.sendall(first)
    time.sleep(0.01)
    writer.sendall(second)
    time.sleep(0.01)


def test_one_packet_read_at_once_has_no_spread_on_the_kernel_clock(tcp_pair: Pair) -> None:
    writer, sock = tcp_pair
    assert want_timestamps(sock)
    reader = _reader(sock, kernel=True)
    time.sleep(0.002)  # after the reader's floor by more than the clock mapping's error
    writer.sendall(b"data: one\n\n")
    assert reader.read() == b"data: one\n\n"
    assert reader.kernel_ok
    assert reader.bounds == {reader.t: 0}
    assert reader.ubounds[reader.ut] >= 0


def test_a_read_of_the_head_and_one_event_is_a_read_of_one_event(tcp_pair: Pair) -> None:
    """A server that sends its head with the first token: the head's blank line is not an
    event's end, so the first token's stamp is exact (a real LiteLLM proxy answers so)."""
    writer, reader = _head_reader(tcp_pair)
    writer.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
    writer.sendall(b"data: one\n\n")
    time.sleep(0.01)  # both packets wait: one read takes them
    assert reader.read().endswith(b"data: one\n\n")
    assert reader.kernel_ok and reader.bounds == {reader.t: 0}


def test_two_events_after_a_head_are_still_two(tcp_pair: Pair) -> None:
    writer, reader = _head_reader(tcp_pair)
    writer.sendall(b"HTTP/1.1 200 OK\r\n\r\ndata: one\n\n")
    time.sleep(0.01)
    writer.sendall(b"data: two\n\n")  # the earlier event may be older than the stamp
    time.sleep(0.01)
    assert reader.read().endswith(b"data: two\n\n")
    assert reader.kernel_ok and reader.bounds[reader.t] > 0


def test_a_late_read_of_two_packets_is_bounded_by_their_distance(tcp_pair: Pair) -> None:
    writer, sock = tcp_pair
    want_timestamps(sock)
    reader = _reader(sock, kernel=True)
    time.sleep(0.002)
    writer.sendall(b"data: first\n\n")
    t_first = time.perf_counter_ns()
    time.sleep(0.03)  # the client is busy elsewhere; a second packet arrives meanwhile
    writer.sendall(b"data: second\n\n")
    t_second = time.perf_counter_ns()
    time.sleep(0.01)
    data = reader.read()
    assert data == b"data: first\n\ndata: second\n\n"  # one read drained both
    assert reader.kernel_ok
    distance = t_second - t_first
    # both events get the newest packet's stamp; the first is that late at most by bound
    assert reader.bounds[reader.t] >= distance * 0.5
    assert reader.bounds[reader.t] <= reader.t - reader.t_min_ns
    # on the user clock the bound also covers the time the data sat unread
    assert reader.ubounds[reader.ut] >= reader.bounds[reader.t]
    assert reader.ubounds[reader.ut] >= reader.ut - t_second


def test_record_bounds_ttft_by_the_first_token_read_and_the_send() -> None:
    record = RequestRecord(stream=True)
    record.t0_ns = 1_000_000
    record.t_first_token_ns = 60_000_000
    record.send_late_ns = 200_000
    record.stamp_bounds_ns = {10_000_000: 0, 60_000_000: 3_000_000, 90_000_000: 7_000_000}
    assert record.ttft_bound_ms == pytest.approx(3.2)
    assert record.read_bound_ms == pytest.approx(7.0)
    record.stamp_bounds_ns = {}
    assert record.ttft_bound_ms is None and record.read_bound_ms is None


def test_a_read_without_a_trustworthy_stamp_is_still_bounded(tcp_pair: Pair) -> None:
    """A kernel stamp out of order (a clock mapping gone wrong under load) sends the
    exchange to user stamps; its reads stay bounded by the time since the previous read."""
    writer, sock = tcp_pair
    want_timestamps(sock)
    reader = _reader(sock, kernel=True)
    reader._offset += 10**9  # every kernel stamp now lands a second before the send
    writer.sendall(b"data: one\n\n")
    time.sleep(0.01)
    assert reader.read() == b"data: one\n\n"
    assert not reader.kernel_ok and not reader.bounds
    assert 0 <= reader.ubounds[reader.ut] <= reader.ut - reader.t_min_ns


def test_an_event_that_ends_a_late_read_is_exact(tcp_pair: Pair) -> None:
    """A comment and the first token in one read: the comment may be older than the stamp,
    the first token's last byte came with the newest packet."""
    writer, reader = _after_head(tcp_pair)
    _apart(writer, b": PROCESSING\n\n", b"data: one\n\n")
    assert reader.read() == b": PROCESSING\n\ndata: one\n\n"
    assert reader.kernel_ok and reader.bounds[reader.t] > 0
    assert reader.last_bounds[reader.t] == 0
    assert reader.ulast_bounds[reader.ut] == reader.ut - reader.t


def test_an_event_followed_by_part_of_the_next_is_bounded(tcp_pair: Pair) -> None:
    """The newest packet brought only part of the next event: the complete one may be as
    old as the previous read's return, so it is not exact."""
    writer, reader = _after_head(tcp_pair)
    t_one = time.perf_counter_ns()  # before the first write: the bound covers at least this
    _apart(writer, b"data: one\n\n", b'data: {"two"')  # the second event only begins
    assert reader.read() == b'data: one\n\ndata: {"two"'
    assert reader.kernel_ok
    assert reader.bounds[reader.t] >= (reader.t - t_one) * 0.5
    assert reader.last_bounds[reader.t] == reader.bounds[reader.t]


def test_chunked_framing_after_an_event_still_ends_the_read_with_it(tcp_pair: Pair) -> None:
    writer, reader = _after_head(tcp_pair, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    _apart(writer, b"a\r\n: ping\r\n\r\n\r\n", b"b\r\ndata: one\n\n\r\n0\r\n\r\n")
    assert reader.read().endswith(b"0\r\n\r\n")
    assert reader.bounds[reader.t] > 0 and reader.last_bounds[reader.t] == 0


def test_the_first_tokens_bound_is_its_reads_last_event_bound_when_it_ended_the_read() -> None:
    from chatprobe.record import TimedEvent
    from chatprobe.sse import Comment, ServerSentEvent

    def record_of(*payloads: str) -> RequestRecord:
        record = RequestRecord(stream=True)
        record.t0_ns, record.t_end_ns, record.status = 0, 90_000_000, 200
        record.response_headers = {"content-type": "text/event-stream"}
        stamps = [60_000_000] * 2 + [90_000_000] * (len(payloads) - 2)
        record.events = [
            TimedEvent(t, Comment(p[1:]) if p.startswith(":") else ServerSentEvent(data=p))
            for t, p in zip(stamps, payloads, strict=True)
        ]
        record.stamp_bounds_ns = {60_000_000: 50_000_000, 90_000_000: 3_000_000}
        record.stamp_last_bounds_ns = {60_000_000: 0, 90_000_000: 0}
        return record.finish()

    chunk = '{"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}'
    # a comment, then the first token: it ended its read
    first_last = record_of(": PROCESSING", chunk % "a", chunk % "b", "[DONE]")
    assert first_last.ttft_bound_ms == pytest.approx(0.0)
    # the first token, then the second in the same read: it may be older than its stamp
    first_not_last = record_of(chunk % "a", chunk % "b", "[DONE]")
    assert first_not_last.ttft_bound_ms == pytest.approx(50.0)
