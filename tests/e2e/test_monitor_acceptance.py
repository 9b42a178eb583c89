"""Acceptance of ``chatprobe monitor`` (issue 15) against the emulator's scheduled faults.

One emulator (in this process) runs a schedule on a compressed clock (x600: five minutes of
monitor time pass in half a second): an outage, a latency step and a contract change (the
error envelope switches to another provider's). A real ``chatprobe monitor`` child probes it
on the same clock, is killed with SIGKILL in the middle of a request, is restarted on the
same history (the schedule's clock restarts with it), and is stopped with SIGTERM. Then,
from the history and the emulator's ground truth (joined by request id):

* every event is detected, once, in order, at the right probe: the first one the emulator
  answered inside (or after) the window, or, for a latency shift (which must hold for two
  rounds), the first or second full round inside (after) it; the time from the window's
  edge to the event is printed and bounded by a few probe intervals;
* uptime (every window) equals the ground truth's for the same requests;
* the kill lost only the request in flight: the database is consistent, the restarted run
  continued the history, and every completed request the monitor sent is in it.

Judged by probe order and truth, never by milliseconds.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from chatprobe.emulator import Emulator, EmulatorConfig
from chatprobe.emulator.schedule import parse_window
from chatprobe.monitor import History
from chatprobe.monitor.uptime import UPTIME_WINDOWS

pytestmark = pytest.mark.slow

CLOCK = 600.0
EVERY = 300.0  # 5 minutes of monitor time: half a second of wall time
MIN = 60.0
WINDOWS = (
    "outage:503@50m-70m#down",
    "latency:4@90m-140m#slow",
    "dialect:envelope=aimlapi@170m-190m#contract",
)
KILL_AT = 10 * MIN
STOP_AT = 210 * MIN


class _Monitor:
    """A ``chatprobe monitor`` child; its stderr is read in a thread, so the test can wait
    for the start line (printed right before the first probe) without filling the pipe."""

    def __init__(self, emu: Emulator, db: Path) -> None:
        self.child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatprobe.cli",
                "monitor",
                "--emulator-url",
                emu.url(),
                "--provider",
                "openrouter",
                "--every",
                "5m",
                "--clock",
                f"{CLOCK:g}",
                "--db",
                str(db),
                "--seed",
                "7",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self.started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.child.stderr is not None
        for line in self.child.stderr:
            self.lines.append(line)
            if line.startswith("chatprobe monitor: ") and "; history " in line:
                self.started.set()

    def wait_started(self) -> None:
        assert self.started.wait(60), "".join(self.lines)

    def finish(self) -> tuple[int, str, str]:
        assert self.child.stdout is not None
        out = self.child.stdout.read()
        code = self.child.wait(60)
        self._reader.join(10)
        return code, out, "".join(self.lines)

    def kill(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait(30)


def _until(emu: Emulator, sched_s: float, deadline: float) -> None:
    while emu.schedule()["now_s"] < sched_s:
        assert time.monotonic() < deadline, "the schedule did not advance"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The two monitor runs. The emulator's schedule clock is restarted
    (``emu.reset()``) as each monitor starts probing, so however long a Python start takes
    on a busy machine, every window lies ahead of a running monitor; the ground truth of all
    phases is read from the emulator's JSON Lines log, which resets do not clear."""
    folder = tmp_path_factory.mktemp("monitor")
    db = folder / "monitor.sqlite"
    truth_log = folder / "truth.jsonl"
    config = EmulatorConfig(
        providers=("openrouter",),
        ttft_ms=15,
        itl_ms=1,
        sigma=0.1,
        output_tokens=(8, 8),
        rate_limit_rpm=0,
        schedule=tuple(parse_window(w, index=i) for i, w in enumerate(WINDOWS)),
        clock=CLOCK,
        truth_jsonl=str(truth_log),
    )
    deadline = time.monotonic() + 150
    with Emulator.in_thread(config) as emu:
        first = _Monitor(emu, db)
        try:
            first.wait_started()
            emu.reset()
            _until(emu, KILL_AT, deadline)
            while emu.stats()["in_flight"] == 0:  # kill it in the middle of a request
                assert time.monotonic() < deadline and first.child.poll() is None
                time.sleep(0.0005)
            first.child.send_signal(signal.SIGKILL)
            killed_at_ns = time.perf_counter_ns()
            first.child.wait(30)
        finally:
            first.kill()
        with sqlite3.connect(db) as raw:  # what the killed run left, before the restart
            after_kill = {
                "integrity": raw.execute("PRAGMA integrity_check").fetchone()[0],
                "foreign_keys": raw.execute("PRAGMA foreign_key_check").fetchall(),
                "probes": raw.execute("SELECT count(*) FROM probes").fetchone()[0],
                "orphans": raw.execute(
                    "SELECT count(*) FROM probes p WHERE kind = 'contract' AND status < 500 "
                    "AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.probe_id = p.id)"
                ).fetchone()[0],
                "last_round": raw.execute("SELECT max(round) FROM probes").fetchone()[0],
            }
        second = _Monitor(emu, db)
        try:
            second.wait_started()
            emu.reset()  # the schedule starts with the restarted monitor probing
            _until(emu, STOP_AT, deadline)
            second.child.send_signal(signal.SIGTERM)
            code, out, err = second.finish()
        finally:
            second.kill()
        schedule = emu.schedule()
    truth = [orjson.loads(line) for line in truth_log.read_bytes().splitlines()]
    return {
        "db": db,
        "truth": {t["request_id"]: t for t in truth},
        "schedule": {w["name"]: w for w in schedule["windows"]},
        "after_kill": after_kill,
        "killed_at_ns": killed_at_ns,
        "returncode": code,
        "stdout": out,
        "stderr": err,
    }


