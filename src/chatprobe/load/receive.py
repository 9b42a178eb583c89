"""Reading a response off a socket, head and body, every read stamped on arrival on one clock.

Why not geventhttpclient's ``readline``: the load user used to take one line per call and
stamp it after the call returned. That costs a Python-level buffer search, copy and append
per line (two lines per SSE event), and the stamp is taken when the *client* gets round to
the line, so a busy client reports its own queueing as latency. Here each network read is
stamped once, and every complete line it brings is taken in one slice; the decoder then
gives each event the time of the read that completed it, exactly as feeding it live would.

Kernel receive timestamps (Linux ``SO_TIMESTAMPNS``): with the option on, ``recvmsg``
returns the time the kernel queued the data on the socket, taken in the sender's write on
loopback and in the network stack otherwise, so TTFT and ITL no longer depend on how long
the client took to get to the socket. The stamp is CLOCK_REALTIME; it is moved onto the
``perf_counter_ns`` (CLOCK_MONOTONIC) time line by the offset between the two clocks read
together. When a read drains several packets the kernel reports the last one's time.

One clock per exchange: the response head is read through the same :class:`StampedReader`
as the body, so the bytes that came with the head carry the same kind of stamp as the
later ones. Every read keeps both stamps, the kernel's and the user-space one taken right
after the read returned; a kernel stamp is trusted only between the send time and that
user stamp, and never earlier than the previous one. If any read of the exchange lacks a
trustworthy kernel stamp, the whole exchange uses its user-space stamps
(:attr:`StampedReader.kernel_ok`), never a mix of both.

TLS: the load client's HTTPS connections keep their TLS state in memory
(:class:`~chatprobe.load.tlsmemory.MemoryTLSSocket`), so the reader reads the TCP socket
beneath with the same stamped ``recvmsg`` and hands each read's ciphertext to the TLS
layer; a read that completes no record (a record split across packets, or a handshake
message such as a session ticket) is followed by another, and the decrypted bytes get the
stamp of the read that completed them. Bytes the TLS layer still holds after a read (more
than one read's worth) are served next with that read's stamp. A TLS socket whose layer
reads the network itself (``ssl.SSLSocket``) gets user-space stamps and no bound.

Error bound (how late each stamp can be): the kernel stamps a packet when it is queued, but
TCP merges small packets queued behind unread ones into one buffer carrying the newest
time, so a late read of several events gets one stamp, the newest. Events are counted in
the body bytes only: the blank line that ends a response head is not an event's end, so a
read that brought the head and the first event (the usual first read when a server sends
its head with the first token) is a read of one event. The read's last byte came with the
newest packet, so an event that ends the read is exact on the kernel clock (late by ``user
stamp - kernel stamp`` on the user clock); every other event it completed (an earlier one,
or one followed by part of the next) ended at some time after the previous read returned,
so its bound is the stamp minus that return. :attr:`StampedReader.bounds` (kernel clock)
and :attr:`StampedReader.ubounds` (user clock) keep, per stamp, the bound of any event
that got it (the largest of the reads that gave it); :attr:`StampedReader.last_bounds`
and :attr:`StampedReader.ulast_bounds` the bound of the last event that got it, which is
tighter when that event ended the read (a first token read together with a comment or a
role chunk before it is exact). A read with no trustworthy receive time at all (a kernel
stamp out of order sends the exchange to user stamps) is bounded by the time since the
previous read returned. Where no kernel stamp exists (not Linux) there is no bound (the
maps stay empty).

Wait, then read: gevent's ``recvmsg`` tries the read first and waits only when it fails.
At one event per read (a token every few ms) nearly every first try fails, which costs a
system call and an exception per token. After a read that emptied the receive queue (it
returned less than asked) the reader waits for the socket to be readable first, with
gevent's own wait and the same timeout, then reads once from the OS socket.

Timeouts: each read is due within the phase's limit (first byte while the head is awaited,
idle while the body is read) or what is left of the total, whichever is shorter, and the
reader knows which one applied: a timeout of the total raises
:class:`~chatprobe.transport.TotalTimeout`, any other the socket's ``TimeoutError``. The
limits are kept by one lazy timer per exchange (:class:`_Watchdog`), not by the socket's
timeout: gevent gives a socket with a timeout a new ``Timeout`` (a timer started and
stopped) for every wait, about 6% of the client's CPU at one token per read (py-spy, 200
streams). The watchdog's timer is started once; each read only moves its due time, and
when it fires early it starts again for what is left. It raises into the reading greenlet
only while that greenlet waits inside :meth:`StampedReader.read`.
"""

