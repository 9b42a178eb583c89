"""``chatprobe validate``: check a saved payload against a documented schema."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from chatprobe import specs
from chatprobe.errors import ConfigError


@click.command(name="validate")
@click.option(
    "--schema",
    "target",
    required=True,
    metavar="LEVEL:KIND",
    help="Schema to use, e.g. openai-strict:response or aimlapi:error. "
    "Kinds: request, response, chunk, error.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def validate(target: str, files: tuple[Path, ...]) -> None:
    """Validate JSON payloads (FILES, or - for stdin) and print each violation with its
    JSON pointer. Exit status 1 when any file violates the schema.

    A file holding several SSE chunks may be given as JSON Lines with --schema LEVEL:chunk.
    """
    level, sep, kind = target.partition(":")
    if not sep:
        raise click.BadParameter(
            "expected LEVEL:KIND, e.g. openai-strict:response", param_hint="--schema"
        )
    specs.validator(level, kind)  # unknown names fail here, listing the known ones
    failed = False
    for path in files:
        for label, payload in _payloads(path, jsonl=kind == "chunk"):
            violations = specs.validate(level, kind, payload)
            if violations:
                failed = True
                click.echo(f"{label}: {len(violations)} violation(s) of {level}:{kind}")
                for v in violations:
                    click.echo(f"  {v}")
            else:
                click.echo(f"{label}: valid {level}:{kind}")
    sys.exit(1 if failed else 0)


def _payloads(path: Path, *, jsonl: bool) -> Iterator[tuple[str, Any]]:
    text = sys.stdin.read() if str(path) == "-" else _read(path)
    try:
        yield str(path), json.loads(text)
        return
    except json.JSONDecodeError as exc:
        if not jsonl:
            raise ConfigError(f"not JSON: {exc.msg}", path=str(path), line=exc.lineno) from None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("data:"):
            line = line[5:].strip()
        if not line or line == "[DONE]":
            continue
        try:
            yield f"{path}:{n}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not JSON: {exc.msg}", path=str(path), line=n) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", path=str(path)) from None
