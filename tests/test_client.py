"""The httpx client against a scripted server: timings and every error class."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from chatprobe.client import ChatClient, Timeouts
from chatprobe.profiles import custom_profile
from chatprobe.record import MISSING_DONE, ErrorClass, RequestRecord
from tests.fake_servers.scripted import (
    ScriptedServer,
    chunk,
    content_chunk,
    plain,
    sse,
    stream_head,
)

BODY = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


def call(
    server: ScriptedServer,
    script: str,
    *,
    stream: bool = True,
    timeouts: Timeouts | None = None,
    base_url: str | None = None,
) -> RequestRecord:
    profile = custom_profile(base_url or server.url(script), "TEST_KEY", name="scripted")
    with ChatClient(profile, api_key="sk-test-secret-value-123456", timeouts=timeouts) as client:
        return client.chat({**BODY, "stream": stream}, model="m")


def test_stream_timings_follow_known_delays(server: ScriptedServer) -> None:
    ttft, gap, n = 0.060, 0.020, 10
    role = {**content_chunk(""), "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    actions = [("send", stream_head()), ("send", chunk(sse(role))), ("sleep", ttft)]
    for i in range(n):
        if i:
            actions.append(("sleep", gap))
        actions.append(("send", chunk(sse(content_chunk(f"w{i} ")))))
    final = {
        **content_chunk(""),
        "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1},
    }
    final["choices"][0]["finish_reason"] = "stop"
    actions += [("send", chunk(sse(final))), ("send", chunk(sse("[DONE]"))), ("send", chunk(b""))]
    server.scripts["timed"] = actions

    record = call(server, "timed")
    print(
        f"\nclient vs script: ttft {record.ttft_ms:.2f} ms (script {ttft * 1e3:.0f}), "
        f"itl {record.itl_ms:.2f} ms (script {gap * 1e3:.0f}), e2e {record.e2e_ms:.2f} ms "
        f"(script {(ttft + gap * (n - 1)) * 1e3:.0f})"
    )
    assert record.ok, record.summary_line()
    assert record.text == "".join(f"w{i} " for i in range(n))
    assert record.output_tokens == n and record.token_source == "usage"
    # The role-only chunk is not the first token: TTFT includes the scripted delay.
    # Floors only: the script's sleeps can be stretched by a busy machine, never shortened.
    # How close the client comes to the script is measured by benchmarks/, not asserted here.
    assert record.ttft_ms >= ttft * 1e3
    assert record.itl_ms is not None and record.itl_ms > 0
    assert record.e2e_ms >= (ttft + gap * (n - 1)) * 1e3
    assert record.ttfb_ms is not None and record.ttfb_ms < record.ttft_ms
    assert len(record.chunk_gaps_ms) == n - 1
    # The key never reaches the record.
    assert "sk-test-secret" not in json.dumps(record.request_headers)


def test_plain_response(server: ScriptedServer) -> None:
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }
    server.scripts["plain"] = [("send", plain(201, json.dumps(body).encode()))]
    record = call(server, "plain", stream=False)
    assert record.ok and record.status == 201 and record.text == "hello"
    assert record.ttft_ms == record.e2e_ms


def _stream(*payloads: object, end: bool = True) -> list[tuple[str, object]]:
    actions: list[tuple[str, object]] = [("send", stream_head())]
    actions += [("send", chunk(sse(p))) for p in payloads]
    if end:
        actions.append(("send", chunk(b"")))
    return actions


FAST = Timeouts(connect=0.5, first_byte=0.5, idle=0.3, total=2.0)


@pytest.mark.parametrize(
    ("script", "actions", "stream", "expected"),
    [
        (
            "status500",
            [("send", plain(500, b'{"error": {"message": "boom"}}'))],
            True,
            ErrorClass.HTTP_STATUS,
        ),
        ("firstbyte", [("sleep", 1.0)], True, ErrorClass.TIMEOUT_FIRST_BYTE),
        (
            "idle",
            [("send", stream_head()), ("send", chunk(sse(content_chunk("a")))), ("sleep", 1.0)],
            True,
            ErrorClass.TIMEOUT_IDLE,
        ),
        (
            "reset",
            [
                ("send", stream_head()),
                ("send", chunk(sse(content_chunk("a")))),
                ("sleep", 0.05),
                ("reset", None),
            ],
            True,
            ErrorClass.CONNECTION_RESET,
        ),
        (  # a clean close (FIN) mid-stream cuts the stream; a reset (RST) above does not
            "cut",
            [("send", stream_head()), ("send", chunk(sse(content_chunk("a")))), ("close", None)],
            True,
            ErrorClass.TRUNCATED_STREAM,
        ),
        (
            "truncated",
            [("send", plain(200, b'{"id": "x"}')[:-4]), ("close", None)],
            False,
            ErrorClass.TRUNCATED_BODY,
        ),
        (
            "garbage",
            [("send", b"HELLO THERE\r\n\r\n"), ("close", None)],
            True,
            ErrorClass.PROTOCOL_ERROR,
        ),
        (
            "html",
            [("send", plain(200, b"<html>oops</html>", "text/html"))],
            True,
            ErrorClass.BAD_CONTENT_TYPE,
        ),
        (
            "htmlplain",
            [("send", plain(200, b"<html>oops</html>", "text/html"))],
            False,
            ErrorClass.BAD_CONTENT_TYPE,
        ),
        (
            "badjson",
            _stream("{not json", content_chunk("a", finish="stop"), "[DONE]"),
            True,
            ErrorClass.BAD_JSON,
        ),
        (
            "midstream",
            _stream(
                content_chunk("a"),
                {
                    "error": {"code": 502, "message": "gone"},
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
                },
                "[DONE]",
            ),
            True,
            ErrorClass.MIDSTREAM_ERROR,
        ),
        ("truncstream", _stream(content_chunk("a")), True, ErrorClass.TRUNCATED_STREAM),
    ],
)
def test_error_classes(
    server: ScriptedServer,
    script: str,
    actions: list[tuple[str, object]],
    stream: bool,
    expected: ErrorClass,
) -> None:
    server.scripts[script] = actions
    record = call(server, script, stream=stream, timeouts=FAST)
    assert record.error_class is expected, record.summary_line()
    assert record.error_detail
    assert "sk-test-secret" not in record.error_detail


def test_complete_stream_without_done_is_an_anomaly_not_an_error(server: ScriptedServer) -> None:
    server.scripts["nodone"] = _stream(content_chunk("a", finish="stop"))
    record = call(server, "nodone", stream=True, timeouts=FAST)
    assert record.ok and record.ttft_ms is not None, record.summary_line()
    assert record.anomalies == [f"{MISSING_DONE}: stream ended without data: [DONE]"]


def test_total_timeout(server: ScriptedServer) -> None:
    actions: list[tuple[str, object]] = [("send", stream_head())]
    for _ in range(30):
        actions += [("send", chunk(sse(content_chunk("a")))), ("sleep", 0.1)]
    server.scripts["slowdrip"] = actions
    record = call(server, "slowdrip", timeouts=Timeouts(idle=0.5, total=0.6))
    assert record.error_class is ErrorClass.TIMEOUT_TOTAL
    assert record.text.startswith("a")  # what arrived is kept


def test_connect_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    profile = custom_profile(f"http://127.0.0.1:{port}/v1", "TEST_KEY")
    with ChatClient(profile, timeouts=FAST) as client:
        record = client.chat(BODY, model="m")
    assert record.error_class is ErrorClass.CONNECT_ERROR


def test_connect_timeout() -> None:
    # A listener that never accepts, with its backlog filled: further SYNs are dropped.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    profile = custom_profile(f"http://127.0.0.1:{port}/v1", "TEST_KEY")
    try:
        with ChatClient(profile, timeouts=Timeouts(connect=0.3, first_byte=0.3)) as client:
            record = client.chat(BODY, model="m")
    finally:
        for s in fillers:
            s.close()
        sock.close()
    # Depending on kernel settings the SYN is dropped (timeout) or the connection is queued
    # and no response comes (first-byte timeout); both are timeouts, never a crash.
    assert record.error_class in (ErrorClass.TIMEOUT_CONNECT, ErrorClass.TIMEOUT_FIRST_BYTE)


def test_oversized_body_is_cut_and_classified(server: ScriptedServer) -> None:
    big = chunk(sse(content_chunk("x" * 4000)))
    server.scripts["huge"] = [("send", stream_head())] + [("send", big)] * 50
    profile = custom_profile(server.url("huge"), "TEST_KEY")
    with ChatClient(profile, timeouts=FAST, max_body_bytes=50_000) as client:
        record = client.chat(BODY, model="m")
    assert record.error_class is ErrorClass.PROTOCOL_ERROR
    assert "exceeded 50000 bytes" in record.error_detail
    assert record.text.startswith("x")
