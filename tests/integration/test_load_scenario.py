"""Scenarios, prompts and the run timeline: pure parts of chatprobe.load, no locust."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import orjson
import pytest

from chatprobe.errors import ConfigError, UnknownNameError
from chatprobe.load.prompts import build_prompts, draw_length, prompt_tokens
from chatprobe.load.scenario import (
    PromptSpec,
    Stage,
    find_scenario,
    load_scenario,
    parse_duration,
    parse_scenario,
)
from chatprobe.load.schedule import arrival_offsets, position_at, split_quota, tick
from chatprobe.tokens import count_tokens, text_of_tokens

BASE = "targets:\n  - {provider: openrouter, model: gemini-2.0-flash-001}\n"


@pytest.mark.parametrize("name", ["smoke", "compare", "sweep", "open-loop"])
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.stages and scenario.planned_duration_s > 0
    build_prompts(scenario.prompts, scenario.seed)  # prompt sources resolve


def test_compare_has_the_ttft_claim_targets() -> None:
    labels = {t.label for t in load_scenario("compare").targets}
    assert labels == {
        "openrouter/gemini-2.0-flash-001",
        "aimlapi/gemini-2.0-flash-exp",
        "aimlapi/gemini-1.5-flash",
        "apilaplas/gemini-2.0-flash-exp",
    }


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(3, 3.0), (2.5, 2.5), ("500ms", 0.5), ("10s", 10.0), ("2m", 120.0), (" 1h ", 3600.0)],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["10 minutes", "-1s", True, "s"])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ConfigError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (BASE + "shape: {users: 0}\n", 3, "shape.users", "minimum"),
        (BASE + "shape: {users: 2, stages: [{users: 1, duration: 1s}]}\n", 3, "shape", "exactly"),
        (BASE + "duration: 10 minutes\n", 3, "duration", ""),
        (BASE + "mix: shuffled\n", 3, "mix", "shuffled"),
        (BASE + "max_tokens: many\n", 3, "max_tokens", "many"),
        (BASE + "duration: 5s\nrequests: 10\n", 4, "requests", "not both"),
        (BASE + "warmup: 20s\nduration: 10s\n", 3, "warmup", "shorter"),
        (
            BASE + "shape: {sweep: {users: [1, 1], stage_duration: 5s}}\n",
            3,
            "shape.sweep.users",
            "distinct",
        ),
        (BASE + "emulator: {faults: {gremlins: 0.1}}\n", 3, "emulator.faults.gremlins", "gremlins"),
        (BASE + "request: {stream: false}\n", 3, "request", "stream"),
        (BASE + "prompts: {text: hi, file: x.txt}\n", 3, "prompts", "one of"),
        ("targets: []\n", 1, "targets", ""),
        (BASE + "colour: blue\n", 3, "colour", "colour"),
    ],
)
def test_bad_scenarios_name_file_line_and_field(
    text: str, line: int, field: str | None, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(text, "bad.yaml")
    err = info.value
    assert err.path == "bad.yaml"
    assert err.line == line, str(err)
    if field is not None:
        assert err.field == field, str(err)
    assert words in str(err)
    assert str(err).startswith(f"bad.yaml:{line}: ")


def test_unknown_scenario_lists_known_ones() -> None:
    with pytest.raises(UnknownNameError) as info:
        load_scenario("no-such-scenario")
    assert "smoke" in str(info.value)


def test_overrides() -> None:
    s = load_scenario("sweep")
    fixed = s.override(users=3, duration_s=4)
    assert [(st.users, st.duration_s) for st in fixed.stages] == [(3, 4.0)]
    opened = load_scenario("smoke").override(rate=5)
    assert opened.shape_kind == "open_loop" and opened.stages[0].rate == 5
    counted = load_scenario("smoke").override(requests=7)
    assert counted.requests == 7 and counted.duration_s is None
    short = load_scenario("compare").override(duration_s=5)  # warm-up 5 s, ramp 4 s
    assert short.stages[0].warmup_s == pytest.approx(1.0) and short.stages[0].ramp_s == 1.0
    with pytest.raises(ConfigError):
        s.override(duration_s=5)  # a sweep sets its own length
    with pytest.raises(ConfigError):
        load_scenario("smoke").override(users=2, rate=3)


def test_a_ramp_is_warmup() -> None:
    s = parse_scenario(BASE + "shape: {users: 4, ramp: 3s}\nwarmup: 1s\nduration: 10s\n")
    assert s.stages == (Stage("4 users", 10.0, 4, 3.0, 3.0),)


def test_prompt_file_relative_to_scenario(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(
        '"plain"\n{"prompt": "as prompt"}\n'
        '{"messages": [{"role": "user", "content": "as messages"}]}\n'
    )
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(BASE + "prompts: {file: p.jsonl, system: be brief}\n")
    pool = build_prompts(load_scenario(scenario_file).prompts, 1)
    assert [m[-1]["content"] for m in pool] == ["plain", "as prompt", "as messages"]
    assert all(m[0] == {"role": "system", "content": "be brief"} for m in pool)


def test_bad_prompt_file_line(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('"ok"\n{"nothing": 1}\n')
    with pytest.raises(ConfigError) as info:
        build_prompts(PromptSpec("file", (), file=str(tmp_path / "p.jsonl")), 1)
    assert info.value.line == 2


def test_synthetic_prompts_are_seeded_and_sized() -> None:
    spec = PromptSpec(
        "synthetic", (), distribution={"distribution": "normal", "mean": 100, "std": 10}, count=50
    )
    a, b = build_prompts(spec, 3), build_prompts(spec, 3)
    assert a == b and build_prompts(spec, 4) != a
    sizes = prompt_tokens(a)  # real tokens (cl100k_base), counted as sent
    assert 85 < statistics.mean(sizes) < 115
    # each prompt has exactly the length drawn for it
    rng = random.Random("chatprobe-prompts:3")
    drawn = []
    for _ in range(50):
        drawn.append(draw_length(spec.distribution, rng))
        text_of_tokens(drawn[-1], rng)  # the same draws the pool's builder makes
    assert sizes == drawn
    assert [count_tokens(m[0]["content"]) for m in a] == drawn


def test_a_number_of_input_tokens_is_a_fixed_length(tmp_path: Path) -> None:
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(
        BASE + "prompts: {synthetic: {input_tokens: 300, count: 4}, system: Be brief.}\n"
    )
    scenario = load_scenario(scenario_file)
    pool = build_prompts(scenario.prompts, scenario.seed)
    assert [count_tokens(m[1]["content"]) for m in pool] == [300] * 4
    assert prompt_tokens(pool) == [300 + count_tokens("Be brief.")] * 4


def test_timeline_positions_and_ticks() -> None:
    stages = [Stage("a", 10, 2, 0, 2), Stage("b", 5, 8, 2, 1)]
    assert position_at(stages, 1).stage.name == "a" and position_at(stages, 1).warmup
    assert not position_at(stages, 3).warmup
    p = position_at(stages, 10.5)
    assert p.stage.name == "b" and p.warmup and p.offset_in_stage == pytest.approx(0.5)
    assert position_at(stages, 99).stage.name == "b"  # late samples belong to the last stage
    assert tick(stages, 0) == (2, 100.0)
    assert tick(stages, 12) == (8, 4.0)
    assert tick(stages, 15) is None
    assert tick([Stage("r", 5, 0, rate=3.0)], 1, drivers=2) == (2, 100.0)


def test_arrivals() -> None:
    constant = list(arrival_offsets(4, arrival="constant", seed=1, end_s=2))
    assert constant == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75])
    poisson = list(arrival_offsets(50, arrival="poisson", seed=1, end_s=100))
    assert poisson == list(arrival_offsets(50, arrival="poisson", seed=1, end_s=100))
    assert 4700 < len(poisson) < 5300  # 5000 expected
    assert len(list(arrival_offsets(50, arrival="poisson", seed=1, limit=7))) == 7


def test_split_quota_sums() -> None:
    for total in (0, 1, 7, 100):
        for parts in (1, 2, 3, 8):
            assert sum(split_quota(total, parts, i) for i in range(parts)) == total


def test_builtin_scenarios_are_found_by_name() -> None:
    assert find_scenario("smoke").name == "smoke.yaml"


def test_the_plan_carries_what_each_request_asks_for(tmp_path: Path) -> None:
    """Each prompt's token count and the output cap: what the samples' input_tokens and
    max_tokens say beside the provider's prompt_tokens and output_tokens."""
    from chatprobe.load.plan import EmulatorTarget, RunPlan, build_plan

    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(
        BASE + "prompts: {synthetic: {input_tokens: 40, count: 3}}\nmax_tokens: 32\n"
    )
    scenario = load_scenario(scenario_file)
    plan = build_plan(scenario, out_dir=tmp_path, emulator=EmulatorTarget("http://127.0.0.1:9"))
    assert plan.prompt_tokens == [40, 40, 40] and plan.max_tokens_requested == 32
    again = RunPlan.from_dict(orjson.loads(plan.to_json()))
    assert again.prompt_tokens == plan.prompt_tokens
    plan.request = {"max_completion_tokens": 100}  # the request block wins
    assert plan.max_tokens_requested == 100
