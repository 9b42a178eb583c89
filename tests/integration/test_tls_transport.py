"""The load client's HTTPS transport (TLS in memory, ``chatprobe.load.tlsmemory``) against
real TLS servers on 127.0.0.1: both TLS versions, bodies larger than one read, and the ways
a handshake fails, each classified as the transport policy says."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatprobe.emulator.certs import Certificates
from chatprobe.load.exchange import RequestTemplate, connection_pool, stream_exchange
from chatprobe.load.receive import KERNEL_TIMESTAMPS
from chatprobe.record import RequestRecord
from chatprobe.transport import Timeouts, TLSConfig, request_headers
from tests.fake_servers.scripted import ScriptedServer
from tests.stream_timings import Answer, check_record, sse_body

TIMEOUTS = Timeouts(connect=5, first_byte=5, idle=5, total=20)
HEAD = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def _exchange(url: str, body: bytes, tls: TLSConfig, *, stream: bool = True) -> RequestRecord:
    template = RequestTemplate(
        url + "/chat/completions", request_headers(stream=stream, api_key="k")
    )
    pool = connection_pool(template, size=1, timeouts=TIMEOUTS, tls=tls)
    record = RequestRecord(stream=stream)
    try:
        stream_exchange(pool, template, body, record, timeouts=TIMEOUTS)
    finally:
        pool.close()
    record.finish()
    return record


@pytest.fixture(scope="module")
def trust(certificates: Certificates) -> TLSConfig:
    return TLSConfig(ca_bundles=(str(certificates.ca_file),))


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
def tls_server(request: pytest.FixtureRequest, certificates: Certificates) -> Iterator[Any]:
    server = ScriptedServer(tls=certificates)
    server._context.minimum_version = server._context.maximum_version = request.param
    yield server
    server.close()


def test_a_stream_over_either_tls_version_is_kernel_stamped(
    tls_server: ScriptedServer, trust: TLSConfig
) -> None:
    events, text = sse_body(3)
    answer = Answer(actions=[["send", HEAD + events], ["close", None]], text=text, done=True)
    record = _exchange(tls_server.url("play"), answer.body(), trust)
    check_record(record, answer)
    if KERNEL_TIMESTAMPS:  # the TCP socket beneath TLS is read with its receive stamps
        assert record.clock == "kernel" and record.stamp_bounds_ns


def test_a_stream_longer_than_one_read_arrives_whole_and_in_order(
    tls_server: ScriptedServer, trust: TLSConfig
) -> None:
    """About 300 KB in one burst: the TLS layer holds records past a read's 64 KiB and the
    reader serves them next, with that read's stamp."""
    events, text = sse_body(3000)
    answer = Answer(actions=[["send", HEAD + events], ["close", None]], text=text, done=True)
    record = _exchange(tls_server.url("play"), answer.body(), trust)
    check_record(record, answer)
    stamps = [e.t_ns for e in record.events]
    assert stamps == sorted(stamps)


def test_a_json_body_in_many_records(tls_server: ScriptedServer, trust: TLSConfig) -> None:
    payload = '{"pad": "' + "x" * 200_000 + '"}'
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}"
    answer = Answer(
        actions=[["send", head + "\r\n\r\n" + payload], ["keepalive", None]], text="", done=False
    )
    record = _exchange(tls_server.url("play"), answer.body(), trust, stream=False)
    assert record.status == 200 and record.body == payload.encode()


def test_an_untrusted_certificate_is_a_tls_error(tls_server: ScriptedServer) -> None:
    record = _exchange(tls_server.url("play"), b"[]", TLSConfig())
    assert record.error_class is not None and record.error_class.value == "tls_error"
    assert "certificate" in record.error_detail.lower()


class _Listener:
    """A TCP server on 127.0.0.1 that answers every connection with ``reply`` and closes."""

    def __init__(self, reply: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)  # the ClientHello
                if self.reply:
                    conn.sendall(self.reply)


@pytest.mark.parametrize(
    "reply",
    [b"", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"],
    ids=["closed-in-handshake", "plain-http-on-https"],
)
def test_a_handshake_that_cannot_complete_is_a_tls_error(reply: bytes, trust: TLSConfig) -> None:
    listener = _Listener(reply)
    try:
        record = _exchange(f"https://127.0.0.1:{listener.port}/play", b"[]", trust)
    finally:
        listener.sock.close()
    assert record.error_class is not None and record.error_class.value == "tls_error", (
        record.error_class,
        record.error_detail,
    )


def test_a_tls_close_ends_the_body_while_tcp_stays_open(
    certificates: Certificates, trust: TLSConfig
) -> None:
    """A server that ends a close-delimited body with TLS's close_notify and leaves TCP
    open: the body is complete then, not when the idle timeout fires."""
    events, text = sse_body(2)
    context = certificates.server_context()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            request = b""
            while b"\r\n\r\n" not in request:
                request += tls.recv(65536)
            tls.sendall((HEAD + events).encode())
            with contextlib.suppress(OSError, ValueError):
                tls.unwrap()  # sends close_notify, then waits for the client's (never sent)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    slow = Timeouts(connect=5, first_byte=5, idle=10, total=60)
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/play"
    template = RequestTemplate(url + "/chat/completions", request_headers(stream=True, api_key="k"))
    pool = connection_pool(template, size=1, timeouts=slow, tls=trust)
    record = RequestRecord(stream=True)
    try:
        stream_exchange(pool, template, b"{}", record, timeouts=slow)
    finally:
        pool.close()
        listener.close()
    record.finish()
    # ended by the close, not by the idle timeout (which a stream that sent [DONE] survives)
    assert record.transport_error is None, (record.transport_error, record.transport_detail)
    assert record.error_class is None and record.text == text and record.done
    thread.join(timeout=10)
