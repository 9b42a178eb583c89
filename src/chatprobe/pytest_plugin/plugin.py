"""pytest hooks for chatprobe's YAML contract suites (registered by the ``pytest11`` entry point
named ``chatprobe``; ``-p no:chatprobe`` turns it off).

This module is imported into *every* pytest run, so it imports nothing but pytest, the
standard library and light chatprobe modules (:mod:`~chatprobe.pytest_plugin.state`,
:mod:`~chatprobe.pytest_plugin.fixtures`, and :mod:`chatprobe.cassettes` for its record
modes: vcrpy itself loads only when a cassette is used); suites, checks, vcrpy and the
emulator load only when a suite file is collected or a fixture used.

**When it collects.** Only in a chatprobe project (a ``chatprobe.toml`` or ``[tool.chatprobe]``
found from the rootdir upwards, or ``$CHATPROBE_PROJECT``), where the ``*.yaml``/``*.yml``
files below the project's ``paths.suites`` are suites; or when asked: ``--chatprobe`` (the
rootdir's ``suites/`` folder, as if it were a project) or ``--chatprobe-suites PATH``. An
unrelated project's ``suites/ci.yaml`` is never touched. One item per case x provider x
model::

    suites/basic.yaml::hello[aimlapi-gemini-2.0-flash-exp]

**Options** (group "chatprobe", every one prefixed, so pytest-recording's ``--record-mode``
and chatprobe's live side by side): ``--chatprobe``, ``--chatprobe-provider NAME|FILE`` and
``--chatprobe-model ID`` (repeatable, comma-separated; a profile file or a project profile
runs every suite's generic cases, see :mod:`chatprobe.suites.loader`),
``--chatprobe-record-mode`` (``none`` by default: replay only), ``--chatprobe-live`` (no
cassettes), ``--chatprobe-emulator`` (record or run live against the built-in emulator even
with a key set), ``--chatprobe-cassette-dir``, ``--chatprobe-suites``,
``--chatprobe-results`` (write ``contract.json``), ``--chatprobe-ca-bundle``/
``--chatprobe-insecure`` and ``--chatprobe-connect-timeout``/``--chatprobe-first-byte-timeout``/
``--chatprobe-idle-timeout``/``--chatprobe-total-timeout`` (the transport policy,
:mod:`chatprobe.transport`). Precedence: option > the project's
configuration (``providers``, ``models``, ``paths.cassettes``, ``timeouts``) > default.

**Results under xdist.** Each case's ``contract.json`` entry travels on its call report, so
``pytest -n 2`` writes the same file as a serial run: the controller (or the one process)
gathers the entries from the reports, orders them as collected and writes the file in
``pytest_sessionfinish``; workers write nothing.

Fixtures for Python tests (``chatprobe_config``, ``chatprobe_profile``, ``chatprobe_model``,
``chatprobe_client``, ``chatprobe_emulator``): :mod:`~chatprobe.pytest_plugin.fixtures`.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from chatprobe.cassettes import RECORD_MODES
from chatprobe.pytest_plugin.fixtures import (
    chatprobe_client,
    chatprobe_config,
    chatprobe_emulator,
    chatprobe_model,
    chatprobe_profile,
)
from chatprobe.pytest_plugin.state import (
    ORDER,
    PROJECT,
    RESULTS,
    RUNNER,
    SELECTED,
    TIMEOUTS,
    entry_of,
    project_of,
    transport_options,
)

__all__ = [
    "chatprobe_client",
    "chatprobe_config",
    "chatprobe_emulator",
    "chatprobe_model",
    "chatprobe_profile",
]

_ACTIVE = pytest.StashKey[bool]()
_ROOTS = pytest.StashKey[list[Path]]()
_GATHERER = "chatprobe-results"
_REPORT_KEY = "chatprobe_result"  # the attribute that carries a case's entry on its report


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated values, in order, each once."""
    items = (item.strip() for value in values or () for item in value.split(","))
    return list(dict.fromkeys(item for item in items if item))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatprobe", "chatprobe contract suites")
    group.addoption(
        "--chatprobe",
        action="store_true",
        dest="chatprobe",
        help="collect the rootdir's suites/ even outside a chatprobe project",
    )
    group.addoption(
        "--chatprobe-provider",
        action="append",
        default=[],
        dest="chatprobe_providers",
        metavar="NAME|FILE",
        help="only run suite cases for this provider (repeatable, comma-separated; default: "
        "the project's providers); a profile file or a project profile runs every suite's "
        "generic cases",
    )
    group.addoption(
        "--chatprobe-model",
        action="append",
        default=[],
        dest="chatprobe_models",
        metavar="ID",
        help="only run suite cases for this canonical model name (repeatable, comma-separated)",
    )
    group.addoption(
        "--chatprobe-record-mode",
        choices=RECORD_MODES,
        default=None,
        dest="chatprobe_record_mode",
        help="cassette record mode: none (replay only, default), once, new_episodes, all",
    )
    group.addoption(
        "--chatprobe-live",
        action="store_true",
        dest="chatprobe_live",
        help="send requests for real, without cassettes (needs the provider's key)",
    )
    group.addoption(
        "--chatprobe-emulator",
        action="store_true",
        dest="chatprobe_emulator",
        help="record or run live against the built-in provider emulator, even with a key set",
    )
    group.addoption(
        "--chatprobe-cassette-dir",
        default=None,
        dest="chatprobe_cassette_dir",
        metavar="DIR",
        help="cassette directory (default: the project's paths.cassettes)",
    )
    group.addoption(
        "--chatprobe-suites",
        action="append",
        default=[],
        dest="chatprobe_suites",
        metavar="PATH",
        help="also collect suite files from this file or directory (repeatable)",
    )
    group.addoption(
        "--chatprobe-results",
        default=None,
        dest="chatprobe_results",
        metavar="FILE",
        help="write the contract results (contract.json format) to FILE",
    )
    # transport (chatprobe.transport): trust, and the four timeouts as durations
    group.addoption(
        "--chatprobe-ca-bundle",
        default=None,
        dest="chatprobe_ca_bundle",
        metavar="PATH",
        help="CA certificates to trust (default: $SSL_CERT_FILE, $REQUESTS_CA_BUNDLE, system)",
    )
    group.addoption(
        "--chatprobe-insecure",
        action="store_true",
        dest="chatprobe_insecure",
        help="do not verify TLS certificates",
    )
    for name in TIMEOUTS:
        group.addoption(
            f"--chatprobe-{name.replace('_', '-')}-timeout",
            default=None,
            dest=f"chatprobe_{name}_timeout",
            metavar="DURATION",
            help=f"{name.replace('_', ' ')} timeout, e.g. 2s or none (chatprobe.transport)",
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chatprobe: a contract case collected from a suite YAML file"
    )
    config.stash[RESULTS] = []
    config.stash[ORDER] = []
    config.pluginmanager.register(_Gatherer(config), _GATHERER)
    config.stash[_ACTIVE] = _is_active(config)
    if config.stash[_ACTIVE]:
        project_of(config)  # a broken configuration is a usage error, before collection
    config.stash[_ROOTS] = _suite_roots(config)
    _check_options(config)
    # Suite paths given with --chatprobe-suites are collected as if named on the command line.
    for extra in config.getoption("chatprobe_suites") or ():
        if extra not in config.args:
            config.args.append(extra)


