"""The capacity runner's parts that need no load run: the in-step watcher (early stop), the
gate, and bad input on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from chatprobe.capacity.runner import StepWatcher, gate
from chatprobe.capacity.slo import CapacitySlo
from chatprobe.results import SAMPLES

SLO = CapacitySlo(limits={"ttft_ms": 100.0}, min_samples=50)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _lines(n: int, ttft: float, *, lag: float = 1.0, warmup: bool = False) -> bytes:
    sample = {"ttft_ms": ttft, "lag_ms": lag, "error_class": None, "warmup": warmup}
    return b"".join(orjson.dumps(sample) + b"\n" for _ in range(n))


def _watcher(clock: Clock, **changes: object) -> StepWatcher:
    args: dict[str, object] = {
        "open_loop": True,
        "min_step_s": 5.0,
        "lag_threshold_ms": 10.0,
        "clock": clock,
    }
    args.update(changes)
    return StepWatcher(SLO, **args)  # type: ignore[arg-type]


def test_a_clear_verdict_ends_the_step_after_its_minimum(tmp_path: Path) -> None:
    clock = Clock()
    watcher = _watcher(clock)
    path = tmp_path / SAMPLES
    path.write_bytes(_lines(20, 1.0, warmup=True) + _lines(80, 10.0))
    clock.t = 1.0
    assert not watcher(tmp_path)  # too early
    clock.t = 6.0
    assert watcher(tmp_path) and watcher.reason == "verdict clear: holds"
    assert watcher.requests == 80  # warm-up left out
    # open loop: the latency counts from t_sched (value + lag)
    assert watcher.values["ttft_ms"][0] == 11.0


def test_a_straddling_step_runs_on_and_a_partial_line_waits(tmp_path: Path) -> None:
    clock = Clock()
    watcher = _watcher(clock)
    path = tmp_path / SAMPLES
    blob = _lines(66, 95.0) + _lines(4, 105.0)
    path.write_bytes(blob + b'{"ttft_ms": 1')
    clock.t = 6.0
    assert not watcher(tmp_path)
    assert watcher.requests == 70 and watcher.tail == b'{"ttft_ms": 1'


def test_a_client_behind_its_schedule_ends_the_step(tmp_path: Path) -> None:
    clock = Clock()
    watcher = _watcher(clock)
    (tmp_path / SAMPLES).write_bytes(_lines(60, 95.0, lag=40.0))
    clock.t = 6.0
    assert watcher(tmp_path) and "lag p99" in watcher.reason


def test_fail_below_is_a_gate() -> None:
    document = {
        "unit": "req/s",
        "targets": [
            {"provider": "a", "model": "m", "capacity": 42.0},
            {"provider": "b", "model": "m", "capacity": 9.5},
            {"provider": "c", "model": "m", "capacity": None},
        ],
    }
    assert gate(document, None) == []
    failures = gate(document, 10.0)
    assert [f.split(":")[0] for f in failures] == ["b/m", "c/m"]
    assert "capacity 9.5 req/s is below --fail-below 10 req/s" in failures[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--slo", "speed=3"], "--slo"),
        (["--by", "bandwidth"], "--by"),
        (["--step-duration", "12s", "--step-warmup", "12s"], "--step-warmup"),
        (["--max-cost", "0"], "--max-cost"),
        (["--percentile", "100"], "percentile"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatprobe.cli",
            "capacity",
            "--emulator",
            "--out",
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing written
