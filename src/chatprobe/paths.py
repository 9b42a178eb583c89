"""Where chatprobe finds its data: ``specs/``, ``suites/``, ``loadtests/``, ``cassettes/``.

The project root is ``$CHATPROBE_ROOT`` when set, else the nearest directory above the
installed package that holds ``specs/providers`` (an editable install from a clone), else the
current directory.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

__all__ = ["project_root", "specs_dir"]


@cache
def project_root() -> Path:
    env = os.environ.get("CHATPROBE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "specs" / "providers").is_dir():
            return parent
    return Path.cwd()


def specs_dir() -> Path:
    return project_root() / "specs"
