"""A raw-socket HTTP server on 127.0.0.1 that plays scripts byte by byte.

Used to test the client's timing and error classification independently of the emulator:
each script is a list of actions run after the request has been read. Scripts are chosen by
the first path segment: ``/<script>/chat/completions``; ``/play/...`` plays the actions the
request body holds (JSON ``[[kind, arg], ...]``, bytes as Latin-1 text), so a process that
cannot share memory with the server (a locust child) can script it. Actions:

``("send", bytes)``   write the bytes
``("sleep", s)``      wait
``("close", None)``   FIN and end the connection;  ``("reset", None)``: RST
``("keepalive", None)`` end the answer and read the next request on the same connection
``("hold", s)``       keep the connection open, reading nothing, for s seconds, then close
``("drop_if_reused", "close" | "reset")``  a connection that served a request before is
                      closed (or reset) here without an answer, as a server does with a
                      keep-alive connection it has given up on; a new one goes on

Every request is logged in ``server.log`` as ``(connection number, script name)``, its
headers in ``server.headers``. With
``tls`` (:class:`chatprobe.emulator.certs.Certificates`) the server speaks HTTPS.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

Action = tuple[str, Any]


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def sse(payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def stream_head(
    status: int = 200, content_type: str = "text/event-stream", *, keep_alive: bool = False
) -> bytes:
    connection = "" if keep_alive else "Connection: close\r\n"
    return (
        f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
        f"Transfer-Encoding: chunked\r\n{connection}\r\n"
    ).encode()


def plain(
    status: int, body: bytes, content_type: str = "application/json", *, keep_alive: bool = False
) -> bytes:
    connection = "" if keep_alive else "Connection: close\r\n"
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{connection}\r\n"
    ).encode() + body


def content_chunk(text: str, *, finish: str | None = None, cid: str = "c1") -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }


class ScriptedServer:
    def __init__(self, tls: Any = None) -> None:
        self.scripts: dict[str, list[Action] | Callable[[], list[Action]]] = {}
        self.log: list[tuple[int, str]] = []
        self.headers: list[dict[str, str]] = []  # each request's headers, lower-case names
        self._connections = 0
        self._context = tls.server_context() if tls is not None else None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, script: str) -> str:
        scheme = "https" if self._context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{script}"

    def close(self) -> None:
        self._stop = True
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._connections += 1
            threading.Thread(
                target=self._handle, args=(conn, self._connections), daemon=True
            ).start()

    def _handle(self, conn: socket.socket, number: int) -> None:
        try:
            if self._context is not None:
                conn = self._context.wrap_socket(conn, server_side=True)
            served = 0
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    part = conn.recv(65536)
                    if not part:
                        return
                    data += part
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                fields = {}
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    fields[name.strip().lower().decode()] = value.strip().decode("latin-1")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    body += conn.recv(65536)
                data = body[length:]  # a pipelined next request, if any
                path = head.split(b" ")[1].decode()
                name = path.strip("/").split("/")[0]
                self.log.append((number, name))
                self.headers.append(fields)
                if name == "play":  # the actions come in the request body
                    actions = [
                        (kind, arg.encode("latin-1") if kind == "send" else arg)
                        for kind, arg in json.loads(body[:length])
                    ]
                else:
                    script = self.scripts[name]
                    actions = script() if callable(script) else script
                if not self._play(conn, actions, reused=served > 0):
                    return
                served += 1
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _play(self, conn: socket.socket, actions: list[Action], *, reused: bool) -> bool:
        """Run one script; True when the connection stays open for another request."""
        for kind, arg in actions:
            if kind == "send":
                conn.sendall(arg)
            elif kind == "sleep":
                time.sleep(arg)
            elif kind == "drop_if_reused":
                if reused:
                    if arg == "reset":
                        _reset(conn)
                    return False
            elif kind == "reset":
                _reset(conn)
                return False
            elif kind == "close":
                conn.shutdown(socket.SHUT_RDWR)
                return False
            elif kind == "hold":
                time.sleep(arg)
                return False
            elif kind == "keepalive":
                return True
        return False


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
