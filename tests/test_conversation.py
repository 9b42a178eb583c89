"""Conversations: sessions of turns fed with the real answers, think time, tool-call turns.

The pieces (pause distributions, the history a turn sends, the session loop) are tested
pure; the acceptance runs ``chatprobe load`` on a conversation scenario through a recording
proxy in front of the emulator, so the messages each turn carried are checked server side,
and the cache hit rate of the summary and the report against the emulator's ground truth.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from chatprobe.emulator import Emulator, EmulatorConfig
from chatprobe.emulator.prefix import PrefixCacheSettings
from chatprobe.errors import ConfigError
from chatprobe.load.conversation import Conversation, ConversationSpec, Pause, run_session
from chatprobe.load.scenario import parse_scenario
from chatprobe.record import AssembledChoice, RequestRecord
from chatprobe.tokens import count_messages
from tests.fake_servers.recording import RecordingProxy

TARGET = "targets: [{provider: openrouter, model: gemini-2.0-flash-001}]\n"
POOL = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "First?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Second?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Third?"}],
]


# ---------------------------------------------------------------------------- pauses


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("250ms", Pause("fixed", 0.25)),
        (2, Pause("fixed", 2.0)),
        ({"distribution": "uniform", "min": "1s", "max": "3s"}, Pause("uniform", 2.0, 1.0, 3.0)),
        ({"distribution": "exponential", "mean": "2s"}, Pause("exponential", 2.0)),
        (
            {"distribution": "exponential", "mean": 1, "max": "4s"},
            Pause("exponential", 1.0, 0.0, 4.0),
        ),
    ],
)
def test_pauses_parse_like_durations(written: Any, expected: Pause) -> None:
    assert Pause.parse(written, what="think_time") == expected


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ({"distribution": "uniform", "min": 1}, "needs min and max"),
        ({"distribution": "uniform", "min": 3, "max": 1}, "min must not exceed max"),
        ({"distribution": "exponential"}, "needs mean"),
        ({"distribution": "gamma", "mean": 1}, "unknown distribution"),
        ("soon", "expected a duration"),
    ],
)
def test_bad_pauses_are_one_clear_error(written: Any, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Pause.parse(written, what="think_time")


def test_pauses_draw_within_their_distribution() -> None:
    rng = random.Random(1)
    uniform = [Pause("uniform", 2.0, 1.0, 3.0).draw(rng) for _ in range(500)]
    assert all(1.0 <= x <= 3.0 for x in uniform)
    capped = [Pause("exponential", 1.0, 0.0, 2.0).draw(rng) for _ in range(2000)]
    assert all(0 <= x <= 2.0 for x in capped) and 2.0 in capped  # the tail is cut, not lost
    mean = sum(Pause("exponential", 1.0).draw(rng) for _ in range(4000)) / 4000
    assert 0.9 < mean < 1.1


# ---------------------------------------------------------------------------- one session


def _answer(content: str = "", calls: list[dict[str, Any]] | None = None) -> RequestRecord:
    record = RequestRecord(stream=True)
    record.finished = True
    record.choices = {0: AssembledChoice(index=0, content=content, tool_calls=calls or [])}
    return record


def _conversation(spec: ConversationSpec, **extra: Any) -> Conversation:
    return Conversation(
        spec,
        "0-1",
        model_id="m",
        prompts=POOL,
        first=0,
        max_tokens=32,
        extra=extra,
        rng=random.Random(3),
    )


def _messages(item: Any) -> list[dict[str, Any]]:
    return list(orjson.loads(item.body)["messages"])


def test_each_turn_holds_every_answer_before_it() -> None:
    conversation = _conversation(ConversationSpec(turns=3), temperature=0)
    first = conversation.next_request()
    assert _messages(first) == POOL[0]
    assert (first.session, first.turn, first.max_tokens) == ("0-1", 1, 32)
    assert first.input_tokens == count_messages(POOL[0])
    conversation.answer(_answer("One."))
    second = conversation.next_request()
    assert _messages(second) == [*POOL[0], {"role": "assistant", "content": "One."}, POOL[1][1]]
    conversation.answer(_answer("Two."))
    third = conversation.next_request()
    body = orjson.loads(third.body)
    assert [m.get("content") for m in body["messages"]] == [
        "Be brief.",
        "First?",
        "One.",
        "Second?",
        "Two.",
        "Third?",
    ]
    assert body["temperature"] == 0 and body["stream"] is True
    assert third.turn == 3 and third.input_tokens == count_messages(body["messages"])
    conversation.answer(_answer("Three."))
    assert conversation.done


def test_a_tool_turn_asks_for_a_call_and_the_next_sends_its_result() -> None:
    spec = ConversationSpec(turns=3, tool_turns=(1,), tool_result_tokens=8)
    conversation = _conversation(spec)
    first = orjson.loads(conversation.next_request().body)
    assert first["tool_choice"] == "required" and first["tools"][0]["function"]["name"] == "lookup"
    call = {"id": "call_7", "function": {"name": "lookup", "arguments": '{"query": "x"}'}}
    conversation.answer(_answer("", [call]))
    assert conversation.pending_calls
    result = conversation.next_request()
    body = orjson.loads(result.body)
    assistant, tool = body["messages"][-2:]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_7", "type": "function", "function": call["function"]}],
    }
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_7"
    assert count_messages([tool]) == 8
    assert body["tool_choice"] == "none" and result.turn == 2
    conversation.answer(_answer("Done."))
    third = orjson.loads(conversation.next_request().body)
    assert third["messages"][-1] == POOL[1][1]  # the next user turn takes the next prompt


def test_the_pause_is_tool_latency_before_a_tool_result_else_think_time() -> None:
    spec = ConversationSpec(
        turns=3, think_time=Pause("fixed", 5.0), tool_turns=(1,), tool_latency=Pause("fixed", 0.2)
    )
    conversation = _conversation(spec)
    conversation.next_request()
    conversation.answer(_answer("", [{"function": {"name": "lookup", "arguments": "{}"}}]))
    assert conversation.pause() == 0.2
    conversation.next_request()
    conversation.answer(_answer("ok"))
    assert conversation.pause() == 5.0


def test_run_session_waits_between_turns_and_stops_on_a_failure() -> None:
    conversation = _conversation(ConversationSpec(turns=4, think_time=Pause("fixed", 0.5)))
    waits: list[float] = []
    sent: list[int] = []

    def send(item: Any) -> RequestRecord:
        sent.append(item.turn)
        record = _answer(f"answer {item.turn}")
        if item.turn == 3:
            record.error_class = "server_error"  # type: ignore[assignment]
        return record

    assert run_session(conversation, send, lambda s: waits.append(s) or False) == 3
    assert sent == [1, 2, 3] and waits == [0.5, 0.5]  # no turn 4 after the failed turn 3


def test_run_session_ends_when_the_run_ends_or_requests_run_out() -> None:
    conversation = _conversation(ConversationSpec(turns=4))
    assert run_session(conversation, lambda item: _answer("x"), lambda s: True) == 1
    conversation = _conversation(ConversationSpec(turns=4))
    assert run_session(conversation, lambda item: None, lambda s: False) == 0


# ---------------------------------------------------------------------------- scenarios


def test_a_conversation_block_parses() -> None:
    scenario = parse_scenario(
        TARGET
        + "conversation:\n  turns: 5\n  think_time: {distribution: uniform, min: 1s, max: 2s}\n"
        "  tool_turns: [3, 1]\n  tool_latency: 150ms\n  tool_result_tokens: 12\n"
    )
    spec = scenario.conversation
    assert spec is not None
    assert spec.turns == 5 and spec.tool_turns == (1, 3) and spec.tool_result_tokens == 12
    assert spec.think_time == Pause("uniform", 1.5, 1.0, 2.0)
    assert spec.tool_latency == Pause("fixed", 0.15)
    assert ConversationSpec.from_dict(spec.to_dict()) == spec  # as plan.json carries it


@pytest.mark.parametrize(
    ("block", "where", "words"),
    [
        ("conversation: {turns: 2, tool_turns: [2]}", "conversation.tool_turns[0]", "cannot ask"),
        ("conversation: {turns: 2, think_time: soon}", "conversation.think_time", "soon"),
        ("conversation: {turns: 0}", "conversation.turns", ""),
        (
            "conversation: {turns: 2, think_time: {distribution: uniform, min: 1}}",
            "conversation.think_time",
            "min and max",
        ),
    ],
)
def test_conversation_mistakes_name_file_line_and_field(block: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(TARGET + block + "\n", "bad.yaml")
    assert str(info.value).startswith(f"bad.yaml:2: {where}: ")
    assert words in str(info.value)


# ---------------------------------------------------------------------------- acceptance

BLOCK = 16
EMULATOR_CONFIG = EmulatorConfig(
    providers=("openrouter",),
    ttft_ms=5,
    itl_ms=1,
    sigma=0.0,
    output_tokens=(12, 30),
    rate_limit_rpm=0,
    prefix_cache=PrefixCacheSettings(block=BLOCK),
)


@pytest.fixture
def proxied() -> Iterator[tuple[Emulator, RecordingProxy]]:
    with Emulator.in_thread(EMULATOR_CONFIG) as emulator, RecordingProxy(emulator.url()) as proxy:
        yield emulator, proxy


@pytest.mark.slow
def test_turn_k_holds_the_answers_of_turns_1_to_k_minus_1_and_the_cache_rate_is_true(
    tmp_path: Path, cli: Callable[..., Any], proxied: tuple[Emulator, RecordingProxy]
) -> None:
    emulator, proxy = proxied
    scenario = tmp_path / "chat.yaml"
    scenario.write_text(
        TARGET
        + """max_tokens: 40