from __future__ import annotations

import _socket
import contextlib
import re
import time
from typing import Any

import gevent
import gevent.socket

from chatprobe.kernelclock import (
    ANCILLARY,
    KERNEL_TIMESTAMPS,
    clock_offset,
    enable_timestamps,
    kernel_stamp,
)
from chatprobe.load.tlsmemory import MemoryTLSSocket
from chatprobe.transport import BodyTooLarge, PeerClosed, TotalTimeout

__all__ = [
    "KERNEL_TIMESTAMPS",
    "StampedReader",
    "read_body",
    "read_head",
    "want_timestamps",
]


# A read whose body ends with an event's blank line (LF, CRLF or CR line ends), perhaps
# followed by chunked framing only: the end of the chunk, the next chunk's size line or the
# last chunk. Searched in the body's last _TAIL bytes.
_EVENT_AT_END = re.compile(
    rb"(?:\n\n|\r\n\r\n|\r\r)(?:\r\n(?:[0-9A-Fa-f]+(?:;[^\r\n]*)?\r\n(?:\r\n)?)?)?\Z"
)
_TAIL = 64
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")  # the usual case, without the search
_NO_ANCILLARY: list[tuple[int, int, bytes]] = []


def _layer_reads_itself(sock: Any) -> bool:
    """A TLS socket that reads the network inside its TLS layer (``ssl.SSLSocket``): its
    reads cannot carry kernel stamps, and bytes it decrypted earlier have no bound."""
    return hasattr(sock, "pending")  # ssl.SSLSocket and gevent's; MemoryTLSSocket has none


def want_timestamps(sock: Any) -> bool:
    """Ask the kernel to stamp received data on ``sock`` (a TLS socket in memory: on the TCP
    socket beneath); False where reads cannot carry the stamps."""
    if not KERNEL_TIMESTAMPS or _layer_reads_itself(sock):
        return False
    return enable_timestamps(sock.tcp if isinstance(sock, MemoryTLSSocket) else sock)


