"""``chatprobe check``: run the contract suites through pytest and print the conformance matrix.

pytest runs in this process with chatprobe's plugin, over the suite files
:func:`chatprobe.paths.suite_files` names: the project's ``paths.suites`` and the built-in
suites shipped in the package that the project does not override (unless
``builtin_suites = false``), or the ``--suites`` given. Providers are ``--provider`` /
``--base-url``, else the project's ``providers``; cassettes go to the project's
``paths.cassettes``. The plugin writes ``contract.json`` and pytest ``junit.xml`` into a
fresh ``<results>/<run-id>/`` folder (with ``meta.json``), then the result is printed from
``contract.json`` in the ``--format`` asked for (:mod:`chatprobe.output.contract`): on
stdout, while pytest's own progress goes to stderr.
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
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import click

from chatprobe.cassettes import RECORD_MODES
from chatprobe.commands.options import format_option, provider_options, transport_options
from chatprobe.endpoints import provider_refs, record_profiles
from chatprobe.errors import ChatprobeError, ConfigError, UnknownNameError
from chatprobe.paths import suite_files
from chatprobe.project import current_project
from chatprobe.results.folder import CONTRACT, JUNIT
from chatprobe.transport import TransportOptions


@click.command(name="check")
@provider_options
@format_option
@transport_options
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
    help="Results root (default: $CHATPROBE_RESULTS, else the project's paths.results).",
)
@click.option("-k", "keyword", default=None, metavar="EXPR", help="pytest -k expression.")
@click.option(
    "--suites",
    "suite_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Suite files or directories (default: the project's suites and the built-in ones).",
)
@click.option(
    "--cassette-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cassette directory (default: the project's paths.cassettes).",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="One line per case (a deviation names the checks that made it one) and every "
    "check in the matrix; -vv: more pytest detail.",
)
@click.option(
    "--list-checks", is_flag=True, help="List the named checks (severity, rule, source) and exit."
)
def check(
    providers: tuple[str, ...],
    models: tuple[str, ...],
    base_url: str | None,
    api_key_env: str | None,
    name: str | None,
    output_format: str,
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
    transport: TransportOptions,
) -> None:
    """Run the contract suites (offline from cassettes by default) and print the conformance
    matrix; write results/<run-id>/{meta.json, contract.json, junit.xml}.

    Fault-injection cases run only from cassettes or against the emulator. Exit status 1 when a
    case fails; documented deviations and expected failures do not fail the run.

    Any OpenAI-compatible endpoint: --base-url URL --api-key-env VAR --model ID --live (or a
    profile file with --provider FILE) runs every suite's generic cases against it.

    The result (matrix, failures with their suite file and line, the tally) goes to stdout
    in the --format asked for; pytest's progress goes to stderr.
    """
    if list_checks:
        _print_checks(output_format)
        return
    import pytest

    from chatprobe.profiles import load_profile
    from chatprobe.results import finish_meta, new_run_dir, write_meta, write_profiles

    mode = record_mode or ("once" if record else "none")
    if live and mode != "none":
        raise click.UsageError("--live sends requests without cassettes; drop --record")
    if base_url and emulator:
        raise click.UsageError("a --base-url endpoint is always called for real; drop --emulator")
    project = current_project()
    transport.tls()  # an unusable CA bundle fails here, in one line
    # unknown names and broken profile files fail here; --base-url becomes a profile file
    # (its key variable must be set); without either, the project's providers
    refs = provider_refs(providers, base_url, api_key_env, models, name=name)
    if not refs and project.providers:
        try:
            refs = provider_refs(project.providers)
        except ChatprobeError as exc:
            raise ConfigError(str(exc), path=project.shown_config, field="providers") from None
    models = models or (project.models if not base_url else ())
    selected = [load_profile(p) for p in refs]
    if models:
        pool = selected or [load_profile(p) for p in _all_providers()]
        for model in models:
            if not any(model in p.models for p in pool):
                served = sorted({m for p in pool for m in p.models})
                raise UnknownNameError("model", model, served)
    if live and not emulator:  # fail before any request, naming the variable to set
        called = selected or [load_profile(p) for p in _all_providers()]
        for profile in called:
            profile.require_key()
        from chatprobe.preflight import preflight

        preflight([p.base_url for p in called], tls=transport.tls())  # reachable, or 1 line
    root = project.root
    paths = [str(p) for p in suite_paths] or [str(p) for p in suite_files(project)]
    if not paths:
        raise ConfigError(
            "no suites to run: add suite files to the project's paths.suites, or set "
            "builtin_suites = true",
            path=str(project.config or root),
        )
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
        "--chatprobe-record-mode",
        mode,
        "--junitxml",
        str(run_dir / JUNIT),
        "--chatprobe-results",
        str(run_dir / CONTRACT),
        "-q" if verbose == 0 else "-" + "v" * verbose,
        "--no-header",
        "-o",
        "addopts=",
        # no assertion rewriting: pytest would otherwise re-parse every chatprobe module it
        # imports (the plugin's distribution), about a fifth of a replay (benchmarks B4)
        "--assert=plain",
    ]
    if cassette_dir is not None:  # else the project's, then chatprobe's own for its suites
        args += ["--chatprobe-cassette-dir", str(cassette_dir)]
    for path in paths:  # collected wherever they are (the built-in ones are in the package)
        args += ["--chatprobe-suites", path]
    for ref in refs:
        args += ["--chatprobe-provider", ref]
    for name in models:
        args += ["--chatprobe-model", name]
    if live:
        args.append("--chatprobe-live")
    if emulator:
        args.append("--chatprobe-emulator")
    if keyword:
        args += ["-k", keyword]
    args += transport.to_args(prefix="--chatprobe-")
    output = _PytestOutput()
    watch = _Session(output)
    with redirect_stdout(output):  # pytest's progress: stderr
        try:
            code = int(pytest.main(args, plugins=[watch]))
        finally:
            if not watch.invalid:
                output.release()  # a usage error before collection: pytest's own words
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
    invalid = watch.invalid
    status = _exit_status(code, interrupted=watch.interrupted, invalid=bool(invalid))
    if invalid:  # a suite that does not load is the user's to fix: one line each, like any
        for message in invalid:  # other configuration error; nothing ran
            click.echo(f"chatprobe: error: {message}", err=True)
        sys.exit(status)
    _show(contract, run_dir, output_format, verbose=verbose, exit_status=status)
    if code == 5:
        click.echo("chatprobe: no case matched the selection", err=True)
    elif code in (3, 4):  # pytest's internal or usage error: its own message is printed above
        click.echo(f"chatprobe: error: pytest could not run the suites (exit {code})", err=True)
    sys.exit(status)


def _exit_status(code: int, *, interrupted: bool, invalid: bool) -> int:
    """0 every case passed (deviations and expected failures included), 1 a case failed or
    none was selected, 2 a suite did not load or pytest could not run, 130 interrupted."""
    if invalid or code in (3, 4):
        return 2
    if code == 5:
        return 1
    if interrupted:
        return 130
    # pytest: 0 every case passed, 1 a case failed, 2 collection stopped on an error.
    return 0 if code == 0 else (1 if code == 1 else 2)


def _show(
    contract: dict[str, Any] | None,
    run_dir: Path,
    output_format: str,
    *,
    verbose: int,
    exit_status: int,
) -> None:
    """The result on stdout, in ``output_format`` (:mod:`chatprobe.output.contract`)."""
    from chatprobe.output import contract as show
    from chatprobe.output import write_json
    from chatprobe.output.tables import print_lines

    if output_format == "json":
        document = (
            show.contract_document(contract, run_dir=run_dir, exit_status=exit_status)
            if contract is not None
            else {
                "command": "check",
                "results_dir": str(run_dir.resolve()),
                "exit_status": exit_status,
            }
        )
        write_json(document)
        click.echo(f"results: {run_dir}", err=True)
        return
    if contract is not None:
        show.print_contract(contract, verbose=verbose)
    click.echo(f"results: {run_dir}")
    if output_format == "github" and contract is not None:
        print_lines(show.github_annotations(contract))


class _PytestOutput:
    """Where pytest's terminal output goes (it is progress: stderr). Held back until
    collection is over: when a suite does not load, the run stops there and the held output
    (pytest's failure report for it) is dropped, so a broken suite is one line on stderr
    like any other configuration error; otherwise it is released and then streamed."""

    def __init__(self) -> None:
        self.held: list[str] | None = []

    def write(self, text: str) -> int:
        if self.held is None:
            return sys.stderr.write(text)
        self.held.append(text)
        return len(text)

    def flush(self) -> None:
        if self.held is None:
            sys.stderr.flush()

    def release(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            sys.stderr.write("".join(held))
            sys.stderr.flush()

    def drop(self) -> None:
        self.held = []

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def fileno(self) -> int:
        return sys.stderr.fileno()

    @property
    def encoding(self) -> str:
        return getattr(sys.stderr, "encoding", None) or "utf-8"


class _Session:
    """A pytest plugin object for one ``chatprobe check`` session: notes a Ctrl-C (pytest
    reports it, like a collection error, as exit status 2; chatprobe exits 130), and stops
    after collection when a suite did not load, keeping its messages."""

    def __init__(self, output: _PytestOutput) -> None:
        self.output = output
        self.interrupted = False
        self.invalid: list[str] = []

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self.interrupted = True

    def pytest_collection_finish(self, session: Any) -> None:
        import pytest

        from chatprobe.pytest_plugin.items import InvalidSuiteItem

        self.invalid = [i.error for i in session.items if isinstance(i, InvalidSuiteItem)]
        if self.invalid:
            self.output.drop()
            pytest.exit("a suite did not load", returncode=2)
        self.output.release()


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


def _print_checks(output_format: str) -> None:
    """``--list-checks``: every named check with its severity, rule and source; never cut
    (:mod:`chatprobe.output.tables`), or as JSON."""
    from chatprobe.checks import registered
    from chatprobe.output import write_json
    from chatprobe.output.tables import Column, TextTable, print_table

    checks = registered()
    if output_format == "json":
        write_json({name: chk.describe() for name, chk in checks.items()})
        return
    table = TextTable(
        [
            Column("check"),
            Column("severity"),
            Column("rule", prose=True),
            Column("source", prose=True),
        ],
        title="chatprobe checks",
    )
    for name, chk in checks.items():
        table.add_row(name, chk.severity.value, chk.description, chk.source)
    print_table(table)
