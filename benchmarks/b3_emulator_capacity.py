"""B3, emulator capacity: 64-token streams per second at zero latency on one core.

The emulator is pinned to one core and driven from the other by the cheapest client here,
``raw-httptools`` (asyncio + httptools framing, no SSE decoding: it only needs to know where
each response ends). Two figures: the streams/s achieved, and the emulator's streams per
second of its own CPU time (``/proc/<pid>/stat`` over the same window), which is what one
fully used core serves whichever side was the limit. The limit is the side whose CPU use was
nearer 100 % of its core.
"""

from __future__ import annotations

from benchmarks.budget import Budget
from benchmarks.harness import ClientRun, run_client
from benchmarks.section import Goal, Section, fmt, median
from benchmarks.target import TOKENS, emulator

DRIVER = "raw-httptools"
GOAL = 2000.0


def run(budget: Budget) -> Section:
    reps, connections = budget.b3_reps, budget.b3_connections
    warmup, duration = budget.warmup_s, budget.window_s
    section = Section(
        "B3",
        f"Emulator capacity: {TOKENS}-token streams at zero latency, emulator on one core, "
        f"driven by {DRIVER} on the other",
        [
            "connections",
            "streams/s",
            "emulator CPU %",
            "emulator CPU ms/stream",
            "streams per emulator core-s",
            "client CPU %",
            "emulator waited %",
            "limit",
            "errors",
        ],
        config={
            "driver": DRIVER,
            "connections": list(connections),
            "reps": reps,
            "warmup_s": warmup,
            "duration_s": duration,
            "tokens": TOKENS,
        },
    )
    runs: dict[int, list[ClientRun]] = {c: [] for c in connections}
    with emulator(zero_latency=True) as target:
        for _ in range(reps):
            for conns in connections:
                runs[conns].append(
                    run_client(
                        DRIVER,
                        url=target.url,
                        body=target.body,
                        headers=target.headers,
                        concurrency=conns,
                        warmup=warmup,
                        duration=duration,
                        peer_pid=target.pid,
                    )
                )
    best_capacity = None
    figures = {}
    for conns, rs in runs.items():
        sps = median([r.streams_per_s for r in rs])
        emu_pct = median([r.peer_cpu_pct for r in rs])
        cli_pct = median([r.cpu_pct for r in rs])
        emu_wait = median([r.peer_run_delay_pct for r in rs])
        cli_wait = median([r.run_delay_pct for r in rs])
        emu_ms = median(
            [
                r.data["peer_cpu_s"] * 1000 / r.data["completed"]
                for r in rs
                if r.data.get("peer_cpu_s") is not None and r.data["completed"]
            ]
        )
        capacity = 1000 / emu_ms if emu_ms else None
        limit = _limit(emu_pct, emu_wait, cli_pct, cli_wait)
        figures[str(conns)] = {
            "streams_per_s": sps,
            "emulator_cpu_pct": emu_pct,
            "client_cpu_pct": cli_pct,
            "emulator_cpu_ms_per_stream": emu_ms,
            "streams_per_emulator_core_s": capacity,
            "emulator_waited_pct": emu_wait,
            "client_waited_pct": cli_wait,
            "limit": limit,
            "core_busy_pct": [r.core_busy_pct for r in rs],
            "errors": sum(r.data["errors"] for r in rs),
        }
        section.rows.append(
            [
                conns,
                fmt(sps, 0),
                fmt(emu_pct, 0),
                fmt(emu_ms, 3),
                fmt(capacity, 0),
                fmt(cli_pct, 0),
                fmt(emu_wait, 0),
                limit,
                figures[str(conns)]["errors"],
            ]
        )
        if capacity and (best_capacity is None or capacity > best_capacity[0]):
            best_capacity = (capacity, sps or 0.0)
    section.raw = {"figures": figures}
    if best_capacity:
        cap, achieved = best_capacity
        section.goals.append(
            Goal(
                "B3 emulator streams/s on one core",
                f">= {GOAL:.0f}",
                f"{cap:.0f} per emulator core-s ({achieved:.0f} achieved)",
                cap >= GOAL,
            )
        )
    section.notes.append(
        "streams per emulator core-s = completed streams / emulator CPU seconds in the window; "
        "limit = the side that wanted its core all the time (CPU % + waited % near 100); "
        "emulator waited % = runnable but its core held by other work"
    )
    return section


def _limit(
    emu_pct: float | None, emu_wait: float | None, cli_pct: float | None, cli_wait: float | None
) -> str:
    """Which side was the bottleneck: the one that wanted its core (ran or waited) ~always."""
    emu = (emu_pct or 0) + (emu_wait or 0)
    cli = (cli_pct or 0) + (cli_wait or 0)
    if max(emu, cli) < 85:
        return "neither (idle time on both sides)"
    side = "emulator" if emu >= cli else "client"
    waited = emu_wait if side == "emulator" else cli_wait
    if (waited or 0) > 20:
        return f"{side} (sharing its core with other work)"
    return side
