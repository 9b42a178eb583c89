"""Kernel receive timestamps (Linux ``SO_TIMESTAMPNS``) and the clock they are moved onto.

Both ends of a measurement use them: the load client stamps each read of a response
(:mod:`chatprobe.load.receive`), and the emulator stamps when a request arrived, so that
its ground truth counts from the moment the request reached the server and not from the
moment its event loop got round to parsing it (:mod:`chatprobe.emulator.server`).

With the option on, ``recvmsg`` returns, as ancillary data, the time the kernel queued the
data on the socket (taken in the sender's write on loopback, in the network stack
otherwise). The stamp is CLOCK_REALTIME; :func:`clock_offset` moves it onto the
``perf_counter_ns`` (CLOCK_MONOTONIC) time line every other stamp of the project uses.
"""

from __future__ import annotations

import platform
import socket
import struct
import sys
import time
from typing import Any

__all__ = [
    "ANCILLARY",
    "KERNEL_TIMESTAMPS",
    "SO_TIMESTAMPNS",
    "clock_offset",
    "enable_timestamps",
    "keep_timestamping_on",
    "kernel_stamp",
]

# SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) from asm-generic/socket.h; Python has no constant.
# x86-64 and arm64 use the generic value; other architectures keep stamps off.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
"""The ancillary buffer size ``recvmsg`` needs for one stamp."""

KERNEL_TIMESTAMPS = sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")
"""Whether sockets on this platform can carry kernel receive stamps."""


def enable_timestamps(sock: Any) -> bool:
    """Ask the kernel to stamp the data it receives on ``sock``; False when it cannot."""
    if not KERNEL_TIMESTAMPS or sock is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


_HOLDER: list[socket.socket] = []


def keep_timestamping_on() -> bool:
    """Turn the kernel's receive timestamping on now and keep it on for this process.

    Linux stamps incoming packets only while some socket on the machine asks for stamps,
    and it turns that on lazily: the first ``SO_TIMESTAMPNS`` request schedules the switch
    on a work queue, and packets received until it runs carry no stamp. A load run that
    starts on an otherwise quiet machine lost the stamps of its first responses that way
    (their exchanges fell back to user-space stamps). One socket holding the option from
    before the load starts (and for as long as the process lives) closes that window.
    """
    if not KERNEL_TIMESTAMPS:
        return False
    if not _HOLDER:
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if not enable_timestamps(holder):
            holder.close()
            return False
        _HOLDER.append(holder)
    return True


def kernel_stamp(ancillary: Any) -> int | None:
    """The kernel receive time (CLOCK_REALTIME ns) in a ``recvmsg`` answer, if any."""
    for _level, kind, payload in ancillary:
        if kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(payload)
            return int(sec * 1_000_000_000 + nsec)
    return None


def clock_offset(tries: int = 5) -> int:
    """CLOCK_REALTIME minus the ``perf_counter_ns`` clock, in ns, read within a tight bracket.

    The two clocks cannot be read at once: a process preempted between the two reads would
    move every kernel stamp converted with the offset by the time it lost (and the stamps
    would then fail their plausibility checks). So the wall clock is read between two
    monotonic reads and the tightest of a few brackets is kept.
    """
    best_width, best = -1, 0
    for _ in range(tries):
        before = time.perf_counter_ns()
        wall = time.time_ns()
        after = time.perf_counter_ns()
        width = after - before
        if best_width < 0 or width < best_width:
            best_width, best = width, wall - (before + after) // 2
        if width < 2_000:  # 2 microseconds: as tight as it gets
            break
    return best
