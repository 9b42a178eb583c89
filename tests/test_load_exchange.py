"""The locust user's exchange (``chatprobe.load.exchange.stream_exchange``) against a scripted
server: timings, and every transport failure classified, never raised.

The exchange runs in a child process, because importing locust monkey-patches the whole
interpreter with gevent; the scripted server runs here, in threads. One child runs every
case in turn and prints one JSON line per case.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from chatprobe.paths import project_root
from tests.fake_servers.scripted import (
    ScriptedServer,
    chunk,
    content_chunk,
    plain,
    sse,
    stream_head,
)

CHILD = r"""
import json, sys
from chatprobe.load.exchange import RequestTemplate, connection_pool, stream_exchange
from chatprobe.record import RequestRecord
from chatprobe.transport import Timeouts

cases = json.loads(sys.stdin.read())
for case in cases:
    request = RequestTemplate(
        case["url"] + "/chat/completions",
        {"Content-Type": "application/json", "Authorization": "Bearer sk-test-secret-0123456789"},
    )
    timeouts = Timeouts(connect=case["connect"], first_byte=case["read"], idle=case["read"],
                        total=case["total"])
    pool = connection_pool(request, size=1, timeouts=timeouts)
    record = RequestRecord(stream=True)
    received = stream_exchange(pool, request, b'{"model": "m"}', record, timeouts=timeouts)
    record.finish()
    print(json.dumps({
        "name": case["name"], "error_class": record.error_class and record.error_class.value,
        "detail": record.error_detail, "status": record.status, "text": record.text,
        "ttft_ms": record.ttft_ms, "itl_ms": record.itl_ms, "e2e_ms": record.e2e_ms,
        "total_ms": record.total_ms, "tokens": record.output_tokens,
        "token_source": record.token_source, "events": len(record.events), "received": received,
        "done": record.done, "clock": record.clock, "anomalies": record.anomalies,
    }), flush=True)
    pool.close()
