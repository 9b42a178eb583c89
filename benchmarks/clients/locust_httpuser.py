"""Baseline: locust's ``HttpUser`` (requests) reading the stream the way a naive tool does.

``post(..., stream=True)`` then ``iter_lines()`` and ``json.loads`` of every ``data:`` line;
TTFT is stamped when a parsed line first shows content. This is the reference point of B1:
the issue's figures put it at about 400 streams/s on one core at 64 concurrent streams.
Deliberately independent of :mod:`chatprobe.sse` (it is the thing chatprobe is compared
against, not a second decoder inside chatprobe).
"""

from __future__ import annotations

import json
import time

from locust import HttpUser, constant, task

from benchmarks.clients import locust_driver
from benchmarks.clients.protocol import parse_args, pin

REQUEST_ID = "x-chatprobe-request-id"


class NaiveStreamUser(HttpUser):
    wait_time = constant(0)

    @task
    def stream(self) -> None:
        args = locust_driver.ARGS
        assert args is not None
        locust_driver.RESULT.started += 1  # type: ignore[union-attr]
        t0 = time.perf_counter_ns()
        t_first = t_last = None
        n = 0
        ok = False
        rid = None
        try:
            r = self.client.post(
                args.url, data=args.body, headers=args.headers, stream=True, name="stream"
            )
            try:
                rid = r.headers.get(REQUEST_ID)
                for raw in r.iter_lines():
                    if not raw.startswith(b"data:"):
                        continue
                    data = raw[5:].strip()
                    if data == b"[DONE]":
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
            finally:
                r.close()
        except Exception as exc:  # a baseline counts failures, it does not stop
            notes = locust_driver.RESULT.notes  # type: ignore[union-attr]
            if len(notes) < 5:
                notes.append(f"{type(exc).__name__}: {exc}"[:200])
        locust_driver.record([rid, None, t0, t_first, t_last, time.perf_counter_ns(), n, ok])


def main() -> None:
    args = parse_args()
    pin(args.cpu)
    locust_driver.run("locust-httpuser", NaiveStreamUser, args).write()


if __name__ == "__main__":
    main()
