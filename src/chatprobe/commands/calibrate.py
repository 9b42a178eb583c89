"""``chatprobe calibrate``: this client's TTFT/ITL error at a load, against ground truth."""

from __future__ import annotations

import click

from chatprobe.commands.options import duration_option


@click.command()
@click.option("--users", type=click.IntRange(1), help="Closed loop with N concurrent streams.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Open loop: requests/s.")
@duration_option(default=10.0, help="How long the calibration load runs (default 10s).")
@click.option(
    "--processes", type=click.IntRange(1), default=1, show_default=True, help="locust processes."
)
@click.option("--tls", is_flag=True, help="Reach the emulator over HTTPS (as real providers).")
@click.option("--no-pin", is_flag=True, help="Do not pin the emulator and locust to CPUs.")
def calibrate(
    users: int | None,
    rate: float | None,
    duration: float,
    processes: int,
    tls: bool,
    no_pin: bool,
) -> None:
    """Measure how far this client's TTFT and ITL are from the truth at a load, on this
    machine: a load run (as `chatprobe load` runs it) against the emulator (TTFT 50 ms, ITL
    10 ms, no jitter) joined with its ground truth per request. Prints the TTFT and ITL
    error, the client timing error bound and how much of the error it covers, achieved
    against requested rate, the client's CPU, and the processes this load needs here
    (`chatprobe load --processes auto` uses it)."""
    from chatprobe.calibrate import calibrate as run
    from chatprobe.output.tables import print_lines

    if users is not None and rate is not None:
        raise click.UsageError("give --users or --rate, not both")
    result = run(
        users=users, rate=rate, duration_s=duration, processes=processes, tls=tls, pin=not no_pin
    )
    print_lines(result.lines())
