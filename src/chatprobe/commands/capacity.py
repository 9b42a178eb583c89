"""``chatprobe capacity``: the highest load each target sustains within its SLO."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chatprobe.commands.load import _rate
from chatprobe.commands.options import (
    Duration,
    format_option,
    provider_options,
    transport_options,
)
from chatprobe.commands.report import parse_slo
from chatprobe.metrics import DEFAULT_SLO
from chatprobe.transport import TransportOptions

_DEFAULT_SLO_TEXT = ", ".join(f"{k}={v:g}" for k, v in DEFAULT_SLO.items())


@click.command(name="capacity")
@click.argument("scenario", required=False, metavar="[SCENARIO]")
@provider_options
@format_option
@click.option(
    "--by",
    type=click.Choice(("rate", "concurrency")),
    default="rate",
    show_default=True,
    help="rate: open loop, search the arrival rate (req/s); concurrency: closed loop, "
    "search the number of concurrent streams.",
)
@click.option(
    "--slo",
    multiple=True,
    metavar="METRIC=MS",
    help="A latency limit, repeatable, e.g. --slo ttft_ms=500 --slo itl_ms=50 (default: the "
    f"scenario's slo, else the project's, else {_DEFAULT_SLO_TEXT}).",
)
@click.option(
    "--percentile",
    type=float,
    help="The percentile each limit applies to (default: the scenario's slo.attainment "
    "x 100, else 95).",
)
@click.option(
    "--max-error-rate",
    default=None,
    callback=_rate,
    metavar="RATE",
    help="Error-rate limit of the SLO, e.g. 1% (default: the project's "
    "thresholds.max_error_rate, else 5%).",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.5, 0.999),
    default=0.95,
    show_default=True,
    help="Confidence of each percentile's interval and of the answer.",
)
@click.option(
    "--start",
    type=float,
    help="First level of the search (default 1 req/s, or 1 user).",
)
@click.option(
    "--growth",
    type=float,
    default=2.0,
    show_default=True,
    help="Factor between levels while bracketing the edge.",
)
@click.option(
    "--tolerance",
    type=float,
    default=0.05,
    show_default=True,
    help="Stop narrowing once the bracket is this narrow (relative to its low end).",
)
@click.option(
    "--max-steps",
    type=int,
    default=12,
    show_default=True,
    help="Most load steps per target (the search's budget).",
)
@click.option("--max-level", type=float, help="Never load above this rate (or user count).")
@click.option(
    "--step-duration",
    type=Duration(minimum_s=1.0),
    default="30s",
    show_default=True,
    help="Longest a step runs (its warm-up included).",
)
@click.option(
    "--min-step",
    type=Duration(),
    default="10s",
    show_default=True,
    help="Shortest a step runs after its warm-up before a clear verdict may end it.",
)
@click.option(
    "--step-warmup",
    type=Duration(),
    default="2s",
    show_default=True,
    help="Start of each step left out of its figures.",
)
@click.option(
    "--min-samples",
    type=int,
    default=100,
    show_default=True,
    help="Requests a step needs before its verdict can be clear.",
)
@click.option(
    "--max-cost",
    type=float,
    metavar="USD",
    help="Stop before the next step would take the spend (at the captured prices) past USD.",
)
@click.option(
    "--fail-below",
    type=float,
    metavar="RATE",
    help="Exit 1 when a target's capacity is below RATE (req/s, or users with --by "
    "concurrency): a CI regression gate.",
)
@click.option("--processes", type=int, help="locust worker processes per step.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Results root (default $CHATPROBE_RESULTS or ./results); the search goes in "
    "OUT/<run-id>/ with one folder per step under steps/.",
)
@click.option("--run-id", help="Name the capacity folder instead of a time-based id.")
@click.option(
    "--emulator/--no-emulator",
    default=None,
    help="Force the built-in emulator, or require live keys. Default: the emulator for "
    "providers without a key.",
)
@click.option("--emulator-url", metavar="URL", help="Use a running emulator (http://HOST:PORT).")
@click.option("--no-pin", is_flag=True, help="Do not pin the emulator and locust to CPUs.")
@click.option("--quiet", is_flag=True, help="No live progress line.")
@transport_options
def capacity(
    scenario: str | None,
    providers: tuple[str, ...],
    models: tuple[str, ...],
    base_url: str | None,
    api_key_env: str | None,
    name: str | None,
    output_format: str,
    by: str,
    slo: tuple[str, ...],
    percentile: float | None,
    max_error_rate: float,
    confidence: float,
    start: float | None,
    growth: float,
    tolerance: float,
    max_steps: int,
    max_level: float | None,
    step_duration: float,
    min_step: float,
    step_warmup: float,
    min_samples: int,
    max_cost: float | None,
    fail_below: float | None,
    processes: int | None,
    out: Path | None,
    run_id: str | None,
    emulator: bool | None,
    emulator_url: str | None,
    no_pin: bool,
    quiet: bool,
    transport: TransportOptions,
) -> None:
    """Find, per target, the highest load at which the SLO holds (p95 TTFT, p95 ITL, error
    rate), with a stated confidence (docs/capacity.md).

    Each step is a short load run of one target (results/<run-id>/steps/<step>/); the
    search brackets the edge, then narrows it, ending a step early once its verdict is
    clear. Steps where the client was the limit are marked invalid; HTTP 429s end the
    search with a rate-limited verdict. The answer is written to capacity.json.

    Exit status: 0 when done; 1 when a capacity is below --fail-below; 2 for a usage or
    configuration error; 130 when interrupted.
    """
    from rich.console import Console

    from chatprobe.capacity.runner import CapacityOptions, run_capacity
    from chatprobe.output import capacity as show
    from chatprobe.output import write_json
    from chatprobe.output.tables import print_lines

    console = Console(stderr=True)
    try:
        outcome = run_capacity(
            CapacityOptions(
                scenario=scenario,
                providers=providers,
                models=models,
                base_url=base_url,
                api_key_env=api_key_env,
                name=name,
                by=by,
                slo=parse_slo(slo),
                percentile=percentile,
                max_error_rate=max_error_rate,
                confidence=confidence,
                min_samples=min_samples,
                start=start,
                growth=growth,
                tolerance=tolerance,
                max_steps=max_steps,
                max_level=max_level,
                step_s=step_duration,
                min_step_s=min_step,
                warmup_s=step_warmup,
                max_cost=max_cost,
                processes=processes,
                out=out,
                run_id=run_id,
                emulator=emulator,
                emulator_url=emulator_url,
                pin=not no_pin,
                progress=not quiet,
                tls=transport.tls(),
                timeouts=dict(transport.timeouts),
                fail_below=fail_below,
            ),
            console=console,
        )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    if output_format == "json":
        write_json(
            show.capacity_document(
                outcome.document,
                path=outcome.path,
                failures=outcome.failures,
                exit_status=outcome.exit_code,
            )
        )
    else:
        show.print_capacity(outcome.document, outcome.path, outcome.failures)
    if output_format == "github":
        print_lines(show.github_annotations(outcome.failures, outcome.path))
    sys.exit(outcome.exit_code)
