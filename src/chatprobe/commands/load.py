"""``chatprobe load``: a headless locust run measuring TTFT, ITL, E2E and throughput."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chatprobe.commands.options import (
    duration_option,
    format_option,
    provider_options,
    transport_options,
)
from chatprobe.metrics import DEFAULT_MAX_ERROR_RATE
from chatprobe.transport import TransportOptions


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> float:
    """``5%`` or ``0.05`` -> 0.05; anything else is a usage error (exit 2). Not given: the
    project's ``thresholds.max_error_rate``, else the default."""
    if value is None:
        from chatprobe.project import current_project

        configured = current_project().max_error_rate
        return DEFAULT_MAX_ERROR_RATE if configured is None else float(configured)
    text = value.strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a rate such as 5% or 0.05") from None
    if not 0 <= rate <= 1:
        raise click.BadParameter(f"{value!r} is not between 0% and 100%")
    return rate


def _speed(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``2x`` -> 2.0 (:func:`chatprobe.load.trace.parse_speed`); a bad value exits 2."""
    if value is None:
        return None
    from chatprobe.errors import ConfigError
    from chatprobe.load.trace import parse_speed

    try:
        return parse_speed(value)
    except ConfigError as exc:
        raise click.BadParameter(exc.detail) from None


@click.command(name="load")
@click.argument("scenario", required=False, metavar="[SCENARIO]")
@provider_options
@format_option
@click.option(
    "--users", type=int, help="Closed loop with N concurrent streams (replaces the shape)."
)
@duration_option(help="Run length, replacing the scenario's.")
@click.option("--requests", type=int, help="Stop after N requests instead of a duration.")
@click.option("--rate", type=float, help="Open loop: requests per second (replaces the shape).")
@click.option(
    "--trace",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Replay a trace: open-loop arrivals at its times, each request built to its input "
    "and output lengths (replaces the shape; --requests N replays the first N). JSON lines "
    "(chatprobe's or Mooncake's) or a BurstGPT CSV; see docs/load.md.",
)
@click.option(
    "--trace-format",
    type=click.Choice(["auto", "jsonl", "mooncake", "burstgpt"]),
    default="auto",
    show_default=True,
    help="The trace's layout (auto: detected from its first line).",
)
@click.option(
    "--speed",
    callback=_speed,
    metavar="N[x]",
    help="Replay the trace N times faster than recorded, e.g. 2x or 0.5x (default 1x).",
)
@click.option(
    "--processes",
    metavar="N|auto",
    help="locust worker processes on this machine; auto: as many as `chatprobe calibrate` "
    "finds this load needs on this machine (a short calibration run first).",
)
@click.option(
    "--conformance-share",
    type=click.FloatRange(0, 1),
    default=None,
    help="Conformance under load: the share of streams the stream checks judge (0..1; "
    "default: the scenario's conformance_share, else 1 = every stream).",
)
@click.option(
    "--calibrate",
    "calibrate_first",
    is_flag=True,
    help="Before the run, measure this client's TTFT/ITL error at the run's load against the "
    "emulator's ground truth (`chatprobe calibrate`) and print it.",
)
@click.option("--master", is_flag=True, help="Be the master of a distributed run.")
@click.option("--worker", is_flag=True, help="Be a worker of a master elsewhere.")
@click.option("--master-host", default="127.0.0.1", show_default=True)
@click.option("--master-port", default=5557, show_default=True, type=int)
@click.option(
    "--expect-workers", default=1, show_default=True, type=int, help="With --master: workers."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Results root (default $CHATPROBE_RESULTS or ./results); the run goes in OUT/<run-id>/.",
)
@click.option("--run-id", help="Name the run folder instead of a time-based id.")
@click.option(
    "--emulator/--no-emulator",
    default=None,
    help="Force the built-in emulator, or require live keys. Default: the emulator for "
    "providers without a key.",
)
@click.option("--emulator-url", metavar="URL", help="Use a running emulator (http://HOST:PORT).")
@click.option("--no-pin", is_flag=True, help="Do not pin the emulator and locust to CPUs.")
@click.option("--quiet", is_flag=True, help="No live progress line.")
@click.option(
    "--max-error-rate",
    default=None,
    callback=_rate,
    metavar="RATE",
    help="Exit 1 when more than this share of measured requests failed (any error class, "
    f"429 included), e.g. 5% or 0.05. Default: the project's thresholds.max_error_rate, "
    f"else {100 * DEFAULT_MAX_ERROR_RATE:g}%.",
)
@transport_options
def load(
    scenario: str | None,
    providers: tuple[str, ...],
    models: tuple[str, ...],
    base_url: str | None,
    api_key_env: str | None,
    name: str | None,
    output_format: str,
    users: int | None,
    duration: float | None,
    requests: int | None,
    rate: float | None,
    trace: Path | None,
    trace_format: str,
    speed: float | None,
    processes: str | None,
    conformance_share: float | None,
    calibrate_first: bool,
    master: bool,
    worker: bool,
    master_host: str,
    master_port: int,
    expect_workers: int,
    out: Path | None,
    run_id: str | None,
    emulator: bool | None,
    emulator_url: str | None,
    no_pin: bool,
    quiet: bool,
    max_error_rate: float,
    transport: TransportOptions,
) -> None:
    """Run SCENARIO (a name under loadtests/scenarios/ or a YAML file; default smoke) with
    locust, headless, and write results/<run-id>/: meta.json, plan.json, samples.jsonl
    (one exact sample per request), summary.json (percentiles from exact values) and
    locust's own CSVs.

    Without a key for a provider the run targets the built-in emulator (data_source
    "emulated"). A custom endpoint (--base-url URL --api-key-env VAR --model ID) replaces
    the scenario's targets and is always loaded live. Ctrl-C ends the run early and keeps a
    complete results folder marked interrupted; a second Ctrl-C stops at once.

    Results (the summary tables, or with --format json one JSON document) go to stdout, the
    live progress line to stderr.

    Exit status: 0 when the run passed; 1 when its error rate is above --max-error-rate, a
    target missed the scenario's SLO (its share of requests meeting every slo limit is below
    slo.attainment, default 95%) or locust failed; 2 for a usage or configuration error;
    130 when interrupted.
    """
    from rich.console import Console

    from chatprobe.load.launcher import LoadOptions, run_load
    from chatprobe.output import load as show
    from chatprobe.output import write_json
    from chatprobe.output.tables import print_lines

    console = Console(stderr=True)
    options = LoadOptions(
        scenario=scenario,
        providers=providers,
        models=models,
        base_url=base_url,
        api_key_env=api_key_env,
        name=name,
        users=users,
        duration_s=duration,
        requests=requests,
        rate=rate,
        trace=str(trace) if trace is not None else None,
        trace_format=trace_format,
        speed=speed,
        processes=_processes(processes),
        conformance_share=conformance_share,
        master=master,
        worker=worker,
        master_host=master_host,
        master_port=master_port,
        expect_workers=expect_workers,
        out=out,
        run_id=run_id,
        emulator=emulator,
        emulator_url=emulator_url,
        pin=not no_pin,
        progress=not quiet,
        max_error_rate=max_error_rate,
        tls=transport.tls(),
        timeouts=dict(transport.timeouts),
    )
    if calibrate_first or options.processes == "auto":
        from chatprobe.calibrate import calibrate_for

        options, calibration = calibrate_for(options, auto=options.processes == "auto")
        for line in calibration.lines():  # before the run, on stderr with the progress
            console.print(line, markup=False, highlight=False)
    outcome = run_load(options, console=console)
    if output_format == "json":
        write_json(
            show.load_document(
                outcome.summary,
                path=outcome.path,
                failures=outcome.failures,
                exit_status=outcome.exit_code,
            )
        )
    elif outcome.summary is not None:
        show.print_summary(outcome.summary, outcome.path, outcome.failures)
    else:
        print_lines([f"FAILED {reason}" for reason in outcome.failures])
    if output_format == "github":
        print_lines(show.github_annotations(outcome.failures, outcome.path))
    sys.exit(outcome.exit_code)


def _processes(value: str | None) -> int | str | None:
    """``--processes``: a count of at least 1, or ``auto``; anything else is a usage error."""
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(
            f"expected a whole number or auto, got {value!r}", param_hint="--processes"
        ) from None
