"""Helpers for emulator tests: raw streamed requests, open-loop load, truth figures."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

import httpx
import orjson

from chatprobe.emulator import DEMO_KEY, Emulator
from chatprobe.sse import Comment, ServerSentEvent, SSEDecoder
from chatprobe.stats import percentile

OPENROUTER_MODEL = "google/gemini-2.0-flash-001"


class Answer(NamedTuple):
    status: int
    request_id: str  # X-Chatprobe-Request-Id: the truth record's request_id
    body: bytes


def chat_body(
    content: str = "Tell me about capacity.", *, stream: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "model": OPENROUTER_MODEL,
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
        **extra,
    }


def headers(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {DEMO_KEY}", "Accept-Encoding": "identity", **extra}


def post_raw(
    emu: Emulator,
    body: dict[str, Any],
    provider: str = "openrouter",
    **extra_headers: str,
) -> httpx.Response:
    """One request, the whole body read; no chatprobe client involved."""
    with httpx.Client(trust_env=False, timeout=30) as http:
        return http.post(
            emu.base_url(provider) + "/chat/completions",
            content=orjson.dumps(body),
            headers={**headers(**extra_headers), "Content-Type": "application/json"},
        )


def sse_events(raw: bytes) -> list[ServerSentEvent | Comment]:
    """Every event and comment of a raw SSE body, in order."""
    decoder = SSEDecoder()
    return decoder.decode(raw) + decoder.flush()


def sse_data(raw: bytes) -> list[str]:
    """The ``data`` of every event in a raw SSE body, in order."""
    return [e.data for e in sse_events(raw) if isinstance(e, ServerSentEvent)]


def chunks(raw: bytes) -> list[dict[str, Any]]:
    """The JSON chunks of a raw SSE body (``[DONE]`` left out)."""
    return [orjson.loads(d) for d in sse_data(raw) if d != "[DONE]"]


async def _open_loop(
    url: str,
    body: bytes,
    hdrs: dict[str, str],
    rate: float,
    count: int,
    seed: int,
    timeout: float,
) -> list[Answer]:
    rng = random.Random(seed)
    answers: list[Answer] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    async with httpx.AsyncClient(trust_env=False, timeout=timeout, limits=limits) as http:

        async def one() -> None:
            async with http.stream("POST", url, content=body, headers=hdrs) as response:
                data = b"".join([part async for part in response.aiter_raw()])
                request_id = response.headers.get("x-chatprobe-request-id", "")
                answers.append(Answer(response.status_code, request_id, data))

        tasks = []
        start = time.perf_counter()
        due = 0.0
        for _ in range(count):
            due += rng.expovariate(rate)
            delay = start + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    return answers


def open_loop(
    emu: Emulator,
    body: dict[str, Any],
    *,
    rate: float,
    count: int,
    seed: int = 1,
    timeout: float = 60.0,
    provider: str = "openrouter",
    **extra_headers: str,
) -> list[Answer]:
    """``count`` requests with Poisson arrivals at ``rate``/s; status, truth id and body of
    each, in the order they finished."""
    hdrs = {**headers(**extra_headers), "Content-Type": "application/json"}
    url = emu.base_url(provider) + "/chat/completions"
    return asyncio.run(_open_loop(url, orjson.dumps(body), hdrs, rate, count, seed, timeout))


def truth_ttft_ms(record: dict[str, Any]) -> float:
    return (record["t_first_content_ns"] - record["t_received_ns"]) / 1e6


def truth_itl_ms(record: dict[str, Any]) -> float:
    tokens = record["tokens_sent"]
    return (record["t_last_content_ns"] - record["t_first_content_ns"]) / 1e6 / (tokens - 1)


def p(values: Iterable[float], q: float) -> float:
    return percentile(sorted(values), q)


def wait_settled(emu: Emulator, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The truth once ``count`` records exist and none is in flight."""
    deadline = time.monotonic() + timeout
    while True:
        records = emu.truth()
        if len(records) >= count and all(r["outcome"] != "in_flight" for r in records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(records)} truth records, some still in flight")
        time.sleep(0.05)
