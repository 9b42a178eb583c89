"""Helpers for tests that drive `chatprobe load` in a child process."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import orjson


def requests_so_far(base: Path, pattern: str = "status.json") -> int:
    """Requests a running load run reports in its ``status.json`` (0 until it has one)."""
    for status in base.glob(pattern):
        try:
            return int(orjson.loads(status.read_bytes())["requests"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return 0
    return 0


def wait_for_requests(
    base: Path,
    n: int,
    *,
    pattern: str = "status.json",
    timeout_s: float = 40,
    child: subprocess.Popen[str] | None = None,
) -> int:
    """Poll until the run has made ``n`` requests or ``timeout_s`` passes; return the count.

    With ``child``, a child that exits early fails at once with its output.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = requests_so_far(base, pattern)
        if count >= n:
            return count
        if child is not None:
            assert child.poll() is None, child.communicate()
        time.sleep(0.2)
    return requests_so_far(base, pattern)


# The load user's exchange runs in a child process: importing locust monkey-patches the
# whole interpreter with gevent. One child plays every sequence it is given, each over one
# connection pool (so keep-alive reuse happens as in a run), and prints one JSON line per
# request.
EXCHANGE_CHILD = r"""
import json, sys
from chatprobe.load.exchange import RequestTemplate, connection_pool, stream_exchange
from chatprobe.record import RequestRecord
from chatprobe.transport import Timeouts, TLSConfig, request_headers

for sequence in json.loads(sys.stdin.read()):
    timeouts = Timeouts(**sequence["timeouts"])
    tls = TLSConfig(**sequence.get("tls", {}))
    pools = {}
    for index, url in enumerate(sequence["urls"]):
        headers = request_headers(stream=True, api_key="sk-test-secret-0123456789")
        request = RequestTemplate(url, headers)
        key = (request.tls, request.host, request.port)
        pool = pools.get(key) or pools.setdefault(
            key, connection_pool(request, size=1, timeouts=timeouts, tls=tls))
        record = RequestRecord(stream=True)
        received = stream_exchange(pool, request, b'{"model": "m"}', record, timeouts=timeouts)
        record.finish()
        print(json.dumps({
            "sequence": sequence["name"], "index": index, "received": received,
            "error_class": record.error_class and record.error_class.value,
            "detail": record.error_detail, "status": record.status, "text": record.text,
            "clock": record.clock, "anomalies": record.anomalies, "done": record.done,
            "request_id": record.request_id, "timing_valid": record.timing_valid,
            "t0": record.t0_ns, "t_headers": record.t_headers_ns,
            "t_first": record.t_first_token_ns, "t_last": record.t_last_token_ns,
            "t_end": record.t_end_ns, "content_times": record.content_times_ns,
            "ttfb_ms": record.ttfb_ms, "ttft_ms": record.ttft_ms, "e2e_ms": record.e2e_ms,
            "itl_ms": record.itl_ms, "total_ms": record.total_ms,
        }), flush=True)
    for pool in pools.values():
        pool.close()
"""


def load_exchanges(sequences: list[dict[str, Any]], *, timeout_s: float = 120) -> list[Any]:
    """Run ``sequences`` (``{"name", "urls", "timeouts"[, "tls"]}``) through the load user's
    exchange in a child process; one result dict per request, in order."""
    import json
    import sys

    from chatprobe.paths import project_root

    done = subprocess.run(
        [sys.executable, "-c", EXCHANGE_CHILD],
        input=json.dumps(sequences),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=project_root(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]
