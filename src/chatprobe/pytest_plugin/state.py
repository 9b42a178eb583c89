"""The plugin's per-session state, kept in pytest's stash: one module both the hooks
(:mod:`~chatprobe.pytest_plugin.plugin`), the items (:mod:`~chatprobe.pytest_plugin.items`)
and the fixtures (:mod:`~chatprobe.pytest_plugin.fixtures`) read, so none imports another's
module for it.

Like the hooks module, it imports nothing but pytest and the standard library at import time.

Settings follow one precedence: command-line option > the project's configuration
(``chatprobe.toml`` / ``[tool.chatprobe]``) > built-in default; chatprobe's fixtures put
their ``chatprobe_config`` fixture between the two (see
:mod:`~chatprobe.pytest_plugin.fixtures`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "ORDER",
    "PROJECT",
    "RESULTS",
    "RUNNER",
    "SELECTED",
    "TIMEOUTS",
    "add_result",
    "custom_profiles",
    "project_of",
    "project_timeouts",
    "runner_for",
    "selected_models",
    "selected_providers",
    "transport_options",
]

RUNNER = pytest.StashKey[Any]()
"""The session's suite runner (created on first use by :func:`runner_for`)."""
RESULTS = pytest.StashKey[list[tuple[str, dict[str, Any]]]]()
"""Every case result of the session: (node id, ``contract.json`` entry), as reported."""
ORDER = pytest.StashKey[list[str]]()
"""Node ids in collection order (xdist's controller learns them from its workers)."""
SELECTED = pytest.StashKey[dict[str, str]]()
"""Provider choices: profile name -> the name or profile file to load."""
TIMEOUTS = ("connect", "first_byte", "idle", "total")
"""= :data:`chatprobe.transport.TIMEOUT_FIELDS` (a test checks), named here so the plugin
can declare ``--chatprobe-connect-timeout`` and the rest without importing the transport."""
PROJECT = pytest.StashKey[Any]()
"""The :class:`chatprobe.project.Project` of the session's rootdir."""


def project_of(config: pytest.Config) -> Any:
    """The project pytest runs in: found from ``$CHATPROBE_PROJECT`` or the rootdir upwards
    (:func:`chatprobe.project.find_project`); read once per session."""
    project = config.stash.get(PROJECT, None)
    if project is None:
        from chatprobe.errors import ChatprobeError
        from chatprobe.project import find_project

        try:
            project = find_project(config.rootpath)
        except ChatprobeError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[PROJECT] = project
    return project


def selected_providers(config: pytest.Config) -> dict[str, str]:
    """Selected providers: profile name -> the name or profile file given (empty: all)."""
    return config.stash.get(SELECTED, {})


def selected_models(config: pytest.Config) -> list[str]:
    """``--chatprobe-model`` choices, else the project's ``models`` (empty: each case's)."""
    given = config.getoption("chatprobe_models") or []
    if given:
        return list(given)
    project = config.stash.get(PROJECT, None)
    return list(project.models) if project is not None else []


def custom_profiles(config: pytest.Config) -> list[str]:
    """The selected providers that suites cannot name (profile files and the project's own
    profiles): they run every suite's generic cases (:mod:`chatprobe.suites.loader`)."""
    return [ref for name, ref in selected_providers(config).items() if ref != name]


def transport_options(config: pytest.Config) -> Any:
    """The transport options given (:class:`chatprobe.transport.TransportOptions`)."""
    from chatprobe.transport import TransportOptions

    given = {n: config.getoption(f"chatprobe_{n}_timeout") for n in TIMEOUTS}
    return TransportOptions(
        ca_bundle=config.getoption("chatprobe_ca_bundle"),
        insecure=bool(config.getoption("chatprobe_insecure")),
        timeouts={n: v for n, v in given.items() if v is not None},
    )


def runner_for(config: pytest.Config) -> Any:
    """The session's :class:`~chatprobe.suites.runner.Runner` (created on first use)."""
    runner = config.stash.get(RUNNER, None)
    if runner is None:
        from chatprobe.paths import builtin
        from chatprobe.suites.runner import RunConfig, Runner

        project = project_of(config)
        cassette_dir = config.getoption("chatprobe_cassette_dir")
        transport = transport_options(config)
        settings: dict[str, Any] = {}
        if not cassette_dir:  # the project's cassettes, then chatprobe's own for its suites
            settings["builtin_suites"] = builtin("suites")
            settings["builtin_cassettes"] = builtin("cassettes")
        runner = Runner(
            RunConfig(
                record_mode=config.getoption("chatprobe_record_mode") or "none",
                live=bool(config.getoption("chatprobe_live")),
                emulator=bool(config.getoption("chatprobe_emulator")),
                cassette_dir=Path(cassette_dir).resolve() if cassette_dir else project.cassettes,
                timeouts=transport.timeouts_over(project_timeouts(project)),
                tls=transport.tls(),
                **settings,
            )
        )
        config.stash[RUNNER] = runner
    return runner


def project_timeouts(project: Any) -> Any:
    """The project's ``timeouts`` (durations, a scenario's keys) over the transport's
    defaults: the base that command-line timeouts then override."""
    from chatprobe.transport import DEFAULT_TIMEOUTS, Timeouts

    if not project.timeouts:
        return DEFAULT_TIMEOUTS
    return Timeouts.from_mapping(project.timeouts, where=f"{project.shown_config}: timeouts")


def add_result(item: pytest.Item, entry: dict[str, Any]) -> None:
    """Attach a case's ``contract.json`` entry to the item; the plugin puts it on the call
    report, so it reaches the results file the same way serially and from xdist workers."""
    item.stash[_ENTRY] = entry


def entry_of(item: pytest.Item) -> dict[str, Any] | None:
    """The entry :func:`add_result` attached to ``item``, if any."""
    return item.stash.get(_ENTRY, None)


_ENTRY = pytest.StashKey[dict[str, Any]]()
