"""The streaming locust user: the load hot path (imported only inside the locust child).

How the stream is read, and why:

* locust's ``FastHttpSession.request(..., stream=True)`` returns a ``FastResponse`` whose
  ``_response`` is geventhttpclient's ``HTTPSocketPoolResponse``; it fires locust's request
  event when the *headers* arrive, raises ``LocustBadStatusCode`` for a non-2xx status and
  then releases the socket before the error body is read, and its ``iter_lines`` reads
  1 KB blocks (``read(1024)`` waits for 1 KB or the end), which delays TTFT by several
  events. So the user sends through the session's own geventhttpclient pool
  (``HTTPClient.request``, the same connections and timeouts) and reads the raw response.
* The body is read by :func:`chatprobe.load.receive.read_lines`: one ``recv`` (or, on
  Linux, ``recvmsg`` with a kernel receive timestamp) per network read, every complete
  LF-terminated line it brings taken in one slice and stamped with the read's arrival time.
  (``HTTPSocketPoolResponse.readline`` did the same one line per call, at a Python-level
  search, copy and append per line, and stamped when the client got round to the line.)
  At the end of the body an unterminated last line is in ``read()``. A connection closed
  mid-body raises ``HTTPParseError`` ("Incomplete response"), a silent peer raises
  ``TimeoutError`` after ``network_timeout``.
* No decoding and no JSON on the way: the stamped runs of lines go through the shared SSE
  decoder once the stream has ended (each event keeps the arrival time of the read that
  completed it, exactly what feeding the decoder live would give), then
  :meth:`RequestRecord.finish` interprets. A stream framed with bare CR (allowed by SSE,
  unseen in practice) has no LF to cut at and would be stamped at its end.
"""

from __future__ import annotations

import errno
import time
from typing import TYPE_CHECKING, Any

import gevent
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError
from locust import FastHttpUser, constant, task

from chatprobe.load.receive import BodyTooLarge, TotalTimeout, read_lines, stamp_source
from chatprobe.record import MAX_BODY_BYTES, ErrorClass, RequestRecord, TimedEvent
from chatprobe.scrub import scrub_headers, scrub_text
from chatprobe.sse import SSEDecoder

if TYPE_CHECKING:
    from geventhttpclient.client import HTTPClient

    from chatprobe.load.plugin import LoadSession, PreparedTarget

__all__ = [
    "ChatStreamUser",
    "OpenLoopStreamUser",
    "StreamUserBase",
    "classify_exception",
    "stream_exchange",
]


def classify_exception(
    exc: BaseException, *, headers_seen: bool, elapsed_s: float, connect_s: float, read_s: float
) -> tuple[ErrorClass, str]:
    """Map a geventhttpclient/socket exception to an error class and a scrubbed detail.

    Before the headers a timeout is either the connect or the first-byte limit; the socket
    raises the same ``TimeoutError`` for both, so the elapsed time decides (whichever limit
    it is nearer to).
    """
    detail = scrub_text(f"{type(exc).__name__}: {exc}")[:300]
    if isinstance(exc, TimeoutError):
        if headers_seen:
            return ErrorClass.TIMEOUT_IDLE, detail
        if abs(elapsed_s - connect_s) < abs(elapsed_s - read_s):
            return ErrorClass.TIMEOUT_CONNECT, detail
        return ErrorClass.TIMEOUT_FIRST_BYTE, detail
    if isinstance(exc, HTTPConnectionClosed):
        return ErrorClass.CONNECTION_RESET, detail
    if isinstance(exc, HTTPParseError):
        if headers_seen and "incomplete" in str(exc).lower():
            return ErrorClass.CONNECTION_RESET, detail
        return ErrorClass.PROTOCOL_ERROR, detail
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ErrorClass.CONNECTION_RESET, detail
    if isinstance(exc, ConnectionRefusedError):
        return ErrorClass.CONNECT_ERROR, detail
    if isinstance(exc, OSError):
        if not headers_seen and exc.errno in (
            errno.EHOSTUNREACH,
            errno.ENETUNREACH,
            errno.ECONNREFUSED,
            errno.EADDRNOTAVAIL,
            None,
        ):
            return ErrorClass.CONNECT_ERROR, detail
        return ErrorClass.CONNECTION_RESET, detail
    return ErrorClass.CLIENT_ERROR, detail


