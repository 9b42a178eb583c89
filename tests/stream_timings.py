"""Any timing of a streamed answer's bytes, for the property tests of both transports.

:func:`answers` draws a complete chat stream (a role-only first chunk or not, 1 to 6 content
chunks, usage, ``[DONE]`` or not, LF, CRLF or CR-only line ends), its framing (chunked with
chunk boundaries of its own, Content-Length, or ended by the close) and how the wire bytes,
head included, are cut into writes with pauses between them: body bytes that come with the
head, a head split across writes, coalesced events, late events. The result is the action
list a :class:`~tests.fake_servers.scripted.ScriptedServer` plays from a request body (``/play``).

:func:`check_record` states what must hold for every finished record, whatever the timing:
the invariants 0 <= TTFB <= TTFT <= E2E <= total, ITL >= 0, chunk gaps >= 0, no impossible
timing noted, and the text and class the bytes imply. Used in-process for httpx and inside
the locust child for the load user (this module imports no chatprobe transport).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


@dataclass(frozen=True)
class Answer:
    actions: list[list[Any]]  # [kind, arg]; "send" args are Latin-1 text
    text: str  # the content the stream carries
    done: bool  # whether it ends with data: [DONE]

    def body(self) -> bytes:
        return json.dumps(self.actions).encode()


def _chunk(i: int, text: str | None, *, role: bool = False, finish: str | None = None) -> str:
    delta: dict[str, Any] = {"role": "assistant"} if role else {}
    if text is not None:
        delta["content"] = text
    return json.dumps(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def sse_body(n: int) -> tuple[str, str]:
    """A well-formed event stream of ``n`` content events and ``[DONE]``; and its text."""
    words = [f"w{i} " for i in range(n)]
    payloads = [_chunk(0, "", role=True), *(_chunk(i, w) for i, w in enumerate(words))]
    payloads += [_chunk(n, None, finish="stop"), "[DONE]"]
    return "".join(f"data: {p}\n\n" for p in payloads), "".join(words)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    n = draw(st.integers(1, 6))
    words = [f"w{i} " for i in range(n)]
    payloads = []
    if draw(st.booleans()):
        payloads.append(_chunk(0, "", role=True))
    payloads += [_chunk(i, w) for i, w in enumerate(words)]
    final = json.loads(_chunk(n, None, finish="stop"))
    if draw(st.booleans()):
        final["usage"] = {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1}
    payloads.append(json.dumps(final))
    done = draw(st.booleans())
    if done:
        payloads.append("[DONE]")
    if draw(st.booleans()):  # a comment, as OpenRouter sends
        payloads.insert(1, None)
    events = "".join(
        f": keep-alive{eol}{eol}" if p is None else f"data: {p}{eol}{eol}" for p in payloads
    )
    body = events.encode()

    framing = draw(st.sampled_from(["chunked", "length", "close"]))
    head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n"
    if framing == "chunked":
        cuts = sorted(set(draw(st.lists(st.integers(1, len(body) - 1), max_size=5))))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        encoded = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces)
        wire = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + encoded + b"0\r\n\r\n"
    elif framing == "length":
        wire = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    else:
        wire = (head + "\r\n").encode() + body

    cuts = sorted(set(draw(st.lists(st.integers(1, len(wire) - 1), max_size=7))))
    writes = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    actions: list[list[Any]] = []
    for i, data in enumerate(writes):
        if i:
            pause = draw(st.sampled_from([0.0, 0.0, 0.001, 0.004, 0.02]))
            if pause:
                actions.append(["sleep", pause])
        actions.append(["send", data.decode("latin-1")])
    actions.append(["close", None])
    return Answer(actions, "".join(words), done)


def check_record(record: Any, answer: Answer) -> None:
    """What must hold for ``record`` (a finished RequestRecord) of ``answer``."""
    assert record.finished
    assert record.timing_valid, record.anomalies
    assert not any("impossible timing" in a for a in record.anomalies), record.anomalies
    got = record.error_class.value if record.error_class else None
    assert got is None, (got, record.error_detail, answer.actions)
    # complete but for data: [DONE]: a success with the anomaly, its timings kept
    assert answer.done or any(a.startswith("missing_done") for a in record.anomalies)
    assert record.text == answer.text, (record.text, answer.actions)
    figures = [record.ttfb_ms, record.ttft_ms, record.e2e_ms, record.total_ms]
    assert None not in figures, figures
    ttfb, ttft, e2e, total = figures
    assert 0 <= ttfb <= ttft <= e2e <= total, (figures, record.clock)
    if record.output_tokens >= 2:
        assert record.itl_ms is not None and record.itl_ms >= 0
    assert all(gap >= 0 for gap in record.chunk_gaps_ms)
    times = [e.t_ns for e in record.events]
    assert times == sorted(times)