class StampedReader:
    """The reads of one exchange on one socket, each stamped: ``t`` on the chosen clock
    (the kernel's receive time where available), ``ut`` in user space.

    ``kernel`` says the socket has ``SO_TIMESTAMPNS`` on; ``kernel_ok`` stays True while
    every read so far brought a trustworthy kernel stamp. ``received`` counts bytes.
    ``bounds`` / ``ubounds`` map each stamp given on the kernel / user clock to how late it
    can be (ns, the largest of the reads that got it), ``last_bounds`` / ``ulast_bounds``
    to how late the last event that got it can be; ``bounded`` asks for them (the caller
    knows whether the socket has ``SO_TIMESTAMPNS`` on).
    """

    __slots__ = (
        "_drained",
        "_head_tail",
        "_limit",
        "_lower",
        "_offset",
        "_raw",
        "_tcp",
        "_tls",
        "_watchdog",
        "bounded",
        "bounds",
        "deadline_ns",
        "kernel",
        "kernel_ok",
        "last_bounds",
        "received",
        "size",
        "sock",
        "t",
        "t_min_ns",
        "ubounds",
        "ulast_bounds",
        "ut",
    )

    def __init__(
        self,
        sock: Any,
        size: int,
        *,
        kernel: bool,
        t_min_ns: int,
        deadline_ns: int | None,
        bounded: bool = False,
    ) -> None:
        self.sock = sock
        self.size = size
        self.kernel = kernel
        self.kernel_ok = kernel
        self.t_min_ns = t_min_ns
        self.deadline_ns = deadline_ns
        self.received = 0
        self.t = self.ut = self._lower = t_min_ns
        self.bounded = bounded and KERNEL_TIMESTAMPS and not _layer_reads_itself(sock)
        self._offset = clock_offset() if kernel or self.bounded else 0
        # TLS in memory: reads go to the TCP socket beneath, their bytes to the TLS layer
        self._tls = sock if isinstance(sock, MemoryTLSSocket) else None
        self._tcp = sock.tcp if self._tls is not None else sock
        self.bounds: dict[int, int] = {}
        self.ubounds: dict[int, int] = {}
        self.last_bounds: dict[int, int] = {}
        self.ulast_bounds: dict[int, int] = {}
        self._limit: float | None = None
        self._watchdog = _Watchdog()
        sock.settimeout(None)  # the watchdog keeps the limits
        # wait first, then read (module docstring): the OS socket beneath gevent's, and
        # whether the last read emptied the receive queue
        self._raw = _os_socket(self._tcp) if kernel else None
        self._drained = True
        self._head_tail: bytes | None = None  # while a head is read: its last bytes so far

    def expect_head(self) -> None:
        """The reads that follow bring a response head first: its blank line is not an
        event's end (a read of the head and one event is a read of one event)."""
        if self._head_tail is None:
            self._head_tail = b""

    def _past_head(self, data: bytes) -> bytes:
        """The bytes of ``data`` after the head's blank line ("" while the head goes on)."""
        seen = self._head_tail or b""
        buf = seen + data
        ends = [i + len(m) for m in (b"\r\n\r\n", b"\n\n") if (i := buf.find(m)) >= 0]
        if not ends:
            self._head_tail = buf[-3:]
            return b""
        self._head_tail = None  # the head is over: later reads are all body
        return buf[min(ends) :]

    def arm(self, limit: float | None) -> None:
        """The phase's timeout (seconds, None: none) for the reads that follow."""
        self._limit = limit

    def close(self) -> None:
        """Stop the timeout timer (the exchange is over; idempotent)."""
        self._watchdog.close()

    def read(self) -> bytes:
        """One network read (``b""`` at EOF); sets :attr:`t` and :attr:`ut`."""
        limit = self._limit
        total = False
        if self.deadline_ns is not None:
            left = (self.deadline_ns - time.perf_counter_ns()) / 1e9
            if left <= 0:
                raise TotalTimeout
            if limit is None or left < limit:
                limit, total = left, True
        sock = self.sock
        watchdog = self._watchdog
        if limit is not None:
            watchdog.expect(limit)
        tls = self._tls
        try:
            if tls is not None and (data := tls.take(self.size)):
                # records that came with the last read: they keep its stamps, and arrived
                # after the read before it returned (_lower)
                return self._held(data)
            if tls is not None and tls.ended:  # TLS closed: the end, TCP open or not
                data, ancillary = b"", _NO_ANCILLARY
            elif self.kernel:
                data, ancillary = self._stamped_read()
                if tls is not None:
                    # the read's ciphertext; until it completes a record, read again (the
                    # newest read's stamp is the time the record was complete)
                    while not (plain := tls.feed(data, self.size)) and data and not tls.ended:
                        data, ancillary = self._stamped_read()
                    data = plain
            else:
                data = sock.recv(self.size)  # a TLS socket reads until it has a record
        except TimeoutError:
            if total:
                raise TotalTimeout from None
            raise
        finally:
            watchdog.waiting = False
        ut = time.perf_counter_ns()
        t = ut
        body = data if self._head_tail is None else self._past_head(data)  # events' bytes
        # these bytes arrived after the previous read returned (bytes a TLS layer keeps from
        # this read are bounded by the same time: _lower)
        lower = self._lower = self.ut
        newest = None
        if self.kernel_ok:
            kt = kernel_stamp(ancillary)
            if kt is not None:
                kt -= self._offset
            if kt is not None and max(self.t_min_ns, self.t) <= kt <= ut:
                t = newest = kt
            elif not data:
                t = self.t  # EOF carries no stamp: the last data read's stays the latest
            else:  # no stamp, or one out of order: this exchange goes on user time
                self.kernel_ok = False
        if data and newest is not None and self.bounded:
            # The read's last byte came with the newest packet: an event that ends there is
            # exact. Any other event it completed (an earlier one, or one followed by part of
            # the next) ended at some time after the previous read returned.
            events = body.count(b"\n\n") + body.count(b"\r\n\r\n") + body.count(b"\r\r")
            clean = body.endswith(_EVENT_ENDS) or (
                body.endswith(b"\r\n") and _EVENT_AT_END.search(body[-_TAIL:]) is not None
            )
            newest = max(lower, min(newest, ut))
            floor = lower if events > 1 or (events and not clean) else newest
            last = newest if clean else floor
            if self.kernel_ok:
                _widen(self.bounds, t, t - min(floor, t))
                self.last_bounds[t] = t - min(last, t)
            _widen(self.ubounds, ut, ut - floor)
            self.ulast_bounds[ut] = ut - last
        elif data and self.bounded:
            # no trustworthy receive time for this read (the exchange fell back to user
            # stamps): its bytes came after the previous read returned, which still bounds it
            _widen(self.ubounds, ut, ut - lower)
            self.ulast_bounds[ut] = ut - lower
        self.t, self.ut = t, ut
        self.received += len(data)
        return data

    def _held(self, data: bytes) -> bytes:
        """Bytes a TLS layer held from the last read: its stamps, bounded by the return
        of the read before it."""
        if self._head_tail is not None:
            self._past_head(data)  # keeps track of where the head ends
        if self.bounded:
            if self.kernel_ok:
                late = self.t - min(self._lower, self.t)
                _widen(self.bounds, self.t, late)
                self.last_bounds[self.t] = late
            late = self.ut - min(self._lower, self.ut)
            _widen(self.ubounds, self.ut, late)
            self.ulast_bounds[self.ut] = late
        self.received += len(data)
        return data

    def record_bounds(self) -> tuple[dict[int, int], dict[int, int]]:
        """The bounds of the clock the exchange ended up on (``kernel_ok``): any event's
        and the last event's, per stamp, for :class:`~chatprobe.record.RequestRecord`."""
        if self.kernel_ok:
            return self.bounds, self.last_bounds
        return self.ubounds, self.ulast_bounds

    def _stamped_read(self) -> tuple[bytes, Any]:
        """One read of the TCP socket with its kernel stamp (the ancillary data)."""
        if self._raw is not None:
            return self._recvmsg(self._tcp, self._raw)
        data, ancillary, _flags, _addr = self._tcp.recvmsg(self.size, ANCILLARY)
        return data, ancillary

    def _recvmsg(self, sock: Any, raw: _socket.socket) -> tuple[bytes, Any]:
        """One ``recvmsg`` with kernel stamps on a gevent socket, waiting first when the
        last read emptied the queue (the next bytes are almost never there yet)."""
        if self._drained:
            sock._wait(sock._read_event)  # gevent's own wait: the socket's timeout applies
        try:
            data, ancillary, _flags, _addr = raw.recvmsg(self.size, ANCILLARY)
        except BlockingIOError:  # woken with nothing to read after all: gevent's loop
            data, ancillary, _flags, _addr = sock.recvmsg(self.size, ANCILLARY)
        self._drained = len(data) < self.size
        return data, ancillary


