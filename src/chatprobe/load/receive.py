"""Reading a streamed body off a geventhttpclient response: whole lines, stamped on arrival.

Why not ``readline``: the load user used to take one line per call and stamp it after the
call returned. That costs a Python-level buffer search, copy and append per line (two lines
per SSE event), and the stamp is taken when the *client* gets round to the line, so a busy
client reports its own queueing as latency. Here each network read is stamped once, and
every complete line it brings is taken in one slice; the decoder then gives each event the
time of the read that completed it, exactly as feeding it live would.

Kernel receive timestamps (Linux ``SO_TIMESTAMPNS``): with the option on, ``recvmsg``
returns the time the kernel queued the data on the socket, taken in the sender's write on
loopback and in the network stack otherwise, so TTFT and ITL no longer depend on how long
the client took to get to the socket. The stamp is CLOCK_REALTIME; it is moved onto the
``perf_counter_ns`` (CLOCK_MONOTONIC) time line by the offset between the two clocks read
together. When a read drains several packets the kernel reports the last one's time; when
no stamp comes back (option unsupported, data buffered with the headers) the userspace
clock is used. A stamp is only trusted between the request's send time and now.

TLS sockets have no ``recvmsg``: the TLS layer decrypts in user space and may hold decrypted
bytes in its own buffer (``pending()``), so a kernel stamp could not say when those bytes
arrived anyway. Over TLS every read is stamped in user space (``perf_counter_ns`` right after
the read returns), and a read served from bytes the TLS layer already held gets the stamp of
the read that brought them in. :func:`stamp_source` says which clock a socket gets.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

__all__ = [
    "KERNEL_TIMESTAMPS",
    "BodyTooLarge",
    "TotalTimeout",
    "read_lines",
    "stamp_source",
    "want_timestamps",
]

# SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) from asm-generic/socket.h; Python has no constant.
# x86-64 and arm64 use the generic value; other architectures keep stamps off.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0


def _supported() -> bool:
    import platform

    return sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")


KERNEL_TIMESTAMPS = _supported()
"""Whether :func:`read_lines` can ask for kernel receive stamps on this platform."""


class TotalTimeout(Exception):
    """The whole exchange took longer than its total timeout."""


class BodyTooLarge(Exception):
    """The body grew past the size limit; reading stopped."""


def is_tls(sock: Any) -> bool:
    """Whether ``sock`` is a TLS socket (decrypted in user space: no kernel stamps)."""
    return hasattr(sock, "pending")  # ssl.SSLSocket and gevent.ssl.SSLSocket alike


def stamp_source(sock: Any) -> str:
    """``"kernel"`` when reads on ``sock`` can carry kernel receive stamps, else ``"user"``."""
    return "kernel" if KERNEL_TIMESTAMPS and sock is not None and not is_tls(sock) else "user"


def want_timestamps(sock: Any) -> bool:
    """Ask the kernel to stamp received data on ``sock``; False where it cannot (TLS)."""
    if stamp_source(sock) != "kernel":
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def read_lines(
    resp: Any,
    t_first_ns: int,
    t_min_ns: int,
    deadline_ns: int,
    max_bytes: int,
    chunks: list[bytes],
    times: list[int],
    *,
    kernel: bool = True,
) -> int:
    """Append runs of complete lines (LF, CRLF or CR) from ``resp``'s body, with arrival times.

    ``t_first_ns`` is the arrival time of body bytes already buffered with the headers;
    ``t_min_ns`` (the send time) bounds a believable kernel stamp from below. At the end of
    the body an unterminated tail is left in the response (``resp.read()`` returns it).
    Returns the bytes taken. Raises what the socket and parser raise, plus
    :class:`TotalTimeout` and :class:`BodyTooLarge`.
    """
    now = time.perf_counter_ns
    buf = resp._body_buffer  # geventhttpclient: the parsed (de-chunked) body so far
    add_chunk = chunks.append
    add_time = times.append
    received = 0
    t = t_first_ns
    sock = resp._sock
    stamped = kernel and want_timestamps(sock)
    pending = getattr(sock, "pending", None) if not stamped else None  # TLS: bytes held
    offset = time.time_ns() - now()  # CLOCK_REALTIME - CLOCK_MONOTONIC
    unpack = _TIMESPEC.unpack
    while True:
        # SSE lines may also end with a lone CR; the decoder joins a CR/LF pair split here.
        end = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
        if end:
            chunk = bytes(buf[:end])
            del buf[:end]
            add_chunk(chunk)
            add_time(t)
            received += end
            if received > max_bytes:
                raise BodyTooLarge
        if resp.message_complete:
            return received
        sock = resp._sock
        if sock is None:
            from geventhttpclient.response import HTTPConnectionClosed

            raise HTTPConnectionClosed("connection closed.")
        if stamped:
            data, ancillary, _flags, _addr = sock.recvmsg(resp.block_size, _ANCILLARY)
            t = now()
            for _level, kind, payload in ancillary:
                if kind == _SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
                    sec, nsec = unpack(payload[: _TIMESPEC.size])
                    kt = sec * 1_000_000_000 + nsec - offset
                    if t_min_ns <= kt <= t:
                        t = kt
        elif pending is not None and pending():
            data = sock.recv(resp.block_size)  # decrypted already: it came with the last read
        else:
            data = sock.recv(resp.block_size)
            t = now()
        if now() > deadline_ns:
            raise TotalTimeout
        resp.feed(data)  # b"" at EOF: the parser raises if the body is incomplete
        if not data and not resp.message_complete:
            from geventhttpclient.response import HTTPConnectionClosed

            raise HTTPConnectionClosed("connection closed.")