def _is_active(config: pytest.Config) -> bool:
    """Collect suites only in a chatprobe project or when asked (module docstring)."""
    if config.getoption("chatprobe") or config.getoption("chatprobe_suites"):
        return True
    import os

    from chatprobe.project import PROJECT_ENV, find_config

    return bool(os.environ.get(PROJECT_ENV)) or find_config(config.rootpath) is not None


def _check_options(config: pytest.Config) -> None:
    """Unknown provider/model names and contradictory modes are usage errors; the selected
    providers (option, else the project's) are resolved once, into the stash."""
    live = config.getoption("chatprobe_live")
    if live and (config.getoption("chatprobe_record_mode") or "none") != "none":
        raise pytest.UsageError(
            "--chatprobe-live sends requests without cassettes; drop --chatprobe-record-mode"
        )
    providers = _split(config.getoption("chatprobe_providers"))
    models = _split(config.getoption("chatprobe_models"))
    config.option.chatprobe_models = models
    where = "--chatprobe-provider"
    if not providers and config.stash[_ACTIVE]:
        project = project_of(config)
        providers = list(project.providers)
        where = f"{project.shown_config}: providers" if project.config else where
        models = models or list(project.models)
    if config.getoption("chatprobe_ca_bundle") or any(
        config.getoption(f"chatprobe_{n}_timeout") is not None for n in TIMEOUTS
    ):
        from chatprobe.errors import ChatprobeError

        transport = transport_options(config)
        try:
            transport.tls()
            transport.timeouts_over()
        except ChatprobeError as exc:
            raise pytest.UsageError(str(exc)) from None
    if not providers and not models:
        return  # nothing to validate: keep the import cost away from unrelated pytest runs
    from chatprobe.errors import ChatprobeError, UnknownNameError
    from chatprobe.profiles import builtin_profiles, list_profiles, load_profile
    from chatprobe.suites.loader import check_profile_checks

    known = list_profiles()
    shipped = set(builtin_profiles())
    selected: dict[str, str] = {}  # profile name -> what load_profile takes
    try:
        for ref in providers:
            profile = load_profile(ref)  # unknown names and broken files fail here
            check_profile_checks(profile.source)  # deviations must name real checks
            # A shipped name (the project's own version when it overrides one) is named by
            # suites; a profile file or a project-only profile runs their generic cases.
            selected[profile.name] = ref if ref in shipped else profile.source
    except ChatprobeError as exc:
        prefix = "" if where.startswith("--") else f"{where}: "
        raise pytest.UsageError(f"{prefix}{exc}") from None
    config.stash[SELECTED] = selected
    served = {m for ref in (list(selected.values()) or known) for m in load_profile(ref).models}
    for name in models:
        if name not in served:
            raise pytest.UsageError(str(UnknownNameError("model", name, sorted(served))))