class _Watchdog:
    """The read timeouts of one exchange on one lazy timer (module docstring)."""

    __slots__ = ("_fires_ns", "_greenlet", "_timer", "due_ns", "waiting")

    def __init__(self) -> None:
        self._greenlet = gevent.getcurrent()
        self._timer: Any = None
        self._fires_ns = 0  # when the running timer fires
        self.due_ns = 0
        self.waiting = False  # the greenlet is inside a read: a timeout may interrupt it

    def expect(self, limit_s: float) -> None:
        """A read starts now and must end within ``limit_s`` seconds."""
        now = time.perf_counter_ns()
        self.due_ns = due = now + int(limit_s * 1e9)
        self.waiting = True
        timer = self._timer
        # a later due time leaves the timer be (it starts again when it fires); an earlier
        # one (a shorter limit: idle after first byte) needs it sooner
        if timer is None or not timer.active or due < self._fires_ns:
            self._start(now, limit_s)

    def _start(self, now: int, after_s: float) -> None:
        if self._timer is not None:
            self._timer.close()
        after_s = max(after_s, 0.0)
        self._fires_ns = now + int(after_s * 1e9)
        self._timer = gevent.get_hub().loop.timer(after_s, ref=False)
        self._timer.start(self._fire)

    def _fire(self) -> None:  # in the hub
        if not self.waiting:
            return  # between reads: the next read starts the timer again
        now = time.perf_counter_ns()
        left = self.due_ns - now
        if left > 0:
            self._start(now, left / 1e9)
            return
        self.waiting = False
        self._greenlet.throw(TimeoutError("timed out"))

    def close(self) -> None:
        self.waiting = False
        if self._timer is not None:
            self._timer.close()
            self._timer = None


