"""The SSE decoder: WHATWG rules, any split of a stream decodes to the same events."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatprobe.sse import Comment, ServerSentEvent, SSEDecoder


def decode_all(chunks: list[bytes]) -> list[ServerSentEvent | Comment]:
    decoder = SSEDecoder()
    out: list[ServerSentEvent | Comment] = []
    for chunk in chunks:
        out.extend(decoder.decode(chunk))
    out.extend(decoder.flush())
    return out


def test_chunk_boundaries_pinned() -> None:
    chunks = [b"", b"data: hel", b"lo\n", b"\n", b"data: wor", b"ld\n\n"]
    assert decode_all(chunks) == [ServerSentEvent("hello"), ServerSentEvent("world")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    stream = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert decode_all([stream]) == [ServerSentEvent("a\nb"), ServerSentEvent("c")]


def test_crlf_split_between_feeds() -> None:
    # A CR at the end of one feed and its LF at the start of the next is ONE line ending.
    assert decode_all([b"data: x\r", b"\n\r", b"\n"]) == [ServerSentEvent("x")]


def test_bom_is_dropped_once_even_when_split() -> None:
    assert decode_all([b"\xef", b"\xbb", b"\xbfdata: x\n\n"]) == [ServerSentEvent("x")]
    # A second BOM is data, not a BOM.
    events = decode_all([b"\xef\xbb\xbfdata: \xef\xbb\xbfy\n\n"])
    assert events == [ServerSentEvent("\ufeffy")]


def test_comments_fields_and_unknown_fields() -> None:
    stream = (
        b": OPENROUTER PROCESSING\n\n"
        b"event: update\nid: 7\nretry: 1500\nfoo: ignored\ndata: {}\n\n"
        b"id: has\x00nul\ndata: after\n\n"
        b"retry: soon\ndata\n\n"
    )
    events = decode_all([stream])
    assert events[0] == Comment("OPENROUTER PROCESSING")
    assert events[1] == ServerSentEvent("{}", event="update", id="7", retry=1500)
    # An id with NUL is ignored, the previous one stays; the event type resets after dispatch.
    assert events[2] == ServerSentEvent("after", id="7")
    # "data" with no colon is a field with an empty value; bad retry ignored.
    assert events[3] == ServerSentEvent("", id="7")


def test_event_without_data_is_not_dispatched() -> None:
    assert decode_all([b"event: ping\n\nid: 3\n\n"]) == []


def test_data_with_colons_and_no_space() -> None:
    assert decode_all([b"data:a: b\n\n"]) == [ServerSentEvent("a: b")]
    assert decode_all([b"data:  two spaces\n\n"]) == [ServerSentEvent(" two spaces")]


def test_unicode_line_separators_are_data_not_line_breaks() -> None:
    text = "a\u2028b\u2029c\x85d"
    events = decode_all([f"data: {text}\n\n".encode()])
    assert events == [ServerSentEvent(text)]


def test_multibyte_split_inside_character() -> None:
    raw = "data: héllo 👋\n\n".encode()
    for cut in range(1, len(raw)):
        assert decode_all([raw[:cut], raw[cut:]]) == [ServerSentEvent("héllo 👋")]


def test_done_and_unterminated_final_event() -> None:
    events = decode_all([b'data: {"a":1}\n\ndata: [DONE]'])
    assert events[0] == ServerSentEvent('{"a":1}')
    assert events[1].is_done and not events[1].terminated
    terminated = decode_all([b"data: [DONE]\n\n"])
    assert terminated[0].is_done and terminated[0].terminated


def test_openrouter_stream_with_processing_comments_and_midstream_error() -> None:
    chunk = {
        "id": "gen-1744217603-abc",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
    }
    error = {
        "id": "gen-1744217603-abc",
        "object": "chat.completion.chunk",
        "error": {"code": 502, "message": "Provider disconnected"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    stream = (
        b": OPENROUTER PROCESSING\n\n"
        b": OPENROUTER PROCESSING\n\n"
        + f"data: {json.dumps(chunk)}\n\n".encode()
        + f"data: {json.dumps(error)}\n\n".encode()
        + b"data: [DONE]\n\n"
    )
    events = decode_all([stream[i : i + 7] for i in range(0, len(stream), 7)])
    assert [type(e).__name__ for e in events] == [
        "Comment",
        "Comment",
        "ServerSentEvent",
        "ServerSentEvent",
        "ServerSentEvent",
    ]
    assert events[0].text == "OPENROUTER PROCESSING"  # type: ignore[union-attr]
    assert json.loads(events[2].data) == chunk  # type: ignore[union-attr]
    payload = json.loads(events[3].data)  # type: ignore[union-attr]
    assert payload["error"]["code"] == 502
    assert payload["choices"][0]["finish_reason"] == "error"
    assert events[4].is_done  # type: ignore[union-attr]


# --- property tests -------------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=20,
)
_line = st.one_of(
    _text.map(lambda t: f"data: {t}"),
    _text.map(lambda t: f"data:{t}"),
    _text.map(lambda t: f": {t}"),
    _text.map(lambda t: f"event: {t}"),
    _text.map(lambda t: f"id: {t}"),
    st.integers(0, 10_000).map(lambda n: f"retry: {n}"),
    st.just(""),
    st.just("data: [DONE]"),
)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_line, max_size=25))
    eols = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines)))
    text = "".join(line + eol for line, eol in zip(lines, eols, strict=False))
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(stream=streams(), data=st.data())
def test_any_split_decodes_to_the_same_events(stream: bytes, data: st.DataObject) -> None:
    whole = decode_all([stream])
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=12)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=False)]
    assert decode_all(pieces) == whole
    # Byte by byte, the most hostile split of all.
    assert decode_all([stream[i : i + 1] for i in range(len(stream))]) == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.data())
def test_arbitrary_bytes_never_raise_and_split_invariant(blob: bytes, data: st.DataObject) -> None:
    whole = decode_all([blob])
    cut = data.draw(st.integers(0, len(blob)))
    assert decode_all([blob[:cut], blob[cut:]]) == whole
