"""One streamed exchange over the wire: the load hot path (locust child only: gevent).

How an exchange goes, and why:

* locust's ``FastHttpSession.request(..., stream=True)`` fires locust's request event when
  the *headers* arrive, raises for a non-2xx status and releases the socket before the error
  body is read, and its ``iter_lines`` reads 1 KB blocks, which delays TTFT by several
  events; geventhttpclient's ``HTTPClient.request`` reads the head with plain ``recv`` (no
  stamp), retries a POST on no condition we can see, and hides which phase failed. So the
  load path drives geventhttpclient's connection pool and response parser itself
  (:func:`stream_exchange`): take a connection, send the request bytes built once per target
  (:class:`~chatprobe.load.targets.RequestTemplate`; only ``X-Request-Id`` and
  ``Content-Length`` change), read the head and the body through one
  :class:`~chatprobe.load.receive.StampedReader`, so every stamp of the exchange comes from
  one clock.
* Phases (:class:`~chatprobe.transport.Phase`) decide what an exception means, through the
  transport policy's table for geventhttpclient; the socket's timeout is the first-byte limit
  until the head is in, then the idle limit (or what is left of the total).
* A connection that failed before any response byte, and that was not new (a pooled
  keep-alive connection the server had already given up on), is retried once on a new one;
  the record notes it in ``anomalies``. A response marked ``Connection: close``, or not
  read to its end, closes its connection instead of returning it to the pool.
* No decoding and no JSON on the way: the stamped runs of lines go through the shared SSE
  decoder once the stream has ended and its connection is back in the pool, after the
  caller's ``turn`` (the load path waits there for an idle event loop). Each event keeps
  the arrival time of the read that completed it, exactly what feeding the decoder live
  would give; then :meth:`RequestRecord.finish` interprets.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

import gevent
import gevent.monkey
from geventhttpclient.connectionpool import ConnectionPool, SSLConnectionPool
from geventhttpclient.response import HTTPSocketPoolResponse

from chatprobe.load.receive import StampedReader, read_body, read_head, want_timestamps
from chatprobe.load.targets import RequestTemplate
from chatprobe.load.tlsmemory import MemoryTLSSocket
from chatprobe.record import ErrorClass, RequestRecord, TimedEvent
from chatprobe.scrub import scrub_headers
from chatprobe.sse import SSEDecoder
from chatprobe.transport import (
    DEFAULT_TIMEOUTS,
    MAX_BODY_BYTES,
    Phase,
    Timeouts,
    TLSConfig,
    classify,
    geventhttpclient_errors,
    new_request_id,
    stale_connection_note,
)

__all__ = ["BLOCK_SIZE", "RequestTemplate", "connection_pool", "stream_exchange"]

BLOCK_SIZE = 64 * 1024  # bytes asked of each read: a whole burst of events in one call

_SOCKETS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
"""Sockets that carried a request before (so a failure on one may be a stale keep-alive
connection), each with whether kernel receive stamps are on for it."""


def connection_pool(
    template: RequestTemplate,
    *,
    size: int,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    tls: TLSConfig | None = None,
) -> ConnectionPool:
    """A geventhttpclient connection pool for ``template``'s host, TLS as ``tls`` says."""
    common: dict[str, Any] = {
        "size": size,
        "connection_timeout": timeouts.connect,
        "network_timeout": timeouts.first_byte,
    }
    if not template.tls:
        return _Pool(template.host, template.port, template.host, template.port, **common)
    import gevent.ssl

    settings = tls or TLSConfig()
    context = settings.context(gevent.ssl.create_default_context)
    return _SSLPool(
        template.host,
        template.port,
        template.host,
        template.port,
        insecure=settings.insecure,
        ssl_context_factory=lambda **_: context,
        **common,
    )


_select = gevent.monkey.get_original("select", "select")


