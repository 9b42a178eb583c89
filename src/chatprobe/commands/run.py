"""``chatprobe run``: the main job: contract checks, a short load run, then the report.

Each step is the real command in a child process (``chatprobe check``, ``chatprobe load``),
so nothing here re-implements them, and pytest and locust (gevent) never share a process.
The children run in their own session: a Ctrl-C reaches only this process, which forwards
it once to the running child (the load run then ends early and keeps its samples), skips the
remaining measurements and still builds the report from what was measured.

Every child gets ``$CHATPROBE_RUN_GROUP``, so their results folders share one group id that
the report (and a later plain ``chatprobe report``) uses to find them.

Keys: a provider whose API-key variable is set is checked live; one without is checked
against the built-in emulator. The load run follows ``chatprobe load``'s rule: live only
when every selected provider has a key, else every target is emulated (like for like).

A custom endpoint (``--base-url URL --api-key-env VAR --model ID``) replaces the providers:
both steps get the same three options, so the checks run live against it (never the
emulator) and the load run's targets are that endpoint's models. The transport options
(``--ca-bundle``, ``--insecure``, the four timeouts) are passed on to every step alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from chatprobe.commands.options import duration_option, provider_options, transport_options
from chatprobe.endpoints import provider_refs
from chatprobe.errors import ChatprobeError, ConfigError, UnknownNameError
from chatprobe.transport import TransportOptions

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_SCENARIO = "compare"
DEFAULT_DURATION_S = 40.0


@dataclass
class _State:
    child: subprocess.Popen[bytes] | None = None
    signals: list[int] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return bool(self.signals)


@contextmanager
def _forward_signals(state: _State) -> Iterator[None]:
    """Record SIGINT/SIGTERM and pass each one on to the running child."""

    def handler(signum: int, _frame: object) -> None:
        state.signals.append(signum)
        child = state.child
        if child is not None and child.poll() is None:
            with suppress(ProcessLookupError):
                child.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _step(console: Console, number: int, total: int, title: str) -> float:
    console.rule(f"[bold][{number}/{total}] {title}")
    return time.monotonic()


def _run_child(state: _State, argv: list[str], env: dict[str, str]) -> int:
    """Run ``python -m chatprobe.cli ARGV`` in its own session; returns its exit status."""
    command = [sys.executable, "-m", "chatprobe.cli", *argv]
    # The children's own output goes to stderr: stdout carries only the report's path.
    state.child = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=sys.stderr.fileno()
    )
    try:
        while True:
            try:
                return state.child.wait()
            except KeyboardInterrupt:  # pragma: no cover - the handler replaces SIGINT
                continue
    finally:
        state.child = None


@click.command(name="run")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Report folder (default: <the project's paths.reports>/<run-id>/).",
)
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Results root (default: $CHATPROBE_RESULTS, else the project's paths.results).",
)
@provider_options
@duration_option(
    default=DEFAULT_DURATION_S,
    minimum_s=1.0,
    help="Load run length, the scenario's warm-up included (5 s for compare).",
)
@click.option(
    "--scenario",
    default=DEFAULT_SCENARIO,
    show_default=True,
    help="Load scenario (a name under loadtests/scenarios/ or a YAML file).",
)
@click.option("--skip-check", is_flag=True, help="No contract checks.")
@click.option("--skip-load", is_flag=True, help="No load run.")
@transport_options
def run(
    out: Path | None,
    results_dir: Path | None,
    providers: tuple[str, ...],
    models: tuple[str, ...],
    base_url: str | None,
    api_key_env: str | None,
    name: str | None,
    duration: float,
    scenario: str,
    skip_check: bool,
    skip_load: bool,
    transport: TransportOptions,
) -> None:
    """Contract checks, a short load run and the comparison report, in one command.

    With no API key set, every provider is served by the built-in emulator and the whole
    job takes about a minute; with AIMLAPI_API_KEY, APILAPLAS_API_KEY or OPENROUTER_API_KEY
    set, that provider is checked live (the load is live when every selected provider has
    a key: pick them with --provider). With --base-url URL --api-key-env VAR --model ID,
    that endpoint is checked and loaded live instead. Ctrl-C stops the measuring and still
    writes the report from what was measured. Prints the report's path.

    Exit status: 0 when every step passed; 1 when a step failed (a contract case failed, the
    load run passed its error budget or missed its SLO); 2 for a usage or configuration
    error; 130 when interrupted. The report is written in every case.
    """
    from rich.console import Console

    from chatprobe.profiles import list_profiles, load_profile
    from chatprobe.project import current_project
    from chatprobe.report import build_report_files
    from chatprobe.results import (
        GROUP_ENV,
        RESULTS_ENV,
        find_run_folders,
        new_run_id,
        results_root,
    )

    # Progress on stderr; soft wrap: a long line stays one line in a CI log.
    console = Console(stderr=True, soft_wrap=True)
    transport.tls()  # an unusable CA bundle fails here, before any step
    passed_on = transport.to_args()  # TLS and timeouts, the same for every step
    # unknown names and broken profile files fail here, before any step; --base-url becomes a
    # profile file (its key variable must be set)
    refs = provider_refs(providers, base_url, api_key_env, models, name=name)
    endpoint: list[str] = []  # the custom endpoint's options, passed to both steps
    if base_url:
        endpoint = [
            "--base-url",
            base_url,
            "--api-key-env",
            str(api_key_env),
            *_each("--model", list(models)),
            *(["--name", name] if name else []),
        ]
        chosen = {load_profile(refs[0]).name: refs[0]}
        live, emulated = list(chosen), []
    else:
        default = list(current_project().providers) or list_profiles()  # the project's
        chosen = _serving(refs or default, models, explicit=bool(refs))
        live = [name for name, ref in chosen.items() if load_profile(ref).api_key()]
        emulated = [name for name in chosen if name not in live]
    names = list(chosen)
    shown = {name: load_profile(ref).display_name for name, ref in chosen.items()}

    def called(ids: list[str]) -> str:
        """Providers as people read them (the naming rule: chatprobe.endpoints)."""
        return ", ".join(shown[i] for i in ids) or "none"

    model_args = [] if endpoint else _each("--model", list(models))
    group = new_run_id()
    root = Path(results_dir) if results_dir is not None else results_root()
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, GROUP_ENV: group, RESULTS_ENV: str(root.resolve())}
    env.setdefault("PYTHONUNBUFFERED", "1")

    steps: list[tuple[str, list[str]]] = []
    if endpoint:
        if not skip_check:
            steps.append(
                (f"contract checks, live: {called(names)}", ["check", "--live", *endpoint])
            )
        if not skip_load:
            argv = ["load", scenario, "--duration", f"{duration:g}s", *endpoint]
            steps.append((f"load: {scenario}, {duration:g}s, live: {called(names)}", argv))
    elif not skip_check:
        if emulated:
            argv = ["check", "--live", "--emulator", *_refs(chosen, emulated), *model_args]
            steps.append((f"contract checks against the emulator: {called(emulated)}", argv))
        if live:
            argv = ["check", "--live", *_refs(chosen, live), *model_args]
            steps.append((f"contract checks, live: {called(live)}", argv))
    if not skip_load and not endpoint:
        steps.append(
            (
                f"load: {scenario}, {duration:g}s",
                [
                    *("load", scenario, "--duration", f"{duration:g}s"),
                    *_refs(chosen, names),
                    *model_args,
                ],
            )
        )
    steps = [(title, [*argv, *passed_on]) for title, argv in steps]
    total = len(steps) + 1
    # every live endpoint a step will call is reachable, or one line and exit 2 (the load
    # step is live only when no provider is emulated)
    if live and steps and (not skip_check or not emulated):
        from chatprobe.preflight import preflight

        preflight([load_profile(chosen[n]).base_url for n in live], tls=transport.tls())
    console.print(
        f"chatprobe run {group}: providers {called(names)} "
        f"(live: {called(live)}; emulated: {called(emulated)})"
    )
    state = _State()
    failed: list[str] = []
    codes: list[int] = []  # exit statuses of the steps that failed
    started = time.monotonic()
    with _forward_signals(state):
        for number, (title, argv) in enumerate(steps, 1):
            if state.interrupted:
                console.print(f"[yellow]skipped[/] {title} (interrupted)")
                continue
            t0 = _step(console, number, total, title)
            code = _run_child(state, argv, env)
            console.print(f"{title}: exit {code} in {time.monotonic() - t0:.1f}s")
            if code != 0 and not state.interrupted:
                failed.append(f"{title} (exit {code})")
                codes.append(code)
        _step(console, total, total, "report")
        folders = [f for f in find_run_folders(root) if _group_of(f) == group]
        if not folders:
            raise ConfigError(
                "the run produced no results folder to report on"
                + (" (interrupted before any step finished)" if state.interrupted else ""),
                path=str(root),
            )
        index = build_report_files(folders, out=out)
    from chatprobe.output.run import recap_lines
    from chatprobe.output.tables import print_lines

    print_lines(recap_lines(folders), sys.stderr)  # never wrapped, unlike rich's console
    print_lines([f"done in {time.monotonic() - started:.0f}s; report:"], sys.stderr)
    click.echo(str(index))
    if failed:
        console.print(f"[red]steps that failed:[/] {'; '.join(failed)}")
    if state.interrupted:
        console.print("[yellow]interrupted[/]: the report covers what was measured")
        sys.exit(130)
    sys.exit(_exit_status(codes))


def _exit_status(codes: list[int]) -> int:
    """0 when every step passed; 2 when a step stopped on a usage or configuration error;
    else 1 (a failed check, a load run over its error budget or SLO, a crash)."""
    if not codes:
        return 0
    return 2 if 2 in codes else 1


def _each(flag: str, values: list[str]) -> list[str]:
    return [item for value in values for item in (flag, value)]


def _refs(chosen: dict[str, str], names: list[str]) -> list[str]:
    """``--provider`` options for ``names``, each as given (a shipped name or a file)."""
    return _each("--provider", [chosen[name] for name in names])


def _serving(refs: list[str], models: tuple[str, ...], *, explicit: bool) -> dict[str, str]:
    """Profile name -> reference for the providers to run.

    Both steps get the same ``--model`` choices (canonical names), and the load step loads
    every provider with every model, so every provider must serve every model: without
    ``--provider`` the providers that do are picked; a chosen one that does not is an error.
    """
    from chatprobe.profiles import load_profile

    chosen = {}
    for ref in refs:
        profile = load_profile(ref)  # an unknown name fails here, listing the known ones
        missing = [m for m in models if m not in profile.models]
        if missing and explicit:
            raise UnknownNameError(
                f"model for provider {profile.name!r}", missing[0], list(profile.models)
            )
        if not missing:
            chosen[profile.name] = ref
    if not chosen:
        served = sorted({m for ref in refs for m in load_profile(ref).models})
        raise UnknownNameError("model served by every provider", models[0], served)
    return chosen


def _group_of(folder: Path) -> str | None:
    from chatprobe.results import read_meta

    try:
        return read_meta(folder).get("group")
    except ChatprobeError:
        return None
