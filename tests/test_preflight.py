"""Preflight: a live check, load or run against an endpoint that cannot be reached stops in
one line with exit 2, before pytest or locust start; any HTTP answer passes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chatprobe.preflight import UnreachableError, base_of, preflight
from tests.fake_servers.fixed import FixedServer, dead_port
from tests.reliability_support import run_cli


def test_base_of_a_chat_url() -> None:
    assert base_of("http://h:1/v1/chat/completions") == "http://h:1/v1"
    assert base_of("http://h:1/v1/") == "http://h:1/v1"


def test_a_refused_port_is_named_in_one_line() -> None:
    port = dead_port()
    with pytest.raises(UnreachableError) as caught:
        preflight([f"http://127.0.0.1:{port}/v1/chat/completions"])
    assert str(caught.value) == f"cannot connect to http://127.0.0.1:{port}/v1: connection refused"


def test_any_http_answer_passes_and_each_endpoint_is_probed_once() -> None:
    with FixedServer(405) as server:
        preflight([server.url(), server.url() + "/chat/completions", server.url() + "/"])
        assert sum(server.counts.values()) == 1 and server.counts["GET"] == 1


def test_tls_to_a_plain_http_server_is_a_handshake_failure() -> None:
    with FixedServer(404) as server, pytest.raises(UnreachableError, match="TLS handshake"):
        preflight([f"https://127.0.0.1:{server.port}/v1"])


def test_an_unknown_host_is_a_dns_failure() -> None:
    with pytest.raises(UnreachableError, match=r"host name not resolved \(DNS\)"):
        preflight(["http://no-such-host.invalid/v1"])


COMMANDS = {
    "check": ("check", "--live"),
    "load": ("load", "--duration", "5s"),
    "run": ("run", "--duration", "5s"),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_dead_url_stops_each_command_in_one_line(tmp_path: Path, command: str) -> None:
    url = f"http://127.0.0.1:{dead_port()}/v1"
    started = time.monotonic()
    done = run_cli(
        *COMMANDS[command],
        *("--base-url", url, "--api-key-env", "PREFLIGHT_KEY", "--model", "m"),
        env={"PREFLIGHT_KEY": "preflight-key-123", "CHATPROBE_RESULTS": str(tmp_path / "r")},
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert lines == [f"chatprobe: error: cannot connect to {url}: connection refused"], lines
    assert elapsed < 20, elapsed  # design target 5 s; generous on a busy machine
    results = tmp_path / "r"
    assert not results.exists() or not any(p.is_dir() for p in results.iterdir())