class _NoYieldCheck:
    """geventhttpclient checks a pooled connection with gevent's ``select``, which yields to
    the hub even with a zero timeout: between the request's ``t0`` and its write the user
    then waited for every other ready greenlet (benchmarks B2: the send side of the TTFT
    error, p50 0.4 ms and p99 13 ms at 64 streams). The same check with the real ``select``
    returns at once."""

    def _is_socket_alive(self, sock: Any) -> bool:
        if sock is None:
            return False
        try:
            if sock.fileno() < 0:
                return False
            readable, _, _ = _select([sock.fileno()], [], [], 0.0)
            return not readable  # an idle keep-alive connection has nothing to read
        except (OSError, ValueError):
            return False


class _Pool(_NoYieldCheck, ConnectionPool):
    pass


class _SSLPool(_NoYieldCheck, SSLConnectionPool):
    """HTTPS connections whose TLS runs in memory (:mod:`~chatprobe.load.tlsmemory`), so
    the stamped reader reads the TCP socket itself: kernel receive stamps over TLS too."""

    def _connect_socket(self, sock: Any, address: Any) -> Any:
        sock = ConnectionPool._connect_socket(self, sock, address)
        if self._use_proxy:
            self._setup_proxy(sock)
        hostname = self.ssl_options.get("server_hostname", self._request_host)
        tls = MemoryTLSSocket(sock, self.ssl_context, hostname)
        tls.do_handshake()  # in the pool's connect timeout, set on the TCP socket
        return tls


class _Response(HTTPSocketPoolResponse):
    """geventhttpclient's response parser and connection owner, minus its own head read:
    :func:`~chatprobe.load.receive.read_head` feeds it through the stamped reader."""

    def _read_headers(self, pre_buffered: bytes = b"") -> None:
        return None


def stream_exchange(
    pool: ConnectionPool,
    request: RequestTemplate,
    body: bytes,
    record: RequestRecord,
    *,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    max_bytes: int = MAX_BODY_BYTES,
    turn: Callable[[], object] = gevent.sleep,
) -> int:
    """POST ``body`` and fill the raw part of ``record``; returns the body bytes received.

    ``turn`` is called once the wire part is over and the connection released, before the
    stream is decoded (the CPU-heavy part): the load path's
    :meth:`~chatprobe.load.idlegate.IdleGate.wait`, by default a plain yield. Never raises
    for anything the server or the network does (``GreenletExit`` and other
    ``BaseException`` still propagate, so locust can stop a user).
    """
    record.request_id = request_id = new_request_id()
    payload = request.encode(request_id, body)
    received, stale, lines = _attempt(pool, payload, record, timeouts, max_bytes)
    if stale:
        record.anomalies.append(stale_connection_note(record.transport_detail))
        record.transport_error, record.transport_detail = None, ""
        received, _, lines = _attempt(pool, payload, record, timeouts, max_bytes, retry=False)
    turn()
    if lines is not None:
        _decode(record, *lines)
    return received