@pytest.fixture(scope="module")
def history(run: dict[str, Any]) -> Any:
    with History(run["db"], create=False) as h:
        yield h


@pytest.fixture(scope="module")
def probes(run: dict[str, Any], history: History) -> list[dict[str, Any]]:
    """Every stored probe with its truth record (``truth``), oldest first."""
    (target,) = history.targets()
    rows = history.probes(target.id)
    for row in rows:
        row["truth"] = run["truth"].get(row["server_request_id"])
    return rows


def _window(run: dict[str, Any], name: str) -> tuple[float, float]:
    w = run["schedule"][name]
    return float(w["start_s"]), float(w["end_s"])


def _sched(probes: list[dict[str, Any]], t: float) -> float:
    """A monitor time on the emulator's schedule clock of the last run (offset from its
    probes joined to their truth)."""
    last = max(p["run_id"] for p in probes)
    offsets = sorted(
        p["t"] - p["truth"]["sched_s"] for p in probes if p["truth"] and p["run_id"] == last
    )
    return t - offsets[len(offsets) // 2]


def _timeline(probes: list[dict[str, Any]]) -> str:
    """The probes on the emulator's schedule clock, one line each (for a failure message:
    where the monitor was when a window opened)."""
    return "\n".join(
        f"run {p['run_id']} round {p['round']:>3} {p['name']:<24} "
        f"sched {p['truth']['sched_s'] / MIN:7.2f} min status {p['truth']['status']} "
        f"windows {','.join(p['truth'].get('windows', []))}"
        if p["truth"]
        else f"run {p['run_id']} round {p['round']:>3} {p['name']:<24} (no truth)"
        for p in probes
    )


def _inside(p: dict[str, Any], name: str) -> bool:
    return name in (p["truth"] or {}).get("windows", [])


def test_the_monitor_stops_cleanly_on_sigterm_with_a_one_line_summary(run: dict[str, Any]) -> None:
    assert run["returncode"] == 0, run["stderr"]
    lines = run["stdout"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatprobe monitor: stopped after ")
    assert "Traceback" not in run["stderr"]


def test_a_sigkill_mid_probe_loses_only_the_request_in_flight(
    run: dict[str, Any], history: History, probes: list[dict[str, Any]]
) -> None:
    after = run["after_kill"]
    assert after["integrity"] == "ok" and after["foreign_keys"] == []
    assert after["orphans"] == 0  # no probe was written without its findings
    assert after["probes"] > 0 and history.integrity() == "ok"
    runs = history.runs()
    assert [r["ended"] for r in runs] == ["lost", "stopped"]
    first = [p for p in probes if p["run_id"] == runs[0]["id"]]
    second = [p for p in probes if p["run_id"] == runs[1]["id"]]
    assert len(first) == after["probes"] and second
    assert min(p["round"] for p in second) > after["last_round"]  # the history continued
    stored = {p["server_request_id"] for p in probes}
    missing = [t for rid, t in run["truth"].items() if rid not in stored]
    # the emulator saw one request the history does not hold: the one the kill interrupted
    assert len(missing) == 1, missing
    assert missing[0]["t_received_ns"] < run["killed_at_ns"]
    assert all(p["truth"] is not None for p in probes)


def test_each_scheduled_change_becomes_one_event_at_the_right_probe(
    run: dict[str, Any], history: History, probes: list[dict[str, Any]]
) -> None:
    events = [e.event for e in history.events()]
    assert [(e.kind, e.details.get("direction")) for e in events] == [
        ("outage_started", None),
        ("outage_ended", None),
        ("latency_shift", "up"),
        ("latency_shift", "down"),
        ("finding_appeared", None),
        ("finding_disappeared", None),
    ], _timeline(probes)
    by_id = {p["id"]: p for p in probes}
    stored = {e.event.kind + e.event.details.get("direction", ""): e for e in history.events()}
    report = []

    # Outage: started by the first probe the emulator read inside the window, ended by the
    # first counted probe after it.
    lo, hi = _window(run, "down")
    start = by_id[stored["outage_started"].probe_id]
    assert start is next(p for p in probes if _inside(p, "down"))
    end = by_id[stored["outage_ended"].probe_id]
    assert end is next(p for p in probes if p["counted"] and p["truth"]["sched_s"] >= hi)
    assert all(p["up"] == 0 for p in probes if _inside(p, "down") and p["counted"])
    report += [("outage_started", start["truth"]["sched_s"] - lo)]
    report += [("outage_ended", end["truth"]["sched_s"] - hi)]
    # The outage's Retry-After (its remaining real seconds, whole) holds the next probe:
    # at most one second of wall time (CLOCK seconds of monitor time) past the end.
    assert end["truth"]["sched_s"] - hi <= EVERY * 2.2 + CLOCK

    # Latency: the first or second round wholly inside (after) the window triggers it.
    lo, hi = _window(run, "slow")
    rounds: dict[int, list[dict[str, Any]]] = {}
    for p in probes:
        rounds.setdefault(p["round"], []).append(p)
    for key, edge, inside in (("latency_shiftup", lo, True), ("latency_shiftdown", hi, False)):
        event = stored[key].event
        trigger = max(r for r, ps in rounds.items() if max(p["t"] for p in ps) <= event.t)
        full = [
            r
            for r, ps in sorted(rounds.items())
            if all(p["truth"]["sched_s"] >= edge for p in ps)
            and all(_inside(p, "slow") is inside for p in ps)
        ]
        assert trigger in full[:2], (key, trigger, full[:3])
        report.append((key, _sched(probes, event.t) - edge))
        # a shift must hold for two rounds: at most the round the edge fell in, two more,
        # and their own duration (a round of six 4x-slow requests lasts minutes at x600)
        assert 0 < _sched(probes, event.t) - edge <= 4 * EVERY

    # Contract change: the error case's envelope finding appears on the first error-case
    # probe answered inside the window and disappears on the first one after it.
    lo, hi = _window(run, "contract")
    bad_key = [p for p in probes if p["name"] == "bad-key"]
    appeared = by_id[stored["finding_appeared"].probe_id]
    gone = by_id[stored["finding_disappeared"].probe_id]
    assert stored["finding_appeared"].event.subject == "bad-key/provider_error_envelope"
    assert appeared is next(p for p in bad_key if _inside(p, "contract"))
    assert gone is next(p for p in bad_key if p["truth"]["sched_s"] >= hi)
    report += [("finding_appeared", appeared["truth"]["sched_s"] - lo)]
    report += [("finding_disappeared", gone["truth"]["sched_s"] - hi)]
    for kind, delay in report:
        assert 0 <= delay <= 4 * EVERY, (kind, delay)
    print(
        "\ndetection delay after the window edge (monitor minutes): "
        + ", ".join(f"{kind} {delay / MIN:.1f}" for kind, delay in report)
    )


def _truth_ok(t: dict[str, Any]) -> bool:
    return t["status"] is not None and 200 <= t["status"] < 300 and t["outcome"] == "complete"


def test_uptime_matches_the_ground_truth(
    run: dict[str, Any], history: History, probes: list[dict[str, Any]]
) -> None:
    counted = [p for p in probes if p["counted"]]
    for p in counted:  # every counted probe is up exactly when the emulator served it
        assert p["up"] == int(_truth_ok(p["truth"])), p
    (target,) = history.targets()
    _, hi = _window(run, "down")
    outage_requests = run["schedule"]["down"]["requests"]
    assert outage_requests == sum(1 for p in probes if _inside(p, "down"))
    for at in (hi, STOP_AT - 1):  # right after the outage, and at the end
        now = max(p["t"] for p in probes if p["truth"]["sched_s"] <= at)
        for u in history.uptime(target.id, now, UPTIME_WINDOWS):
            window = [p for p in counted if now - u.seconds < p["t"] <= now]
            ok = sum(1 for p in window if _truth_ok(p["truth"]))
            assert (u.ok, u.errored, u.rate_limited) == (ok, len(window) - ok, 0), u.window
            assert u.uptime == pytest.approx(ok / len(window))
    day = history.uptime(target.id, max(p["t"] for p in probes), (("1d", 86400.0),))[0]
    print(
        f"\nuptime over the run: {day.ok}/{day.counted} = {100 * (day.uptime or 0):.2f}% "
        f"(outage window requests: {outage_requests})"
    )
