"""Load runs: locust users that measure TTFT, ITL, E2E and throughput from exact samples.

Modules, split by whether they may import gevent (only the locust child process may):

* pure, safe anywhere: :mod:`~chatprobe.load.scenario` (YAML scenarios),
  :mod:`~chatprobe.load.prompts`, :mod:`~chatprobe.load.plan` (the resolved run plan handed
  to the child), :mod:`~chatprobe.load.schedule` (stages, arrivals, quotas),
  :mod:`~chatprobe.load.summary` (``summary.json`` from ``samples.jsonl``),
  :mod:`~chatprobe.load.launcher` (``chatprobe load``: starts the emulator and the locust
  child, shows progress, handles signals);
* locust child only: :mod:`~chatprobe.load.user` (the streaming user, the hot path) and
  :mod:`~chatprobe.load.plugin` (event hooks: sample sink, shipping to the master, shape,
  open-loop driver, end of run).

This package's ``__init__`` imports nothing, so importing a pure module never drags in gevent.
"""
