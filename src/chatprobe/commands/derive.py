"""``chatprobe derive``: regenerate ``suites/derived/<level>.yaml`` from the request schemas."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chatprobe.errors import UnknownNameError
from chatprobe.paths import project_root


@click.command(name="derive")
@click.option(
    "--level",
    "levels",
    multiple=True,
    metavar="LEVEL",
    help="Only this schema level (repeatable). Default: every level a provider profile uses.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory (default: suites/derived in the project).",
)
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Write nothing; exit 1 when a derived suite differs from what would be generated.",
)
def derive(levels: tuple[str, ...], out: Path | None, check_only: bool) -> None:
    """Derive contract suites from each provider level's documented request schema.

    For every documented parameter: a typical valid value, the value on each bound (expected
    to succeed, with its visible effect where there is one, e.g. max_tokens 1 gives one token
    and finish_reason length), the value just past each bound and a wrong type (expected to
    get a 4xx in the provider's envelope), and every enum value. Output is deterministic;
    record the new cases afterwards with `chatprobe check --record`.
    """
    from chatprobe.suites.derive import derive_levels, render_suite, write_suites

    known = derive_levels()
    for level in levels:
        if level not in known:
            raise UnknownNameError("schema level with providers", level, list(known))
    target = out or project_root() / "suites" / "derived"
    if check_only:
        stale = []
        for level, providers in known.items():
            if levels and level not in levels:
                continue
            path = target / f"{level}.yaml"
            current = path.read_text(encoding="utf-8") if path.is_file() else None
            if current != render_suite(level, providers):
                stale.append(str(path))
        for name in stale:
            click.echo(f"stale: {name} (run `chatprobe derive`)")
        if not stale:
            click.echo("derived suites are up to date")
        sys.exit(1 if stale else 0)
    from chatprobe.suites.derive import derive_cases

    for path in write_suites(target, list(levels) or None):
        click.echo(f"{path}: {len(derive_cases(path.stem))} cases")
