"""B5, replay fidelity: a recorded stream replayed by ``chatprobe emulate --replay``.

Streams are recorded from the emulator (TTFT 200 ms, ITL 20 ms, no jitter, 16 tokens,
pinned to CPU 1) into a cassette, as ``chatprobe check --record`` does: each body piece's
arrival after the request was sent is kept (``chatprobe_timing``). Then the replay server
(pinned to CPU 1) serves the cassette and the same client asks for each recording again
(the same body). Within this one invocation:

* TTFT and ITL difference = replayed - recorded, per stream, both read where the recording
  stamps arrivals (the connection pool, :class:`chatprobe.client.ResponseTiming`) and turned
  into records the same way (:func:`chatprobe.cassettes.recorded_record`); the issue's goal
  is within 2 ms;
* event offset difference: every content event's arrival after the send, replayed minus
  recorded (the whole pacing, not only its two summaries);
* replay lateness (the server's own truth): first token written - (request read + the
  recorded offset / speed), what the replay's timers add;
* the same at ``--replay-speed 2``, against half the recorded times.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.budget import Budget
from benchmarks.section import Goal, Section, fmt
from chatprobe.cassettes import Interaction, Session, read_interactions, recorded_record
from chatprobe.client import ChatClient, ResponseTiming, take_response_timing
from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig
from chatprobe.profiles import load_profile
from chatprobe.stats import percentiles

TTFT_MS, ITL_MS, TOKENS = 200.0, 20.0, 16
PROVIDER, MODEL = "openrouter", "gemini-2.0-flash-001"
GOAL_MS = 2.0


def _body(k: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"Replay stream {k}."}], "stream": True}


def _record(folder: Path, streams: int) -> Path:
    path = folder / "recorded.yaml"
    config = EmulatorConfig(
        providers=(PROVIDER,),
        ttft_ms=TTFT_MS,
        itl_ms=ITL_MS,
        sigma=0.0,
        output_tokens=(TOKENS, TOKENS),
    )
    with Emulator.in_subprocess(config, cpu=1) as emu:
        session = Session("all")
        session.rewrite[emu.url()] = load_profile(PROVIDER).base_url
        profile = load_profile(PROVIDER).with_base_url(emu.base_url())
        with (
            session.use(path, {"recorded_from": "emulator"}),
            ChatClient(profile, api_key=DEMO_KEY) as client,
        ):
            for k in range(streams):
                client.chat(_body(k), model=MODEL)
    return path


def _replay(path: Path, streams: int, speed: float) -> dict[str, Any]:
    interactions = read_interactions(path)
    recorded = [recorded_record(i) for i in interactions]
    ttft, itl, events, late = [], [], [], []
    errors = 0
    config = EmulatorConfig(providers=(PROVIDER,), replay=(str(path),), replay_speed=speed)
    with Emulator.in_subprocess(config, cpu=1) as emu:
        with ChatClient(emu.profile(PROVIDER), api_key="any") as client:
            client.chat(_body(0), model=MODEL)  # a warm connection, as in the recording
            seq = emu.stats()["last_seq"]
            for k in range(streams):
                sent = client.chat(_body(k), model=MODEL)
                timing = take_response_timing()
                original = recorded[k]
                if not sent.ok or timing is None:
                    errors += 1
                    continue
                # the replayed arrivals, stamped where the recording stamped them
                record = recorded_record(_replayed(interactions[k], timing))
                if record.ttft_ms is None or original.ttft_ms is None:
                    errors += 1
                    continue
                ttft.append(record.ttft_ms - original.ttft_ms / speed)
                if record.itl_ms is not None and original.itl_ms is not None:
                    itl.append(record.itl_ms - original.itl_ms / speed)
                mine = [t / 1e6 for t in record.content_times_ns]
                theirs = [t / 1e6 / speed for t in original.content_times_ns]
                events += [a - b for a, b in zip(mine, theirs, strict=False)]
        for truth in emu.truth(since=seq):
            intended = truth.get("ttft_ms_intended")
            if truth.get("t_first_content_ns") and intended is not None:
                written = (truth["t_first_content_ns"] - truth["t_received_ns"]) / 1e6
                late.append(written - intended)
    return {
        "streams": streams,
        "errors": errors,
        "ttft_diff_ms": percentiles(ttft),
        "itl_diff_ms": percentiles(itl),
        "event_diff_ms": percentiles(events),
        "abs_ttft_max_ms": max(map(abs, ttft), default=None),
        "replay_late_ms": percentiles(late),
    }


def _replayed(original: Interaction, timing: ResponseTiming) -> Interaction:
    """The recording with the replay's arrival times in place of its own."""
    entry = {
        "version": 1,
        "head_ms": timing.head_ns / 1e6,
        "chunks": [[t / 1e6, size] for t, size in timing.chunks],
    }
    return dataclasses.replace(original, timing=entry)


