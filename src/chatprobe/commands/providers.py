"""``chatprobe providers``: what the shipped profiles say."""

from __future__ import annotations

import click

from chatprobe.profiles import list_profiles, load_profile


@click.command(name="providers")
@click.argument("names", nargs=-1)
def providers(names: tuple[str, ...]) -> None:
    """List provider profiles (or the named ones): base URL, key variable, models with
    their provider ids and prices, and documented deviations."""
    from chatprobe.output.tables import Column, TextTable, print_lines, print_table

    for k, name in enumerate(names or list_profiles()):
        p = load_profile(name)
        if k:
            print_lines([""])
        shown = p.name if p.display_name == p.name else f"{p.name}, shown as {p.display_name}"
        table = TextTable(
            [
                Column("model"),
                Column("provider id"),
                Column("family"),
                Column("$/M in", align="right"),
                Column("$/M out", align="right"),
                Column("price source", prose=True),
            ],
            title=f"{p.title} ({shown}) {p.base_url}  key: ${p.api_key_env}",
        )
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
        print_table(table)
        print_lines([f"  deviation {check}: {reason}" for check, reason in p.deviations.items()])
