"""A recording proxy on 127.0.0.1: every request body and streamed answer, kept in order.

Sits in front of a real server (the emulator) and relays each exchange as it comes (the
answer re-chunked as it arrives), so a test sees, server side, exactly which messages a
client sent and what it was answered, while the server behind it keeps its ground truth.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

RELAYED_HEADERS = ("authorization", "content-type", "accept", "x-request-id", "accept-encoding")


@dataclass
class Exchange:
    """One request as the proxy saw it, with the answer's bytes."""

    path: str
    request_id: str
    body: Any  # the JSON request body
    status: int = 0
    answer: bytes = b""

    def streamed(self) -> dict[str, Any]:
        """The streamed answer assembled: ``content`` and ``tool_calls`` (name, arguments)."""
        content: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        for line in self.answer.split(b"\n"):
            if not line.startswith(b"data: {"):
                continue
            chunk = orjson.loads(line[6:])
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                content.append(delta.get("content") or "")
                for k, call in enumerate(delta.get("tool_calls") or []):
                    slot = calls.setdefault(call.get("index", k), {"name": "", "arguments": ""})
                    function = call.get("function") or {}
                    slot["name"] += function.get("name") or ""
                    slot["arguments"] += function.get("arguments") or ""
        return {"content": "".join(content), "tool_calls": [calls[k] for k in sorted(calls)]}


class RecordingProxy:
    """Relays to ``upstream`` (``http://HOST:PORT``) and records every exchange."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port_up = parts.hostname or "127.0.0.1", parts.port or 80
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                exchange = Exchange(
                    self.path, self.headers.get("X-Request-Id", ""), orjson.loads(raw or b"null")
                )
                with owner._lock:
                    owner.exchanges.append(exchange)
                upstream = http.client.HTTPConnection(owner.host, owner.port_up, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() in RELAYED_HEADERS}
                upstream.request("POST", self.path, body=raw, headers=headers)
                response = upstream.getresponse()
                exchange.status = response.status
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                parts = []
                while True:
                    data = response.read1(65536)
                    if not data:
                        break
                    parts.append(data)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                exchange.answer = b"".join(parts)
                upstream.close()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self) -> str:
        """The proxy's root, as ``--emulator-url`` takes it."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
