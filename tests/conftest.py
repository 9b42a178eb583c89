"""Fixtures every test module shares.

- ``cli``: runs the real command line (:func:`tests.cli_support.run_cli`) with results and
  profiles under the test's temporary folder, so no test writes into the repository.
- ``emulator``: the built-in provider emulator on 127.0.0.1, one per module. A module sets
  ``EMULATOR_CONFIG = EmulatorConfig(...)`` to choose providers, timing and faults; without
  it the emulator serves the three documented providers with their profile timing. A test
  that needs a fresh emulator of its own (state, schedules) overrides the fixture locally.

Fake servers for what the emulator will not do (scripted byte timing, hostile replies) live
in :mod:`tests.fake_servers`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatprobe.emulator import Emulator, EmulatorConfig
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
