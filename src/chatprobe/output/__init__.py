"""What commands print: results on stdout, progress on stderr, in the format asked for.

Every command follows one rule: what a user (or a CI step) reads as the command's result
goes to stdout; progress, child processes' chatter and hints go to stderr, so
``chatprobe check --format json > out.json`` and ``chatprobe load | tee`` capture exactly
the result. ``check`` and ``load`` take ``--format``:

``text``    tables and sentences for people; a table is drawn with rich only on a terminal
            wide enough for it, else laid out plainly, one row per line, so no id is ever
            folded or cut (CI logs, pipes, 80 columns): :mod:`~chatprobe.output.tables`;
``json``    one JSON document on stdout, nothing else (the machine-readable result);
``github``  the text, then GitHub workflow annotations (``::error file=...,line=...::``)
            for failures: :mod:`~chatprobe.output.github`.

The modules: :mod:`~chatprobe.output.contract` (``chatprobe check``) and
:mod:`~chatprobe.output.load` (``chatprobe load``). Sentences come from
:mod:`chatprobe.report.headline`, figures from :mod:`chatprobe.metrics`.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import orjson

from chatprobe.scrub import scrub_obj

__all__ = ["FORMATS", "is_terminal", "write_json"]

FORMATS = ("text", "json", "github")


def is_terminal(stream: TextIO | None = None) -> bool:
    """Does ``stream`` (default stdout) reach a person's terminal?"""
    stream = stream if stream is not None else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def write_json(document: Any, stream: TextIO | None = None) -> None:
    """``document`` as indented JSON (scrubbed of secrets) and a newline."""
    stream = stream if stream is not None else sys.stdout
    data = orjson.dumps(scrub_obj(document), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    stream.write(data.decode() + "\n")
    stream.flush()
