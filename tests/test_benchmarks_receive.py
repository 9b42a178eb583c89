"""Arrival stamps of the load user's reads (``chatprobe.load.receive``), found by the benchmarks.

The point of kernel receive timestamps: an event's time must not depend on how busy the
client was when the bytes arrived. The child process (locust's gevent patching stays out of
pytest) starts an exchange; once the headers are in, a greenlet hogs the client without
yielding while the server sends the first token. With kernel stamps the token is dated
before the hog ended (when it arrived); with userspace stamps, only after (when the client
got to it). No speed is asserted: only the order of instants hundreds of ms apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from chatprobe.load.receive import KERNEL_TIMESTAMPS
from chatprobe.paths import project_root
from tests.fake_servers.scripted import ScriptedServer, chunk, content_chunk, sse, stream_head

CHILD = r"""
import json, sys, time
import gevent
from chatprobe.load import receive
from chatprobe.load.exchange import RequestTemplate, connection_pool, stream_exchange
from chatprobe.record import RequestRecord
from chatprobe.transport import Timeouts

case = json.loads(sys.stdin.read())
receive.KERNEL_TIMESTAMPS = case["kernel"]
hog = {}

def busy(seconds):
    while record.t_headers_ns is None:  # start once the exchange waits for the body
        gevent.sleep(0.001)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # never yields: the client is busy elsewhere
        pass
    hog["end_ns"] = time.perf_counter_ns()

timeouts = Timeouts(connect=5, first_byte=5, idle=5, total=10)
request = RequestTemplate(case["url"] + "/chat/completions", {})
pool = connection_pool(request, size=1, timeouts=timeouts)
record = RequestRecord(stream=True)
gevent.spawn(busy, 0.6)
stream_exchange(pool, request, b"{}", record, timeouts=timeouts)
record.finish()
print(json.dumps({
    "error": record.error_class and record.error_class.value, "text": record.text,
    "tokens": record.output_tokens, "done": record.done, "events": len(record.events),
    "t_first": record.t_first_token_ns, "t_last": record.t_last_token_ns,
    "hog_end": hog.get("end_ns"), "t0": record.t0_ns, "t_headers": record.t_headers_ns,
    "times": [e.t_ns for e in record.events], "clock": record.clock,
}))
"""


def _script() -> list[tuple[str, Any]]:
    role = {**content_chunk(""), "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    final = {**content_chunk(""), "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    final["choices"][0]["finish_reason"] = "stop"
    return [
        ("send", stream_head()),
        ("send", chunk(sse(role))),
        ("sleep", 0.2),  # the first token arrives while the client is busy (0 .. 0.6 s)
        ("send", chunk(sse(content_chunk("Hello")))),
        ("sleep", 0.9),  # the second well after
        ("send", chunk(sse(content_chunk(" world")) + sse(final) + sse("[DONE]"))),
        ("send", chunk(b"")),
    ]


def _run(server: ScriptedServer, kernel: bool) -> dict[str, Any]:
    case = {"name": "busy", "url": server.url("busy"), "kernel": kernel}
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(case),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=project_root(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server() -> Any:
    srv = ScriptedServer()
    srv.scripts["busy"] = _script
    yield srv
    srv.close()


def test_userspace_stamp_waits_for_a_busy_client(server: ScriptedServer) -> None:
    out = _run(server, kernel=False)
    assert out["error"] is None and out["text"] == "Hello world" and out["done"]
    assert out["t_first"] >= out["hog_end"], out  # stamped when the client got to it
    assert out["clock"] == "user"


@pytest.mark.skipif(not KERNEL_TIMESTAMPS, reason="kernel receive timestamps need Linux")
def test_kernel_stamp_dates_the_token_when_it_arrived(server: ScriptedServer) -> None:
    out = _run(server, kernel=True)
    assert out["error"] is None and out["text"] == "Hello world" and out["done"]
    assert out["tokens"] == 2 and out["events"] == 5
    assert out["t_headers"] < out["t_first"] < out["hog_end"], out  # on arrival, in the hog
    assert out["t_first"] < out["t_last"]
    assert out["clock"] == "kernel"
