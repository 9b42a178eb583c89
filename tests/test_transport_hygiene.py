"""Connections after errors, on both transports (httpx and the load user's geventhttpclient).

Real servers close connections after errors, with or without saying so. A connection marked
``Connection: close`` must never carry another request; a pooled keep-alive connection the
server gave up on (it reads the next request and closes, or resets) must not turn the next
request into a false ``connection_reset``: it is retried once on a new connection and noted.
Every request carries a fresh ``X-Request-Id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chatprobe.client import ChatClient
from chatprobe.profiles import custom_profile
from chatprobe.record import ErrorClass, RequestRecord
from chatprobe.results.samples import build_sample
from chatprobe.transport import Timeouts
from tests.fake_servers.scripted import (
    ScriptedServer,
    chunk,
    content_chunk,
    plain,
    sse,
    stream_head,
)
from tests.load_support import load_exchanges

FAST = Timeouts(connect=2, first_byte=2, idle=2, total=10)
PLACE = {
    "scenario": "s",
    "stage": "1 users",
    "users": 1,
    "worker": "local",
    "t_offset_s": 0.0,
    "warmup": False,
}
ERROR = json.dumps({"error": {"message": "boom", "code": 500}}).encode()


def _answer(keep_alive: bool) -> list[tuple[str, Any]]:
    final = {**content_chunk("", finish="stop"), "usage": {"completion_tokens": 1}}
    return [
        ("send", stream_head(keep_alive=keep_alive)),
        ("send", chunk(sse(content_chunk("hi")) + sse(final) + sse("[DONE]"))),
        ("send", chunk(b"")),
    ]


SCRIPTS: dict[str, list[tuple[str, Any]]] = {
    # says Connection: close, then keeps the socket open and reads nothing more: a client
    # that reused it would wait for an answer that never comes
    "closing_error": [("send", plain(500, ERROR)), ("hold", 3.0)],
    # an error on a keep-alive connection
    "keepalive_error": [("send", plain(500, ERROR, keep_alive=True)), ("keepalive", None)],
    # a good answer, unless the request came on a reused connection: then the server closes
    # (or resets) without a word, as one does with an idle connection it has given up on
    "fresh_only": [("drop_if_reused", "close"), *_answer(True), ("keepalive", None)],
    "fresh_only_rst": [("drop_if_reused", "reset"), *_answer(True), ("keepalive", None)],
    # a server that closes the connection after every answer without saying so
    "silent_close": [*_answer(True), ("close", None)],
}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.scripts.update(SCRIPTS)
    yield srv
    srv.close()


def _httpx_sequence(server: ScriptedServer, names: list[str]) -> list[RequestRecord]:
    """One ChatClient (one connection pool) sends the scripts in turn, as a check run does."""
    profile = custom_profile(f"http://127.0.0.1:{server.port}/x", "TEST_KEY", name="scripted")
    records = []
    with ChatClient(profile, api_key="sk-test-secret-value-123456", timeouts=FAST) as client:
        for name in names:
            client.profile = profile.with_base_url(server.url(name))
            records.append(client.chat({"messages": [], "stream": True}, model="m"))
    return records


def _load_sequence(server: ScriptedServer, names: list[str]) -> list[dict[str, Any]]:
    timeouts = {"connect": 2, "first_byte": 2, "idle": 2, "total": 10}
    urls = [server.url(n) + "/chat/completions" for n in names]
    return load_exchanges([{"name": "s", "urls": urls, "timeouts": timeouts}])


def _classes_httpx(records: list[RequestRecord]) -> list[str | None]:
    return [r.error_class.value if r.error_class else None for r in records]


def _retried(anomalies: list[str]) -> bool:
    return any("retried once on a new connection" in a for a in anomalies)


# ---------------------------------------------------------------------------- Connection: close


def test_httpx_never_reuses_a_connection_marked_close(server: ScriptedServer) -> None:
    records = _httpx_sequence(server, ["closing_error"] * 3)
    assert _classes_httpx(records) == ["http_status"] * 3
    assert [c for c, _ in server.log] == [1, 2, 3]  # a new connection each time


def test_load_user_never_reuses_a_connection_marked_close(server: ScriptedServer) -> None:
    results = _load_sequence(server, ["closing_error"] * 3)
    assert [r["error_class"] for r in results] == ["http_status"] * 3
    assert [c for c, _ in server.log] == [1, 2, 3]


# ---------------------------------------------------------------------------- stale keep-alive


@pytest.mark.parametrize("dropper", ["fresh_only", "fresh_only_rst"])
def test_httpx_retries_a_stale_keepalive_connection_once(
    server: ScriptedServer, dropper: str
) -> None:
    records = _httpx_sequence(server, ["keepalive_error", dropper] * 3)
    # the same findings every round: the error, then the answer (never connection_reset)
    assert _classes_httpx(records) == ["http_status", None] * 3
    for record in records[1::2]:
        assert _retried(record.anomalies), record.anomalies
        assert record.text == "hi"
    # each answered request went out twice: on the reused connection, then on a new one
    assert server.log.count((1, dropper)) == 1
    assert sum(1 for _, name in server.log if name == dropper) == 6


@pytest.mark.parametrize("dropper", ["fresh_only", "fresh_only_rst"])
def test_load_user_retries_a_stale_keepalive_connection_once(
    server: ScriptedServer, dropper: str
) -> None:
    results = _load_sequence(server, ["keepalive_error", dropper] * 3)
    assert [r["error_class"] for r in results] == ["http_status", None] * 3
    for result in results[1::2]:
        assert _retried(result["anomalies"]), result
        assert result["text"] == "hi"
    assert sum(1 for _, name in server.log if name == dropper) == 6


def test_a_fresh_connection_is_never_retried(server: ScriptedServer) -> None:
    """A close before any answer on a new connection is the server's answer: counted."""
    server.scripts["drop"] = [("close", None)]
    (record,) = _httpx_sequence(server, ["drop"])
    (result,) = _load_sequence(server, ["drop"])
    assert record.error_class is ErrorClass.CONNECTION_RESET and not _retried(record.anomalies)
    assert result["error_class"] == "connection_reset" and not _retried(result["anomalies"])
    assert len(server.log) == 2


def test_a_server_that_closes_after_every_answer(server: ScriptedServer) -> None:
    records = _httpx_sequence(server, ["silent_close"] * 4)
    results = _load_sequence(server, ["silent_close"] * 4)
    assert _classes_httpx(records) == [None] * 4
    assert [r["error_class"] for r in results] == [None] * 4


# ---------------------------------------------------------------------------- request ids


def test_every_request_carries_a_fresh_request_id(server: ScriptedServer) -> None:
    server.scripts["ids"] = _answer(False)
    records = _httpx_sequence(server, ["ids", "ids"])
    results = _load_sequence(server, ["ids", "ids"])
    kept = [r.request_id for r in records] + [r["request_id"] for r in results]
    sent = [h["x-request-id"] for h in server.headers]
    assert kept == sent and len(set(sent)) == 4 and all(len(i) == 32 for i in sent)
    samples = [build_sample(r, **PLACE) for r in records]
    assert [s["request_id"] for s in samples] == sent[:2]
    # one User-Agent, the package's, on both transports
    assert len({h["user-agent"] for h in server.headers}) == 1
    assert server.headers[0]["user-agent"].startswith("chatprobe/")