def stream_exchange(
    http: HTTPClient,
    uri: str,
    body: bytes,
    headers: dict[str, str],
    record: RequestRecord,
    *,
    connect_s: float,
    read_s: float,
    total_s: float,
) -> int:
    """POST ``body`` and fill the raw part of ``record``; returns the bytes received.

    Never raises for anything the server or the network does (``GreenletExit`` and other
    ``BaseException`` still propagate, so locust can stop a user).
    """
    now = time.perf_counter_ns
    record.start()
    deadline = record.t0_ns + int(total_s * 1e9)
    resp = None
    received = 0
    lines: list[bytes] = []  # SSE lines as they arrived, and when
    times: list[int] = []
    try:
        resp = http.request("POST", uri, body=body, headers=headers)
        record.t_headers_ns = now()
        record.status = resp.status_code
        response_headers: dict[str, str] = {}
        for name, value in resp.items():
            key = name.lower()
            response_headers[key] = (
                f"{response_headers[key]}, {value}" if key in response_headers else value
            )
        record.response_headers = scrub_headers(response_headers)
        if record.content_type == "text/event-stream":
            # whole lines per network read, stamped on arrival (see chatprobe.load.receive);
            # over TLS in user space, since the TLS layer decrypts there
            record.clock = stamp_source(resp._sock)
            received = read_lines(
                resp,
                record.t_headers_ns,
                record.t0_ns,
                deadline,
                MAX_BODY_BYTES,
                lines,
                times,
                kernel=record.clock == "kernel",
            )
            tail = resp.read()
            record.t_end_ns = end = now()
            if tail:
                lines.append(tail)
                times.append(end)
                received += len(tail)
            # The stream is over and stamped. Yield before and after the CPU-heavy part
            # (decoding here, interpretation next): when many streams end together, the
            # other users' reads then run in between instead of queueing behind all of it,
            # which kept their arrival times late (benchmarks B2: TTFT p99 at 64 streams).
            gevent.sleep(0)
            _decode(record, lines, times, end)
            gevent.sleep(0)
        else:
            parts = []
            while True:
                part = resp.read(65536)
                if not part:
                    break
                parts.append(part)
                received += len(part)
                if now() > deadline:
                    raise TotalTimeout
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge
            record.body = b"".join(parts)
            record.t_end_ns = now()
    except TotalTimeout:
        record.t_end_ns = now()
        record.transport_error = ErrorClass.TIMEOUT_TOTAL
        record.transport_detail = f"exchange exceeded total timeout of {total_s:g}s"
        _decode_partial(record, lines, times)
    except BodyTooLarge:
        record.t_end_ns = now()
        record.transport_error = ErrorClass.PROTOCOL_ERROR
        record.transport_detail = f"response body exceeded {MAX_BODY_BYTES} bytes; stopped reading"
        _decode_partial(record, lines, times)
    except Exception as exc:  # every transport failure becomes a classified record
        record.t_end_ns = now()
        record.transport_error, record.transport_detail = classify_exception(
            exc,
            headers_seen=record.t_headers_ns is not None,
            elapsed_s=(record.t_end_ns - record.t0_ns) / 1e9,
            connect_s=connect_s,
            read_s=read_s,
        )
        _decode_partial(record, lines, times)
    finally:
        if resp is not None:
            resp.release()  # returns a finished connection to the pool, closes a broken one
    return received


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


def _decode_partial(record: RequestRecord, lines: list[bytes], times: list[int]) -> None:
    """After a failure mid-stream, keep the events that did arrive (a stream cut short)."""
    if times and not record.events:
        n = min(len(lines), len(times))
        _decode(record, lines[:n], times[:n], record.t_end_ns or time.perf_counter_ns())


class StreamUserBase(FastHttpUser):
    """Shared by both users: configured by class attributes set in
    :func:`chatprobe.load.plugin.install`: ``session`` (the process's
    :class:`~chatprobe.load.plugin.LoadSession`), ``wait_time`` (the scenario's think time)
    and, for the open-loop user, ``concurrency`` (its cap on requests in flight).
    Timeouts come from the plan.
    """

    abstract = True
    session: LoadSession
    wait_time = constant(0)
    concurrency = 1  # connections per host in this user's pool
    max_retries = 0
    insecure = False  # verify TLS certificates of live providers

    def __init__(self, environment: Any) -> None:
        timeouts = self.session.plan.timeouts
        self.connection_timeout = timeouts.connect_s
        self.network_timeout = min(timeouts.read_s, timeouts.total_s)
        super().__init__(environment)
        self.index = self.session.next_user_index()
        self._turn = 0

    def http_for(self, target: PreparedTarget) -> HTTPClient:
        """The geventhttpclient client for ``target``'s host, from this user's pool."""
        return self.client.client.clientpool.get_client(target.url)


class ChatStreamUser(StreamUserBase):
    """Closed loop: one streamed chat completion after another (then ``wait_time``)."""

    abstract = True

    @task
    def chat(self) -> None:
        session = self.session
        if not session.take_ticket():
            session.user_out_of_requests(self)
            return
        target, body = session.pick(self.index, self._turn)
        self._turn += 1
        session.run_request(self.http_for(target), target, body, t_sched_ns=None)


class OpenLoopStreamUser(StreamUserBase):
    """Open loop: one per process; its task schedules arrivals until the run ends."""

    abstract = True

    @task
    def drive(self) -> None:
        self.session.drive_open_loop(self)
