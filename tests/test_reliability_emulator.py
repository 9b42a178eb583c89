"""The emulator and the harness's own sockets: loopback by default, bounded requests and
responses.

* ``chatprobe emulate`` listens on loopback only (read from ``/proc``, not from what it
  prints); so do the emulator a load run starts and locust's master in a ``--processes`` run
  (checked in ``tests/test_interrupt.py``, during the distributed run);
* a request body over ``--max-body`` gets 413, by ``Content-Length`` or chunked, and the
  connection stays usable;
* the client stops reading a response past its size cap and classifies it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest

from chatprobe.client import ChatClient
from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig
from chatprobe.profiles import custom_profile
from chatprobe.record import ErrorClass
from tests.fake_servers.hostile import HostileServer
from tests.reliability_support import ROOT, clean_env, cli_command, listening, process_tree

LOOPBACK = {"127.0.0.1", "::1"}


def test_emulate_listens_on_loopback_by_default() -> None:
    assert EmulatorConfig().host == "127.0.0.1"
    child = subprocess.Popen(
        cli_command("emulate", "--provider", "aimlapi"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        port = int(line.split("http://127.0.0.1:")[1].split()[0].rstrip("/"))
        sockets = listening(process_tree(child.pid))
        assert sockets == {("127.0.0.1", port)}, sockets
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=20)
    assert child.returncode == 0


# ---------------------------------------------------------------------------- body limits


@pytest.fixture(scope="module")
def small_emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(providers=("aimlapi",), max_body=4096, zero_latency=True)
    with Emulator.in_thread(config) as emu:
        yield emu


REQUEST = (
    b'{"model":"gemini-2.0-flash-exp","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}'
)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of one Content-Length response."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, data
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ")[1]), body[:length]


def _post(path: str, body: bytes, *, chunked: bool = False) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DEMO_KEY}\r\n"
    head += "Content-Type: application/json\r\n"
    if chunked:
        pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)]
        framed = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + framed
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversize_body_gets_413_and_the_connection_survives(
    small_emulator: Emulator, chunked: bool
) -> None:
    path = "/aimlapi/v1/chat/completions"
    big = REQUEST[:-1] + b',"pad":"' + b"x" * 20_000 + b'"}'
    with socket.create_connection((small_emulator.host, small_emulator.port), timeout=10) as sock:
        sock.sendall(_post(path, big, chunked=chunked))
        status, body = _read_response(sock)
        assert status == 413, body
        assert b"4096" in body
        sock.sendall(_post(path, REQUEST))  # same connection: still usable
        status, body = _read_response(sock)
        assert status in (200, 201), body


def test_default_limit_is_one_mebibyte() -> None:
    assert EmulatorConfig().max_body == 1024 * 1024
    body = {"messages": [{"role": "user", "content": "x" * (1024 * 1024)}]}
    with Emulator.in_thread(EmulatorConfig(providers=("aimlapi",), zero_latency=True)) as emu:
        client = ChatClient(emu.profile("aimlapi"), api_key=DEMO_KEY)
        record = client.chat(body, model="gemini-2.0-flash-exp")
        client.close()
    assert record.status == 413 and record.error_class is ErrorClass.HTTP_STATUS


def test_client_stops_reading_past_its_response_cap() -> None:
    with HostileServer(["giant_line:2000000"]) as server:
        profile = custom_profile(server.base_url, "HOSTILE_API_KEY", name="hostile")
        with ChatClient(profile, api_key="k-1234567", max_body_bytes=256 * 1024) as client:
            for stream in (True, False):
                body = {"messages": [{"role": "user", "content": "hi"}], "stream": stream}
                record = client.chat(body, model="m")
                assert record.error_class is ErrorClass.PROTOCOL_ERROR, record.error_detail
                assert "exceeded 262144 bytes" in record.error_detail
