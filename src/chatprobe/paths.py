"""Where chatprobe looks for each kind of file: the user's project first, then the data
shipped in the package.

Two sources (docs/projects.md):

* **built-in** (:mod:`chatprobe._data`, read-only): the repository's ``specs/``, ``suites/``,
  ``loadtests/`` and ``cassettes/`` folders, shipped in the wheel;
* **the project** (:mod:`chatprobe.project`): the folder of the nearest ``chatprobe.toml`` or
  ``pyproject.toml`` with ``[tool.chatprobe]``, its folders named by ``paths.*``.

============  =========================================  ==================================
kind          project                                    built-in
============  =========================================  ==================================
schemas       (none)                                     ``specs/schemas/``, ``specs/*.schema.yaml``
profiles      ``paths.profiles`` (``profiles/``)         ``specs/providers/``
suites        ``paths.suites`` (``suites/``)             ``suites/`` (``builtin_suites``)
scenarios     ``paths.scenarios`` (``scenarios/``)       ``loadtests/scenarios/``
cassettes     ``paths.cassettes`` (written here)         ``cassettes/`` (replay only)
results       ``$CHATPROBE_RESULTS``, ``paths.results``  (none)
reports       ``paths.reports``                          (none)
locustfile    (none)                                     ``loadtests/locustfile.py``
============  =========================================  ==================================

A name found in both (a profile, a scenario, a suite such as ``basic`` or
``derived/aimlapi``) is the project's: project > built-in. A scenario's prompt file is
relative to the scenario. This repository is itself a project (``[tool.chatprobe]`` in its
``pyproject.toml``) whose folders are the built-in ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from chatprobe import _data
from chatprobe.project import Project, current_project

__all__ = [
    "RESULTS_ENV",
    "builtin",
    "cassette_dirs",
    "find_named",
    "locustfile",
    "names_in",
    "profile_dirs",
    "project_root",
    "reports_dir",
    "results_dir",
    "scenario_dirs",
    "schema_file",
    "specs_dir",
    "suite_files",
    "suite_name_for",
]

RESULTS_ENV = "CHATPROBE_RESULTS"
"""A results root that wins over the project's ``paths.results``."""

_SUFFIXES = (".yaml", ".yml")


def builtin(folder: str) -> Path:
    """A built-in data folder: ``specs``, ``suites``, ``loadtests`` or ``cassettes``."""
    return _data.folder(folder)


specs_dir = _data.specs_dir
schema_file = _data.schema_file


def _unique(paths: Iterable[Path]) -> tuple[Path, ...]:
    seen: dict[Path, None] = {}
    for path in paths:
        seen.setdefault(path.resolve(), None)
    return tuple(seen)


def project_root() -> Path:
    """The current project's root folder (the current directory outside a project)."""
    return current_project().root


def profile_dirs(project: Project | None = None) -> tuple[Path, ...]:
    """Folders searched for provider profiles, first match wins."""
    project = project or current_project()
    return _unique((*project.profiles, specs_dir() / "providers"))


def scenario_dirs(project: Project | None = None) -> tuple[Path, ...]:
    """Folders searched for load scenarios, first match wins."""
    project = project or current_project()
    return _unique((*project.scenarios, builtin("loadtests") / "scenarios"))


def cassette_dirs(project: Project | None = None) -> tuple[Path, ...]:
    """Where cassettes are written (the first) and where replay looks, in order."""
    project = project or current_project()
    return _unique((project.cassettes, builtin("cassettes")))


def results_dir(project: Project | None = None) -> Path:
    """The results root: ``$CHATPROBE_RESULTS``, else the project's ``paths.results``."""
    configured = os.environ.get(RESULTS_ENV)
    if configured:
        return Path(configured)
    return (project or current_project()).results


def reports_dir(project: Project | None = None) -> Path:
    """The reports root (the project's ``paths.reports``)."""
    return (project or current_project()).reports


def locustfile() -> Path:
    """The locustfile ``chatprobe load`` runs (``loadtests/locustfile.py``, built-in)."""
    return builtin("loadtests") / "locustfile.py"


def find_named(folders: Iterable[Path], name: str) -> Path | None:
    """``<folder>/<name>.yaml`` (or ``.yml``) in the first folder that has it."""
    for folder in folders:
        for suffix in _SUFFIXES:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def names_in(folders: Iterable[Path]) -> list[str]:
    """The names (file stems) of the YAML files in ``folders``, sorted, each once."""
    return sorted({p.stem for folder in folders for s in _SUFFIXES for p in folder.glob(f"*{s}")})


def suite_name_for(path: Path) -> str:
    """A suite's name: its path below the nearest folder named ``suites`` without the suffix
    (``.../suites/derived/aimlapi.yaml`` -> ``derived/aimlapi``), elsewhere the file stem.
    Cassettes are filed under it, and a project suite overrides the built-in one of its name.
    """
    resolved = path.resolve()
    parts = resolved.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "suites":
            return "/".join((*parts[i + 1 : -1], resolved.stem))
    return resolved.stem


def _suite_files_in(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for s in _SUFFIXES for p in path.rglob(f"*{s}") if p.is_file())


def suite_files(
    project: Project | None = None, *, builtin_suites: bool | None = None
) -> list[Path]:
    """The suite files ``chatprobe check`` runs: the project's, then the built-in ones that
    the project does not override by name (``basic``, ``derived/aimlapi``), unless
    ``builtin_suites`` is off (default: the project's setting)."""
    project = project or current_project()
    include = project.builtin_suites if builtin_suites is None else builtin_suites
    files = [f.resolve() for p in project.suites for f in _suite_files_in(p)]
    if include:
        names = {suite_name_for(f) for f in files}
        files += [
            f.resolve()
            for f in _suite_files_in(builtin("suites"))
            if suite_name_for(f) not in names
        ]
    return list(dict.fromkeys(files))
