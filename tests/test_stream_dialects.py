"""Streams in every de-facto dialect (DESIGN "De-facto behaviour of real servers", issue 12).

Each test hand-builds the bytes a kind of server sends, cut at pinned network-read boundaries
(mid-line, mid-JSON, between CR and LF), decodes them with the one SSE decoder, stamps each
read, and reads the record ``finish()`` derives: assembly, timings, tokens. Then the checks
say what deviates, once. Hypothesis properties: any split, any line ending, the same record.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatprobe.checks import CheckContext, evaluate
from chatprobe.client import ChatClient
from chatprobe.profiles import custom_profile, load_profile
from chatprobe.record import MISSING_DONE, RequestRecord, TimedEvent
from chatprobe.sse import SSEDecoder
from chatprobe.suites.model import CaseRun
from tests.fake_servers.scripted import ScriptedServer, stream_head
from tests.fake_servers.scripted import chunk as http_chunk

MS = 1_000_000


def chunk(delta: dict[str, Any] | None = None, finish: Any = None, **extra: Any) -> dict[str, Any]:
    """An OpenAI chunk for choice 0; ``choices=[...]`` or ``usage=...`` in ``extra`` win."""
    payload: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }
    payload.update(extra)
    return payload


def sse(*payloads: Any, eol: bytes = b"\n", done: bool = True) -> bytes:
    out = b"".join(
        b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + eol + eol
        for p in payloads
    )
    return out + (b"data: [DONE]" + eol + eol if done else b"")


def at(data: bytes, *cuts: int) -> list[bytes]:
    """``data`` cut at these offsets (network reads)."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def per_event(data: bytes) -> list[bytes]:
    """``data`` read one event at a time (each read ends with the event's blank line)."""
    return at(data, *(i + 2 for i in range(len(data)) if data[i : i + 2] == b"\n\n"))


def received(reads: list[bytes], *, start_ms: int = 10, step_ms: int = 10) -> RequestRecord:
    """A finished record for a 200 stream whose reads arrive ``step_ms`` apart."""
    record = RequestRecord(stream=True, status=200, t0_ns=0, t_headers_ns=5 * MS)
    record.response_headers = {"content-type": "text/event-stream"}
    decoder = SSEDecoder()
    t = start_ms * MS
    for read in reads:
        record.events += [TimedEvent(t, item) for item in decoder.decode(read)]
        t += step_ms * MS
    record.events += [TimedEvent(t, item) for item in decoder.flush()]
    record.t_end_ns = t
    return record.finish()


def judge(record: RequestRecord, body: dict[str, Any] | None = None, provider: str = "aimlapi"):
    case = CaseRun(
        suite="t",
        case="c",
        provider=provider,
        model="gemini-2.0-flash-exp",
        model_id="gemini-2.0-flash-exp",
        source="t.yaml:1",
        body={"messages": [{"role": "user", "content": "Hi"}], "stream": True, **(body or {})},
    )
    profile = load_profile(provider)
    return evaluate(CheckContext.for_case(profile, case), record, case)


def findings(evaluation: Any, name: str) -> list[tuple[str, str, str]]:
    return [(f.severity.value, f.path, f.message) for f in evaluation.results[name].findings]