def pytest_unconfigure(config: pytest.Config) -> None:
    gatherer = config.pluginmanager.get_plugin(_GATHERER)
    if gatherer is not None:
        config.pluginmanager.unregister(gatherer)
    runner = config.stash.get(RUNNER, None)
    if runner is not None:
        runner.close()
        del config.stash[RUNNER]


def _suite_roots(config: pytest.Config) -> list[Path]:
    """Folders (or files) whose YAML files are suites: ``--chatprobe-suites``, the project's
    ``paths.suites``, and the rootdir's ``suites/`` when ``--chatprobe`` asks outside one."""
    roots = [Path(p).resolve() for p in config.getoption("chatprobe_suites") or ()]
    project = config.stash.get(PROJECT, None)
    if project is not None:
        roots += [p.resolve() for p in project.suites]
        if not project.found and config.getoption("chatprobe"):
            roots.append((config.rootpath / "suites").resolve())  # asked, outside a project
    return roots


def _is_suite(file_path: Path, config: pytest.Config) -> bool:
    if file_path.suffix not in (".yaml", ".yml") or not config.stash.get(_ACTIVE, False):
        return False
    resolved = file_path.resolve()
    return any(resolved == root or root in resolved.parents for root in config.stash[_ROOTS])


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not _is_suite(file_path, parent.config):
        return None
    from chatprobe.pytest_plugin.items import SuiteFile

    return SuiteFile.from_parent(parent, path=file_path, nodeid=_nodeid(file_path, parent.config))


BUILTIN_PREFIX = "chatprobe-suites"
"""Node ids of the built-in suites when they lie outside the rootdir (in the package):
``chatprobe-suites/basic.yaml::hello[...]``."""


def _nodeid(path: Path, config: pytest.Config) -> str | None:
    """pytest's own id below the rootdir; the built-in suites (in the installed package)
    and other files elsewhere get a readable one (pytest would give them an empty id)."""
    resolved = path.resolve()
    root = config.rootpath.resolve()
    if resolved.is_relative_to(root):
        return None
    from chatprobe.paths import builtin

    suites = builtin("suites").resolve()
    if resolved.is_relative_to(suites):
        return f"{BUILTIN_PREFIX}/{resolved.relative_to(suites).as_posix()}"
    import os

    return Path(os.path.relpath(resolved, root)).as_posix()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[ORDER] = [item.nodeid for item in session.items]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist's controller collects nothing itself: it learns the order from a worker."""
    order = node.config.stash.get(ORDER, None)
    if order is not None and not order:
        order.extend(ids)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    entry = entry_of(item)
    if call.when == "call" and entry is not None:
        setattr(report, _REPORT_KEY, entry)  # plain data: xdist sends it with the report
    return report


class _Gatherer:
    """Gathers the entries carried by call reports (registered per session: the
    ``pytest_runtest_logreport`` hook is given no config)."""

    def __init__(self, config: pytest.Config) -> None:
        self.results = config.stash[RESULTS]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = getattr(report, _REPORT_KEY, None)
        if entry is not None and report.when == "call":
            self.results.append((report.nodeid, entry))


def _ordered(config: pytest.Config) -> list[dict[str, Any]]:
    """The session's entries in collection order (arrival order under xdist otherwise)."""
    order: list[str] = config.stash.get(ORDER, [])
    rank = {nodeid: i for i, nodeid in enumerate(order)}
    results = config.stash.get(RESULTS, [])
    ordered = sorted(enumerate(results), key=lambda x: (rank.get(x[1][0], len(rank)), x[0]))
    return [entry for _, (_, entry) in ordered]


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """Show documented deviations as ``D`` (``-v``: ``DEVIATION (status_openai, ...)``, the
    checks that made the case one) instead of hiding them among passes."""
    if report.when == "call" and report.passed:
        outcome = dict(report.user_properties).get("chatprobe_outcome")
        if outcome == "deviation":
            checks = [
                str(value).split(":", 1)[0]
                for key, value in report.user_properties
                if key == "chatprobe_deviation"
            ]
            word = "DEVIATION" + (f" ({', '.join(checks)})" if checks else "")
            return "deviation", "D", (word, {"yellow": True})
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return  # an xdist worker: its entries went to the controller on the reports
    target = config.getoption("chatprobe_results")
    if target:
        from chatprobe.pytest_plugin.results import display_names_of, write_contract
        from chatprobe.pytest_plugin.state import selected_providers

        results = _ordered(config)
        shown = display_names_of(results, selected_providers(config))
        write_contract(Path(target), results, shown)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    results = _ordered(config)
    if not results:
        return
    from chatprobe.pytest_plugin.results import summary_line

    terminalreporter.write_line(summary_line(results))
