"""Fixtures for Python tests written with chatprobe's client, emulator and checks.

They are the plugin's override points, the pytest-recording way: redefine one in a
``conftest.py`` to change what the others get. Each setting is taken from, first to last:

1. the command line (``--chatprobe-provider``, ``--chatprobe-model``,
   ``--chatprobe-record-mode``, ``--chatprobe-live``, ``--chatprobe-emulator``,
   ``--chatprobe-cassette-dir``);
2. the ``chatprobe_config`` fixture (a dict with the keys ``provider``, ``model``);
3. the project's configuration (its first ``providers`` entry and ``models``);
4. the default: the first known profile and the profile's first model.

========================  =========  ==================================================
fixture                   scope      what it gives
========================  =========  ==================================================
``chatprobe_config``      session    ``{}``; return ``{"provider": ..., "model": ...}``
``chatprobe_profile``     session    the selected :class:`~chatprobe.profiles.ProviderProfile`
``chatprobe_model``       session    the selected model's canonical name
``chatprobe_client``      function   a :class:`~chatprobe.client.ChatClient` for the profile,
                                     replayed from ``<cassettes>/<provider>/tests/<module>/
                                     <test>--<model>.yaml`` (record with
                                     ``--chatprobe-record-mode once``), or live with
                                     ``--chatprobe-live``
``chatprobe_emulator``    session    a running :class:`~chatprobe.emulator.Emulator` serving
                                     every emulated profile (``.profile(name)`` points a
                                     profile at it)
========================  =========  ==================================================

A test whose mode needs a key that is not set is skipped, naming the variable; a replay
without its cassette fails, saying how to record it. Example::

    def test_counts_to_three(chatprobe_client, chatprobe_model):
        record = chatprobe_client.chat(
            {"model": chatprobe_client.profile.model(chatprobe_model).id,
             "messages": [{"role": "user", "content": "Count to 3."}], "max_tokens": 16}
        )
        assert record.ok, record.summary_line()

This module is imported with the plugin into every pytest run: nothing heavy at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from chatprobe.pytest_plugin.state import (
    project_of,
    runner_for,
    selected_models,
    selected_providers,
)

__all__ = [
    "chatprobe_client",
    "chatprobe_config",
    "chatprobe_emulator",
    "chatprobe_model",
    "chatprobe_profile",
]


@pytest.fixture(scope="session")
def chatprobe_config() -> dict[str, Any]:
    """Override point: ``{"provider": NAME|FILE, "model": ID}`` for chatprobe's fixtures
    (command-line options still win; see the module docstring)."""
    return {}


@pytest.fixture(scope="session")
def chatprobe_profile(request: pytest.FixtureRequest, chatprobe_config: dict[str, Any]) -> Any:
    """The provider profile the fixtures use: ``--chatprobe-provider`` (the first), else
    ``chatprobe_config["provider"]``, else the project's first provider, else the first
    known profile."""
    from chatprobe.profiles import list_profiles, load_profile

    config = request.config
    given = config.getoption("chatprobe_providers") or []
    if given:
        ref = next(iter(selected_providers(config).values()), given[0])
    elif chatprobe_config.get("provider"):
        ref = str(chatprobe_config["provider"])
    else:
        project = project_of(config)
        known = list_profiles()
        ref = project.providers[0] if project.providers else (known[0] if known else "")
    if not ref:
        raise pytest.UsageError("no provider profile found: give --chatprobe-provider FILE")
    return load_profile(ref)


@pytest.fixture(scope="session")
def chatprobe_model(
    request: pytest.FixtureRequest, chatprobe_config: dict[str, Any], chatprobe_profile: Any
) -> str:
    """The model the fixtures use: ``--chatprobe-model`` (the first), else
    ``chatprobe_config["model"]``, else the project's first model, else the profile's first."""
    given = request.config.getoption("chatprobe_models") or []
    configured = chatprobe_config.get("model")
    if not given and not configured:
        given = selected_models(request.config)
    name = given[0] if given else configured
    if name:
        return str(chatprobe_profile.model(str(name)).name)
    return str(next(iter(chatprobe_profile.models)))


def _cassette_for(
    request: pytest.FixtureRequest, cassette_dir: Path, provider: str, model: str
) -> Path:
    """``<cassettes>/<provider>/tests/<module path>/<test name>--<model>.yaml`` (like a suite
    case's ``<provider>/<suite>/<case>--<model>.yaml``)."""
    from chatprobe.suites.model import safe_filename

    module = Path(str(request.node.path)).with_suffix("")
    try:
        module = module.relative_to(request.config.rootpath)
    except ValueError:
        module = Path(module.name)
    name = safe_filename(request.node.name)
    return cassette_dir / provider / "tests" / module / f"{name}--{safe_filename(model)}.yaml"


@pytest.fixture
def chatprobe_client(
    request: pytest.FixtureRequest, chatprobe_profile: Any, chatprobe_model: str
) -> Iterator[Any]:
    """A :class:`~chatprobe.client.ChatClient` for ``chatprobe_profile`` in the session's
    mode (replay by default, record, live); see the module docstring."""
    from chatprobe.errors import CassetteError, MissingKeyError

    runner = runner_for(request.config)
    cassette = _cassette_for(
        request, runner.config.cassette_dir, chatprobe_profile.name, chatprobe_model
    )
    metadata = {
        "provider": chatprobe_profile.name,
        "model": chatprobe_model,
        "test": request.node.nodeid,
    }
    stack = ExitStack()
    skip = fail = ""
    try:
        client = stack.enter_context(
            runner.client(chatprobe_profile, cassette=cassette, metadata=metadata)
        )
    except MissingKeyError as exc:  # the mode needs a key that is not set
        skip = str(exc)
    except CassetteError as exc:  # replay without its recording
        fail = str(exc)
    if skip:
        pytest.skip(skip)
    if fail:
        pytest.fail(fail, pytrace=False)
    with stack:
        yield client


@pytest.fixture(scope="session")
def chatprobe_emulator() -> Iterator[Any]:
    """chatprobe's provider emulator, running for the session in a thread on a free port,
    serving every profile that can be emulated (not ``custom_endpoint`` ones)."""
    from chatprobe.emulator import Emulator, EmulatorConfig
    from chatprobe.profiles import emulated_profiles

    emulator = Emulator.in_thread(EmulatorConfig(providers=tuple(emulated_profiles()), seed=0))
    try:
        yield emulator
    finally:
        emulator.close()
