"""chatprobe's built-in data: the repository's top-level data folders, shipped in the package.

The repository keeps its data where the product card puts it (``specs/``, ``suites/``,
``loadtests/``, ``cassettes/``); ``setup.py`` maps each folder into the wheel as a
sub-folder of this package (``chatprobe/_data/specs/...``), so an installed chatprobe reads
them with :mod:`importlib.resources`. An editable install from a clone (``pip install -e .``)
has no such sub-folders beside this file: there the folders are read where they are, in the
source tree the distribution was installed from (PEP 610's ``direct_url.json`` names it).

Everything else asks :mod:`chatprobe.paths`, which adds the user's project; the documented
schemas are built-in only, so :func:`specs_dir` and :func:`schema_file` live here, below
both the schema reader (``chatprobe.specs``) and the project reader (``chatprobe.project``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["FOLDERS", "folder", "schema_file", "specs_dir"]

FOLDERS = ("specs", "suites", "loadtests", "cassettes")
"""The repository folders shipped as built-in data (the same list is in ``setup.py``)."""


@cache
def folder(name: str) -> Path:
    """The built-in folder ``name`` (one of :data:`FOLDERS`) as a real directory."""
    if name not in FOLDERS:
        raise ValueError(f"unknown data folder {name!r} (known: {', '.join(FOLDERS)})")
    shipped = resources.files(__name__) / name
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    source = _source_tree()
    if source is not None and (source / name).is_dir():
        return source / name
    raise RuntimeError(
        f"chatprobe's built-in data folder {name!r} is missing: reinstall chatprobe "
        "(pip install chatprobe, or pip install -e . from a clone)"
    )


def specs_dir() -> Path:
    """The built-in ``specs/`` folder: documented schemas, the shipped profiles."""
    return folder("specs")


def schema_file(name: str) -> Path:
    """``specs/<name>.schema.yaml``: ``profile``, ``suite``, ``scenario`` or ``config``."""
    return specs_dir() / f"{name}.schema.yaml"


def _source_tree() -> Path | None:
    """The directory of an editable install (``pip install -e DIR``), else None."""
    try:
        text = metadata.distribution("chatprobe").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    info = json.loads(text)
    if not (info.get("dir_info") or {}).get("editable"):
        return None
    url = urlsplit(str(info.get("url", "")))
    return Path(unquote(url.path)) if url.scheme == "file" else None
