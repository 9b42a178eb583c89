"""``chatprobe check``: run the contract suites through pytest and print the conformance matrix.

pytest runs in this process with chatprobe's plugin; the plugin writes ``contract.json`` and
pytest ``junit.xml`` into a fresh ``results/<run-id>/`` folder (with ``meta.json``), then the
matrix (check x provider: pass, fail, deviation, skip) is printed from ``contract.json``.
The exit status is 0 when every case passed (deviations and expected failures included), 1 when
a case failed or none was selected, 2 for a usage or configuration error (a broken suite, an
unknown provider), 130 when interrupted.

Any OpenAI-compatible endpoint can be checked: ``--base-url URL --api-key-env VAR --model ID``
(materialised as a profile file, copied into the results folder) or ``--provider FILE``. Such
a custom provider runs every suite's generic cases with its own profile's expectations; see
:mod:`chatprobe.suites.loader`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from chatprobe.cassettes import RECORD_MODES
from chatprobe.commands.options import provider_options
from chatprobe.endpoints import provider_refs, record_profiles
from chatprobe.errors import ConfigError, UnknownNameError
from chatprobe.paths import project_root
from chatprobe.results.folder import CONTRACT, JUNIT

_STYLE = {"pass": "green", "fail": "bold red", "deviation": "yellow", "skip": "dim"}


@click.command(name="check")
@provider_options
@click.option(
    "--record",
    is_flag=True,
    help="Record missing cassettes (record mode `once`): against the real provider when its key "
    "is set, else against the built-in emulator (marked as emulated recordings).",
)
@click.option(
    "--record-mode",
    type=click.Choice(RECORD_MODES),
    default=None,
    help="Explicit vcrpy record mode (`all` re-records everything selected).",
)
@click.option("--live", is_flag=True, help="No cassettes: call the providers (keys needed).")
@click.option(
    "--emulator", is_flag=True, help="Record or run live against the emulator even with a key set."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Results root (default: $CHATPROBE_RESULTS or ./results).",
)
@click.option("-k", "keyword", default=None, metavar="EXPR", help="pytest -k expression.")
@click.option(
    "--suites",
    "suite_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Suite files or directories (default: the project's suites/).",
)
@click.option(
    "--cassette-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cassette directory (default: the project's cassettes/).",
)
@click.option("-v", "--verbose", count=True, help="More pytest output.")
@click.option(
    "--list-checks", is_flag=True, help="List the named checks (severity, rule, source) and exit."
)
def check(
    providers: tuple[str, ...],
    models: tuple[str, ...],
    base_url: str | None,
    api_key_env: str | None,
    record: bool,
    record_mode: str | None,
    live: bool,
    emulator: bool,
    out: Path | None,
    keyword: str | None,
    suite_paths: tuple[Path, ...],
    cassette_dir: Path | None,
    verbose: int,
    list_checks: bool,
) -> None:
    """Run the contract suites (offline from cassettes by default) and print the conformance
    matrix; write results/<run-id>/{meta.json, contract.json, junit.xml}.

    Fault-injection cases run only from cassettes or against the emulator. Exit status 1 when a
    case fails; documented deviations and expected failures do not fail the run.

    Any OpenAI-compatible endpoint: --base-url URL --api-key-env VAR --model ID --live (or a
    profile file with --provider FILE) runs every suite's generic cases against it.
    """
    if list_checks:
        _print_checks()
        return
    import pytest

    from chatprobe.profiles import load_profile
    from chatprobe.results import finish_meta, new_run_dir, write_meta, write_profiles

    mode = record_mode or ("once" if record else "none")
    if live and mode != "none":
        raise click.UsageError("--live sends requests without cassettes; drop --record")
    if base_url and emulator:
        raise click.UsageError("a --base-url endpoint is always called for real; drop --emulator")
    # unknown names and broken profile files fail here; --base-url becomes a profile file
    # (its key variable must be set)
    refs = provider_refs(providers, base_url, api_key_env, models)
    selected = [load_profile(p) for p in refs]
    if models:
        pool = selected or [load_profile(p) for p in _all_providers()]
        for model in models:
            if not any(model in p.models for p in pool):
                served = sorted({m for p in pool for m in p.models})
                raise UnknownNameError("model", model, served)
    if live and not emulator:  # fail before any request, naming the variable to set
        for profile in selected or [load_profile(p) for p in _all_providers()]:
            profile.require_key()
    root = project_root()
    paths = [str(p) for p in suite_paths] or [str(root / "suites")]
    run_dir = new_run_dir(out)
    planned = "live" if live and not emulator else ("replayed" if mode == "none" else "emulated")
    write_meta(
        run_dir,
        kind="contract",
        data_source=planned,
        providers=[p.name for p in selected],
        models=list(models),
    )
    record_profiles(run_dir, refs)
    # The profiles as they are now (deviation reasons, success statuses): a later report of
    # this run reads them from the folder, never from today's specs/providers/.
    write_profiles(run_dir, selected or [load_profile(p) for p in _all_providers()])
    args = [
        *paths,
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(root),
        "--record-mode",
        mode,
        "--junitxml",
        str(run_dir / JUNIT),
        "--chatprobe-results",
        str(run_dir / CONTRACT),
        "--cassette-dir",
        str(cassette_dir or root / "cassettes"),
        "-q" if verbose == 0 else "-" + "v" * verbose,
        "--no-header",
        "-o",
        "addopts=",
        # no assertion rewriting: pytest would otherwise re-parse every chatprobe module it
        # imports (the plugin's distribution), about a fifth of a replay (benchmarks B4)
        "--assert=plain",
    ]
    for path in suite_paths:  # collected wherever they are, not only under a suites/ folder
        args += ["--chatprobe-suites", str(path)]
    for ref in refs:
        args += ["--provider", ref]
    for name in models:
        args += ["--model", name]
    if live:
        args.append("--live")
    if emulator:
        args.append("--emulator")
    if keyword:
        args += ["-k", keyword]
    watch = _InterruptWatch()
    code = int(pytest.main(args, plugins=[watch]))
    contract_path = run_dir / CONTRACT
    contract = _read(contract_path) if contract_path.is_file() else None
    source = (contract or {}).get("data_source", planned)
    notes = []
    if "emulated recording" in source:
        notes.append("cassettes were recorded from the chatprobe emulator, not a real provider")
    finish_meta(
        run_dir,
        interrupted=watch.interrupted,
        notes=notes,
        data_source=_meta_source(source, planned),
    )
    if contract is not None:
        _print_matrix(contract)
    click.echo(f"results: {run_dir}")
    invalid = [
        str(r.get("message"))
        for r in (contract or {}).get("results") or []
        if r.get("case") == "invalid-suite"
    ]
    if invalid:  # a suite that does not load is the user's to fix: one line each, like any
        for message in invalid:  # other configuration error
            click.echo(f"chatprobe: error: {message}", err=True)
        sys.exit(2)
    if code == 5:
        click.echo("chatprobe: no case matched the selection", err=True)
        sys.exit(1)
    if code in (3, 4):  # pytest's internal or usage error: its own message is printed above
        click.echo(f"chatprobe: error: pytest could not run the suites (exit {code})", err=True)
        sys.exit(2)
    if watch.interrupted:
        sys.exit(130)
    # pytest: 0 every case passed, 1 a case failed, 2 collection stopped on an error.
    sys.exit(0 if code == 0 else (1 if code == 1 else 2))


class _InterruptWatch:
    """A pytest plugin object that notes a Ctrl-C: pytest reports it, like a collection
    error, as exit status 2, and chatprobe exits 130 for an interrupt."""

    def __init__(self) -> None:
        self.interrupted = False

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self.interrupted = True


def _all_providers() -> list[str]:
    from chatprobe.profiles import list_profiles

    return list_profiles()


def _meta_source(source: str, planned: str) -> str:
    """meta.json allows emulated | replayed | live; the contract keeps the detail."""
    for value in ("replayed", "emulated", "live"):
        if source.startswith(value):
            return value
    return planned


def _read(path: Path) -> dict[str, Any]:
    import orjson

    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"unreadable contract results: {exc}", path=str(path)) from None
    return data if isinstance(data, dict) else {}


def _print_checks() -> None:
    from rich.console import Console
    from rich.table import Table

    from chatprobe.checks import registered

    table = Table(title="chatprobe checks")
    for column in ("check", "severity", "rule", "source"):
        table.add_column(column, overflow="fold")
    for name, chk in registered().items():
        table.add_row(name, chk.severity.value, chk.description, chk.source)
    Console().print(table)


def _print_matrix(contract: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    matrix: dict[str, dict[str, str]] = contract.get("matrix") or {}
    if not matrix:
        return
    providers = sorted(matrix)
    checks = contract.get("checks") or {}
    warnings = contract.get("warnings") or {}
    console = Console()
    table = Table(title=f"Conformance ({contract.get('data_source', '?')})")
    table.add_column("check")
    table.add_column("severity", style="dim")
    for provider in providers:
        table.add_column(provider, justify="center")
    for name, info in checks.items():
        cells = []
        for provider in providers:
            cell = matrix[provider].get(name, "skip")
            warned = warnings.get(provider, {}).get(name)
            text = f"{cell}*" if warned and cell == "pass" else cell
            cells.append(f"[{_STYLE.get(cell, '')}]{text}[/]")
        table.add_row(name, info.get("severity", ""), *cells)
    console.print(table)
    if any(warnings.values()):
        console.print("[dim]* passed with warnings (see contract.json findings)[/]")
    reasons: dict[tuple[str, str], str] = {}
    for result in contract.get("results") or []:
        for deviation in result.get("deviations") or []:
            key = (str(result.get("provider")), deviation["check"])
            reasons.setdefault(key, deviation["reason"])
    for (provider, name), reason in sorted(reasons.items()):
        console.print(f"  [yellow]deviation[/] {provider} {name}: {reason}", highlight=False)
    counts = contract.get("counts") or {}
    console.print(
        "cases: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items()), highlight=False
    )
