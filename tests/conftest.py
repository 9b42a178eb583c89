"""Fixtures every test module shares.

- ``cli``: runs the real command line (:func:`tests.cli_support.run_cli`) with results and
  profiles under the test's temporary folder, so no test writes into the repository.
- ``emulator``: the built-in provider emulator on 127.0.0.1, one per module. A module sets
  ``EMULATOR_CONFIG = EmulatorConfig(...)`` to choose providers, timing and faults; without
  it the emulator serves the three documented providers with their profile timing. A test
  that needs a fresh emulator of its own (state, schedules) overrides the fixture locally.
- ``tcp_pair``: a TCP connection on loopback as two gevent sockets ``(writer, reader)``
  (kernel receive stamps are a TCP feature; a socketpair has none).
- ``browser``: Debian's headless Chromium through playwright, for the report tests (skipped
  where Chromium is missing, failed in CI, which installs it).

Fake servers for what the emulator will not do (scripted byte timing, hostile replies) live
in :mod:`tests.fake_servers`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent.socket
import pytest

from chatprobe.emulator import Emulator, EmulatorConfig
from chatprobe.emulator.certs import Certificates, make_certificates
from tests.cli_support import ROOT, run_cli

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    """``cli("load", ..., cwd=..., env={...}, timeout=...)``: ``chatprobe`` in a subprocess.

    Results go to ``tmp_path/results`` unless the test's ``env`` says otherwise.
    """

    def run(
        *argv: str,
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        extra = {"CHATPROBE_RESULTS": str(tmp_path / "results"), **(env or {})}
        return run_cli(*argv, cwd=cwd, env=extra, timeout=timeout)

    return run


@pytest.fixture(scope="module")
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """The emulator in a thread of this process, configured by the module's ``EMULATOR_CONFIG``."""
    config = getattr(request.module, "EMULATOR_CONFIG", None) or EmulatorConfig()
    with Emulator.in_thread(config) as running:
        yield running


CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def certificates() -> Iterator[Certificates]:
    """A CA and a server certificate for 127.0.0.1 (files removed afterwards)."""
    files = make_certificates()
    yield files
    files.remove()


@pytest.fixture
def tcp_pair() -> Iterator[tuple[gevent.socket.socket, gevent.socket.socket]]:
    with gevent.socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client = gevent.socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    client.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
    with client, accepted:
        yield client, accepted


def _have_chromium() -> bool:
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not _have_chromium():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI (.ci/run installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI runs this test")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()