prompts:
  system: You answer travel questions in one sentence, and you never use lists.
  text: [Where is Bergen?, How do I get there from Oslo?, What is the weather like?,
         Thanks. Anything else?, Is it expensive?]
conversation:
  turns: 5
  think_time: {distribution: exponential, mean: 20ms, max: 100ms}
  tool_turns: [2]
  tool_latency: {distribution: uniform, min: 10ms, max: 30ms}
shape: {users: 3}
requests: 30
"""
    )
    done = cli(
        "load", str(scenario), "--out", str(tmp_path), "--run-id", "chat", "--quiet",
        "--emulator-url", proxy.url(), timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "chat"
    samples = [orjson.loads(line) for line in (folder / "samples.jsonl").read_bytes().splitlines()]
    summary = orjson.loads((folder / "summary.json").read_bytes())
    assert len(samples) == 30 and summary["errors"] == {}

    # Server side: the proxy saw every request; rebuild each session turn by turn.
    seen = {x.request_id: x for x in proxy.exchanges}
    assert {s["request_id"] for s in samples} <= set(seen)
    sessions: dict[str, dict[int, Any]] = {}
    for sample in samples:
        sessions.setdefault(sample["session"], {})[sample["turn"]] = seen[sample["request_id"]]
    checked = 0
    for turns in sessions.values():
        assert sorted(turns) == list(range(1, len(turns) + 1))  # turns in order, none missing
        for k in range(2, len(turns) + 1):
            before, now = turns[k - 1].body["messages"], turns[k].body["messages"]
            answer = turns[k - 1].streamed()
            assert now[: len(before)] == before  # the whole history of turns 1..k-2
            sent = now[len(before)]  # then turn k-1's answer, as streamed
            assert sent["role"] == "assistant"
            if answer["tool_calls"]:
                assert [c["function"] for c in sent["tool_calls"]] == answer["tool_calls"]
                assert now[len(before) + 1]["role"] == "tool"
            else:
                assert sent["content"] == answer["content"] != ""
            assert sum(m["role"] == "assistant" for m in now) == k - 1
            checked += 1
        if 2 in turns:
            assert turns[2].body["tool_choice"] == "required"
            assert turns[2].streamed()["tool_calls"], "turn 2 asked for a tool call"
        if 3 in turns:
            assert turns[3].body["messages"][-1]["role"] == "tool"
    assert checked >= 15

    # The cache hit rate reported = the emulator's ground truth over the same requests.
    truth = {t["request_id"]: t for t in emulator.truth()}
    mine = [truth[s["server_request_id"]] for s in samples]
    true_rate = sum(t["cached_tokens"] for t in mine) / sum(t["prompt_tokens"] for t in mine)
    (group,) = summary["groups"]
    assert group["cache"]["hit_rate"] == pytest.approx(true_rate, rel=1e-12)
    assert group["cache"]["cached_tokens"] == sum(t["cached_tokens"] for t in mine)
    assert [s["cached_tokens"] for s in samples] == [t["cached_tokens"] for t in mine]
    by_turn = group["sessions"]["by_turn"]
    assert [t["turn"] for t in by_turn] == [1, 2, 3, 4, 5][: len(by_turn)]
    assert by_turn[0]["cache"]["cached_tokens"] < by_turn[-1]["cache"]["cached_tokens"]
    full = sum(len(turns) == 5 for turns in sessions.values())  # the run may cut the last ones
    assert group["sessions"]["sessions"] == len(sessions) and group["sessions"]["complete"] == full
    assert full >= 4

    report = tmp_path / "report"
    made = cli("report", str(folder), "--out", str(report), timeout=120)
    assert made.returncode == 0, made.stderr
    document = orjson.loads((report / "report.json").read_bytes())
    (shown,) = document["groups"]
    assert shown["cache"]["hit_rate"] == pytest.approx(true_rate, rel=1e-12)
    markdown = (report / "report.md").read_text()
    assert "Turn by turn" in markdown and f"{100 * true_rate:.1f}%" in markdown
    # A folder whose samples are gone reports the same figures from summary.json.
    (folder / "samples.jsonl").unlink()
    again = cli("report", str(folder), "--out", str(tmp_path / "again"), timeout=120)
    assert again.returncode == 0, again.stderr
    (kept,) = orjson.loads((tmp_path / "again" / "report.json").read_bytes())["groups"]
    assert kept["sessions"] == shown["sessions"] and kept["cache"] == shown["cache"]
    print(
        f"\nconversation: {len(samples)} requests in {len(sessions)} sessions; cache hit rate "
        f"reported {group['cache']['hit_rate']:.4f}, emulator truth {true_rate:.4f}"
    )


@pytest.mark.slow
def test_open_loop_sessions_keep_their_first_turn_on_schedule(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    scenario = tmp_path / "arrivals.yaml"
    scenario.write_text(
        TARGET
        + """max_tokens: 16
