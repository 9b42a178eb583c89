"""pytest hooks for chatprobe's YAML contract suites (registered by the ``pytest11`` entry point).

This module is imported into *every* pytest run, so it imports nothing but pytest, the
standard library and two light chatprobe modules (:mod:`~chatprobe.pytest_plugin.state`, and
:mod:`chatprobe.cassettes` for its record modes: vcrpy itself loads only when a cassette is
used); suites, checks, vcrpy and the emulator load only when a suite file is collected.
Only ``*.yaml``/``*.yml`` files below a directory named ``suites`` (or below a
``--chatprobe-suites`` path) are collected, one item per case x provider x model::

    suites/basic.yaml::hello[aimlapi-gemini-2.0-flash-exp]

Options (group "chatprobe"): ``--provider`` (a shipped profile name or a profile file: a
custom provider runs every suite's generic cases, see :mod:`chatprobe.suites.loader`),
``--model`` (repeatable filters),
``--record-mode`` (``none`` by default: replay only), ``--live`` (no cassettes),
``--emulator`` (record or run live against the built-in emulator even with a key set),
``--cassette-dir``, ``--chatprobe-suites``, ``--chatprobe-results`` (write ``contract.json``).
Precedence: command-line options are the only configuration; suites choose providers and
models, options narrow them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatprobe.cassettes import RECORD_MODES
from chatprobe.pytest_plugin.state import RESULTS, RUNNER, SELECTED


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatprobe", "chatprobe contract suites")
    group.addoption(
        "--provider",
        action="append",
        default=[],
        dest="chatprobe_providers",
        metavar="NAME|FILE",
        help="only run suite cases for this provider (repeatable); a profile file adds a "
        "custom provider that runs every suite's generic cases",
    )
    group.addoption(
        "--model",
        action="append",
        default=[],
        dest="chatprobe_models",
        metavar="NAME",
        help="only run suite cases for this canonical model name (repeatable)",
    )
    group.addoption(
        "--record-mode",
        choices=RECORD_MODES,
        default="none",
        dest="chatprobe_record_mode",
        help="cassette record mode: none (replay only, default), once, new_episodes, all",
    )
    group.addoption(
        "--live",
        action="store_true",
        dest="chatprobe_live",
        help="send suite requests for real, without cassettes (needs the provider's key)",
    )
    group.addoption(
        "--emulator",
        action="store_true",
        dest="chatprobe_emulator",
        help="record or run live against the built-in provider emulator, even with a key set",
    )
    group.addoption(
        "--cassette-dir",
        default=None,
        dest="chatprobe_cassette_dir",
        metavar="DIR",
        help="cassette directory (default: <rootdir>/cassettes)",
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chatprobe: a contract case collected from a suite YAML file"
    )
    config.stash[RESULTS] = []
    _check_options(config)
    # Suite paths given with --chatprobe-suites are collected as if named on the command line.
    for extra in config.getoption("chatprobe_suites") or ():
        if extra not in config.args:
            config.args.append(extra)


def _check_options(config: pytest.Config) -> None:
    """Unknown --provider/--model names and contradictory modes are usage errors."""
    if config.getoption("chatprobe_live") and config.getoption("chatprobe_record_mode") != "none":
        raise pytest.UsageError("--live sends requests without cassettes; drop --record-mode")
    providers = config.getoption("chatprobe_providers") or []
    models = config.getoption("chatprobe_models") or []
    if not providers and not models:
        return  # nothing to validate: keep the import cost away from unrelated pytest runs
    from chatprobe.endpoints import is_profile_file
    from chatprobe.errors import ChatprobeError, UnknownNameError
    from chatprobe.profiles import list_profiles, load_profile

    known = list_profiles()
    selected: dict[str, str] = {}  # profile name -> what load_profile takes
    for ref in providers:
        if ref in known:
            selected[ref] = ref
            continue
        if not is_profile_file(ref):
            raise pytest.UsageError(str(UnknownNameError("provider", ref, known)))
        try:  # a profile file: validated, and its deviations must name real checks
            from chatprobe.suites.loader import check_profile_checks

            profile = load_profile(ref)
            check_profile_checks(profile.source)
        except ChatprobeError as exc:
            raise pytest.UsageError(str(exc)) from None
        selected[profile.name] = ref
    config.stash[SELECTED] = selected
    served = {m for ref in (list(selected.values()) or known) for m in load_profile(ref).models}
    for name in models:
        if name not in served:
            raise pytest.UsageError(str(UnknownNameError("model", name, sorted(served))))


def pytest_unconfigure(config: pytest.Config) -> None:
    runner = config.stash.get(RUNNER, None)
    if runner is not None:
        runner.close()
        del config.stash[RUNNER]


def _extra_roots(config: pytest.Config) -> list[Path]:
    return [Path(p).resolve() for p in config.getoption("chatprobe_suites") or ()]


def _is_suite(file_path: Path, config: pytest.Config) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    resolved = file_path.resolve()
    for root in _extra_roots(config):
        if resolved == root or root in resolved.parents:
            return True
    try:
        parts = resolved.relative_to(config.rootpath.resolve()).parts
    except ValueError:
        parts = resolved.parts
    return "suites" in parts[:-1]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not _is_suite(file_path, parent.config):
        return None
    from chatprobe.pytest_plugin.items import SuiteFile

    return SuiteFile.from_parent(parent, path=file_path)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """Show documented deviations as ``D``/``DEVIATION`` instead of hiding them among passes."""
    if report.when == "call" and report.passed:
        outcome = dict(report.user_properties).get("chatprobe_outcome")
        if outcome == "deviation":
            return "deviation", "D", "DEVIATION"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    results = config.stash.get(RESULTS, [])
    target = config.getoption("chatprobe_results")
    if target:
        from chatprobe.pytest_plugin.results import write_contract

        write_contract(Path(target), results)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS, [])
    if not results:
        return
    from chatprobe.pytest_plugin.results import summary_line

    terminalreporter.write_line(summary_line(results))
