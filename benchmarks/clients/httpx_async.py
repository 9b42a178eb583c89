"""Baseline: an asyncio httpx client written the way most load tools write it.

``AsyncClient.stream`` + ``aiter_lines`` + ``json.loads`` on every ``data:`` line, one task
per concurrent stream. The connection pool is sized to the concurrency (httpx's default cap
of 100 connections would otherwise queue requests inside the client at 200 streams, a
hidden limit that shows up as TTFT). The timing stamps are taken where such a tool takes
them: when the parsed line shows content.

This is a baseline to compare chatprobe against, not part of chatprobe: it deliberately does
the naive thing rather than reuse :mod:`chatprobe.sse`.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from benchmarks.clients.protocol import ClientArgs, Result, parse_args, pin

REQUEST_ID = "x-chatprobe-request-id"


async def one_stream(
    client: httpx.AsyncClient, args: ClientArgs, result: Result, t_sched: int | None
) -> None:
    t0 = time.perf_counter_ns()
    t_first = t_last = None
    n = 0
    rid = None
    ok = False
    try:
        async with client.stream("POST", args.url, content=args.body, headers=args.headers) as r:
            rid = r.headers.get(REQUEST_ID)
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    ok = r.status_code < 300
                    continue
                chunk = json.loads(data)
                for choice in chunk.get("choices") or ():
                    if (choice.get("delta") or {}).get("content"):
                        now = time.perf_counter_ns()
                        if t_first is None:
                            t_first = now
                        t_last = now
                        n += 1
    except (httpx.HTTPError, ValueError) as exc:
        result.notes.append(type(exc).__name__) if len(result.notes) < 5 else None
    result.samples.append([rid, t_sched, t0, t_first, t_last, time.perf_counter_ns(), n, ok])


async def closed_loop(
    client: httpx.AsyncClient, args: ClientArgs, result: Result, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        result.started += 1
        await one_stream(client, args, result, None)


async def open_loop(
    client: httpx.AsyncClient, args: ClientArgs, result: Result, stop: asyncio.Event
) -> None:
    """Arrivals at a constant rate, independent of responses; lag = t0 - t_sched."""
    assert args.rate
    interval = int(1e9 / args.rate)
    start = time.perf_counter_ns()
    k = 0
    tasks: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        t_sched = start + k * interval
        delay = (t_sched - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        result.started += 1
        task = asyncio.create_task(one_stream(client, args, result, t_sched))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    for task in list(tasks):
        task.cancel()


async def run(args: ClientArgs) -> Result:
    result = Result("httpx-async", args)
    limits = httpx.Limits(
        max_connections=args.concurrency * 2, max_keepalive_connections=args.concurrency * 2
    )
    timeout = httpx.Timeout(30.0)
    stop = asyncio.Event()
    async with httpx.AsyncClient(limits=limits, timeout=timeout, http2=False) as client:
        if args.rate:
            workers = [asyncio.create_task(open_loop(client, args, result, stop))]
        else:
            workers = [
                asyncio.create_task(closed_loop(client, args, result, stop))
                for _ in range(args.concurrency)
            ]
        await asyncio.sleep(args.warmup)
        result.window_start()
        await asyncio.sleep(args.duration)
        result.window_end()
        stop.set()
        await asyncio.wait(workers, timeout=5.0)
        for w in workers:
            w.cancel()
    return result


def main() -> None:
    args = parse_args()
    pin(args.cpu)
    asyncio.run(run(args)).write()


if __name__ == "__main__":
    main()
