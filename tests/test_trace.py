"""Trace replay: trace layouts, prompts built to length with shared prefixes, the schedule.

Pure pieces first (reading chatprobe's JSON lines, Mooncake and BurstGPT layouts; speeds;
prompt lengths and shared prefixes); then scenarios and the command line; then the
acceptance: a trace of 1,000 requests replayed at 1x against the emulator, each request
sent at its trace time plus its measured lag, lag p50/p99 in the summary and the report.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from chatprobe.errors import ConfigError
from chatprobe.load.scenario import parse_scenario
from chatprobe.load.trace import (
    Trace,
    TracePrompts,
    TraceRequest,
    load_trace,
    parse_speed,
    shard,
)
from chatprobe.paths import project_root
from chatprobe.tokens import count_tokens

TRACES = project_root() / "loadtests" / "traces"
TARGET = "targets: [{provider: openrouter, model: gemini-2.0-flash-001}]\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------- layouts


def test_chatprobe_lines_are_sorted_and_timed_from_the_first(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "t.jsonl",
        '{"timestamp": 12.5, "input_tokens": 90, "output_tokens": 7, "session": "a"}\n'
        "\n"
        '{"timestamp": 10.0, "input_tokens": 40, "output_tokens": 3, "hash_ids": [4, 9]}\n'
        '{"timestamp": 13, "input_tokens": 120, "output_tokens": 9, "session": "a"}\n',
    )
    trace = load_trace(path)
    assert trace.format == "jsonl" and trace.speed == 1.0 and trace.block_tokens == 512
    assert trace.requests == (
        TraceRequest(0.0, 40, 3, None, ("4", "9"), None),
        TraceRequest(2.5, 90, 7, "a", (), 1),
        TraceRequest(3.0, 120, 9, "a", (), 2),
    )
    assert trace.span_s == 3.0
    assert Trace.from_dict(orjson.loads(orjson.dumps(trace.to_dict()))) == trace


def test_mooncake_layout_counts_milliseconds_and_is_detected() -> None:
    trace = load_trace(TRACES / "mooncake-layout.jsonl", speed=2.0)
    assert trace.format == "mooncake"
    assert [r.t_s for r in trace.requests] == [0.0, 0.25, 0.4, 1.25]
    assert [trace.offset_s(r) for r in trace.requests] == [0.0, 0.125, 0.2, 0.625]
    assert trace.requests[0] == TraceRequest(0.0, 1200, 40, None, ("0", "1", "2"))


def test_burstgpt_layout_skips_failed_rows() -> None:
    trace = load_trace(TRACES / "burstgpt-layout.csv")
    assert trace.format == "burstgpt" and trace.skipped == 1  # Response tokens 0
    assert [(r.t_s, r.input_tokens, r.output_tokens) for r in trace.requests] == [
        (0.0, 472, 18),
        (0.5, 1087, 230),
        (2.0, 95, 41),
    ]


def test_the_shipped_example_trace_loads() -> None:
    trace = load_trace(TRACES / "example.jsonl")
    assert len(trace.requests) == 120 and 20 < trace.span_s < 30
    assert {r.session for r in trace.requests} - {None}
    assert any(r.hash_ids[:2] == ("1", "2") for r in trace.requests)


@pytest.mark.parametrize(
    ("text", "fmt", "line", "words"),
    [
        ('{"timestamp": 1, "input_tokens": 5, "output_tokens": 2}\n{oops\n', "auto", 2, "JSON"),
        ('{"timestamp": 1, "input_tokens": 0, "output_tokens": 2}\n', "auto", 1, "input_tokens"),
        ('{"timestamp": 1, "input_tokens": 5}\n', "jsonl", 1, "output_tokens"),
        ('{"timestamp": 1, "input_tokens": 5.5, "output_tokens": 2}\n', "auto", 1, "integer"),
        ('{"timestamp": 1, "input_length": 5, "output_length": 2, "hash_ids": 3}\n', "auto", 1,
         "hash_ids"),
        ("time,tokens\n1,2\n", "auto", 1, "not a trace"),
        ("Timestamp,Model,Request tokens,Response tokens\n1,m,x,2\n", "auto", 2, "numbers"),
    ],
)  # fmt: skip
def test_trace_mistakes_name_the_file_and_line(
    tmp_path: Path, text: str, fmt: str, line: int, words: str
) -> None:
    path = _write(tmp_path, "bad.trace", text)
    with pytest.raises(ConfigError) as info:
        load_trace(path, fmt)
    assert str(info.value).startswith(f"{path}:{line}")
    assert words in str(info.value)


def test_an_empty_trace_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no request"):
        load_trace(_write(tmp_path, "empty.jsonl", "\n\n"))


@pytest.mark.parametrize(("text", "speed"), [("2x", 2.0), ("0.5x", 0.5), ("3", 3.0), (4, 4.0)])
def test_speeds(text: Any, speed: float) -> None:
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["fast", "0x", "-2x", "2xx"])
def test_bad_speeds(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_speed(text)


# ---------------------------------------------------------------------------- prompts


@pytest.mark.parametrize("length", [1, 7, 100, 511, 512, 513, 1500])
def test_prompts_have_the_trace_length_exactly(length: int) -> None:
    prompts = TracePrompts(seed=1, block_tokens=128)
    rng = random.Random(length)
    hashed = TraceRequest(0, length, 1, None, tuple(str(rng.randrange(9)) for _ in range(14)))
    for request in (TraceRequest(0, length, 1), hashed, TraceRequest(0, length, 1, "s", ())):
        assert count_tokens(prompts.text(request, 3)) == length


def test_shared_hashes_share_prefixes_and_others_do_not() -> None:
    prompts = TracePrompts(seed=1, block_tokens=64)
    one = prompts.text(TraceRequest(0, 200, 1, None, ("a", "b", "c", "d")), 0)
    two = prompts.text(TraceRequest(0, 220, 1, None, ("a", "b", "x", "y")), 1)
    other = prompts.text(TraceRequest(0, 200, 1, None, ("z", "b", "c", "d")), 2)
    shared = prompts.text(TraceRequest(0, 128, 1, None, ("a", "b")), 3)
    assert one.startswith(shared) and two.startswith(shared)
    assert not one.startswith(prompts.text(TraceRequest(0, 192, 1, None, ("a", "b", "x")), 4))
    assert other[:40] != one[:40]
    # no hashes: requests on their own differ; a session's requests share its text
    assert prompts.text(TraceRequest(0, 50, 1), 5) != prompts.text(TraceRequest(0, 50, 1), 6)
    short = prompts.text(TraceRequest(0, 60, 1, "s1", ()), 7)
    long = prompts.text(TraceRequest(0, 300, 1, "s1", ()), 8)
    assert long[: len(short) - 20] == short[:-20]


def test_processes_share_the_trace_out() -> None:
    trace = load_trace(TRACES / "example.jsonl")
    parts = [[i for i, _ in shard(trace, w, 3)] for w in range(3)]
    assert sorted(i for part in parts for i in part) == list(range(len(trace.requests)))
    assert all(p == sorted(p) for p in parts)


# ---------------------------------------------------------------------------- scenarios


def test_a_trace_scenario_is_open_loop_at_the_trace_times(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "m.jsonl").write_text((TRACES / "mooncake-layout.jsonl").read_text())
    text = TARGET + "trace: {file: traces/m.jsonl, speed: 2x, block_tokens: 256}\n"
    scenario = parse_scenario(text, str(tmp_path / "s.yaml"))
    assert scenario.trace is not None and scenario.trace.block_tokens == 256
    assert scenario.shape_kind == "open_loop" and scenario.requests == 4
    assert scenario.open_loop is not None and scenario.open_loop.arrival == "trace"
    (stage,) = scenario.stages
    assert stage.name == "trace 2x" and stage.rate == pytest.approx(4 / 0.625)
    assert stage.duration_s > scenario.trace.span_s
    assert scenario.override(requests=2).requests == 2
    assert scenario.override(duration_s=0.15).requests == 2  # due at 0, 0.125 s
    with pytest.raises(ConfigError, match="trace sets the arrivals"):
        scenario.override(users=3)


@pytest.mark.parametrize(
    ("extra", "where", "words"),
    [
        ("trace: nowhere.jsonl\n", "trace", "not found"),
        ("trace: {file: m.jsonl, speed: fast}\n", "trace.speed", ""),
        ("trace: m.jsonl\nshape: {users: 2}\n", "shape", "trace sets the arrivals"),
        ("trace: m.jsonl\nconversation: {turns: 2}\n", "trace", "not both"),
    ],
)
def test_trace_scenario_mistakes(tmp_path: Path, extra: str, where: str, words: str) -> None:
    (tmp_path / "m.jsonl").write_text((TRACES / "mooncake-layout.jsonl").read_text())
    with pytest.raises(ConfigError) as info:
        parse_scenario(TARGET + extra, str(tmp_path / "bad.yaml"))
    assert f"bad.yaml:2: {where}: " in str(info.value) or f"bad.yaml:3: {where}: " in str(
        info.value
    )
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--trace", "loadtests/traces/example.jsonl", "--speed", "fast"], "--speed"),
        (["--trace", "no/such/trace.jsonl"], "trace"),
        (["--trace", "loadtests/traces/example.jsonl", "--users", "3"], "trace sets the arrivals"),
        (["--speed", "2x"], "need a trace"),
    ],
)
def test_bad_trace_command_lines_fail_in_one_line(
    cli: Callable[..., Any], args: list[str], words: str
) -> None:
    done = cli("load", "--emulator", "--quiet", *args, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------- acceptance


def _trace_file(path: Path, count: int, span_s: float) -> list[float]:
    """``count`` requests spread over ``span_s`` seconds (seeded Poisson), a third sharing a
    prefix, a fifth in sessions; returns their times."""
    rng = random.Random(16)
    times = sorted(rng.uniform(0, span_s) for _ in range(count))
    lines = []
    for i, t in enumerate(times):
        row: dict[str, Any] = {
            "timestamp": round(1000 + t, 6),
            "input_tokens": rng.randint(20, 200),
            "output_tokens": rng.randint(2, 8),
        }
        if i % 3 == 0:
            row.update(input_tokens=rng.randint(130, 200), hash_ids=[1, i])
        elif i % 5 == 0:
            row["session"] = f"s{i % 7}"
        lines.append(orjson.dumps(row).decode())
    path.write_text("\n".join(lines) + "\n")
    return [round(1000 + t, 6) - round(1000 + times[0], 6) for t in times]


@pytest.mark.slow
def test_a_1000_request_trace_is_sent_at_its_times(tmp_path: Path, cli: Callable[..., Any]) -> None:
    trace = tmp_path / "trace.jsonl"
    times = _trace_file(trace, 1000, 8.0)
    scenario = tmp_path / "replay.yaml"
    scenario.write_text(
        TARGET + "emulator: {ttft_ms: 5, itl_ms: 1, sigma: 0, prefix_cache: {block: 16}}\n"
    )
    done = cli(
        "load", str(scenario), "--trace", str(trace), "--speed", "1x", "--emulator",
        "--out", str(tmp_path), "--run-id", "replay", "--quiet", "--no-pin", timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "replay"
    samples = [orjson.loads(line) for line in (folder / "samples.jsonl").read_bytes().splitlines()]
    summary = orjson.loads((folder / "summary.json").read_bytes())
    assert len(samples) == 1000 and summary["errors"] == {} and summary["aborted"] == 0
    assert summary["timeline"]["end_reason"] == "requests reached"

    # Every request was scheduled at its trace time, and went out its measured lag later.
    scheduled = sorted(s["t_offset_s"] for s in samples)
    assert scheduled == pytest.approx(sorted(times), abs=2e-6)
    assert all(s["lag_ms"] is not None and s["lag_ms"] >= 0 for s in samples)
    lengths = sorted(s["input_tokens"] for s in samples)
    assert lengths == sorted(orjson.loads(line)["input_tokens"] for line in trace.open())
    assert {s["max_tokens"] for s in samples} <= set(range(2, 9))
    assert all(s["output_tokens"] == s["max_tokens"] for s in samples)  # ran to the cap

    # Server side: the emulator received them in that order (sent = scheduled + lag), up to
    # requests sent within a few milliseconds of each other.
    truth = {}
    for line in (folder / "emulator_truth.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        truth[record["request_id"]] = record["t_received_ns"] / 1e6
    sent = sorted(
        (s["t_offset_s"] * 1000 + s["lag_ms"], truth[s["server_request_id"]]) for s in samples
    )
    inverted, latest, j = 0, float("-inf"), 0
    for s_sent, s_recv in sent:  # latest: the last receipt of those sent 20 ms before or more
        while sent[j][0] < s_sent - 20:
            latest = max(latest, sent[j][1])
            j += 1
        inverted += s_recv < latest
    assert inverted == 0
    delivery = sorted(recv - s for s, recv in sent)
    spread = [d - delivery[0] for d in delivery]

    lag = summary["lag_ms"]
    assert lag["n"] == 1000 and lag["p50"] is not None and lag["p99"] >= lag["p50"] >= 0
    cached = summary["groups"][0]["cache"]
    assert cached["cached_tokens"] > 0  # the shared-prefix hashes reached the prefix cache

    report = tmp_path / "report"
    made = cli("report", str(folder), "--out", str(report), timeout=120)
    assert made.returncode == 0, made.stderr
    markdown = (report / "report.md").read_text()
    assert "Open-loop schedule" in markdown and f"{lag['p99']:,.3f}" in markdown
    print(
        f"\ntrace replay, 1000 requests over {times[-1]:.2f} s at 1x: lag p50 "
        f"{lag['p50']:.3f} ms, p99 {lag['p99']:.3f} ms, max {lag['max']:.3f} ms; send to "
        f"server receipt beyond the fastest: p50 {spread[500]:.3f} ms, p99 {spread[990]:.3f} ms; "
        f"cache hit rate {cached['hit_rate']:.3f}"
    )
