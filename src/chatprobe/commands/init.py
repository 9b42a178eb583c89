"""``chatprobe init``: scaffold a chatprobe project for one OpenAI-compatible endpoint.

What is written and why: :mod:`chatprobe.scaffold`. Then ``chatprobe check --record-mode
once`` records the cassettes (the key variable set), and CI replays them.
"""

from __future__ import annotations

from pathlib import Path

import click

from chatprobe.commands.options import split_list


@click.command(name="init")
@click.option(
    "--base-url",
    required=True,
    metavar="URL",
    help="The endpoint's base URL (requests go to <URL>/chat/completions), e.g. "
    "http://localhost:8000/v1.",
)
@click.option(
    "--api-key-env",
    required=True,
    metavar="VAR",
    help="The environment variable holding the endpoint's key (its name, never the key).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    metavar="ID",
    help="A model id the endpoint serves; repeatable and comma-separated.",
)
@click.option(
    "--name",
    default=None,
    metavar="NAME",
    help="The endpoint's name, in reports and file names alike (lower case letters, digits, "
    "'-', '_'). Default: reports read its host and port (localhost:8000), files its id "
    "(localhost-8000).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.argument(
    "folder",
    required=False,
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
)
def init(
    base_url: str,
    api_key_env: str,
    models: tuple[str, ...],
    name: str | None,
    force: bool,
    folder: Path,
) -> None:
    """Scaffold a chatprobe project in FOLDER (default: here) for one endpoint: the
    configuration (chatprobe.toml), the endpoint's profile to edit (profiles/NAME.yaml), a
    starter suite and load scenario, a .gitignore for results and a GitHub Actions workflow
    that replays the checks from cassettes. Existing files are left alone (--force
    overwrites). Next: chatprobe check --record-mode once (records), chatprobe check
    (replays)."""
    from chatprobe.scaffold import plan_project, write_project

    scaffold = plan_project(base_url, api_key_env, split_list(models), name=name)
    written = write_project(folder, scaffold, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(
        f"next: export {api_key_env}=...; chatprobe check --record-mode once (records "
        "cassettes/); then chatprobe check replays them offline, as CI will"
    )
