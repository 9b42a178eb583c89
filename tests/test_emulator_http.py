"""HTTP/1.1 behaviour of the emulator's own server: keep-alive, pipelining, framing."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import orjson

from chatprobe.client import ChatClient
from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig, count_tokens
from chatprobe.sse import SSEDecoder

MODEL = "google/gemini-2.0-flash-001"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Hello there."}]}


# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(providers=("openrouter",), zero_latency=True, max_body=2048)


def _raw(emulator: Emulator, payload: bytes, *, read_until_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(payload)
        if not read_until_close:
            return sock.recv(65536)
        parts = []
        while chunk := sock.recv(65536):
            parts.append(chunk)
        return b"".join(parts)


def _request(body: bytes, *, close: bool = False) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer "
        + DEMO_KEY.encode()
        + b"\r\n"
        + (b"Connection: close\r\n" if close else b"")
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


def test_keep_alive_reuses_one_connection(emulator: Emulator) -> None:
    ports = set()
    with httpx.Client(trust_env=False) as http:
        for stream in (False, True, False):
            response = http.post(
                emulator.base_url() + "/chat/completions",
                json={**BODY, "stream": stream},
                headers={"Authorization": f"Bearer {DEMO_KEY}"},
            )
            assert response.status_code == 200
            stream_info = response.extensions["network_stream"]
            ports.add(stream_info.get_extra_info("client_addr")[1])
    assert len(ports) == 1


def test_pipelined_requests_are_answered_in_order(emulator: Emulator) -> None:
    one = orjson.dumps({**BODY, "max_tokens": 1})
    two = orjson.dumps({**BODY, "max_tokens": 2, "stream": True})
    data = _raw(emulator, _request(one) + _request(two, close=True))
    assert data.count(b"HTTP/1.1 200 OK") == 2
    first, second = data.split(b"HTTP/1.1 200 OK")[1:]
    assert b"application/json" in first and b"text/event-stream" in second
    assert second.rstrip().endswith(b"0")  # the chunked stream is terminated
    assert b"Connection: close" in second


def test_chunked_request_body_is_accepted(emulator: Emulator) -> None:
    def body() -> Iterator[bytes]:
        raw = orjson.dumps(BODY)
        yield raw[:10]
        yield raw[10:]

    with httpx.Client(trust_env=False) as http:
        response = http.post(
            emulator.base_url() + "/chat/completions",
            content=body(),
            headers={"Authorization": f"Bearer {DEMO_KEY}", "Content-Type": "application/json"},
        )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]


def test_chunked_request_body_over_the_limit_is_413(emulator: Emulator) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"model": "' + MODEL.encode() + b'", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}]}'

    with httpx.Client(trust_env=False) as http:
        response = http.post(
            emulator.base_url() + "/chat/completions",
            content=body(),
            headers={"Authorization": f"Bearer {DEMO_KEY}"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 413


def test_malformed_http_gets_400_and_close(emulator: Emulator) -> None:
    data = _raw(emulator, b"NONSENSE\x00\x01 / HTTP/9.9\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400")


def test_wrong_method_and_unknown_path(emulator: Emulator) -> None:
    with httpx.Client(trust_env=False) as http:
        assert http.get(emulator.base_url() + "/chat/completions").status_code == 405
        assert http.post(emulator.url("/nowhere"), json={}).status_code == 404
        assert http.get(emulator.url("/_chatprobe/requests?since=abc")).status_code == 400


def test_tokens_per_chunk_and_event_times() -> None:
    config = EmulatorConfig(
        providers=("aimlapi",),
        ttft_ms=5,
        itl_ms=1,
        sigma=0,
        tokens_per_chunk=3,
        output_tokens=(10, 10),
        record_event_times=True,
    )
    with (
        Emulator.in_thread(config) as emulator,
        ChatClient(emulator.profile("aimlapi"), api_key=DEMO_KEY) as client,
    ):
        record = client.chat(
            {
                "messages": BODY["messages"],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            model="gemini-2.0-flash-exp",
        )
        truth = emulator.truth()[-1]
    contents = [
        c["choices"][0]["delta"]["content"]
        for c in record.chunks
        if c["choices"] and c["choices"][0]["delta"].get("content")
    ]
    assert [count_tokens(c) for c in contents] == [3, 3, 3, 1]
    assert record.usage is not None and record.usage["completion_tokens"] == 10
    assert truth["chunks"] == 4 and truth["tokens_sent"] == 10
    # 4 content events + finish + usage + [DONE], each with its write time
    assert len(truth["event_times_ns"]) == 7
    assert truth["event_times_ns"] == sorted(truth["event_times_ns"])
    assert truth["t_first_content_ns"] == truth["event_times_ns"][0]
    # Targets are absolute from arrival: first content at the 5 ms draw, then three gaps of
    # 3 tokens x 1 ms; a write may go out up to 0.2 ms early (coalescing slack).
    assert truth["t_first_content_ns"] - truth["t_received_ns"] >= 4.8e6
    assert truth["t_last_content_ns"] - truth["t_received_ns"] >= 13.8e6


def test_sse_bytes_are_well_framed(emulator: Emulator) -> None:
    data = _raw(emulator, _request(orjson.dumps({**BODY, "stream": True}), close=True))
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    # De-chunk, then decode the SSE with the project's decoder.
    payload, rest = b"", body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        payload += rest[:size]
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]
    decoder = SSEDecoder()
    events = decoder.decode(payload) + decoder.flush()
    data_events = [e for e in events if hasattr(e, "data")]
    assert data_events[-1].data == "[DONE]"
    assert all(e.terminated for e in data_events)


def test_expect_100_continue_is_answered(emulator: Emulator) -> None:
    body = orjson.dumps(BODY)
    request = _request(body).replace(b"Host: x\r\n", b"Host: x\r\nExpect: 100-continue\r\n")
    head, _, rest = request.partition(b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        sock.sendall(head + b"\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(rest)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")


def test_public_api_names_exist() -> None:
    import chatprobe.emulator as api

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert set(api.__all__) >= {"Emulator", "EmulatorConfig", "DEMO_KEY", "FAULT_KINDS"}
