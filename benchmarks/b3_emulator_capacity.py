"""B3, emulator capacity: 64-token streams per second at zero latency on one core.

The emulator is pinned to one core and driven from the other by the cheapest client here,
``raw-httptools`` (asyncio + httptools framing, no SSE decoding: it only needs to know where
each response ends). Two figures: the streams/s achieved, and the emulator's streams per
second of its own CPU time (``/proc/<pid>/stat`` over the same window), which is what one
fully used core serves whichever side was the limit. The limit is the side whose CPU use was
nearer 100 % of its core.
"""

from __future__ import annotations

from benchmarks.harness import ClientRun, run_client
from benchmarks.section import Goal, Section, fmt, median
from benchmarks.target import TOKENS, emulator

DRIVER = "raw-httptools"
CONNECTIONS = (64, 256)
GOAL = 2000.0


def run(*, quick: bool, connections: tuple[int, ...] = CONNECTIONS) -> Section:
    reps = 1 if quick else 2
    warmup, duration = (1.0, 2.5) if quick else (1.5, 5.0)
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
        emu_ms = median(
            [
                r.data["peer_cpu_s"] * 1000 / r.data["completed"]
                for r in rs
                if r.data.get("peer_cpu_s") is not None and r.data["completed"]
            ]
        )
        capacity = 1000 / emu_ms if emu_ms else None
        limit = "emulator" if (emu_pct or 0) >= (cli_pct or 0) else "client"
        if emu_pct is not None and emu_pct < 80 and (cli_pct or 0) < 80:
            limit = "neither (cores shared with other work)"
        figures[str(conns)] = {
            "streams_per_s": sps,
            "emulator_cpu_pct": emu_pct,
            "client_cpu_pct": cli_pct,
            "emulator_cpu_ms_per_stream": emu_ms,
            "streams_per_emulator_core_s": capacity,
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
        "streams per emulator core-s = completed streams / emulator CPU seconds in the window"
    )
    return section
