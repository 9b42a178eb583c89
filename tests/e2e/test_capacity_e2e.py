"""``chatprobe capacity`` against the emulator's capacity model, whose true SLO edge is
known (:func:`chatprobe.emulator.capacity.slo_edge`), and the verdicts that are not about
latency: a starved client, a rate-limited target, the cost budget, the CI gate.

Every step is a real load run (locust child, emulator subprocess) kept short: seconds per
step, a handful of steps per search.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import psutil
import pytest

from chatprobe.capacity.runner import CapacityOptions, run_capacity
from chatprobe.emulator import EmulatorConfig, count_tokens
from chatprobe.emulator.capacity import SLO, Capacity, Workload, slo_edge
from chatprobe.profiles import load_profile
from chatprobe.results import CAPACITY, load_results

# 155 tokens: a prefill cost per token matters (the emulator prefills what it counts)
PROMPT = "Tell me about capacity. " + " ".join(f"word{i}" for i in range(150))
TOKENS = 16
LATENCY = {"ttft_ms": 10, "itl_ms": 2, "sigma": 0.1}

# (capacity, SLO): three servers whose edges lie apart (about 24, 31 and 40 req/s), each
# bound by the decode budget its streams share, one of them with a slot queue as well
# The acceptance lane: each search takes about two minutes on two cores and its interval is a
# 95% statement, so it is not in the default run (which must pass every time);
# CHATPROBE_ACCEPTANCE=1 runs the three. The default run has the quick search below.
LONG = pytest.mark.skipif(
    not os.environ.get("CHATPROBE_ACCEPTANCE"),
    reason="acceptance search (about 2 minutes each); CHATPROBE_ACCEPTANCE=1 runs it",
)
SETTINGS = [
    pytest.param(
        Capacity(slots=12, tokens_per_s=500), SLO(itl_ms=20), id="slots12-500tps", marks=LONG
    ),
    pytest.param(
        Capacity(slots=32, tokens_per_s=600), SLO(itl_ms=20), id="slots32-600tps", marks=LONG
    ),
    pytest.param(
        Capacity(slots=32, tokens_per_s=800), SLO(itl_ms=15), id="slots32-800tps", marks=LONG
    ),
]


def capacity_command(path: Path) -> list[str]:
    """``chatprobe capacity SCENARIO --emulator`` as a child process runs it."""
    return [sys.executable, "-m", "chatprobe.cli", "capacity", str(path), "--emulator"]


def scenario(path: Path, capacity: Capacity, slo: SLO, extra: str = "") -> Path:
    limits = {k: v for k, v in (("ttft_ms", slo.ttft_ms), ("itl_ms", slo.itl_ms)) if v}
    block = ", ".join(f"{k}: {v:g}" for k, v in limits.items())
    cap = ", ".join(
        f"{k}: {v:g}"
        for k, v in (
            ("slots", capacity.slots),
            ("tokens_per_s", capacity.tokens_per_s),
            ("prefill_ms_per_1k", capacity.prefill_ms_per_1k),
        )
        if v
    )
    path.write_text(
        "name: capacity-test\n"
        "targets:\n  - {provider: openrouter, model: gemini-2.0-flash-001}\n"
        f"prompts:\n  text: [{PROMPT!r}]\n"
        f"max_tokens: {TOKENS}\n"
        "shape:\n  open_loop: {rate: 5, lag_threshold_ms: 25}\n"
        "duration: 10s\nseed: 3\n"
        f"slo: {{{block}}}\n"
        "emulator:\n"
        + "".join(f"  {k}: {v}\n" for k, v in LATENCY.items())
        + f"  output_tokens: {TOKENS}\n"
        f"  capacity: {{{cap}}}\n" + extra
    )
    return path


def truth(capacity: Capacity, slo: SLO) -> float:
    config = EmulatorConfig(
        providers=("openrouter",), ttft_ms=10, itl_ms=2, sigma=0.1, rate_limit_rpm=0
    )
    model = load_profile("openrouter").models["gemini-2.0-flash-001"]
    workload = Workload(prompt_tokens=count_tokens(PROMPT), output_tokens=TOKENS)
    return slo_edge(config.latency(model.latency), capacity, slo, workload).rate


def options(tmp_path: Path, path: Path, **changes: object) -> CapacityOptions:
    base = CapacityOptions(
        scenario=str(path),
        emulator=True,
        start=8.0,
        tolerance=0.08,
        max_steps=9,
        step_s=20.0,
        min_step_s=8.0,
        warmup_s=3.0,
        min_samples=300,
        out=tmp_path / "results",
        progress=False,
        command=["chatprobe", "capacity", "(test)"],
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("capacity", "slo"), SETTINGS)
def test_finds_the_true_edge(tmp_path: Path, capacity: Capacity, slo: SLO) -> None:
    true = truth(capacity, slo)
    outcome = run_capacity(options(tmp_path, scenario(tmp_path / "s.yaml", capacity, slo)))
    (target,) = outcome.document["targets"]
    found, low, high = target["capacity"], target["low"], target["high"]
    print(
        f"\n{capacity} {slo}: truth {true:.2f} req/s, found {found} req/s, interval "
        f"{low}-{high}, {target['steps_used']} steps, ended {target['end']}\n"
        f"{target['statement']}"
    )
    assert target["end"] == "edge" and target["steps_used"] <= 9
    assert found is not None and abs(found - true) / true <= 0.10
    assert (low or 0) <= true <= (high if high is not None else float("inf"))
    on_disk = orjson.loads((outcome.path / CAPACITY).read_bytes())
    assert on_disk["targets"][0]["capacity"] == found
    assert load_results(outcome.path).capacity is not None


QUICK = {"step_s": 7.0, "min_step_s": 2.0, "warmup_s": 1.0, "min_samples": 40}


@pytest.mark.slow
def test_a_quick_search_lands_near_the_true_edge(tmp_path: Path) -> None:
    """Short steps and a loose tolerance: the search ends on an edge, within its budget, and
    its answer is of the truth's order (the 10% claim is the acceptance lane's, above)."""
    capacity, slo = Capacity(slots=12, tokens_per_s=500), SLO(itl_ms=20)
    true = truth(capacity, slo)
    path = scenario(tmp_path / "s.yaml", capacity, slo)
    outcome = run_capacity(options(tmp_path, path, tolerance=0.25, max_steps=6, **QUICK))
    (target,) = outcome.document["targets"]
    print(f"\nquick search: truth {true:.2f} req/s, found {target['capacity']} req/s")
    assert target["end"] in ("edge", "max_steps") and target["steps_used"] <= 6
    assert target["capacity"] is not None and true / 2 <= target["capacity"] <= true * 2
    assert target["statement"].startswith("sustains ")
    assert [s["level"] for s in target["steps"]][:2] == [8.0, 16.0]  # bracketing doubles


@pytest.mark.slow
def test_a_rate_limited_target_gets_a_rate_limited_verdict(tmp_path: Path) -> None:
    """Through the CLI: 429s end the search, and --fail-below makes that exit 1."""
    path = scenario(
        tmp_path / "s.yaml",
        Capacity(slots=32, tokens_per_s=800),
        SLO(itl_ms=15),
        extra="  faults: {rate_limit_429: 0.2}\n",
    )
    result = subprocess.run(
        [
            *capacity_command(path),
            "--start",
            "10",
            "--step-duration",
            "6s",
            "--min-step",
            "2s",
            "--step-warmup",
            "1s",
            "--max-steps",
            "4",
            "--out",
            str(tmp_path / "results"),
            "--quiet",
            "--fail-below",
            "5",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "CHATPROBE_RESULTS": str(tmp_path / "results")},
    )
    assert result.returncode == 1, result.stderr[-2000:]
    document = orjson.loads(result.stdout)
    (target,) = document["capacity"]["targets"]
    assert target["end"] == "rate_limited" and target["steps_used"] == 1
    assert target["steps"][0]["outcome"] == "rate_limited"
    assert target["statement"].startswith("rate-limited at 10 req/s")
    assert "confidence" not in target["statement"]
    assert document["failures"] and "below --fail-below 5" in document["failures"][0]


@pytest.mark.slow
def test_the_cost_budget_stops_the_search_before_it_is_spent(tmp_path: Path) -> None:
    path = scenario(tmp_path / "s.yaml", Capacity(slots=32, tokens_per_s=800), SLO(itl_ms=15))
    outcome = run_capacity(
        options(tmp_path, path, start=10.0, max_cost=0.002, max_steps=6, **QUICK)
    )
    (target,) = outcome.document["targets"]
    assert target["end"] == "budget" and 1 <= target["steps_used"] < 6
    spent = outcome.document["spent_usd"]
    assert spent is not None and 0 < spent <= 0.002
    assert "--max-cost 0.002 USD" in target["message"]
    assert sum(s["cost_usd"] for s in target["steps"]) == pytest.approx(spent)


@pytest.mark.slow
def test_closed_loop_searches_whole_users(tmp_path: Path) -> None:
    path = scenario(tmp_path / "s.yaml", Capacity(slots=4, tokens_per_s=400), SLO(ttft_ms=60))
    outcome = run_capacity(
        options(tmp_path, path, by="concurrency", start=2.0, max_steps=3, **QUICK)
    )
    (target,) = outcome.document["targets"]
    assert outcome.document["unit"] == "users" and target["unit"] == "users"
    assert [s["level"] for s in target["steps"]][:2] == [2.0, 4.0]
    assert all(float(s["level"]).is_integer() for s in target["steps"])


def throttle_locust(parent: int, done: threading.Event) -> None:
    """Stop every locust process under ``parent`` for 70 ms of each 100 ms until ``done``;
    they are always left running."""
    stopped: list[psutil.Process] = []
    try:
        while not done.is_set():
            try:
                children = psutil.Process(parent).children(recursive=True)
            except psutil.NoSuchProcess:
                return
            stopped = []
            for child in children:
                with contextlib.suppress(psutil.Error):
                    if "locust" in child.cmdline():
                        child.suspend()
                        stopped.append(child)
            time.sleep(0.07)
            for child in stopped:
                with contextlib.suppress(psutil.Error):
                    child.resume()
            stopped = []
            time.sleep(0.03)
    finally:
        for child in stopped:
            with contextlib.suppress(psutil.Error):
                child.resume()


@pytest.mark.slow
def test_a_starved_client_is_detected_and_its_steps_marked_invalid(tmp_path: Path) -> None:
    """The locust child is throttled the way a cgroup CPU quota throttles a container: it is
    stopped for 70 ms of every 100 ms (SIGSTOP, SIGCONT). Priorities and busy loops on the
    same CPU do not starve it reliably (the kernel's autogroups give each session a share),
    a stop does. The client then falls behind its schedule at a rate one core could carry
    (300 req/s), its event loop wakes late, and the step says the client was the limit."""
    path = scenario(tmp_path / "s.yaml", Capacity(slots=32, tokens_per_s=800), SLO(itl_ms=15))
    command = subprocess.Popen(
        [
            *capacity_command(path),
            "--start",
            "300",
            "--step-duration",
            "8s",
            "--min-step",
            "3s",
            "--step-warmup",
            "1s",
            "--max-steps",
            "2",
            "--min-samples",
            "40",
            "--out",
            str(tmp_path / "results"),
            "--quiet",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    done = threading.Event()
    throttler = threading.Thread(target=throttle_locust, args=(command.pid, done), daemon=True)
    throttler.start()
    try:
        stdout, stderr = command.communicate(timeout=240)
    finally:
        done.set()
        throttler.join(timeout=10)
        if command.poll() is None:
            command.kill()
            command.wait()
    result = subprocess.CompletedProcess(command.args, command.returncode, stdout, stderr)
    assert result.returncode == 0, result.stderr[-2000:]
    (target,) = orjson.loads(result.stdout)["capacity"]["targets"]
    first = target["steps"][0]
    assert first["outcome"] == "invalid" and not first["health"]["valid"], first["health"]
    assert first["health"]["problems"]
    # the starved process is not busy (it waits for the CPU), and its event loop is measured
    assert first["health"]["cpu_busy"] < first["health"]["cpu_limit"]
    assert first["health"]["loop_lag_p99_ms"] is not None
    assert target["end"] == "client_limited"
    assert "invalid" in target["statement"] and "--processes" in target["advice"][0]
