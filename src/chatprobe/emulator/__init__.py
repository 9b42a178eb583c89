"""The provider emulator: a local OpenAI-compatible server that behaves like each profile.

Public API (see ``docs/emulator.md``)::

    from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig

    with Emulator.in_thread(EmulatorConfig(providers=("openrouter",), ttft_ms=30)) as emu:
        emu.base_url("openrouter")   # http://127.0.0.1:PORT/openrouter/api/v1
        emu.profile("openrouter")    # the profile pointed at the emulator, for ChatClient
        emu.truth(since=0)           # ground-truth records (dicts), oldest first
        emu.stats()                  # counters by status, fault, outcome, provider

``Emulator.in_subprocess(config, cpu=N)`` runs ``chatprobe emulate`` in a child process
instead (for load runs and benchmarks). Over HTTP: ``GET /_chatprobe/requests?since=SEQ``,
``GET /_chatprobe/stats``, ``POST /_chatprobe/reset``; every answer to a chat request carries
``X-Chatprobe-Request-Id`` (the truth record's ``request_id``).

Per request controls: ``X-Chatprobe-Fault: kind[=param][,kind...]`` (kinds in
:data:`FAULT_KINDS`, described in :mod:`chatprobe.emulator.faults`) and
``X-Chatprobe-Output-Tokens: N`` (natural completion length).

Capacity (:mod:`chatprobe.emulator.capacity`): ``EmulatorConfig(capacity=Capacity(slots=8,
tokens_per_s=400))`` serves every model as a continuous-batching server; ``slo_edge(latency,
capacity, SLO(ttft_ms=500, itl_ms=50), Workload(...))`` is the true SLO edge (req/s) of the
same model, from a deterministic simulation.

Modules: ``config`` (EmulatorConfig, DEMO_KEY), ``text`` (seeded text, tokenizer), ``plan``
(request -> what to answer, validation), ``render`` (bytes per provider dialect),
``respond`` (timed writes, faults, auth, rate limits), ``capacity`` (the continuous-batching
model and its simulator), ``server`` (asyncio + httptools),
``truth`` (ground truth), ``runner`` (thread/subprocess), ``bench`` (streams/s).
"""

from chatprobe.emulator.bench import BenchResult, measure_streams_per_second
from chatprobe.emulator.capacity import SLO, Capacity, SloEdge, Workload, simulate, slo_edge
from chatprobe.emulator.config import DEMO_KEY, EmulatorConfig
from chatprobe.emulator.faults import FAULT_KINDS, Fault, FaultRate, parse_fault_rate
from chatprobe.emulator.runner import Emulator, EmulatorStartError
from chatprobe.emulator.server import EmulatorServer
from chatprobe.emulator.text import count_tokens

__all__ = [
    "DEMO_KEY",
    "FAULT_KINDS",
    "SLO",
    "BenchResult",
    "Capacity",
    "Emulator",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorStartError",
    "Fault",
    "FaultRate",
    "SloEdge",
    "Workload",
    "count_tokens",
    "measure_streams_per_second",
    "parse_fault_rate",
    "simulate",
    "slo_edge",
]
