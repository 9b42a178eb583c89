"""A real HTTP/1.1 server on 127.0.0.1 that gives every request the same answer.

For the polite-load and preflight tests: a gateway that always answers ``429`` with
``Retry-After``, or a server that answers once (the preflight) and then stops listening, so
every later connection is refused. Requests are counted by method.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FixedServer:
    """Answers ``status`` with ``headers`` and a JSON error body to every request.

    ``listen_for``: after this many requests the listening socket is closed (connections
    are refused from then on); None keeps listening until :meth:`close`.
    """

    def __init__(
        self,
        status: int = 429,
        headers: dict[str, str] | None = None,
        *,
        listen_for: int | None = None,
    ) -> None:
        self.status = status
        self.headers = dict(headers or {})
        self.listen_for = listen_for
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = b'{"error": {"message": "slow down", "code": %d}}' % owner.status
                owner._served(self.command)  # counted before the client can see the answer
                self.send_response(owner.status)
                for name, value in owner.headers.items():
                    self.send_header(name, value)
                if owner.listen_for is not None:  # no connection outlives the listener
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _served(self, method: str) -> None:
        with self._lock:
            self.counts[method] += 1
            if self.listen_for is not None and sum(self.counts.values()) >= self.listen_for:
                threading.Thread(target=self._stop_listening, daemon=True).start()

    def _stop_listening(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FixedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dead_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
