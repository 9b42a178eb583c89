"""The cheapest client available here: asyncio protocols + httptools, no SSE decoding at all.

It exists to drive the emulator in B3 (emulator capacity) with as little client CPU as
possible, and as a floor in B1: what one core costs per stream when a client does nothing but
frame HTTP/1.1 responses (httptools, C) and stamp body pieces. It does not decode events: it
stamps the first and last body piece in which a byte search finds a non-empty
``"content":"`` (right for the emulator's compact JSON, not a general rule), so in B2 it is
the reference row: the TTFT error left when the client does next to nothing, i.e. what the
emulator, the kernel and the other work on this machine contribute.
"""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import urlsplit

import httptools

from benchmarks.clients.protocol import ClientArgs, Result, parse_args, pin

REQUEST_ID = b"x-chatprobe-request-id"
CONTENT = re.compile(rb'"content":"[^"]')


class Conn(asyncio.Protocol):
    """One keep-alive connection issuing one request after another."""

    def __init__(self, request: bytes, result: Result, stop: asyncio.Event) -> None:
        self.request = request
        self.result = result
        self.stop = stop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = asyncio.get_running_loop().create_future()
        self._reset()

    def _reset(self) -> None:
        self.rid: str | None = None
        self.t0 = 0
        self.t_first: int | None = None
        self.t_last: int | None = None
        self.pieces = 0
        self.status = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == REQUEST_ID:
            self.rid = value.decode()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        now = time.perf_counter_ns()
        if CONTENT.search(body):
            if self.t_first is None:
                self.t_first = now
            self.t_last = now
            self.pieces += 1

    def on_message_complete(self) -> None:
        now = time.perf_counter_ns()
        self.result.samples.append(
            [
                self.rid,
                None,
                self.t0,
                self.t_first,
                self.t_last,
                now,
                self.pieces,
                self.status < 300,
            ]
        )
        self._reset()
        if self.stop.is_set():
            assert self.transport is not None
            self.transport.close()
        else:
            self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.result.started += 1
        self.t0 = time.perf_counter_ns()
        self.transport.write(self.request)


def build_request(args: ClientArgs) -> tuple[str, int, bytes]:
    u = urlsplit(args.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    path = u.path + (f"?{u.query}" if u.query else "")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept-Encoding: identity",
        f"Content-Length: {len(args.body)}",
        *(f"{k}: {v}" for k, v in args.headers.items()),
    ]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + args.body


async def run(args: ClientArgs) -> Result:
    result = Result("raw-httptools", args)
    host, port, request = build_request(args)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    conns: list[Conn] = []
    for _ in range(args.concurrency):
        _, conn = await loop.create_connection(lambda: Conn(request, result, stop), host, port)
        conns.append(conn)
    await asyncio.sleep(args.warmup)
    result.window_start()
    await asyncio.sleep(args.duration)
    result.window_end()
    stop.set()
    await asyncio.wait([c.closed for c in conns], timeout=5.0)
    return result


def main() -> None:
    args = parse_args()
    pin(args.cpu)
    asyncio.run(run(args)).write()


if __name__ == "__main__":
    main()
