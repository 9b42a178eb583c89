"""GitHub Actions workflow commands (``--format github``): annotations on the file and line
a failure comes from, shown on the run's summary page and beside the pull request's diff.

A command is ``::error file=F,line=L,title=T::message`` on a line of its own; in the message
``%``, CR and LF are escaped, in property values ``:`` and ``,`` as well (GitHub's workflow
command syntax).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["annotation", "workspace_path"]

LEVELS = ("error", "warning", "notice")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    title: str | None = None,
) -> str:
    """One workflow command line, e.g. ``::error file=suites/basic.yaml,line=12::...``."""
    if level not in LEVELS:
        raise ValueError(f"annotation level must be one of {LEVELS}, got {level!r}")
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
        if line:
            props.append(f"line={line}")
    if title:
        props.append(f"title={_escape_property(title)}")
    head = f"::{level}" + (" " + ",".join(props) if props else "")
    return f"{head}::{_escape_data(message)}"


def workspace_path(source: str) -> tuple[str | None, int | None]:
    """``path:line`` (a case's ``source``) as GitHub wants it: the path relative to the
    workspace (``$GITHUB_WORKSPACE``, else the current folder) and the line; a file outside
    it (a built-in suite inside the installed package) has no path to point at."""
    path, sep, tail = source.rpartition(":")
    if not sep or not tail.isdigit():
        path, line = source, None
    else:
        line = int(tail)
    if not path:
        return None, None
    root = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    resolved = (Path.cwd() / path).resolve()
    if not resolved.is_relative_to(root):
        return None, None
    return resolved.relative_to(root).as_posix(), line
