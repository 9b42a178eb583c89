"""The emulator's event loop (``chatprobe.emulator.eventloop``): asyncio's loop on an epoll
selector whose waits end when the next timer is due. Judged by order and counts: a timer
never fires before its time, timers fire in order, and a fired timer leaves no readable
fd behind (an idle loop waits instead of spinning)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator

import pytest

from chatprobe.emulator.eventloop import PreciseEpollSelector, new_event_loop

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd: Linux")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = new_event_loop()
    yield loop
    loop.close()


def _selector(loop: asyncio.AbstractEventLoop) -> PreciseEpollSelector:
    selector = getattr(loop, "_selector", None)
    assert isinstance(selector, PreciseEpollSelector)
    return selector


def test_timers_fire_in_order_and_never_early(loop: asyncio.AbstractEventLoop) -> None:
    fired: list[tuple[float, float]] = []
    start = loop.time()
    dues = [start + 0.0003 * k for k in (7, 1, 13, 4, 4, 9)]
    for due in dues:
        loop.call_at(due, lambda due=due: fired.append((due, loop.time())))
    loop.call_at(max(dues) + 0.002, loop.stop)
    loop.run_forever()
    assert [due for due, _ in fired] == sorted(dues)
    assert all(at >= due for due, at in fired)


def test_an_idle_loop_waits_after_a_timer_fired(loop: asyncio.AbstractEventLoop) -> None:
    """A fired timerfd left armed would keep epoll readable: the loop would spin."""
    selector = _selector(loop)
    calls = [0]
    select = selector.select

    def counting(timeout: float | None = None) -> list[object]:
        calls[0] += 1
        return select(timeout)  # type: ignore[return-value]

    selector.select = counting  # type: ignore[method-assign,assignment]
    reader, writer = os.pipe()
    try:
        loop.call_later(0.001, lambda: None)  # a timer that fires, then nothing is due:
        # an idle wait with no timer at all, ended from another thread by a pipe
        loop.add_reader(reader, loop.stop)
        wake = threading.Timer(0.02, os.write, (writer, b"x"))
        wake.start()
        loop.run_forever()
        wake.join()
    finally:
        loop.remove_reader(reader)
        os.close(reader)
        os.close(writer)
    assert calls[0] < 20  # a spinning loop makes thousands of calls in 20 ms


def test_closing_the_loop_closes_the_timer_fd() -> None:
    loop = new_event_loop()
    fd = _selector(loop)._timer_fd
    os.fstat(fd)
    loop.close()
    with pytest.raises(OSError):
        os.fstat(fd)
