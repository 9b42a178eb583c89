"""How many streamed completions per second the emulator serves at zero latency.

:func:`measure_streams_per_second` starts the emulator in a subprocess pinned to one CPU (or
uses one you pass), drives it for a fixed time from a minimal raw-socket asyncio client in
this process (pinned to another CPU when there is one), and reports streams/s together with
the emulator's own CPU seconds, so ``streams_per_cpu_s`` says what one fully used core
serves even when the client, not the emulator, was the limit. The client checks every answer
is a 200 stream ending in ``data: [DONE]`` and the chunked terminator; nothing else is parsed.
Bounded: it stops after ``duration`` seconds (plus the requests in flight).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, cast

import orjson

from chatprobe.emulator.config import DEMO_KEY, EmulatorConfig
from chatprobe.emulator.runner import Emulator

__all__ = ["BenchResult", "measure_streams_per_second"]

_TERMINATOR = b"\r\n0\r\n\r\n"


@dataclass(frozen=True, slots=True)
class BenchResult:
    streams: int
    errors: int
    seconds: float
    streams_per_s: float
    emulator_cpu_s: float
    streams_per_cpu_s: float  # streams per CPU-second of the emulator process
    tokens_per_stream: int
    tokens_per_chunk: int
    connections: int
    provider: str
    distinct_prompts: bool

    def summary(self) -> str:
        return (
            f"{self.streams_per_s:,.0f} streams/s ({self.streams} in {self.seconds:.1f}s, "
            f"{self.errors} errors), emulator CPU {self.emulator_cpu_s:.2f}s -> "
            f"{self.streams_per_cpu_s:,.0f} streams per emulator CPU-second; "
            f"{self.tokens_per_stream} tokens/stream, {self.tokens_per_chunk} token(s)/chunk, "
            f"{self.connections} connections, provider {self.provider}"
            f"{', distinct prompts' if self.distinct_prompts else ''}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _complete_plain(buffer: bytearray) -> bool:
    """True when ``buffer`` holds a whole non-chunked answer (an error status)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0 or buffer.startswith(b"HTTP/1.1 200"):
        return False
    head = bytes(buffer[:end]).lower()
    at = head.find(b"content-length:")
    if at < 0:
        return False
    length = int(head[at + 15 :].split(b"\r\n", 1)[0])
    return len(buffer) >= end + 4 + length


class _Client(asyncio.Protocol):
    """Keeps one request in flight on one connection until told to stop."""

    def __init__(self, bench: _Bench) -> None:
        self.bench = bench
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio types the argument as BaseTransport; a stream connection's is a Transport
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.transport.write(self.bench.next_request())

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        bench = self.bench
        if buffer.endswith(_TERMINATOR) and buffer.startswith(b"HTTP/1.1 200"):
            if b"data: [DONE]" in buffer[-64:]:
                bench.streams += 1
            else:
                bench.errors += 1
        elif not _complete_plain(buffer):
            return
        else:
            bench.errors += 1  # an error status with a plain body
        buffer.clear()
        if bench.running:
            self._send()
        elif self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Bench:
    def __init__(
        self, host: str, port: int, path: str, body: dict[str, Any], tokens: int, distinct: bool
    ) -> None:
        self.running = True
        self.streams = 0
        self.errors = 0
        self._n = 0
        self._distinct = distinct
        self._body = body
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {DEMO_KEY}"
            f"\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"X-Chatprobe-Output-Tokens: {tokens}\r\n"
        ).encode()
        self._fixed = self._render(orjson.dumps(body))

    def _render(self, payload: bytes) -> bytes:
        return self._head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload

    def next_request(self) -> bytes:
        if not self._distinct:
            return self._fixed
        self._n += 1
        body = dict(self._body)
        body["messages"] = [{"role": "user", "content": f"Request number {self._n}, say hi"}]
        return self._render(orjson.dumps(body))


async def _drive(host: str, port: int, bench: _Bench, connections: int, duration: float) -> float:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(lambda: _Client(bench), host, port)
        clients.append(client)
    await asyncio.sleep(duration)
    bench.running = False
    await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), timeout=30)
    return time.perf_counter() - start


def measure_streams_per_second(
    *,
    duration: float = 5.0,
    connections: int = 32,
    tokens: int = 64,
    tokens_per_chunk: int = 1,
    provider: str = "openrouter",
    emulator_cpu: int | None = 0,
    client_cpu: int | None = 1,
    distinct_prompts: bool = False,
    emulator: Emulator | None = None,
) -> BenchResult:
    """Drive a zero-latency emulator with streamed ``tokens``-token completions.

    With ``emulator`` None a subprocess is started (pinned to ``emulator_cpu``) and stopped
    afterwards; this process is pinned to ``client_cpu`` for the run (restored afterwards).
    ``distinct_prompts`` sends a different prompt each time (no plan-cache hits).
    """
    own = emulator is None
    if emulator is None:
        config = EmulatorConfig(
            providers=(provider,),
            zero_latency=True,
            tokens_per_chunk=tokens_per_chunk,
            truth_cap=10_000,
            rate_limit_rpm=0,  # a :free model must not turn the run into 429s
        )
        emulator = Emulator.in_subprocess(config, cpu=emulator_cpu)
    cpus = os.cpu_count() or 1
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        if client_cpu is not None and affinity is not None and client_cpu < cpus:
            os.sched_setaffinity(0, {client_cpu})
        base = emulator.base_url(provider)
        path = base.split("/", 3)[3] if base.count("/") >= 3 else ""
        models = list(emulator.profile(provider).models.values())
        model = next((m for m in models if not m.rate_limit_rpm), models[0]).id
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
            "stream": True,
        }
        bench = _Bench(
            emulator.host,
            emulator.port,
            f"/{path}/chat/completions",
            body,
            tokens,
            distinct_prompts,
        )
        pid = emulator.pid
        cpu_before = _cpu_seconds(pid)
        seconds = asyncio.run(_drive(emulator.host, emulator.port, bench, connections, duration))
        cpu = _cpu_seconds(pid) - cpu_before
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        if own:
            emulator.close()
    return BenchResult(
        streams=bench.streams,
        errors=bench.errors,
        seconds=seconds,
        streams_per_s=bench.streams / seconds if seconds else 0.0,
        emulator_cpu_s=cpu,
        streams_per_cpu_s=bench.streams / cpu if cpu else 0.0,
        tokens_per_stream=tokens,
        tokens_per_chunk=tokens_per_chunk,
        connections=connections,
        provider=provider,
        distinct_prompts=distinct_prompts,
    )
