"""The emulator's HTTP/1.1 server: asyncio.Protocol + httptools, byte-level control.

No web framework: faults need control of every byte (a reset mid-stream with SO_LINGER 0, a
body shorter than its ``Content-Length``, a chunked stream closed without its terminating
chunk, a stall, a late status line), and the emulator must never be the bottleneck of a load
run. A request is parsed by httptools, answered by :class:`~chatprobe.emulator.respond.
Responder` as a list of timed writes, and played here: steps already due are coalesced into
one ``write`` (at zero latency a whole stream is one write), later ones are scheduled with
``loop.call_at`` on the ``perf_counter`` clock (CLOCK_MONOTONIC, the loop's clock too).
The loop (:mod:`chatprobe.emulator.eventloop`) ends its waits on a ``timerfd``, so timers
fire within a fraction of a millisecond rather than on epoll's whole milliseconds; however
late a write is, the truth records the actual write times, not the intended ones.

Keep-alive works as clients expect; pipelined requests are answered in order. With
``config.tls`` the same server speaks HTTPS (asyncio's TLS transport) with a certificate made
at start (:mod:`chatprobe.emulator.certs`); :attr:`EmulatorServer.ca_file` is what clients
must trust.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections import deque
from typing import cast

import httptools

from chatprobe.emulator.arrival import StampedSocket, StampingListener, listening_socket
from chatprobe.emulator.certs import Certificates, make_certificates
from chatprobe.emulator.config import EmulatorConfig
from chatprobe.emulator.models import served_profile
from chatprobe.emulator.replay import ReplayLibrary, ReplayResponder
from chatprobe.emulator.respond import (
    ABORT,
    CLOSE,
    CONTENT,
    END,
    EVENT,
    FIN,
    HEADERS,
    KEEP,
    Reply,
    Request,
    Responder,
    internal_error,
)
from chatprobe.emulator.truth import ANSWER, REASONING, TruthLog, TruthRecord
from chatprobe.profiles import ProviderProfile, list_profiles

__all__ = ["EmulatorServer", "base_url_for", "root_url"]

_BACKLOG = 2048
_SLACK_NS = 200_000  # steps due within 0.2 ms go out with the current write
_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 39\r\n"
    b"Connection: close\r\n\r\n"
    b'{"error":"malformed HTTP/1.1 request"}\n'
)
_LINGER_ZERO = struct.pack("ii", 1, 0)
_MAX_PENDING = 32


class _Exchange:
    """Plays one :class:`Reply` on a connection."""

    __slots__ = ("conn", "i", "record_events", "reply", "timer")

    def __init__(self, conn: _Connection, reply: Reply, record_events: bool) -> None:
        self.conn = conn
        self.reply = reply
        self.i = 0
        self.timer: asyncio.Handle | None = None
        self.record_events = record_events and reply.truth is not None

    def run(self) -> None:
        self.timer = None
        conn = self.conn
        if conn.transport is None:
            return
        steps = self.reply.steps
        pacer = self.reply.pacer
        i = self.i
        now = time.perf_counter_ns()
        horizon = now + _SLACK_NS
        # a paced reply (capacity model): only the steps whose times are known yet
        n = len(steps) if pacer is None else pacer.resolve(now, i)
        if i < n and steps[i][0] <= horizon:
            first = i
            marks = tokens = chunks = 0
            while i < n and steps[i][0] <= horizon:
                step = steps[i]
                marks |= step[2]
                if step[2] & CONTENT:
                    tokens += step[3]
                    chunks += 1
                i += 1
            data = steps[first][1] if i - first == 1 else b"".join(s[1] for s in steps[first:i])
            t = time.perf_counter_ns()
            conn.transport.write(data)
            record = self.reply.truth
            if record is not None:
                if marks & HEADERS and record.t_headers_ns is None:
                    record.t_headers_ns = t
                if marks & CONTENT:
                    if record.t_first_content_ns is None:
                        record.t_first_content_ns = t
                    record.t_last_content_ns = t
                    if marks & ANSWER and record.t_first_answer_ns is None:
                        record.t_first_answer_ns = t
                    if marks & REASONING and record.t_first_reasoning_ns is None:
                        record.t_first_reasoning_ns = t
                    record.tokens_sent += tokens
                    record.chunks += chunks
                if marks & END:
                    record.t_end_ns = t
                if self.record_events and marks & EVENT:
                    times = record.event_times_ns
                    if times is None:
                        times = record.event_times_ns = []
                    times.extend(t for s in steps[first:i] if s[2] & EVENT)
            self.i = i
        if i < n:
            self._at(steps[i][0])
            return
        if pacer is not None and i < len(steps):
            due = pacer.park(self, i)  # the engine's next event, a keep-alive, or a wake-up
            if due is not None:
                self._at(due)
            return
        end_at = self.reply.end_at_ns
        if end_at is not None and end_at > horizon:
            self.reply.end_at_ns = None
            self._at(end_at)
            return
        conn.finish(self)

    def _at(self, due_ns: int) -> None:
        conn = self.conn
        self.timer = conn.loop.call_at(due_ns / 1e9 + conn.server.clock_offset, self.run)

    def wake(self) -> None:
        """The capacity engine now knows the next step's time (called inside the engine)."""
        self.cancel()
        self.timer = self.conn.loop.call_soon(self.run)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close_pacer(self, complete: bool = False) -> None:
        """Free the capacity slot of a paced reply (the exchange ended, however it ended)."""
        pacer = self.reply.pacer
        if pacer is not None:
            pacer.close(time.perf_counter_ns(), complete)


