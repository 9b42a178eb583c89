"""Load runs: locust users that measure TTFT, ITL, E2E and throughput from exact samples.

A locustfile of one's own subclasses the users, the locust way (docs/load.md)::

    from chatprobe.load import ChatUser

    class Chat(ChatUser):
        pass

Modules, split by whether they may import gevent (only the locust child process may):

* pure, safe anywhere:

  - :mod:`~chatprobe.load.scenario` (YAML scenarios), :mod:`~chatprobe.load.prompts`,
    :mod:`~chatprobe.load.plan` (the resolved run plan handed to the child),
    :mod:`~chatprobe.load.bare` (the plan of a bare ``locust -f`` run);
  - :mod:`~chatprobe.load.schedule` (stages, arrivals, quotas);
  - :mod:`~chatprobe.load.targets`: what each request is (prepared targets, the request
    template, the chooser of target and prompt: the seam for other workloads);
  - :mod:`~chatprobe.load.work`, :mod:`~chatprobe.load.workloads`,
    :mod:`~chatprobe.load.conversation`, :mod:`~chatprobe.load.trace`: workloads beyond
    one prompt (conversations fed with the real answers, trace replay), each request
    still a :class:`~chatprobe.load.targets.Choice` for the one per-request path;
  - :mod:`~chatprobe.load.polite` (Retry-After holds and backoff, decided);
  - :mod:`~chatprobe.load.status` (progress and ``status.json``);
  - :mod:`~chatprobe.load.summary` (``summary.json`` from ``samples.jsonl``);
  - :mod:`~chatprobe.load.launcher` (``chatprobe load``: preflight, the emulator and the
    locust child, progress, signals);

* locust child only, the engine, each part tied one way:

  - :mod:`~chatprobe.load.receive` and :mod:`~chatprobe.load.exchange`: one streamed
    exchange over the wire, stamped (the hot path);
  - :mod:`~chatprobe.load.request`: the per-request path (record, exchange, polite load,
    sample, sink, locust's table);
  - :mod:`~chatprobe.load.sink`: where samples go (local writer, worker shipping, master
    ingest);
  - :mod:`~chatprobe.load.quota` (request counts), :mod:`~chatprobe.load.timeline`
    (the run's clock, the shape and the end), :mod:`~chatprobe.load.locust_stats`
    (locust's request table and the timing table apart);
  - :mod:`~chatprobe.load.process`: one process's run, the parts wired, locust's hooks;
  - :mod:`~chatprobe.load.users`: :class:`ChatUser`, :class:`OpenLoopUser`;
  - :mod:`~chatprobe.load.plugin`: the shipped locustfile's :func:`install`.

Imports point one way: users -> process -> request -> exchange, sink, stats, timeline ->
targets, plan. This package's ``__init__`` imports nothing at import time (the user classes
are loaded on first access), so importing a pure module never drags in gevent.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChatUser", "OpenLoopUser"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from chatprobe.load import users

        return getattr(users, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
