"""The emulator's event loop: asyncio's, with timers that fire on time (Linux).

asyncio waits for its next timer with ``epoll_wait``, whose timeout is in whole
milliseconds, rounded up so it never wakes early. Every timed write of the emulator (a
first token, each inter-token gap, a replayed recording's events) therefore fired 0-1 ms
late, about 0.5 ms on average; on a busy machine the p99 reached 1.5 ms. The ground truth
records the actual write times, so no figure was wrong, but the served timing drifted from
the intended one (benchmark B5: a replay within 2 ms of its recording).

:class:`PreciseEpollSelector` keeps one ``timerfd`` (nanosecond resolution) in the epoll set
and arms it with the exact timeout before each wait, so the wait ends when the next timer
is due, not at the next millisecond. The timerfd is not one of the selector's registered
keys, so asyncio never sees its events; arming it again (or disarming it) clears a fired
one. One ``timerfd_settime`` call per wait with a timeout: a microsecond or so.

Elsewhere (no ``timerfd``, or it cannot be created) :func:`new_event_loop` returns asyncio's
default loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import selectors
import sys
from typing import Any

__all__ = ["PreciseEpollSelector", "new_event_loop"]

_CLOCK_MONOTONIC = 1  # asyncio's clock (time.monotonic) and perf_counter's on Linux


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> Any | None:
    if not sys.platform.startswith("linux") or not hasattr(selectors, "EpollSelector"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime = libc.timerfd_create, libc.timerfd_settime
    except (OSError, AttributeError):
        return None
    create.argtypes = [ctypes.c_int, ctypes.c_int]
    create.restype = ctypes.c_int
    settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    settime.restype = ctypes.c_int
    return libc


_LIBC = _libc()


class PreciseEpollSelector(selectors.EpollSelector):
    """An epoll selector whose waits end at the timeout to within microseconds."""

    def __init__(self) -> None:
        if _LIBC is None:
            raise OSError("timerfd is not available")
        fd = _LIBC.timerfd_create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        super().__init__()
        self._timer_fd = fd
        self._spec = _Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)
        self._armed = False
        # registered with the epoll object itself, not as a key: select() ignores its events
        epoll: Any = self._selector  # type: ignore[attr-defined]  # EpollSelector's epoll
        epoll.register(fd, selectors.EVENT_READ)

    def _set(self, ns: int) -> None:
        value = self._spec.it_value
        value.tv_sec, value.tv_nsec = divmod(ns, 1_000_000_000)
        if _LIBC is not None:
            _LIBC.timerfd_settime(self._timer_fd, 0, self._spec_ref, None)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0:
            self._set(max(1, int(timeout * 1e9)))  # relative; resets a fired expiry
            self._armed = True
        elif self._armed:  # a fired timer would keep the epoll set readable
            self._set(0)
            self._armed = False
        # epoll's own (rounded-up) timeout stays as the safety net; the timer ends it first
        return super().select(timeout)

    def close(self) -> None:
        fd, self._timer_fd = self._timer_fd, -1
        super().close()
        if fd >= 0:
            os.close(fd)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop on :class:`PreciseEpollSelector`, or the default one where that is
    not available."""
    try:
        return asyncio.SelectorEventLoop(PreciseEpollSelector())
    except OSError:
        return asyncio.new_event_loop()
