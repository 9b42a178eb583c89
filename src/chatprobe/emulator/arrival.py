"""When a request reached the emulator: the kernel's receive stamp, not the event loop's.

The ground truth measures the emulator's latency from the moment a request arrived. Under
load the event loop is busy writing other streams' tokens and parses a request some time
after its bytes reached the socket; a truth counted from the parse would leave that wait
out, and the client's TTFT (which rightly includes it) would look wrong by as much. So the
emulator's sockets ask for kernel receive stamps (:mod:`chatprobe.kernelclock`) and keep
the one of each read: asyncio's transports read with ``recv`` / ``recv_into`` on the socket
object they were given, and :class:`StampingListener` hands them :class:`StampedSocket`
objects whose reads go through ``recvmsg``. TLS connections get the stamp of the encrypted
bytes (the socket beneath the TLS layer).

A stamp is used only when it is plausible: not later than the parse and not older than
:data:`MAX_WAIT_NS` before it; otherwise (no stamp, a clock step) the parse time stands and
the clock offset is measured again.
"""

from __future__ import annotations

import socket
import weakref
from typing import Any

from chatprobe.kernelclock import (
    ANCILLARY,
    KERNEL_TIMESTAMPS,
    clock_offset,
    enable_timestamps,
    keep_timestamping_on,
    kernel_stamp,
)

__all__ = ["MAX_WAIT_NS", "StampedSocket", "StampingListener", "listening_socket"]

MAX_WAIT_NS = 60_000_000_000
"""A stamp further than this before the parse is taken for a clock step, not a wait."""


class StampedSocket(socket.socket):
    """An accepted connection whose reads remember when the kernel received their bytes:
    :attr:`arrived_ns` (``perf_counter_ns`` clock; None when the last read had no stamp)."""

    __slots__ = ("arrived_ns", "listener")

    arrived_ns: int | None
    listener: StampingListener

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data, ancillary, _flags, _addr = self.recvmsg(bufsize, ANCILLARY, flags)
        self._keep(ancillary)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer)
        if nbytes:
            view = view[:nbytes]
        size, ancillary, _flags, _addr = self.recvmsg_into([view], ANCILLARY, flags)
        self._keep(ancillary)
        return size

    def _keep(self, ancillary: Any) -> None:
        stamp = kernel_stamp(ancillary)
        self.arrived_ns = None if stamp is None else stamp - self.listener.offset_ns

    def arrival(self, parsed_ns: int) -> int:
        """When the bytes of the last read arrived, or ``parsed_ns`` when that is unknown
        or implausible (the listener then measures its clock offset again)."""
        arrived = self.arrived_ns
        if arrived is None:
            return parsed_ns
        if parsed_ns - MAX_WAIT_NS <= arrived <= parsed_ns:
            return arrived
        self.listener.offset_ns = clock_offset()
        return parsed_ns


class StampingListener(socket.socket):
    """A listening socket whose ``accept`` returns :class:`StampedSocket` connections with
    kernel receive stamps on, found by file descriptor through :meth:`claim`.

    ``accepted`` holds them weakly: a connection asyncio drops before it reaches the
    protocol (a failed TLS handshake) leaves no entry behind."""

    __slots__ = ("accepted", "offset_ns")

    accepted: weakref.WeakValueDictionary[int, StampedSocket]
    offset_ns: int

    def accept(self) -> tuple[socket.socket, Any]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        conn = StampedSocket(self.family, self.type, self.proto, fileno=fd)
        if socket.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)  # what socket.accept does
        conn.arrived_ns = None
        conn.listener = self
        enable_timestamps(conn)
        self.accepted[fd] = conn  # an older entry for a reused descriptor is replaced
        return conn, address

    def claim(self, transport: Any) -> StampedSocket | None:
        """The stamped socket beneath ``transport`` (None for one this listener did not
        accept)."""
        raw = transport.get_extra_info("socket")
        if raw is None:
            return None
        try:
            return self.accepted.pop(raw.fileno(), None)
        except OSError:
            return None


def listening_socket(host: str, port: int, backlog: int) -> StampingListener | None:
    """A bound, listening :class:`StampingListener` for ``host:port``; None when the host
    names several addresses (asyncio then binds each) or the platform has no stamps."""
    if not KERNEL_TIMESTAMPS:
        return None
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    addresses = {info[4] for info in infos}
    if len(addresses) != 1:
        return None
    family, kind, proto, _name, address = infos[0]
    keep_timestamping_on()  # the first requests' arrival stamps (kernelclock)
    sock = StampingListener(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    sock.accepted = weakref.WeakValueDictionary()
    sock.offset_ns = clock_offset()
    return sock
