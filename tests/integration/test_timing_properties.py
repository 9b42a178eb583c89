"""Property: any timing of a stream's bytes gives a record that satisfies the invariants,
on both transports, against a real scripted server on 127.0.0.1 (plain HTTP and TLS).

0 <= TTFB <= TTFT <= E2E <= total, ITL >= 0, chunk gaps >= 0, never an "impossible timing"
anomaly, and the text and class the bytes imply (``tests/stream_timings.py``), whether body
bytes come with the head, the head is split, events coalesce into one read or arrive late,
and lines end in LF, CRLF or a lone CR. The load user's exchange runs in a locust child
(gevent), where a greenlet that hogs the client at a drawn moment makes reads late, which is
when kernel receive stamps and user-space stamps drift apart: one record must never mix them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatprobe.client import ChatClient
from chatprobe.emulator.certs import Certificates
from chatprobe.paths import project_root
from chatprobe.profiles import custom_profile
from chatprobe.transport import Timeouts, TLSConfig
from tests.fake_servers.scripted import ScriptedServer
from tests.stream_timings import Answer, answers, check_record

EXAMPLES = 40
TIMEOUTS = Timeouts(connect=5, first_byte=5, idle=5, total=20)


@pytest.fixture(scope="module")
def servers(certificates: Certificates) -> Iterator[dict[bool, ScriptedServer]]:
    plain, tls = ScriptedServer(), ScriptedServer(tls=certificates)
    yield {False: plain, True: tls}
    plain.close()
    tls.close()


def test_httpx_records_hold_the_invariants(
    servers: dict[bool, ScriptedServer], certificates: Certificates
) -> None:
    trust = TLSConfig(ca_bundles=(str(certificates.ca_file),))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(answer=answers(), tls=st.booleans())
    def prop(answer: Answer, tls: bool) -> None:
        profile = custom_profile(servers[tls].url("play"), "TEST_KEY", name="scripted")
        with ChatClient(profile, api_key="k", timeouts=TIMEOUTS, tls=trust) as client:
            record = client.chat({"messages": [], "stream": True}, raw_body=answer.body())
        assert record.clock == "user"
        check_record(record, answer)

    prop()


CHILD = r"""
import sys, time
import gevent
from hypothesis import HealthCheck, given, settings, strategies as st
from chatprobe.load.receive import KERNEL_TIMESTAMPS
from chatprobe.load.exchange import RequestTemplate, connection_pool, stream_exchange
from chatprobe.record import RequestRecord
from chatprobe.transport import Timeouts, TLSConfig, request_headers
from tests.stream_timings import answers, check_record

plain_url, tls_url, ca_file, examples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
timeouts = Timeouts(connect=5, first_byte=5, idle=5, total=20)
tls = TLSConfig(ca_bundles=(ca_file,))
headers = request_headers(stream=True, api_key="k")
requests = {u: RequestTemplate(u + "/chat/completions", headers) for u in (plain_url, tls_url)}
pools = {u: connection_pool(r, size=1, timeouts=timeouts, tls=tls) for u, r in requests.items()}
clocks = set()

def hog(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # never yields: the client is busy elsewhere
        pass

@settings(max_examples=examples, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(answer=answers(), use_tls=st.booleans(),
       late=st.sampled_from([None, 0.0, 0.001, 0.003, 0.01]))
def prop(answer, use_tls, late):
    url = tls_url if use_tls else plain_url
    busy = gevent.spawn_later(late, hog, 0.015) if late is not None else None
    record = RequestRecord(stream=True)
    stream_exchange(pools[url], requests[url], answer.body(), record, timeouts=timeouts)
    if busy is not None:
        busy.join()
    record.finish()
    clocks.add(("tls" if use_tls else "plain", record.clock))
    check_record(record, answer)

prop()
print("clocks", sorted(clocks), "kernel", KERNEL_TIMESTAMPS)
"""


def test_load_user_records_hold_the_invariants(
    servers: dict[bool, ScriptedServer], certificates: Certificates
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            servers[False].url("play"),
            servers[True].url("play"),
            str(certificates.ca_file),
            str(EXAMPLES),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=project_root(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = done.stdout.strip().splitlines()[-1]
    if "kernel True" in line:  # on Linux both transports' exchanges used kernel stamps
        assert "('plain', 'kernel')" in line and "('tls', 'kernel')" in line, line