# ---------------------------------------------------------------------- tool calls
GEMINI_TOOLS = sse(
    chunk({"role": "assistant", "content": None}),
    # call 1 starts with id and name; id-less, index-less fragments continue it
    chunk({"tool_calls": [{"id": "call_a", "type": "function",
                           "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"tool_calls": [{"function": {"arguments": '{"city": '}}]}),
    chunk({"tool_calls": [{"function": {"arguments": '"Paris", '}}]}),
    chunk({"tool_calls": [{"type": "function", "function": {"arguments": '"unit": "C"}'}}]}),
    # call 2 the same way
    chunk({"tool_calls": [{"id": "call_b", "type": "function",
                           "function": {"name": "get_time", "arguments": '{"tz"'}}]}),
    chunk({"tool_calls": [{"function": {"arguments": ': "Europe/Paris"'}}]}),
    chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),
    chunk({}, "tool_calls"),
)  # fmt: skip


def test_tool_calls_without_index_assemble_as_two_calls() -> None:
    """Issue 12 acceptance: 2 calls assembled, arguments valid JSON, tool_call_index flags
    the missing index (once), and no false tool_call_arguments_json finding."""
    reads = at(GEMINI_TOOLS, 7, 150, 151, 333, 600, 601, 602, 900)
    record = received(reads)
    calls = record.choices[0].tool_calls
    assert [c["id"] for c in calls] == ["call_a", "call_b"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris", "unit": "C"}
    assert json.loads(calls[1]["function"]["arguments"]) == {"tz": "Europe/Paris"}
    assert record.ok and record.choices[0].finish_reason == "tool_calls"
    assert record.t_first_token_ns == record.t_first_answer_ns  # a call is an answer
    evaluation = judge(record)
    (missing,) = findings(evaluation, "tool_call_index")
    assert missing[0] == "error" and missing[1].endswith("/delta/tool_calls/0/index")
    assert "7 of 7 tool-call deltas" in missing[2]
    assert evaluation.results["tool_call_arguments_json"].status == "pass"
    assert evaluation.results["tool_call_finish_reason"].status == "pass"


def test_two_complete_calls_in_one_delta_without_index_or_id() -> None:
    """Both calls whole in one delta, no index, empty ids: a name starts each call."""
    both = [
        {"id": "", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"id": "", "type": "function", "function": {"name": "b", "arguments": '{"x": 1}'}},
    ]
    record = received([sse(chunk({"role": "assistant", "tool_calls": both}, "tool_calls"))])
    assert [
        (c["function"]["name"], c["function"]["arguments"]) for c in record.choices[0].tool_calls
    ] == [
        ("a", "{}"),
        ("b", '{"x": 1}'),
    ]


def test_a_reused_index_with_a_new_id_is_a_new_call() -> None:
    def call(cid: str, name: str, args: str) -> dict[str, Any]:
        return {
            "index": 0,
            "id": cid,
            "type": "function",
            "function": {"name": name, "arguments": args},
        }

    data = sse(
        chunk({"tool_calls": [call("c1", "a", '{"k":')]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
        chunk({"tool_calls": [call("c2", "b", "{}")]}),
        chunk({}, "tool_calls"),
    )
    record = received([data])
    calls = record.choices[0].tool_calls
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [
        ("c1", '{"k": 1}'),
        ("c2", "{}"),
    ]
    (shared,) = findings(judge(record), "tool_call_index")
    assert shared[1] == "/choices/0/tool_calls/1/index" and "share index 0" in shared[2]


# ---------------------------------------------------------------------- reasoning
def test_reasoning_content_then_answer_times_both_first_tokens() -> None:
    """DeepSeek / vLLM: reasoning_content first, then content: TTFT at the first thought,
    TTFA at the first answer token; answer text kept apart from the reasoning."""
    data = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Let me think."}),
        chunk({"reasoning_content": " Paris."}),
        chunk({"content": "Paris"}),
        chunk({}, "stop", usage={"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12,
                                 "completion_tokens_details": {"reasoning_tokens": 8}}),
    )  # fmt: skip
    record = received(at(data, *range(40, len(data), 97)), step_ms=10)
    assert record.text == "Paris" and record.choices[0].reasoning == "Let me think. Paris."
    assert record.t_first_token_ns is not None and record.t_first_answer_ns is not None
    assert record.ttft_ms is not None and record.ttfa_ms is not None
    assert record.ttft_ms < record.ttfa_ms
    assert record.output_tokens == 9 and record.reasoning_tokens == 8


def test_openrouter_reasoning_and_details_are_not_counted_twice() -> None:
    """OpenRouter sends the text in `reasoning` and again in `reasoning_details`."""
    detail = {"type": "reasoning.text", "text": "Hmm.", "index": 0}
    data = sse(
        chunk(
            {"role": "assistant", "content": "", "reasoning": "Hmm.", "reasoning_details": [detail]}
        ),
        chunk({"content": "Yes."}, "stop"),
    )
    record = received([data])
    assert record.choices[0].reasoning == "Hmm." and record.text == "Yes."
    # No usage: the reasoning text is estimated, once.
    assert record.reasoning_tokens == 1 and record.token_source == "estimate"


def test_reasoning_details_alone_text_summary_and_encrypted() -> None:
    text = {"type": "reasoning.text", "text": "step one"}
    summary = {"type": "reasoning.summary", "summary": ", step two"}
    encrypted = {"type": "reasoning.encrypted", "data": "gAAAAB..."}
    data = sse(
        chunk({"role": "assistant", "reasoning_details": [encrypted]}),
        chunk({"reasoning_details": [text]}),
        chunk({"reasoning_details": [summary]}),
        chunk({"content": "Done."}, "stop"),
    )
    record = received(at(data, 1, *range(2, len(data), 120)), step_ms=5)
    choice = record.choices[0]
    assert choice.reasoning == "step one, step two" and choice.encrypted_reasoning == 1
    assert record.text == "Done."
    assert record.reasoning_tokens is None  # encrypted and no count: unknown, not 0


def test_encrypted_only_reasoning_marks_the_first_token_not_the_first_answer() -> None:
    encrypted = {"type": "reasoning.encrypted", "data": "opaque"}
    usage = {
        "prompt_tokens": 4,
        "completion_tokens": 40,
        "total_tokens": 44,
        "completion_tokens_details": {"reasoning_tokens": 38},
    }
    data = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_details": [encrypted]}),
        chunk({"content": "OK"}),
        chunk({}, "stop", usage=usage),
    )
    record = received(at(data, *range(60, len(data), 60)), step_ms=20)
    first_event = next(e.t_ns for e in record.events if "encrypted" in getattr(e.item, "data", ""))
    assert record.t_first_token_ns == first_event
    assert record.t_first_answer_ns is not None and record.t_first_answer_ns > first_event
    assert record.output_tokens == 40 and record.reasoning_tokens == 38
    assert judge(record).results["assistant_message"].status == "pass"


def test_plain_body_reasoning_in_each_dialect() -> None:
    text = {"type": "reasoning.text", "text": "r"}
    for reasoning in (
        {"reasoning_content": "r"},
        {"reasoning": "r", "reasoning_details": [text]},
        {"reasoning_details": [text]},
    ):
        message = {"role": "assistant", "content": "A", **reasoning}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m"}
        raw = json.dumps({**body, "choices": [choice]}).encode()
        record = RequestRecord(status=200, t0_ns=0, t_end_ns=7 * MS, body=raw)
        record.response_headers = {"content-type": "application/json"}
        record.finish()
        assert (record.choices[0].reasoning, record.text) == ("r", "A"), reasoning
        assert record.ttft_ms == record.ttfa_ms == 7


# ---------------------------------------------------------------------- usage, finish_reason
def test_cumulative_usage_on_every_chunk_counts_the_last() -> None:
    """Gemini's compatible endpoint: usage on every chunk, cumulative."""

    def usage(n: int) -> dict[str, int]:
        return {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}

    data = sse(
        chunk({"role": "assistant", "content": "one "}, usage=usage(1)),
        chunk({"content": "two "}, usage=usage(2)),
        chunk({"content": "three"}, "stop", usage=usage(3)),
    )
    record = received(at(data, 100, 101, 250))
    assert record.output_tokens == 3 and record.usage_count == 3 and record.usage == usage(3)
    assert record.itl_ms == (record.t_last_token_ns - record.t_first_token_ns) / 2 / MS
    evaluation = judge(record, {"stream_options": {"include_usage": True}})
    assert evaluation.results["usage_arithmetic"].status == "pass"


def test_finish_reason_repeated_on_trailing_chunks_is_a_warning() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    data = sse(
        chunk({"role": "assistant", "content": "Hi"}),
        chunk({"content": "!"}, "stop"),
        chunk({}, "stop"),
        chunk({}, "stop", usage=usage),
    )
    record = received([data])
    assert record.ok and record.choices[0].finish_reason == "stop" and record.output_tokens == 2
    evaluation = judge(record)
    result = evaluation.results["stream_one_finish_reason"]
    assert result.status == "warn"
    ((severity, path, message),) = findings(evaluation, "stream_one_finish_reason")
    assert severity == "warning" and path == "/chunks/2/choices/0/finish_reason"
    assert "2 trailing" in message


def test_litellm_usage_chunk_with_an_empty_delta_choice() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    data = sse(
        chunk({"role": "assistant", "content": "Hel"}),
        chunk({"content": "lo"}),
        {**chunk(), "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk(), "choices": [{"index": 0, "delta": {}}], "usage": usage},
    )
    record = received([data])
    assert record.output_tokens == 2 and len(record.content_times_ns) == 2
    assert record.t_last_token_ns == record.events[1].t_ns  # the usage chunk is no token
    evaluation = judge(record, {"stream_options": {"include_usage": True}})
    assert evaluation.results["stream_one_finish_reason"].status == "pass"
    assert [f.path for f in evaluation.results["stream_include_usage"].findings] == [
        "/chunks/3/choices"
    ]


# ---------------------------------------------------------------------- first chunks, framing
AZURE_FIRST = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
}


def test_azure_annotation_chunk_is_no_token_and_no_id_reference() -> None:
    data = sse(
        AZURE_FIRST,
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi"}, "stop"),
    )
    record = received(at(data, 30, 200), step_ms=10)
    assert record.t_first_token_ns == record.events[2].t_ns and record.text == "Hi"
    evaluation = judge(record)
    assert evaluation.results["stream_same_id_created"].status == "pass"
    assert evaluation.results["stream_empty_choices"].status == "pass"
    for name in ("id_present", "object_constant"):
        assert evaluation.results[name].status == "warn", name
        assert evaluation.results[name].findings[0].path.startswith("/chunks/0/")


def test_comments_and_cr_only_line_ends_read_like_lf() -> None:
    payloads = [chunk({"role": "assistant", "content": "a"}), chunk({"content": "b"}, "stop")]
    plain = received([sse(*payloads)], step_ms=0)
    commented = b": OPENROUTER PROCESSING\r\r" + sse(*payloads, eol=b"\r")
    # a read ends between the two CRs of a blank line, another inside "data:"
    record = received(at(commented, 24, 25, 40, 41), step_ms=0)
    assert record.text == plain.text == "ab" and record.ok
    assert [c for c in record.chunks] == plain.chunks


def test_missing_done_after_a_complete_stream_keeps_every_measurement() -> None:
    usage = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    data = sse(
        chunk({"role": "assistant", "content": "a"}),
        chunk({"content": "b"}),
        chunk({"content": "c"}, "stop", usage=usage),
        done=False,
    )
    record = received(per_event(data), step_ms=10)
    assert record.ttft_ms == 10 and record.e2e_ms == 30 and record.itl_ms == 10
    assert record.output_tokens == 3 and record.token_source == "usage"
    # A complete answer: an anomaly for load samples, a finding for the contract check.
    assert record.ok and record.anomalies == [f"{MISSING_DONE}: stream ended without data: [DONE]"]
    evaluation = judge(record)
    assert [f.path for f in evaluation.results["stream_done_last"].findings] == ["/events/3"]


# ---------------------------------------------------------------------- chunk granularity
def _answer(pieces: list[str], tokens: int | None) -> RequestRecord:
    payloads = [chunk({"role": "assistant", "content": pieces[0]})]
    payloads += [chunk({"content": p}) for p in pieces[1:]]
    if tokens is None:
        payloads.append(chunk({}, "stop"))
    else:
        usage = {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": 1 + tokens}
        payloads.append(chunk({}, "stop", usage=usage))
    return received([sse(*payloads)])


def test_chunk_granularity_thresholds() -> None:
    words = [f"w{i} " for i in range(12)]
    assert judge(_answer(words, 12)).results["stream_chunk_granularity"].status == "pass"
    # One character per chunk: flagged without usage too.
    letters = list("hello there, world")
    ((severity, path, message),) = findings(
        judge(_answer(letters, None)), "stream_chunk_granularity"
    )
    assert severity == "warning" and path == "/chunks" and "one character per chunk" in message
    # LiteLLM's mock: three-character slices, 19 tokens in 26 chunks.
    slices = ["Hel", "lo!", " Th", "is "] * 6 + ["ab", "c"]
    (split,) = findings(judge(_answer(slices, 19)), "stream_chunk_granularity")
    assert "chunks split tokens" in split[2] and "0.73 tokens per chunk" in split[2]
    # A batch of 30 tokens in 3 chunks; a whole answer in one chunk.
    (batch,) = findings(judge(_answer(["a b c", "d e f", "g h i"], 30)), "stream_chunk_granularity")
    assert "chunks batch tokens" in batch[2] and "10.0 per chunk" in batch[2]
    assert findings(judge(_answer(["everything"], 9)), "stream_chunk_granularity")
    # Too short to judge.
    assert not findings(judge(_answer(["a", "b"], 2)), "stream_chunk_granularity")
    # One CJK character per chunk is often one token per chunk: usage decides, and without
    # usage only ASCII single characters count.
    hanzi = list("你好世界这是一个测试")
    assert not findings(judge(_answer(hanzi, 10)), "stream_chunk_granularity")
    assert not findings(judge(_answer(hanzi, None)), "stream_chunk_granularity")
    (chars,) = findings(judge(_answer(letters, 8)), "stream_chunk_granularity")
    assert "one character per chunk" in chars[2] and "0.44 tokens per chunk" in chars[2]


# ---------------------------------------------------------------------- properties
DIALECT_STREAMS = [GEMINI_TOOLS, sse(AZURE_FIRST, chunk({"content": "x"}), chunk({}, "stop"))]


@settings(max_examples=150, deadline=None)
@given(
    stream=st.sampled_from(DIALECT_STREAMS),
    eol=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=1, max_value=2000), max_size=12),
)
def test_any_split_and_line_ending_assemble_the_same(
    stream: bytes, eol: bytes, cuts: list[int]
) -> None:
    data = stream.replace(b"\n", eol)
    whole = received([data])
    split = received(at(data, *cuts))
    assert [c.to_dict() for c in split.choices.values()] == [
        c.to_dict() for c in whole.choices.values()
    ]
    assert split.chunks == whole.chunks and split.done and split.ok == whole.ok


@settings(max_examples=100, deadline=None)
@given(
    arguments=st.lists(
        st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), max_size=3),
        min_size=1,
        max_size=4,
    ),
    pieces=st.integers(min_value=1, max_value=6),
    with_index=st.booleans(),
)
def test_index_or_not_every_call_comes_back_whole(
    arguments: list[dict[str, int]], pieces: int, with_index: bool
) -> None:
    """Calls streamed as fragments, with or without index, reassemble to what was sent."""
    payloads = []
    for n, args in enumerate(arguments):
        text = json.dumps(args)
        size = max(1, len(text) // pieces)
        fragments = [text[i : i + size] for i in range(0, len(text), size)]
        for k, fragment in enumerate(fragments):
            delta: dict[str, Any] = {"function": {"arguments": fragment}}
            if k == 0:
                delta.update(id=f"call_{n}", type="function")
                delta["function"]["name"] = f"f{n}"
            if with_index:
                delta["index"] = n
            payloads.append(chunk({"tool_calls": [delta]}))
    payloads.append(chunk({}, "tool_calls"))
    calls = received([sse(*payloads)]).choices[0].tool_calls
    assert [json.loads(c["function"]["arguments"]) for c in calls] == arguments
    assert [c["function"]["name"] for c in calls] == [f"f{n}" for n in range(len(arguments))]


# ---------------------------------------------------------------------- over real HTTP
@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


def _over_http(server: ScriptedServer, name: str, data: bytes, cuts: list[int]) -> RequestRecord:
    """``data`` served as HTTP chunks cut at ``cuts``, a short pause between them."""
    actions: list[tuple[str, Any]] = [("send", stream_head())]
    for piece in at(data, *cuts):
        actions += [("send", http_chunk(piece)), ("sleep", 0.002)]
    server.scripts[name] = [*actions, ("send", http_chunk(b""))]
    profile = custom_profile(server.url(name), "TEST_KEY", name="scripted")
    with ChatClient(profile, api_key="sk-test-secret-value-123456") as client:
        return client.chat({"messages": [{"role": "user", "content": "hi"}], "stream": True})


def test_gemini_tool_calls_through_the_client(server: ScriptedServer) -> None:
    record = _over_http(server, "gemini-tools", GEMINI_TOOLS, [5, 151, 152, 700, 701])
    assert record.ok and [c["id"] for c in record.choices[0].tool_calls] == ["call_a", "call_b"]
    assert all(json.loads(c["function"]["arguments"]) for c in record.choices[0].tool_calls)


def test_reasoning_model_through_the_client_orders_first_token_and_first_answer(
    server: ScriptedServer,
) -> None:
    data = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning": "Thinking", "reasoning_details": [{"text": "Thinking"}]}),
        chunk({"reasoning": " hard."}),
        chunk({"content": "Answer."}, "stop"),
    )
    record = _over_http(server, "reasoning", data, list(range(50, len(data), 50)))
    assert (
        record.ok and record.text == "Answer." and record.choices[0].reasoning == "Thinking hard."
    )
    ttfb, ttft, ttfa, e2e = record.ttfb_ms, record.ttft_ms, record.ttfa_ms, record.e2e_ms
    assert ttfb is not None and ttft is not None and ttfa is not None and e2e is not None
    assert 0 <= ttfb <= ttft <= ttfa <= e2e  # equal when one read brings both