class _Connection(asyncio.Protocol):
    """One client connection: parse requests, play replies one at a time."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending: deque[Request] = deque()
        self.exchange: _Exchange | None = None
        self.paused = False
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._too_large = False
        self.stamped: StampedSocket | None = None  # kernel arrival stamps of each read

    # ------------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio types the argument as BaseTransport; a stream server's is a Transport
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)
        listener = self.server.listener
        if listener is not None:
            self.stamped = listener.claim(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.connections.discard(self)
        exchange = self.exchange
        if exchange is not None:
            exchange.cancel()
            exchange.close_pacer()
            record = exchange.reply.truth
            if record is not None:
                if record.t_end_ns is None:
                    record.t_end_ns = time.perf_counter_ns()
                self.server.truth.close(record, "client_closed")
            self.exchange = None
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail()
        except httptools.HttpParserError:
            self._fail()

    def _fail(self) -> None:
        if self.transport is not None and self.exchange is None:
            self.transport.write(_BAD_REQUEST)
            self.transport.close()
        elif self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------ httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._size = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        length = self._headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.server.config.max_body:
            self._too_large = True
        if self._headers.get(b"expect", b"").lower() == b"100-continue" and self.transport:
            # curl waits for this before sending a body over 1 KiB; an oversized body is
            # still read (and dropped) so the 413 arrives on a usable connection.
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._size += len(body)
        if self._size > self.server.config.max_body:
            self._too_large = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        parsed = time.perf_counter_ns()
        # the request arrived with the read that completed it: the kernel's stamp of it
        t = parsed if self.stamped is None else self.stamped.arrival(parsed)
        url = httptools.parse_url(self._url)
        request = Request(
            method=self.parser.get_method().decode("ascii", "replace"),
            path=url.path.decode("utf-8", "replace"),
            query=(url.query or b"").decode("utf-8", "replace"),
            headers=self._headers,
            body=b"".join(self._body),
            keep_alive=self.parser.should_keep_alive(),
            t_received_ns=t,
            t_parsed_ns=parsed,
            too_large=self._too_large,
        )
        self._body = []
        if self.exchange is None and not self.pending:
            self._dispatch(request)
        else:
            self.pending.append(request)
            if len(self.pending) >= _MAX_PENDING and self.transport is not None:
                self.transport.pause_reading()
                self.paused = True

    # ------------------------------------------------------------------ replies
    def _dispatch(self, request: Request) -> None:
        try:
            reply = self.server.responder.respond(request)
        except Exception as exc:  # an emulator bug: a 500 saying so, not a "malformed request"
            reply = internal_error(request, exc)
        exchange = _Exchange(self, reply, self.server.config.record_event_times)
        self.exchange = exchange
        exchange.run()

    def finish(self, exchange: _Exchange) -> None:
        """The last step of ``exchange`` was written: end it as its reply says."""
        self.exchange = None
        reply = exchange.reply
        transport = self.transport
        record = reply.truth
        exchange.close_pacer(complete=reply.end in (KEEP, CLOSE))
        if reply.end == ABORT:
            self._abort(record)
            return
        if reply.end == FIN:
            if record is not None:
                record.t_end_ns = time.perf_counter_ns()
                self.server.truth.close(record, "closed")
            if transport is not None:
                transport.close()
            return
        if record is not None:
            self.server.truth.close(record, "complete")
        if transport is None:
            return
        if reply.end == CLOSE:
            transport.close()
            return
        if self.paused:
            self.paused = False
            transport.resume_reading()
        if self.pending:
            self._dispatch(self.pending.popleft())

    def _abort(self, record: TruthRecord | None, tries: int = 0) -> None:
        """Reset the connection (RST) once what was written has reached the kernel."""
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size() and tries < 1000:
            self.loop.call_later(0.001, self._abort, record, tries + 1)
            return
        if record is not None:
            record.t_end_ns = time.perf_counter_ns()
            self.server.truth.close(record, "reset")
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already gone: nothing left to reset
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        transport.abort()


class EmulatorServer:
    """The emulator as an asyncio server; run it inside an event loop.

    Most callers want :class:`chatprobe.emulator.Emulator` (a thread or a subprocess) or
    ``chatprobe emulate``; this class is for embedding in an existing loop.
    """

    loop: asyncio.AbstractEventLoop  # the running loop, set by start()

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        names = config.providers or tuple(list_profiles())
        self.profiles = [served_profile(name) for name in names]
        self.truth = TruthLog(config.truth_cap, config.truth_jsonl)
        self.responder: Responder | ReplayResponder
        if config.replay:  # recorded streams with their recorded timing
            library = ReplayLibrary.load(config.replay)
            self.responder = ReplayResponder(library, self.truth, config.replay_speed)
        else:
            self.responder = Responder(config, self.profiles, self.truth)
        self.connections: set[_Connection] = set()
        self.port = 0
        self.clock_offset = 0.0
        self._server: asyncio.Server | None = None
        self.certificates: Certificates | None = None
        self._ssl: ssl.SSLContext | None = None
        self._refusal_timers: list[asyncio.TimerHandle] = []
        self._stopping = False
        self._stopped: asyncio.Future[None] | None = None
        self.listener: StampingListener | None = None  # when requests get arrival stamps

    @property
    def provider_names(self) -> list[str]:
        return [p.name for p in self.profiles]

    @property
    def ca_file(self) -> str | None:
        """The CA certificate a client must trust (``--ca-bundle``); None over plain HTTP."""
        return str(self.certificates.ca_file) if self.certificates is not None else None

    async def start(self) -> int:
        """Bind and listen; returns the port (an ephemeral one when the config says 0)."""
        self.loop = asyncio.get_running_loop()
        # loop.time() is time.monotonic(); perf_counter is the same clock on Linux, but
        # measure the offset rather than assume it.
        self.clock_offset = self.loop.time() - time.perf_counter()
        if self.config.tls and self.certificates is None:
            self.certificates = make_certificates([self.config.host])
        if self.certificates is not None:
            self._ssl = self.certificates.server_context()
        self._server = await self._listen()
        self.port = self._server.sockets[0].getsockname()[1]
        schedule = self.responder.schedule
        if schedule is not None:  # schedule time 0 is now; 'refuse' outages close the socket
            if schedule.refusals():
                schedule.on_restart.append(self._plan_refusals)
            schedule.start()
        return self.port

    async def _listen(self) -> asyncio.Server:
        port = self.port or self.config.port
        self.listener = listening_socket(self.config.host, port, _BACKLOG)
        if self.listener is None:  # no kernel stamps here, or a host of several addresses
            return await self.loop.create_server(
                lambda: _Connection(self),
                host=self.config.host,
                port=port,
                backlog=_BACKLOG,
                reuse_address=True,
                ssl=self._ssl,
            )
        return await self.loop.create_server(
            lambda: _Connection(self), sock=self.listener, backlog=_BACKLOG, ssl=self._ssl
        )

    def _plan_refusals(self) -> None:
        """Timers at each boundary of the schedule's ``refuse`` outages."""
        for timer in self._refusal_timers:
            timer.cancel()
        schedule = self.responder.schedule
        assert schedule is not None
        edges = {t for pair in schedule.refusals() for t in pair if t is not None}
        self._refusal_timers = [
            self.loop.call_at(t / 1e9 + self.clock_offset, self._sync_listening)
            for t in sorted(edges)
        ]
        self._sync_listening()

    def _sync_listening(self) -> None:
        """Listen unless a ``refuse`` outage is active now (then connecting is refused)."""
        schedule = self.responder.schedule
        if schedule is None or self._stopping:
            return
        now = time.perf_counter_ns()
        refusing = any(
            start <= now and (end is None or now < end) for start, end in schedule.refusals()
        )
        if refusing and self._server is not None:
            self._server.close()  # open connections stay; their requests are reset
            self._server = None
        elif not refusing and self._server is None:
            self.loop.create_task(self._relisten())

    async def _relisten(self) -> None:
        if self._server is None and not self._stopping:
            self._server = await self._listen()

    async def serve_forever(self) -> None:
        """Serve until :meth:`stop` (the listening socket may be replaced meanwhile)."""
        if self._server is None:
            await self.start()
        self._stopped = self.loop.create_future()
        await self._stopped

    async def stop(self) -> None:
        self._stopping = True
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        for timer in self._refusal_timers:
            timer.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if conn.exchange is not None:
                conn.exchange.cancel()
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self.truth.shutdown()
        if self.certificates is not None:
            self.certificates.remove()
            self.certificates = None

    def base_url(self, provider: str | None = None, host: str | None = None) -> str:
        """Base URL for ``provider``: ``http://HOST:PORT/<provider>/v1`` (OpenRouter's
        ``/<provider>/api/v1`` shape for a profile whose real base URL has ``/api/v1``);
        with one provider served and ``provider`` None, the bare ``/v1``."""
        return base_url_for(
            self.profiles, self.port, host or self.config.host, provider, tls=self.config.tls
        )


def base_url_for(
    profiles: list[ProviderProfile],
    port: int,
    host: str,
    provider: str | None,
    *,
    tls: bool = False,
) -> str:
    """See :meth:`EmulatorServer.base_url`."""
    from chatprobe.errors import UnknownNameError

    root = root_url(host, port, tls=tls)
    by_name = {p.name: p for p in profiles}
    if provider is None:
        if len(profiles) != 1:
            raise UnknownNameError("provider (several are served; name one)", "", list(by_name))
        profile = profiles[0]
        api = "/api/v1" if profile.base_url.rstrip("/").endswith("/api/v1") else "/v1"
        return root + api
    named = by_name.get(provider)
    if named is None:
        raise UnknownNameError("provider", provider, list(by_name))
    api = "/api/v1" if named.base_url.rstrip("/").endswith("/api/v1") else "/v1"
    return f"{root}/{provider}{api}"


def root_url(host: str, port: int, *, tls: bool = False) -> str:
    """``http://HOST:PORT`` (``https://`` with ``tls``) for clients (a wildcard bind address
    becomes 127.0.0.1)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"