"""


def _stream(*payloads: object, end: bool = True, crlf: bool = False) -> list[tuple[str, Any]]:
    actions: list[tuple[str, Any]] = [("send", stream_head())]
    for p in payloads:
        data = sse(p)
        actions.append(("send", chunk(data.replace(b"\n", b"\r\n") if crlf else data)))
    if end:
        actions.append(("send", chunk(b"")))
    return actions


def _final(n: int) -> dict[str, Any]:
    final = {**content_chunk(""), "usage": {"prompt_tokens": 1, "completion_tokens": n}}
    final["choices"][0]["finish_reason"] = "stop"
    return final


def _timed(ttft: float, gap: float, n: int) -> list[tuple[str, Any]]:
    role = {**content_chunk(""), "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    actions: list[tuple[str, Any]] = [("send", stream_head()), ("send", chunk(sse(role)))]
    actions.append(("sleep", ttft))
    for i in range(n):
        if i:
            actions.append(("sleep", gap))
        actions.append(("send", chunk(sse(content_chunk(f"w{i} ")))))
    actions += [("send", chunk(sse(_final(n)))), ("send", chunk(sse("[DONE]")))]
    return [*actions, ("send", chunk(b""))]


SCRIPTS: dict[str, tuple[list[tuple[str, Any]], str | None]] = {
    "timed": (_timed(0.060, 0.020, 8), None),
    "crlf": (_stream(content_chunk("a"), _final(1), "[DONE]", crlf=True), None),
    # the last event has no blank line after it: the decoder's flush keeps it
    "unterminated": (
        [
            ("send", stream_head()),
            ("send", chunk(sse(content_chunk("a")) + sse(_final(1)))),
            ("send", chunk(b"data: [DONE]")),
            ("send", chunk(b"")),
        ],
        None,
    ),
    # CR-only line endings (allowed by the SSE standard): the first token must be stamped
    # when it arrives, not when the body ends 0.3 s later.
    "cr_only": (
        [
            ("send", stream_head()),
            ("send", chunk(sse(content_chunk("a")).replace(b"\n", b"\r"))),
            ("sleep", 0.3),
            ("send", chunk(sse(_final(1)).replace(b"\n", b"\r"))),
            ("send", chunk(b"data: [DONE]\r\r")),
            ("send", chunk(b"")),
        ],
        None,
    ),
    "status429": (
        [("send", plain(429, b'{"error": {"code": 429, "message": "slow down"}}'))],
        "rate_limited",
    ),
    "firstbyte": ([("sleep", 1.0)], "timeout_first_byte"),
    "idle": (
        [("send", stream_head()), ("send", chunk(sse(content_chunk("a")))), ("sleep", 1.0)],
        "timeout_idle",
    ),
    "reset": (
        [
            ("send", stream_head()),
            ("send", chunk(sse(content_chunk("a")))),
            ("sleep", 0.05),
            ("reset", None),
        ],
        "connection_reset",
    ),
    # a clean close (FIN) mid-stream is a cut stream, a reset (RST) is not
    "cut": (
        [("send", stream_head()), ("send", chunk(sse(content_chunk("a")))), ("close", None)],
        "truncated_stream",
    ),
    "garbage": ([("send", b"HELLO THERE\r\n\r\n"), ("close", None)], "protocol_error"),
    "html": ([("send", plain(200, b"<html>oops</html>", "text/html"))], "bad_content_type"),
    "midstream": (
        _stream(
            content_chunk("a"),
            {
                "error": {"code": 502, "message": "gone"},
                "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
            },
            "[DONE]",
        ),
        "midstream_error",
    ),
    "truncstream": (_stream(content_chunk("a")), "truncated_stream"),
    "slowdrip": (
        [("send", stream_head())]
        + [
            a for _ in range(20) for a in (("send", chunk(sse(content_chunk("a")))), ("sleep", 0.1))
        ],
        "timeout_total",
    ),
}


@pytest.fixture(scope="module")
def outcomes() -> Iterator[dict[str, dict[str, Any]]]:
    server = ScriptedServer()
    for name, (actions, _) in SCRIPTS.items():
        server.scripts[name] = actions
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    closed_port = refused.getsockname()[1]
    refused.close()  # nothing listens there now
    cases = [
        {"name": name, "url": server.url(name), "connect": 0.5, "read": 0.4, "total": 0.8}
        for name in SCRIPTS
    ]
    cases[0]["total"] = 5.0  # the timed stream must not hit the total limit
    cases.append(
        {
            "name": "refused",
            "url": f"http://127.0.0.1:{closed_port}",
            "connect": 0.5,
            "read": 0.4,
            "total": 1.0,
        }
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD],
            input=json.dumps(cases),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=project_root(),
        )
    finally:
        server.close()
    assert done.returncode == 0, done.stderr[-3000:]
    yield {r["name"]: r for r in map(json.loads, done.stdout.splitlines())}


@pytest.mark.parametrize("name", [*SCRIPTS, "refused"])
def test_each_outcome_is_classified(outcomes: dict[str, dict[str, Any]], name: str) -> None:
    expected = SCRIPTS[name][1] if name in SCRIPTS else "connect_error"
    result = outcomes[name]
    assert result["error_class"] == expected, result
    if expected:
        assert result["detail"]
    assert "sk-test-secret" not in json.dumps(result)


def test_timings_follow_the_script(outcomes: dict[str, dict[str, Any]]) -> None:
    timed = outcomes["timed"]
    print(
        f"\nload user vs script: ttft {timed['ttft_ms']:.2f} ms (script 60), "
        f"itl {timed['itl_ms']:.2f} ms (script 20)"
    )
    assert timed["text"] == "".join(f"w{i} " for i in range(8))
    assert timed["tokens"] == 8 and timed["token_source"] == "usage" and timed["done"]
    # Floors and order only (the script's sleeps can be stretched, never shortened); the
    # client's closeness to the script is a benchmark figure.
    assert timed["ttft_ms"] >= 60 and timed["itl_ms"] > 0
    assert timed["e2e_ms"] >= 60 + 7 * 20


def test_framing_variants_decode(outcomes: dict[str, dict[str, Any]]) -> None:
    assert outcomes["crlf"]["text"] == "a" and outcomes["crlf"]["done"]
    assert outcomes["unterminated"]["text"] == "a" and outcomes["unterminated"]["done"]


def test_cr_only_stream_is_stamped_on_arrival(outcomes: dict[str, dict[str, Any]]) -> None:
    cr = outcomes["cr_only"]
    assert cr["text"] == "a" and cr["done"], cr
    # The rest of the body came 300 ms after the first token: the first token is stamped
    # when it arrived, well before the body ended (stamped at the end, TTFT would equal the
    # request's total time).
    assert cr["total_ms"] - cr["ttft_ms"] > 150, cr


def test_partial_streams_keep_what_arrived(outcomes: dict[str, dict[str, Any]]) -> None:
    for name in ("idle", "reset", "cut", "slowdrip"):
        assert outcomes[name]["text"].startswith("a"), outcomes[name]
    assert outcomes["status429"]["status"] == 429