def _attempt(
    pool: ConnectionPool,
    payload: bytes,
    record: RequestRecord,
    timeouts: Timeouts,
    max_bytes: int,
    *,
    retry: bool = True,
) -> tuple[int, bool, _Lines | None]:
    """One try: (body bytes received, whether to retry on a new connection, the stream's
    stamped lines to decode)."""
    record.start()
    deadline = None if timeouts.total is None else record.t0_ns + int(timeouts.total * 1e9)
    phase = Phase.CONNECT
    resp: _Response | None = None
    reader: StampedReader | None = None
    kernel = reused = False
    ut_head = 0
    chunks: list[bytes] = []  # body bytes (whole SSE lines) as they arrived
    times: list[int] = []  # their arrival, on the reader's clock
    utimes: list[int] = []  # the same in user space (if kernel stamps fail part-way)
    try:
        sock = pool.get_socket()
        # the response owns the connection from here: release() returns or closes it
        resp = _Response(sock, pool, block_size=BLOCK_SIZE, method="POST")
        stamped = _SOCKETS.get(sock)
        reused = stamped is not None
        kernel = _SOCKETS[sock] = want_timestamps(sock) if stamped is None else stamped
        record.clock = "kernel" if kernel else "user"
        phase = Phase.SEND
        sock.settimeout(timeouts.first_byte)
        sock.sendall(payload)
        # t0 to the end of the write (a new connection's set-up included: the server's
        # clock starts when the request is in, so that is how far TTFT can be off)
        record.send_late_ns = time.perf_counter_ns() - record.t0_ns
        phase = Phase.HEADERS
        reader = StampedReader(
            sock,
            BLOCK_SIZE,
            kernel=kernel,
            t_min_ns=record.t0_ns,
            deadline_ns=deadline,
            bounded=True,
        )
        reader.arm(timeouts.first_byte)
        read_head(resp, reader)
        record.t_headers_ns, ut_head = reader.t, reader.ut
        record.status = resp.status_code
        record.response_headers = _headers(resp)
        phase = Phase.BODY
        reader.arm(timeouts.idle)
        sse = record.content_type == "text/event-stream"
        received = read_body(
            resp,
            reader,
            lines=sse,
            max_bytes=max_bytes,
            chunks=chunks,
            times=times,
            utimes=utimes,
        )
        tail = bytes(resp._body_buffer)  # an unterminated last line
        if tail:
            chunks.append(tail)
            times.append(reader.t)
            utimes.append(reader.ut)
            received += len(tail)
        if reader.kernel_ok:
            record.t_end_ns = reader.t
        else:  # one clock per record: the user-space stamps of every read
            record.clock, record.t_headers_ns, times = "user", ut_head, utimes
            record.t_end_ns = reader.ut
        record.stamp_bounds_ns, record.stamp_last_bounds_ns = reader.record_bounds()
        if sse:  # decoded by the caller once the connection is released (turn)
            return received, False, (chunks, times, record.t_end_ns)
        record.body = b"".join(chunks)
        return received, False, None
    except Exception as exc:  # every transport failure becomes a classified record
        record.t_end_ns = time.perf_counter_ns()
        sse = record.content_type == "text/event-stream"
        cls, detail = classify(exc, phase, geventhttpclient_errors(), stream=sse, timeouts=timeouts)
        record.transport_error, record.transport_detail = cls, detail
        got_bytes = reader is not None and reader.received > 0
        if retry and reused and cls is ErrorClass.CONNECTION_RESET and not got_bytes:
            return 0, True, None  # a stale keep-alive connection: nothing was answered on it
        if reader is not None and not reader.kernel_ok:
            record.clock, times = "user", utimes
            if record.t_headers_ns is not None:
                record.t_headers_ns = ut_head
        if reader is not None:
            record.stamp_bounds_ns, record.stamp_last_bounds_ns = reader.record_bounds()
        received = sum(map(len, chunks))
        if sse and chunks:  # keep the events that did arrive (a stream cut short)
            return received, False, (chunks, times, record.t_end_ns)
        if chunks:
            record.body = b"".join(chunks)
        return received, False, None
    finally:
        if reader is not None:
            reader.close()
        if resp is not None:
            resp.release()  # returns a finished connection to the pool, closes any other


def _headers(resp: Any) -> dict[str, str]:
    """Response headers, lower-case names, repeated ones joined, secrets scrubbed."""
    out: dict[str, str] = {}
    for name, value in resp.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return scrub_headers(out)


_Lines = tuple[list[bytes], list[int], int]
"""A stream's body lines, their arrival stamps and the end stamp, for :func:`_decode`."""


def _decode(record: RequestRecord, lines: list[bytes], times: list[int], end: int) -> None:
    """Feed the stored lines through the one SSE decoder, keeping each line's arrival time."""
    decoder = SSEDecoder()
    decode = decoder.decode
    append = record.events.append
    for t, line in zip(times, lines, strict=True):
        for item in decode(line):
            append(TimedEvent(t, item))
    for item in decoder.flush():
        append(TimedEvent(end, item))
