"""Run one locust user class in library mode, closed loop, and write a benchmark result.

Shared by every locust-based client so they are driven identically: a local runner, all
users spawned at once, ``wait_time`` zero, locust's own stats and events left on (they are
part of what a locust user costs). The user classes report each finished stream through
:func:`record` into the module's :data:`RESULT`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent

from benchmarks.clients.protocol import ClientArgs, Result, Sample

RESULT: Result | None = None
ARGS: ClientArgs | None = None


def record(sample: Sample) -> None:
    """Called by a user when a stream ends (ok or not)."""
    assert RESULT is not None
    RESULT.samples.append(sample)


def run(
    name: str,
    user_class: type,
    args: ClientArgs,
    *,
    users: int | None = None,
    on_runner: Callable[[Any, Any], None] | None = None,
) -> Result:
    """Run ``users`` (default ``args.concurrency``) users for warmup + duration seconds.

    The environment uses locust's global event hooks, as the ``locust`` command does, so
    listeners registered at import (chatprobe's plugin) fire; ``on_runner`` is called once the
    runner exists (to fire ``init``, which library mode leaves to the caller).
    """
    from locust import events
    from locust.env import Environment

    global RESULT, ARGS
    RESULT = Result(name, args)
    ARGS = args
    users = args.concurrency if users is None else users
    env = Environment(user_classes=[user_class], host=args.url, events=events)
    runner = env.create_local_runner()
    if on_runner is not None:
        on_runner(env, runner)
    # all users at once: the spawn rate only has to exceed the user count
    runner.start(users, spawn_rate=max(users * 50, 100))
    gevent.sleep(args.warmup)
    RESULT.window_start()
    gevent.sleep(args.duration)
    RESULT.window_end()
    failures = sum(e.occurrences for e in env.stats.errors.values())
    if failures:
        RESULT.notes.append(f"locust recorded {failures} failures")
    runner.quit()
    return RESULT
