"""The plugin's per-session state, kept in pytest's stash: one module both the hooks
(:mod:`~chatprobe.pytest_plugin.plugin`) and the items (:mod:`~chatprobe.pytest_plugin.items`)
read, so neither imports the other's module for it.

Like the hooks module, it imports nothing but pytest and the standard library at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "RESULTS",
    "RUNNER",
    "SELECTED",
    "add_result",
    "custom_profiles",
    "runner_for",
    "selected_providers",
]

RUNNER = pytest.StashKey[Any]()
"""The session's suite runner (created on first use by :func:`runner_for`)."""
RESULTS = pytest.StashKey[list[Any]]()
"""Every case result of the session, in order (written to ``--chatprobe-results``)."""
SELECTED = pytest.StashKey[dict[str, str]]()
"""``--provider`` choices: profile name -> the name or profile file given."""


def selected_providers(config: pytest.Config) -> dict[str, str]:
    """``--provider`` choices: profile name -> the name or profile file given (empty: all)."""
    return config.stash.get(SELECTED, {})


def custom_profiles(config: pytest.Config) -> list[str]:
    """The profile files among the ``--provider`` choices (custom providers)."""
    return [ref for name, ref in selected_providers(config).items() if ref != name]


def runner_for(config: pytest.Config) -> Any:
    """The session's :class:`~chatprobe.suites.runner.Runner` (created on first use)."""
    runner = config.stash.get(RUNNER, None)
    if runner is None:
        from chatprobe.suites.runner import RunConfig, Runner

        cassette_dir = config.getoption("chatprobe_cassette_dir")
        runner = Runner(
            RunConfig(
                record_mode=config.getoption("chatprobe_record_mode"),
                live=bool(config.getoption("chatprobe_live")),
                emulator=bool(config.getoption("chatprobe_emulator")),
                cassette_dir=Path(cassette_dir).resolve()
                if cassette_dir
                else config.rootpath / "cassettes",
            )
        )
        config.stash[RUNNER] = runner
    return runner


def add_result(config: pytest.Config, result: Any) -> None:
    config.stash[RESULTS].append(result)