def _measure(section: Section, figures: dict[str, Any], streams: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chatprobe-b5-") as tmp:
        path = _record(Path(tmp), streams)
        for speed in (1.0, 2.0):
            f = figures[f"{speed:g}x"] = _replay(path, streams, speed)
            section.rows.append(
                [
                    f"{speed:g}x",
                    f["streams"],
                    fmt(f["ttft_diff_ms"].get("p50"), 2),
                    fmt(f["ttft_diff_ms"].get("p99"), 2),
                    fmt(f["abs_ttft_max_ms"], 2),
                    fmt(f["itl_diff_ms"].get("p50"), 3),
                    fmt(f["itl_diff_ms"].get("p99"), 3),
                    fmt(f["event_diff_ms"].get("p50"), 2),
                    fmt(f["event_diff_ms"].get("p99"), 2),
                    fmt(f["replay_late_ms"].get("p99"), 2),
                    f["errors"],
                ]
            )


def run(budget: Budget) -> Section:
    streams = budget.b5_streams
    section = Section(
        "B5",
        f"Replay fidelity: recorded at TTFT {TTFT_MS:g} ms / ITL {ITL_MS:g} ms, replayed",
        [
            "speed",
            "streams",
            "TTFT diff p50",
            "TTFT diff p99",
            "|TTFT diff| max",
            "ITL diff p50",
            "ITL diff p99",
            "event diff p50",
            "event diff p99",
            "replay late p99",
            "errors",
        ],
        config={"ttft_ms": TTFT_MS, "itl_ms": ITL_MS, "tokens": TOKENS, "streams": streams},
    )
    figures: dict[str, Any] = {}
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})  # the client on CPU 0, the emulator on CPU 1 (as in B2)
    try:
        _measure(section, figures, streams)
    finally:
        os.sched_setaffinity(0, cpus)
    section.raw["figures"] = figures
    one = figures["1x"]
    ttft99 = max(abs(one["ttft_diff_ms"].get("p99") or 0), abs(one["ttft_diff_ms"].get("min") or 0))
    itl99 = max(abs(one["itl_diff_ms"].get("p99") or 0), abs(one["itl_diff_ms"].get("min") or 0))
    measured = one["ttft_diff_ms"].get("n")
    section.goals.append(
        Goal(
            "B5 replay TTFT/ITL within 2 ms of the recording",
            f"|diff| p99 <= {GOAL_MS:g} ms",
            f"TTFT {ttft99:.2f} ms, ITL {itl99:.3f} ms",
            None if not measured else ttft99 <= GOAL_MS and itl99 <= GOAL_MS,
        )
    )
    section.notes.append(
        "diff = replayed - recorded (recorded times / speed), both stamped by the connection "
        "pool; the replay counts from when it read the request, so the loopback send delay and "
        "the receive delay of the replayed bytes are in every diff, with the timers' lateness"
    )
    return section
