"""``chatprobe report``: build the provider comparison report from results folders."""

from __future__ import annotations

from pathlib import Path

import click

from chatprobe.metrics import DEFAULT_SLO, SLO_METRICS


def parse_slo(values: tuple[str, ...]) -> dict[str, float] | None:
    """``("ttft_ms=500", "itl_ms=50")`` -> ``{"ttft_ms": 500.0, "itl_ms": 50.0}``."""
    if not values:
        return None
    slo: dict[str, float] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in SLO_METRICS:
            raise click.BadParameter(
                f"expected METRIC=MS with METRIC one of {', '.join(SLO_METRICS)}, got {item!r}",
                param_hint="--slo",
            )
        try:
            slo[name] = float(value)
        except ValueError:
            raise click.BadParameter(
                f"{name}: {value!r} is not a number of milliseconds", param_hint="--slo"
            ) from None
    return slo


@click.command(name="report")
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: reports/<run-id>/).",
)
@click.option(
    "--slo",
    multiple=True,
    metavar="METRIC=MS",
    help="Latency objective for goodput, repeatable, e.g. --slo ttft_ms=500 "
    f"(default: the load run's, else {', '.join(f'{k}={v:g}' for k, v in DEFAULT_SLO.items())}).",
)
@click.option(
    "--monitor",
    "monitor_db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="DB",
    help="Report a `chatprobe monitor` history (its SQLite file) instead of results folders.",
)
def report(
    results: tuple[Path, ...], out: Path | None, slo: tuple[str, ...], monitor_db: Path | None
) -> None:
    """Build index.html, report.md and report.json comparing providers.

    RESULTS are results folders (results/<run-id>) or a results root; with none, the
    folders of the last run under ./results (or $CHATPROBE_RESULTS) are used. With
    --monitor DB: uptime, TTFT over time, findings and events of a monitor's history
    (default output: reports/monitor-<time>/).
    """
    if monitor_db is not None:
        if results or slo:
            raise click.UsageError("--monitor reports a history: give no RESULTS and no --slo")
        from chatprobe.monitor.store import History
        from chatprobe.report.monitor import write_monitor_report

        if out is None:
            from chatprobe.paths import reports_dir
            from chatprobe.results.folder import new_run_id

            out = reports_dir() / f"monitor-{new_run_id()}"
        with History(monitor_db, create=False) as history:
            click.echo(str(write_monitor_report(history, out)))
        return
    from chatprobe.report import build_report_files

    index = build_report_files(results, out=out, slo=parse_slo(slo))
    click.echo(str(index))
