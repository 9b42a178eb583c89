"""A raw-socket HTTP server on 127.0.0.1 that plays scripts byte by byte.

Used to test the client's timing and error classification independently of the emulator:
each script is a list of actions (send bytes, sleep, close, reset) run after the request has
been read. Scripts are chosen by the first path segment: ``/<script>/chat/completions``.
"""

from __future__ import annotations

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


def stream_head(status: int = 200, content_type: str = "text/event-stream") -> bytes:
    return (
        f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()


def plain(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
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
    def __init__(self) -> None:
        self.scripts: dict[str, list[Action] | Callable[[], list[Action]]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, script: str) -> str:
        return f"http://127.0.0.1:{self.port}/{script}"

    def close(self) -> None:
        self._stop = True
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                part = conn.recv(65536)
                if not part:
                    return
                data += part
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                body += conn.recv(65536)
            path = head.split(b" ")[1].decode()
            name = path.strip("/").split("/")[0]
            script = self.scripts[name]
            actions = script() if callable(script) else script
            for kind, arg in actions:
                if kind == "send":
                    conn.sendall(arg)
                elif kind == "sleep":
                    time.sleep(arg)
                elif kind == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    return
                elif kind == "close":
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                    return
            conn.close()
        except OSError:
            pass
