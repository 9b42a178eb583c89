"""``chatprobe providers``: what the shipped profiles say."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from chatprobe.profiles import list_profiles, load_profile


@click.command(name="providers")
@click.argument("names", nargs=-1)
def providers(names: tuple[str, ...]) -> None:
    """List provider profiles (or the named ones): base URL, key variable, models with
    their provider ids and prices, and documented deviations."""
    console = Console()
    for name in names or list_profiles():
        p = load_profile(name)
        table = Table(title=f"{p.title} ({p.name}) {p.base_url}  key: ${p.api_key_env}")
        for col in ("model", "provider id", "family", "$/M in", "$/M out", "price source"):
            table.add_column(col)
        for m in p.models.values():
            price = m.pricing
            table.add_row(
                m.name,
                m.id,
                m.family,
                f"{price.input_per_mtok:g}" if price else "-",
                f"{price.output_per_mtok:g}" if price else "-",
                price.source if price else "",
            )
        console.print(table)
        for check, reason in p.deviations.items():
            console.print(f"  deviation [bold]{check}[/]: {reason}")
