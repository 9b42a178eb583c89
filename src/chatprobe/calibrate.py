"""``chatprobe calibrate``: how wrong this client's own numbers are, at a given load, here.

A load run against the emulator (TTFT 50 ms, ITL 10 ms, no jitter, 32-token streams, pinned
to the last CPU, over TLS with ``tls``) at the requested users or rate, for the requested
duration, exactly as ``chatprobe load`` runs (same launcher, same user, same processes).
Every sample sent after the first ``min(2 s, a quarter of the run)`` (connections opening
and the first requests leaving together) is joined with the emulator's ground truth by
``server_request_id``:

* TTFT error = client TTFT - (truth first content written - truth request read);
* ITL error = client ITL - truth (t_last - t_first content) / (tokens - 1);
* bound coverage = share of samples whose TTFT error is within their ``ttft_bound_ms``
  plus :data:`SERVER_FLOOR_MS` (the server-side part no client can bound);
* achieved against requested rate (open loop) and the client's CPU busy fraction.

The recommendation: processes per core such that the p99 TTFT error stays within the
timing-bound threshold; when one process is over it (or its CPU is near full), the users
are spread over ``ceil(busy / 0.5)`` processes, at most one per CPU the run's load processes
get: every CPU here for a live run, all but the last for a run against an emulator started
here (the launcher pins the emulator to the last CPU). A process on the emulator's CPU would
take CPU time from the server it measures.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatprobe.metrics import DEFAULT_TIMING_BOUND_MS, Dist

if TYPE_CHECKING:
    from chatprobe.load.launcher import LoadOptions

__all__ = [
    "Calibration",
    "calibrate",
    "calibrate_for",
    "load_cpus",
    "measure_against_truth",
    "read_samples",
    "recommend_processes",
]

TTFT_MS = 50.0
ITL_MS = 10.0
TOKENS = 32
WARMUP_S = 2.0  # left out of the figures (at most a quarter of the run)
SERVER_FLOOR_MS = 0.5
"""What the bound cannot see: the server's own read and write, loopback and the kernel
(benchmarks B2's raw-httptools reference, p50 about 0.5 ms); coverage allows for it."""


@dataclass
class Calibration:
    users: int | None
    rate: float | None
    duration_s: float
    processes: int
    tls: bool
    requests: int = 0
    joined: int = 0
    ttft_err_ms: Dist = field(default_factory=Dist)
    itl_err_ms: Dist = field(default_factory=Dist)
    bound_ms: Dist = field(default_factory=Dist)
    covered: float | None = None  # share of joined samples with error <= bound
    requested_rate: float | None = None
    achieved_rate: float | None = None
    busy_fraction: float | None = None
    loop_lag_p99_ms: float | None = None  # the event loop's wake-up lateness (loopwatch)
    cpus: int = 1
    threshold_ms: float = DEFAULT_TIMING_BOUND_MS
    recommended_processes: int = 1

    def to_dict(self) -> dict[str, Any]:
        """The calibration as a results folder keeps it (``meta.json``'s ``calibration``)."""

        def dist(d: Dist) -> dict[str, float | None]:
            return {"p50": d.p50, "p99": d.p99, "max": d.max}

        return {
            "users": self.users,
            "rate": self.rate,
            "duration_s": self.duration_s,
            "processes": self.processes,
            "tls": self.tls,
            "requests": self.requests,
            "joined": self.joined,
            "ttft_err_ms": dist(self.ttft_err_ms),
            "itl_err_ms": dist(self.itl_err_ms),
            "bound_ms": dist(self.bound_ms),
            "bound_covers": self.covered,
            "busy_fraction": self.busy_fraction,
            "loop_lag_p99_ms": self.loop_lag_p99_ms,
            "load_cpus": self.cpus,
            "recommended_processes": self.recommended_processes,
        }

    def lines(self) -> list[str]:
        load = f"{self.users} users" if self.users else f"{self.rate:g} requests/s"
        e, b = self.ttft_err_ms, self.bound_ms
        out = [
            f"calibration: {load}, {self.duration_s:g} s, {self.processes} process(es), "
            f"{'HTTPS' if self.tls else 'HTTP'}, emulator TTFT {TTFT_MS:g} ms ITL {ITL_MS:g} ms",
            f"  requests {self.requests}, joined with ground truth {self.joined}",
            f"  TTFT error (client - truth) p50 {_f(e.p50)} ms, p99 {_f(e.p99)} ms, "
            f"max {_f(e.max)} ms",
            f"  ITL error p50 {_f(self.itl_err_ms.p50, 3)} ms, p99 {_f(self.itl_err_ms.p99, 3)} ms",
            f"  client timing error bound p50 {_f(b.p50)} ms, p99 {_f(b.p99)} ms; covers the "
            f"error (+{SERVER_FLOOR_MS:g} ms server floor) of {_pct(self.covered)} of requests",
        ]
        if self.requested_rate:
            out.append(
                f"  rate: requested {self.requested_rate:g}/s, achieved {_f(self.achieved_rate)}/s"
            )
        out.append(
            f"  client CPU busy {_pct(self.busy_fraction)}, event loop late p99 "
            f"{_f(self.loop_lag_p99_ms)} ms; recommended processes: "
            f"{self.recommended_processes} ({self.cpus} CPUs for the load processes)"
        )
        return out


def _f(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def load_cpus(cpus: int, *, local_emulator: bool) -> int:
    """The CPUs a run's load processes get: a run against an emulator started here (pinned
    to the last CPU by the launcher) leaves that one to it, when there is more than one."""
    return cpus - 1 if local_emulator and cpus >= 2 else cpus


def recommend_processes(
    ttft_err_p99: float | None,
    busy: float | None,
    processes: int,
    *,
    threshold_ms: float = DEFAULT_TIMING_BOUND_MS,
    cpus: int | None = None,
) -> int:
    """Processes for this load: the same when the error and the CPU are fine, else the
    users spread so each process stays about half busy (at most one per CPU left)."""
    available = max(1, cpus or os.cpu_count() or 1)
    over = ttft_err_p99 is not None and ttft_err_p99 > threshold_ms
    total_busy = (busy or 0.0) * processes
    if not over and (busy is None or busy < 0.7):
        return processes
    want = max(processes + 1, math.ceil(total_busy / 0.5))
    return max(1, min(want, available))


def calibrate(
    *,
    users: int | None = None,
    rate: float | None = None,
    duration_s: float = 10.0,
    processes: int = 1,
    tls: bool = False,
    threshold_ms: float = DEFAULT_TIMING_BOUND_MS,
    pin: bool = True,
    client_cpus: int | None = None,
) -> Calibration:
    """Run the calibration load (module docstring) and measure it against the truth;
    ``client_cpus``: the CPUs the real run's load processes get (None: every CPU here)."""
    from chatprobe.emulator import Emulator, EmulatorConfig
    from chatprobe.load.launcher import LoadOptions, run_load
    from chatprobe.transport import TLSConfig

    if users is None and rate is None:
        users = 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    result = Calibration(users, rate, duration_s, processes, tls, cpus=client_cpus or cpus)
    result.threshold_ms = threshold_ms
    config = EmulatorConfig(
        providers=("openrouter",),
        ttft_ms=TTFT_MS,
        itl_ms=ITL_MS,
        sigma=0.0,
        tokens_per_chunk=1,
        output_tokens=(TOKENS, TOKENS),
        rate_limit_rpm=0,
        tls=tls,
    )
    cpu = cpus - 1 if pin and cpus >= 2 else None
    with tempfile.TemporaryDirectory(prefix="chatprobe-calibrate-") as tmp:
        with Emulator.in_subprocess(config, cpu=cpu) as emu:
            options = LoadOptions(
                providers=("openrouter",),
                users=users,
                rate=rate,
                duration_s=duration_s,
                processes=processes if processes > 1 else None,
                out=Path(tmp),
                run_id="calibrate",
                emulator=True,
                emulator_url=emu.url(),
                pin=pin,
                progress=False,
                max_error_rate=1.0,
                tls=TLSConfig(ca_bundles=(emu.ca_file,)) if tls and emu.ca_file else TLSConfig(),
                command=["chatprobe", "calibrate"],
            )
            outcome = run_load(options)
            truth = {t["request_id"]: t for t in emu.truth()}
        path = outcome.path or Path(tmp) / "calibrate"
        rows = read_samples(path / "samples.jsonl")
        summary = outcome.summary or {}
    measure_against_truth(result, rows, truth, summary)
    result.recommended_processes = recommend_processes(
        result.ttft_err_ms.p99,
        result.busy_fraction,
        processes,
        threshold_ms=threshold_ms,
        cpus=result.cpus,
    )
    return result


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``samples.jsonl`` (unreadable lines skipped)."""
    import orjson

    out = []
    if path.exists():
        for line in path.read_bytes().splitlines():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return out


def measure_against_truth(
    result: Calibration,
    rows: list[dict[str, Any]],
    truth: dict[str, dict[str, Any]],
    summary: dict[str, Any],
) -> None:
    """Fill ``result``'s figures from a run's samples joined with the emulator's truth (by
    ``server_request_id``) and its ``summary.json`` (module docstring)."""
    ttft, itl, bounds = [], [], []
    covered = 0
    # connections open and the first requests leave together in the first seconds: left out
    warm = min(WARMUP_S, result.duration_s / 4)
    measured = [r for r in rows if not r.get("warmup") and (r.get("t_offset_s") or 0) >= warm]
    measured = measured or rows
    result.requests = len(measured)
    for r in measured:
        t = truth.get(r.get("server_request_id") or "")
        if t is None or r.get("error_class") or r.get("ttft_ms") is None:
            continue
        if t.get("t_first_content_ns") is None or t.get("t_received_ns") is None:
            continue
        true_ttft = (t["t_first_content_ns"] - t["t_received_ns"]) / 1e6
        err = r["ttft_ms"] - true_ttft
        ttft.append(err)
        bound = r.get("ttft_bound_ms")
        if bound is not None:
            bounds.append(bound)
            covered += err <= bound + SERVER_FLOOR_MS
        tokens = t.get("tokens_sent") or t.get("completion_tokens") or 0
        if r.get("itl_ms") is not None and tokens >= 2 and t.get("t_last_content_ns"):
            true_itl = (t["t_last_content_ns"] - t["t_first_content_ns"]) / 1e6 / (tokens - 1)
            itl.append(r["itl_ms"] - true_itl)
    result.joined = len(ttft)
    result.ttft_err_ms = Dist.of_sorted(sorted(ttft))
    result.itl_err_ms = Dist.of_sorted(sorted(itl))
    result.bound_ms = Dist.of_sorted(sorted(bounds))
    result.covered = covered / len(bounds) if bounds else None
    result.requested_rate = summary.get("requested_rate")
    result.achieved_rate = summary.get("achieved_rate")
    cpu = summary.get("client_cpu") or {}
    result.busy_fraction = cpu.get("busy_fraction")
    result.loop_lag_p99_ms = (cpu.get("loop_lag_ms") or {}).get("p99_ms")


def calibrate_for(options: LoadOptions, *, auto: bool) -> tuple[LoadOptions, Calibration]:
    """``chatprobe load --calibrate`` / ``--processes auto``: calibrate at the run's load
    (its busiest stage's users or rate, at most 10 s) and, with ``auto``, take the
    processes it recommends. Returns the options to run with and the calibration."""
    from dataclasses import replace

    from chatprobe.load.launcher import decide_source, resolve_scenario

    scenario = resolve_scenario(options)
    stage = max(scenario.stages, key=lambda s: s.rate or s.users)
    given = options.processes if isinstance(options.processes, int) else 1
    use_emulator, _notes = decide_source(scenario, options)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    local = use_emulator and not options.emulator_url and options.pin
    result = calibrate(
        users=None if stage.rate else max(1, stage.users),
        rate=stage.rate,
        duration_s=min(10.0, max(3.0, scenario.stages[0].duration_s)),
        processes=given,
        tls=not use_emulator,  # a live run reaches its providers over HTTPS
        threshold_ms=scenario.timing_bound_ms,
        pin=options.pin,
        client_cpus=load_cpus(cpus, local_emulator=local),
    )
    if auto:
        chosen = result.recommended_processes
        options = replace(options, processes=chosen if chosen > 1 else None)
    options = replace(options, calibration={"auto": auto, **result.to_dict()})
    return options, result
