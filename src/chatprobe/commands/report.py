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
def report(results: tuple[Path, ...], out: Path | None, slo: tuple[str, ...]) -> None:
    """Build index.html, report.md and report.json comparing providers.

    RESULTS are results folders (results/<run-id>) or a results root; with none, the
    folders of the last run under ./results (or $CHATPROBE_RESULTS) are used.
    """
    from chatprobe.report import build_report_files

    index = build_report_files(results, out=out, slo=parse_slo(slo))
    click.echo(str(index))
