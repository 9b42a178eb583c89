"""The load hot path's fast paths give exactly what the general code gives.

The benchmarks (``benchmarks/``) led to fast paths in the SSE decoder (one complete LF line
per feed, ``data:`` lines, event construction) and in the record (deltas carrying only role
and content). These tests pin that each is a pure speed-up: same events, same record.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from chatprobe.record import RequestRecord, TimedEvent
from chatprobe.sse import Comment, ServerSentEvent, SSEDecoder, _new_event

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_line = st.one_of(
    _text.map(lambda t: f"data: {t}"),
    _text.map(lambda t: f"data:{t}"),
    _text.map(lambda t: f"data{t}"),
    _text.map(lambda t: f": {t}"),
    _text.map(lambda t: f"event: {t}"),
    _text.map(lambda t: f"id: {t}"),
    st.just(""),
    st.just("data"),
    st.just("data: [DONE]"),
)


def decode(feeds: list[bytes]) -> list[ServerSentEvent | Comment]:
    decoder = SSEDecoder()
    out: list[ServerSentEvent | Comment] = []
    for feed in feeds:
        out.extend(decoder.decode(feed))
    return out + decoder.flush()


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(_line, max_size=30),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
    tail=st.booleans(),
)
def test_line_by_line_feeding_equals_whole_stream(
    lines: list[str], eol: str, bom: bool, tail: bool
) -> None:
    """How the load user feeds the decoder (one line per call) changes nothing."""
    text = ("\ufeff" if bom else "") + "".join(line + eol for line in lines)
    if tail:
        text += "data: unterminated"
    stream = text.encode("utf-8", "surrogatepass")
    per_line = stream.splitlines(keepends=True)
    assert decode(per_line) == decode([stream])


def test_data_fast_path_keeps_multibyte_and_spacing() -> None:
    raw = "data:  two\ndata:é👋\ndata\ndata:\n\n".encode()
    events = decode(raw.splitlines(keepends=True))
    assert events == [ServerSentEvent(" two\né👋\n\n")]


def test_new_event_is_an_ordinary_event() -> None:
    made = _new_event("x", "update", "7", 1500, False)
    plain = ServerSentEvent("x", event="update", id="7", retry=1500, terminated=False)
    assert made == plain and hash(made) == hash(plain) and repr(made) == repr(plain)


def _record(deltas: list[dict[str, object]]) -> RequestRecord:
    events = []
    for i, delta in enumerate(deltas):
        chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        events.append(TimedEvent(10 + i, ServerSentEvent(json.dumps(chunk))))
    final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    events.append(TimedEvent(99, ServerSentEvent(json.dumps(final))))
    events.append(TimedEvent(100, ServerSentEvent("[DONE]")))
    record = RequestRecord(stream=True, status=200, t0_ns=0, t_end_ns=101, events=events)
    record.response_headers = {"content-type": "text/event-stream"}
    return record.finish()


def test_role_and_content_deltas_and_rarer_fields_both_count() -> None:
    record = _record(
        [
            {"role": "assistant", "content": ""},
            {"content": "Hi"},
            {"reasoning": "think", "content": None},
            {"refusal": "no"},
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "assistant", "content": "!"},
        ]
    )
    choice = record.choices[0]
    assert choice.content == "Hi!" and choice.reasoning == "think" and choice.refusal == "no"
    assert choice.tool_calls[0]["function"] == {"name": "f", "arguments": "{}"}
    assert record.content_times_ns == [11, 12, 13, 14, 15]
    assert record.done and record.error_class is None


def test_done_with_spaces_is_still_done_and_json_is_not() -> None:
    record = _record([{"content": "a"}])
    record2 = RequestRecord(
        stream=True,
        status=200,
        t0_ns=0,
        t_end_ns=5,
        events=[
            TimedEvent(1, ServerSentEvent('{"choices": []}')),
            TimedEvent(2, ServerSentEvent(" [DONE] ")),
        ],
    )
    record2.response_headers = {"content-type": "text/event-stream"}
    record2.finish()
    assert record.done and record2.done and record2.done_index == 1