prompts: {text: [Hello there., And then?, Goodbye.]}
conversation: {turns: 3, think_time: 30ms}
shape: {open_loop: {rate: 8, arrival: constant}}
duration: 3s
emulator: {ttft_ms: 5, itl_ms: 1, sigma: 0, prefix_cache: true}
"""
    )
    done = cli(
        "load", str(scenario), "--emulator", "--out", str(tmp_path), "--run-id", "open",
        "--quiet", "--no-pin", timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "open"
    samples = [orjson.loads(line) for line in (folder / "samples.jsonl").read_bytes().splitlines()]
    summary = orjson.loads((folder / "summary.json").read_bytes())
    sessions: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        sessions.setdefault(sample["session"], []).append(sample)
    assert len(sessions) == 24  # 8 per second for 3 s, each one session
    firsts = sorted(s["t_offset_s"] for s in samples if s["turn"] == 1)
    assert firsts == pytest.approx([k / 8 for k in range(24)], abs=1e-6)  # on the schedule
    for turns in sessions.values():
        turns.sort(key=lambda s: s["turn"])
        assert [s["turn"] for s in turns] == list(range(1, len(turns) + 1))
        assert turns[0]["lag_ms"] is not None  # measured against its scheduled time
        assert all(s["lag_ms"] is None for s in turns[1:])  # later turns follow their pauses
        assert all(a["t_offset_s"] < b["t_offset_s"] for a, b in itertools.pairwise(turns))
    assert summary["requested_rate"] == 8 and summary["lag_ms"]["n"] == 24
    assert summary["groups"][0]["sessions"]["sessions"] == 24