def _os_socket(sock: Any) -> _socket.socket | None:
    """The OS socket beneath a gevent socket (None: not one, then its own recvmsg waits)."""
    raw = getattr(sock, "_sock", None)
    if raw is None or not hasattr(sock, "_wait") or not hasattr(sock, "_read_event"):
        return None
    return raw if isinstance(raw, _socket.socket) and hasattr(raw, "recvmsg") else None


def _widen(bounds: dict[int, int], stamp: int, late: int) -> None:
    """Keep the largest bound of the reads stamped ``stamp``."""
    if late > bounds.get(stamp, -1):
        bounds[stamp] = late


def read_head(resp: Any, reader: StampedReader) -> None:
    """Feed ``resp`` (a geventhttpclient parser) until the head of a final response is in.

    Raises :class:`PeerClosed` if the server closes first, and what the socket and the
    parser raise. The stamps of the read that completed the head stay in ``reader``.
    """
    while not resp.headers_complete or resp.get_code() < 200:  # skip interim 1xx heads
        if not resp.headers_complete:
            reader.expect_head()
        data = reader.read()
        if not data:
            got = f"after {reader.received} bytes of it" if reader.received else "before any"
            raise PeerClosed(f"server closed the connection {got} response head")
        resp.feed(data)


def read_body(
    resp: Any,
    reader: StampedReader,
    *,
    lines: bool,
    max_bytes: int,
    chunks: list[bytes],
    times: list[int],
    utimes: list[int],
) -> int:
    """Append the body as it arrives to ``chunks``, with both stamps of its read.

    With ``lines`` (an event stream) only runs of complete lines (LF, CRLF or CR) are taken
    and an unterminated tail stays in the parser's buffer at the end of the body (the caller
    takes it); otherwise every read's bytes. Bytes that came with the head carry the head's
    stamps. Returns the body bytes taken. Raises :class:`PeerClosed` when the server closes
    before the body is complete, :class:`BodyTooLarge` past ``max_bytes``, and what the
    socket, the parser and the reader raise.
    """
    buf = resp._body_buffer  # geventhttpclient: the parsed (de-chunked) body so far
    add_chunk, add_time, add_utime = chunks.append, times.append, utimes.append
    taken = 0
    t, ut = reader.t, reader.ut
    while True:
        # SSE lines may also end with a lone CR; the decoder joins a CR/LF pair split here.
        end = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1 if lines else len(buf)
        if end:
            add_chunk(bytes(buf[:end]))
            del buf[:end]
            add_time(t)
            add_utime(ut)
            taken += end
            if taken > max_bytes:
                raise BodyTooLarge(f"response body exceeded {max_bytes} bytes; stopped reading")
        if resp.message_complete:
            return taken
        data = reader.read()
        t, ut = reader.t, reader.ut
        if data:
            resp.feed(data)
            continue
        _end_of_stream(resp, taken + len(buf))


def _end_of_stream(resp: Any, body_bytes: int) -> None:
    """EOF mid-body: fine for a body delimited by the close, else :class:`PeerClosed`."""
    from geventhttpclient.response import HTTPParseError

    with contextlib.suppress(HTTPParseError):
        resp.feed(b"")  # completes a body that has neither a length nor chunked framing
    if not resp.message_complete:
        raise PeerClosed(
            f"server closed the connection after {body_bytes} body bytes, before the body "
            "was complete"
        )
