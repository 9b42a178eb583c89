"""The capacity model: the engine's rules, the simulator's SLO edge, and the real server.

Server tests run the emulator on 127.0.0.1 and judge by the ground truth's own times (never
by wall-clock milliseconds): orders, queue times that are positive or zero, and verdicts
far on either side of the simulated edge.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from dataclasses import replace

import httpx
import orjson
import pytest

from chatprobe.emulator import Emulator, EmulatorConfig, count_tokens
from chatprobe.emulator.capacity import (
    SLO,
    Capacity,
    CapacityEngine,
    Job,
    Workload,
    replay,
    simulate,
    slo_edge,
    throughput_bound,
)
from chatprobe.errors import ConfigError
from chatprobe.profiles import LatencyModel, load_profile
from tests.emulator_support import (
    chat_body,
    headers,
    open_loop,
    p,
    truth_itl_ms,
    truth_ttft_ms,
    wait_settled,
)

MS = 1_000_000
FLAT = LatencyModel(ttft_ms=10, ttft_sigma=0.0, itl_ms=2, itl_sigma=0.0)


# ---------------------------------------------------------------------------- settings


def test_capacity_parses_and_prints_back() -> None:
    cap = Capacity.parse("slots=8,tokens_per_s=400,prefill_ms_per_1k=20")
    assert cap == Capacity(slots=8, tokens_per_s=400.0, prefill_ms_per_1k=20.0)
    assert Capacity.parse(str(cap)) == cap
    assert Capacity.parse("tokens_per_s=50") == Capacity(tokens_per_s=50.0)
    assert not Capacity.parse("off").enabled and str(Capacity()) == "off"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("slots=0", "slots must be at least 1"),
        ("slots=2.5", "numbers expected"),
        ("speed=3", "unknown capacity setting 'speed'"),
        ("slots", "NAME=VALUE"),
        ("tokens_per_s=-1", "tokens_per_s must be more than 0"),
    ],
)
def test_bad_capacity_is_one_clear_error(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Capacity.parse(text)
    assert words in str(info.value) and info.value.field == "--capacity"


def test_cli_rejects_bad_capacity_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "emulate", "--capacity", "slots=0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--capacity" in lines[0] and "Traceback" not in result.stderr


def test_config_round_trips_capacity_through_cli_args() -> None:
    config = EmulatorConfig(capacity=Capacity(slots=3, tokens_per_s=90.0))
    args = config.to_args()
    assert args[args.index("--capacity") + 1] == "slots=3,tokens_per_s=90"


# ---------------------------------------------------------------------------- engine rules


def _gaps(job: Job) -> list[int]:
    return [b - a for a, b in zip(job.times, job.times[1:], strict=False)]


def _job(steps: int = 4, ttft_ms: float = 10, gap_ms: float = 10, prompt: int = 0) -> Job:
    return Job(
        step_tokens=[1.0] * steps,
        base_ttft_ns=int(ttft_ms * MS),
        base_gaps_ns=[int(gap_ms * MS)] * (steps - 1),
        uncached_tokens=prompt,
    )


def test_full_slots_queue_first_in_first_out() -> None:
    engine = CapacityEngine(Capacity(slots=2))
    jobs = [_job() for _ in range(4)]
    for job in jobs:
        engine.submit(job, 0)
    assert engine.snapshot()["busy"] == 2 and engine.snapshot()["queued"] == 2
    engine.advance(10**12)
    # alone each takes 10 ms to the first token and 3 gaps of 10 ms: 40 ms
    assert [j.t_admitted for j in jobs] == [0, 0, 40 * MS, 40 * MS]
    assert [j.times[0] for j in jobs] == [10 * MS, 10 * MS, 50 * MS, 50 * MS]
    assert engine.snapshot()["busy"] == 0


def test_the_decode_budget_is_shared_by_the_streams_decoding() -> None:
    engine = CapacityEngine(Capacity(tokens_per_s=100))  # 10 ms per token for one stream
    alone = _job(steps=5, gap_ms=2)
    engine.submit(alone, 0)
    engine.advance(10**12)
    assert _gaps(alone) == [10 * MS] * 4
    three = [_job(steps=5, gap_ms=2) for _ in range(3)]
    for job in three:
        engine.submit(job, 10**12)
    engine.advance(2 * 10**12)
    for job in three:  # three decoding: each gets a third of the budget
        assert _gaps(job) == [30 * MS] * 4
        assert job.figures()["batch_mean"] == 3


def test_the_base_gap_wins_when_the_budget_is_not_the_limit() -> None:
    engine = CapacityEngine(Capacity(tokens_per_s=10_000))
    job = _job(steps=3, gap_ms=7)
    engine.submit(job, 0)
    engine.advance(10**12)
    assert _gaps(job) == [7 * MS, 7 * MS]


def test_prefills_run_one_at_a_time() -> None:
    engine = CapacityEngine(Capacity(prefill_ms_per_1k=100))
    first, second = _job(prompt=1000), _job(prompt=1000)
    engine.submit(first, 0)
    engine.submit(second, 0)
    engine.advance(10**12)
    assert first.figures()["prefill_ms"] == second.figures()["prefill_ms"] == 100
    assert first.figures()["prefill_wait_ms"] == 0
    assert second.figures()["prefill_wait_ms"] == 100
    assert second.times[0] - first.times[0] == 100 * MS


def test_release_frees_the_slot_for_the_queue() -> None:
    engine = CapacityEngine(Capacity(slots=1))
    running, waiting = _job(), _job()
    engine.submit(running, 0)
    engine.submit(waiting, 0)
    engine.release(running, 15 * MS)  # the client went away after the first token
    assert waiting.t_admitted == 15 * MS and engine.snapshot()["busy"] == 1
    engine.release(waiting, 16 * MS)  # still prefilling
    assert engine.snapshot() | {"capacity": ""} == {
        "capacity": "",
        "busy": 0,
        "decoding": 0,
        "queued": 0,
        "admitted_total": 2,
        "queued_total": 1,
    }


# ---------------------------------------------------------------------------- simulator


def test_one_slot_is_an_md1_queue() -> None:
    """Pollaczek-Khinchine: mean wait of M/D/1 = rho * S / (2 * (1 - rho))."""
    workload = Workload(prompt_tokens=0, output_tokens=5)
    service_ms = FLAT.ttft_ms + 4 * FLAT.itl_ms  # 18 ms
    rate = 0.5 / (service_ms / 1000)  # rho = 0.5
    result = simulate(FLAT, Capacity(slots=1), workload, rate, requests=20_000, seed=4)
    expected = 0.5 * service_ms / (2 * 0.5)
    mean = sum(result.queue_ms) / len(result.queue_ms)
    assert mean == pytest.approx(expected, rel=0.06)


SETTINGS = [
    (Capacity(slots=4, tokens_per_s=400), SLO(ttft_ms=100, itl_ms=15)),
    (Capacity(slots=2, tokens_per_s=1000, prefill_ms_per_1k=50), SLO(ttft_ms=100)),
    (Capacity(slots=8, tokens_per_s=300), SLO(itl_ms=20)),
]
LATENCY = LatencyModel(ttft_ms=10, ttft_sigma=0.1, itl_ms=2, itl_sigma=0.1)
WORKLOAD = Workload(prompt_tokens=400, output_tokens=16)


@pytest.mark.parametrize(("capacity", "slo"), SETTINGS, ids=[str(c) for c, _ in SETTINGS])
def test_slo_edge_is_where_the_verdict_flips(capacity: Capacity, slo: SLO) -> None:
    edge = slo_edge(LATENCY, capacity, slo, WORKLOAD)
    assert 0 < edge.rate <= throughput_bound(LATENCY, capacity, WORKLOAD) == edge.bound
    assert edge.evaluations <= 40 and edge.limit in ("ttft", "itl")
    assert slo.holds(edge.ttft_ms, edge.itl_ms)
    below = simulate(LATENCY, capacity, WORKLOAD, edge.rate * 0.97)
    above = simulate(LATENCY, capacity, WORKLOAD, edge.rate * 1.03)
    assert slo.holds(below.pct("ttft_ms", 95), below.pct("itl_ms", 95))
    assert not slo.holds(above.pct("ttft_ms", 95), above.pct("itl_ms", 95))
    assert slo_edge(LATENCY, capacity, slo, WORKLOAD).rate == edge.rate  # deterministic


def test_latency_grows_with_the_arrival_rate() -> None:
    capacity, _ = SETTINGS[0]
    light, heavy = (simulate(LATENCY, capacity, WORKLOAD, r) for r in (2.0, 20.0))
    assert heavy.pct("ttft_ms", 95) > light.pct("ttft_ms", 95)
    assert heavy.pct("itl_ms", 95) > light.pct("itl_ms", 95)
    assert sum(heavy.queue_ms) > sum(light.queue_ms) == 0


def test_an_slo_below_the_idle_latency_has_edge_zero() -> None:
    edge = slo_edge(LATENCY, Capacity(slots=4), SLO(ttft_ms=5), WORKLOAD)
    assert edge.rate == 0 and edge.limit == "ttft"


def test_unlimited_capacity_has_no_edge() -> None:
    with pytest.raises(ValueError, match="no SLO edge"):
        slo_edge(LATENCY, Capacity(), SLO(ttft_ms=100), WORKLOAD)


# ---------------------------------------------------------------------------- real server


async def _concurrent(url: str, bodies: list[bytes], hdrs: dict[str, str]) -> list[int]:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:

        async def one(body: bytes) -> int:
            async with http.stream("POST", url, content=body, headers=hdrs) as response:
                async for _ in response.aiter_raw():
                    pass
                return response.status_code

        return await asyncio.gather(*(one(b) for b in bodies))


def _send_together(emu: Emulator, bodies: list[dict[str, object]], tokens: int) -> list[int]:
    hdrs = {
        **headers(**{"X-Chatprobe-Output-Tokens": str(tokens)}),
        "Content-Type": "application/json",
    }
    url = emu.base_url("openrouter") + "/chat/completions"
    return asyncio.run(_concurrent(url, [orjson.dumps(b) for b in bodies], hdrs))


def _emulator(capacity: Capacity, **changes: object) -> Emulator:
    config = EmulatorConfig(
        providers=("openrouter",),
        ttft_ms=5,
        itl_ms=1,
        sigma=0.0,
        rate_limit_rpm=0,
        capacity=capacity,
        seed=3,
    )
    return Emulator.in_thread(config.with_(**changes))


def test_requests_queue_when_the_slots_are_full() -> None:
    with _emulator(Capacity(slots=1)) as emu:
        assert _send_together(emu, [chat_body()] * 3, tokens=20) == [200] * 3
        truth = wait_settled(emu, 3)
        stats = emu.stats()["capacity"]["openrouter/gemini-2.0-flash-001"]
    queued = sorted(truth, key=lambda t: t["queue_ms"])
    assert queued[0]["queue_ms"] == 0 and all(t["queue_ms"] > 0 for t in queued[1:])
    assert truth_ttft_ms(queued[2]) > truth_ttft_ms(queued[1]) > truth_ttft_ms(queued[0])
    for t in truth:  # the queue is inside TTFT, intended and actual
        assert t["ttft_ms_intended"] >= t["queue_ms"]
        assert t["t_first_content_ns"] >= t["t_received_ns"] + t["queue_ms"] * MS
    assert stats["queued_total"] == 2 and stats["busy"] == 0


def test_itl_grows_with_the_streams_in_flight() -> None:
    with _emulator(Capacity(tokens_per_s=200)) as emu:
        _send_together(emu, [chat_body()], tokens=12)
        _send_together(emu, [chat_body()] * 4, tokens=12)
        alone, *together = wait_settled(emu, 5)
    assert alone["batch_mean"] == 1
    assert all(t["batch_mean"] > 1 for t in together)
    assert min(truth_itl_ms(t) for t in together) > truth_itl_ms(alone)
    assert min(t["itl_ms_intended"] for t in together) > alone["itl_ms_intended"]


def test_prefill_grows_ttft_with_the_prompt() -> None:
    long_prompt = " ".join(["word"] * 600)
    with _emulator(Capacity(prefill_ms_per_1k=200)) as emu:
        _send_together(emu, [chat_body("short")], tokens=4)
        _send_together(emu, [chat_body(long_prompt)], tokens=4)
        short, long = wait_settled(emu, 2)
    assert long["prefill_ms"] > short["prefill_ms"] > 0
    assert truth_ttft_ms(long) > truth_ttft_ms(short)


def test_the_server_decides_as_the_simulator_replays() -> None:
    """Same engine, same draws: replaying the truth's arrivals gives the truth's figures."""
    capacity = Capacity(slots=2, tokens_per_s=300, prefill_ms_per_1k=30)
    with _emulator(capacity, sigma=0.2) as emu:
        _send_together(emu, [chat_body()] * 6, tokens=10)
        _send_together(emu, [chat_body()] * 3, tokens=10)
        truth = wait_settled(emu, 9)
        config = emu.config
    model = load_profile("openrouter").models["gemini-2.0-flash-001"]
    latency = config.latency(model.latency)
    workload = Workload(prompt_tokens=count_tokens("Tell me about capacity."), output_tokens=10)
    jobs = replay(
        latency,
        capacity,
        workload,
        [t["t_parsed_ns"] for t in truth],
        seed=config.seed,
        first_seq=truth[0]["seq"],
    )
    for t, job in zip(truth, jobs, strict=True):
        figures = job.figures()
        assert t["queue_ms"] == pytest.approx(figures["queue_ms"], abs=1e-6)
        assert t["prefill_wait_ms"] == pytest.approx(figures["prefill_wait_ms"], abs=1e-6)
        # the scheduler saw the request when it was parsed; the intended TTFT counts from
        # its arrival (the kernel's stamp), as the client's does
        assert job.t_arrival == t["t_parsed_ns"] >= t["t_received_ns"]
        assert t["ttft_ms_intended"] == pytest.approx((job.times[0] - t["t_received_ns"]) / MS)
        itl = (job.times[-1] - job.times[0]) / MS / 9
        assert t["itl_ms_intended"] == pytest.approx(itl)
    assert any(t["queue_ms"] > 0 for t in truth)


def test_profile_capacity_and_switching_it_off(tmp_path: object) -> None:
    from pathlib import Path

    source = Path(load_profile("openrouter").source).read_text()
    marker = "emulator: {ttft_ms: 55, ttft_sigma: 0.25, itl_ms: 5, itl_sigma: 0.15}"
    assert marker in source
    profile = Path(str(tmp_path)) / "busy.yaml"
    profile.write_text(
        source.replace("name: openrouter", "name: busy").replace(
            marker,
            "emulator: {ttft_ms: 5, itl_ms: 1, capacity: {slots: 1, tokens_per_s: 500}}",
        )
    )
    config = EmulatorConfig(providers=(str(profile),), rate_limit_rpm=0)
    with Emulator.in_thread(config) as emu:
        _send_together_provider(emu, "busy")
        assert emu.stats()["capacity"]["busy/gemini-2.0-flash-001"]["admitted_total"] == 1
    with Emulator.in_thread(replace(config, capacity=Capacity())) as emu:
        _send_together_provider(emu, "busy")
        assert "capacity" not in emu.stats()
        assert emu.truth()[0]["queue_ms"] is None


def _send_together_provider(emu: Emulator, provider: str) -> None:
    with httpx.Client(trust_env=False, timeout=30) as http:
        response = http.post(
            emu.base_url(provider) + "/chat/completions",
            json=chat_body(),
            headers=headers(),
        )
        assert response.status_code == 200


@pytest.mark.slow
def test_server_verdict_flips_around_the_simulated_edge() -> None:
    """Open-loop Poisson load at half and twice the true edge; verdicts from the truth."""
    capacity, slo = SETTINGS[0]
    config = EmulatorConfig(
        providers=("openrouter",),
        ttft_ms=LATENCY.ttft_ms,
        itl_ms=LATENCY.itl_ms,
        sigma=0.1,
        rate_limit_rpm=0,
        capacity=capacity,
    )
    prompt = "Tell me about capacity."
    model = load_profile("openrouter").models["gemini-2.0-flash-001"]
    workload = Workload(prompt_tokens=count_tokens(prompt), output_tokens=16)
    edge = slo_edge(config.latency(model.latency), capacity, slo, workload)
    with Emulator.in_subprocess(config) as emu:
        verdicts = {}
        for factor, count in ((0.5, 60), (2.0, 120)):
            emu.reset()
            answers = open_loop(
                emu,
                chat_body(prompt),
                rate=edge.rate * factor,
                count=count,
                **{"X-Chatprobe-Output-Tokens": "16"},
            )
            assert [a.status for a in answers] == [200] * count
            truth = wait_settled(emu, count)[count // 10 :]
            ttft = p((truth_ttft_ms(t) for t in truth), 95)
            itl = p((truth_itl_ms(t) for t in truth), 95)
            verdicts[factor] = slo.holds(ttft, itl)
            print(f"\nx{factor}: {edge.rate * factor:.1f}/s p95 TTFT {ttft:.1f} ITL {itl:.2f}")
    assert verdicts == {0.5: True, 2.0: False}
    assert math.isfinite(edge.rate)


# ---------------------------------------------------------------------------- scenarios

SCENARIO = "targets:\n  - {provider: openrouter, model: gemini-2.0-flash-001}\n"


def test_a_scenario_block_sets_the_capacity() -> None:
    from chatprobe.load.launcher import emulator_config
    from chatprobe.load.scenario import parse_scenario

    text = SCENARIO + "emulator: {capacity: {slots: 4, tokens_per_s: 200}}\n"
    config = emulator_config(parse_scenario(text), None)
    assert config.capacity == Capacity(slots=4, tokens_per_s=200.0)
    off = emulator_config(parse_scenario(SCENARIO + "emulator: {capacity: 'off'}\n"), None)
    assert off.capacity == Capacity() and not off.capacity.enabled


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("{capacity: {slots: 0}}", "emulator.capacity.slots"),
        ("{capacity: {speed: 3}}", "emulator.capacity.speed"),
        ("{capacity: fast}", "emulator.capacity"),
    ],
)
def test_a_bad_scenario_capacity_names_file_line_and_field(block: str, field: str) -> None:
    from chatprobe.load.scenario import parse_scenario

    with pytest.raises(ConfigError) as info:
        parse_scenario(SCENARIO + f"emulator: {block}\n", "bad.yaml")
    assert str(info.value).startswith("bad.yaml:3: ") and info.value.field == field
