"""Faults scheduled over time on a compressed clock: syntax, the server, the truth.

Window membership is judged by the truth's own ``sched_s`` (the schedule time at which the
emulator read each request), never by the test's wall clock.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatprobe.emulator import Emulator, EmulatorConfig
from chatprobe.emulator.schedule import Window, parse_schedule_file, parse_window
from chatprobe.errors import ConfigError
from tests.emulator_support import chat_body, headers, post_raw, sse_data

# ---------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("outage@10m-20m", Window("outage", 600, 1200, "outage#0")),
        ("outage:500@0-1h#down", Window("outage", 0, 3600, "down", status=500)),
        ("outage:refuse@90s", Window("outage", 90, None, "outage#0", mode="refuse")),
        ("latency:3@1h-2h", Window("latency", 3600, 7200, "latency#0", ttft_x=3, itl_x=3)),
        ("latency:ttft=2,itl=1.5@5s", Window("latency", 5, None, "latency#0", ttft_x=2, itl_x=1.5)),
    ],
)
def test_window_syntax(text: str, expected: Window) -> None:
    window = parse_window(text)
    for name in ("kind", "start_s", "end_s", "name", "status", "mode", "ttft_x", "itl_x"):
        assert getattr(window, name) == getattr(expected, name), name
    assert parse_window(str(window)) == window  # what to_args() sends a subprocess


def test_fault_window_takes_header_fault_names_and_a_rate() -> None:
    window = parse_window("fault:missing_done,stall=1,rate=0.25@45m")
    assert [str(f) for f in window.faults] == ["missing_done", "stall=1"]
    assert window.rate == 0.25 and window.start_s == 2700
    assert parse_window(str(window)) == window


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("outage", "expected KIND[:PARAMS]@START"),
        ("blackout@1m", "unknown window kind 'blackout'"),
        ("outage@20m-10m", "end must be after start"),
        ("outage:200@1m", "400..599"),
        ("outage:later@1m", "expected a status, 'reset' or 'refuse'"),
        ("latency:0@1m", "positive number"),
        ("latency:speed=2@1m", "unknown parameter 'speed'"),
        ("fault:gremlins@1m", "unknown fault 'gremlins'"),
        ("fault:missing_done,rate=2@1m", "rate must be in (0, 1]"),
        ("outage@soon", "expected a duration"),
    ],
)
def test_bad_windows_are_one_clear_error(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_window(text)
    assert words in str(info.value)


def test_window_names_must_differ() -> None:
    windows = (parse_window("outage@1m#x"), parse_window("latency:2@2m#x"))
    with pytest.raises(ConfigError, match="two windows are named 'x'"):
        EmulatorConfig(schedule=windows)


def test_schedule_file(tmp_path: Path) -> None:
    path = tmp_path / "day.yaml"
    path.write_text(
        "clock: 1440\n"
        "windows:\n"
        "  - outage:503@2h-2h\n"
        "  - {kind: latency, start: 6h, end: 7h, ttft_x: 3}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_schedule_file(str(path))
    assert str(info.value).startswith(f"{path}:3: windows[0]: ")
    path.write_text(
        "clock: 1440\n"
        "windows:\n"
        "  - outage:503@2h-3h\n"
        "  - {kind: latency, start: 6h, end: 7h, ttft_x: 3, name: slow}\n"
        "  - {kind: fault, start: 8h, faults: [missing_done], rate: 0.5}\n"
    )
    windows, clock = parse_schedule_file(str(path))
    assert clock == 1440
    assert [(w.kind, w.name) for w in windows] == [
        ("outage", "outage#0"),
        ("latency", "slow"),
        ("fault", "fault#2"),
    ]
    assert windows[1].ttft_x == 3 and windows[1].itl_x == 1 and windows[2].rate == 0.5


def test_cli_rejects_a_bad_window_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "emulate", "--schedule", "blackout@1m"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--schedule" in lines[0] and "blackout" in lines[0]


SCENARIO = "targets:\n  - {provider: openrouter, model: gemini-2.0-flash-001}\n"


def test_a_scenario_block_sets_the_schedule() -> None:
    from chatprobe.load.launcher import emulator_config
    from chatprobe.load.scenario import parse_scenario

    text = SCENARIO + (
        "emulator:\n"
        "  clock: 60\n"
        "  schedule:\n"
        "    - outage:refuse@1m-2m\n"
        "    - {kind: latency, start: 3m, x: 2}\n"
    )
    config = emulator_config(parse_scenario(text), None)
    assert config.clock == 60
    assert [(w.kind, w.mode, w.ttft_x) for w in config.schedule] == [
        ("outage", "refuse", 1.0),
        ("latency", "status", 2.0),
    ]
    with pytest.raises(ConfigError) as info:
        parse_scenario(SCENARIO + "emulator:\n  schedule:\n    - blackout@1m\n", "bad.yaml")
    assert str(info.value).startswith("bad.yaml:5: emulator.schedule[0]: unknown window kind")


# ---------------------------------------------------------------------------- the server

CLOCK = 20.0  # schedule seconds per real second: each 10 s window lasts half a second
WINDOWS = (
    "outage:503@10s-20s#down",
    "latency:4@30s-40s#slow",
    "fault:missing_done@50s-60s#no-done",
    "outage:reset@70s-80s#resets",
)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    config = EmulatorConfig(
        providers=("openrouter",),
        ttft_ms=5,
        itl_ms=1,
        sigma=0.0,
        rate_limit_rpm=0,
        output_tokens=(4, 4),
        schedule=tuple(parse_window(w, index=i) for i, w in enumerate(WINDOWS)),
        clock=CLOCK,
    )
    with Emulator.in_thread(config) as emulator:
        yield emulator


def _send(emu: Emulator) -> tuple[int | None, bytes, str | None]:
    """Status, body and truth request id (None, b"", None when the connection failed)."""
    try:
        response = post_raw(emu, chat_body())
    except httpx.TransportError:
        return None, b"", None
    return response.status_code, response.content, response.headers["x-chatprobe-request-id"]


def _visit(
    emu: Emulator, start_s: float, end_s: float
) -> list[tuple[int | None, bytes, str | None]]:
    """Requests while the schedule is inside [start_s, end_s): wait for it, then send."""
    answers = []
    while True:
        now = emu.schedule()["now_s"]
        if now >= end_s:
            return answers
        if now < start_s + 1:  # a little inside, so the request lands in the window
            time.sleep((start_s + 1 - now) / CLOCK)
            continue
        answers.append(_send(emu))
        time.sleep(0.05)


def _until(emu: Emulator, sched_s: float) -> None:
    while emu.schedule()["now_s"] < sched_s:
        time.sleep(0.005)


def test_each_window_does_what_it_says_and_the_truth_says_which(emu: Emulator) -> None:
    answers = []
    for start in (0, 10, 30, 50, 70, 80):
        answers += _visit(emu, start, start + 10)
    truth = emu.truth()
    by_window: dict[str, list[dict[str, Any]]] = {}
    for record in truth:
        at = record["sched_s"]
        expected = [
            name
            for name, lo, hi in (
                ("down", 10, 20),
                ("slow", 30, 40),
                ("no-done", 50, 60),
                ("resets", 70, 80),
            )
            if lo <= at < hi
        ]
        assert record["windows"] == expected, record
        by_window.setdefault(expected[0] if expected else "", []).append(record)
    assert set(by_window) == {"", "down", "slow", "no-done", "resets"}
    for record in by_window["down"]:
        assert record["status"] == 503 and record["error"].endswith("(scheduled outage)")
    for record in by_window["slow"]:
        assert record["status"] == 200 and record["ttft_ms_intended"] == 4 * 5
    for record in by_window[""]:
        assert record["status"] == 200 and record["ttft_ms_intended"] == 5
    for record in by_window["no-done"]:
        assert record["faults"] == ["missing_done"]
    for record in by_window["resets"]:
        assert record["status"] is None and record["outcome"] == "reset"
    # what the client saw, joined to the truth by request id
    windows = {r["request_id"]: (r["windows"] or [""])[0] for r in truth}
    for status, body, request_id in answers:
        if request_id is None:
            continue
        window = windows[request_id]
        assert status == (503 if window == "down" else 200)
        if status == 200:
            assert ("[DONE]" in sse_data(body)) is (window != "no-done")
    failed = sum(1 for status, _, _ in answers if status is None)
    assert failed == len(by_window["resets"])
    summary = emu.schedule()
    counts = {w["name"]: w for w in summary["windows"]}
    assert summary["clock"] == CLOCK
    assert counts["down"]["requests"] == len(by_window["down"])
    assert counts["down"]["by_status"] == {"503": len(by_window["down"])}
    assert counts["no-done"]["faulted"] == len(by_window["no-done"])
    assert counts["resets"]["by_outcome"] == {"reset": len(by_window["resets"])}
    assert summary["outside"]["requests"] == len(by_window[""])
    real = counts["down"]["end_ns"] - counts["down"]["start_ns"]
    assert real == pytest.approx(10 / CLOCK * 1e9)  # the clock runs CLOCK times faster


def test_an_outage_carries_retry_after_until_its_end(emu: Emulator) -> None:
    for _ in range(5):  # an attempt that lands outside the window (a busy machine) is redone
        emu.reset()
        _until(emu, 11)
        response = post_raw(emu, chat_body(stream=False))
        request_id = response.headers["x-chatprobe-request-id"]
        record = next(t for t in emu.truth() if t["request_id"] == request_id)
        if record["windows"] == ["down"]:
            break
    assert response.status_code == 503
    assert response.json()["error"]["code"] == 503  # the provider's envelope
    assert response.headers["retry-after"] == "1"  # seconds of real time, at least 1


def test_reset_restarts_the_schedule_clock(emu: Emulator) -> None:
    _until(emu, 12)
    before = emu.schedule()
    emu.reset()
    after = emu.schedule()
    assert after["t0_ns"] > before["t0_ns"] and after["now_s"] < before["now_s"]
    assert after["outside"]["requests"] == 0


def test_refuse_closes_the_listening_socket_for_the_window() -> None:
    config = EmulatorConfig(
        providers=("openrouter",),
        zero_latency=True,
        rate_limit_rpm=0,
        schedule=(parse_window("outage:refuse@1s-3s#closed"),),
        clock=2.0,  # the window lasts one second of real time
    )
    with Emulator.in_thread(config) as emu:
        url = emu.base_url("openrouter") + "/chat/completions"
        for _ in range(5):  # an attempt that overran the window (a busy machine) is redone
            emu.reset()
            with httpx.Client(trust_env=False, timeout=5) as kept:
                assert kept.post(url, json=chat_body(), headers=headers()).status_code == 200
                _until(emu, 1.2)
                with pytest.raises(httpx.ConnectError):
                    httpx.post(url, json=chat_body(), headers=headers(), trust_env=False)
                with pytest.raises(httpx.TransportError):  # an open connection is reset
                    kept.post(url, json=chat_body(), headers=headers())
            if emu.schedule()["now_s"] < 3:
                break
        _until(emu, 3.1)
        assert post_raw(emu, chat_body()).status_code == 200  # listening again
        truth = emu.truth()
        window = emu.schedule()["windows"][0]
    assert [t["outcome"] for t in truth if t["windows"]] == ["reset"]
    assert window["name"] == "closed" and window["by_outcome"] == {"reset": 1}
