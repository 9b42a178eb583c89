"""A chatprobe project: a folder with a ``chatprobe.toml``, or ``[tool.chatprobe]`` in its
``pyproject.toml``, found from the current directory upwards the way pytest finds its rootdir.

The project adds to chatprobe's built-in data and overrides it by name (its own profiles,
suites, scenarios), and is where cassettes, results and reports go. Where each kind of file
is looked up is :mod:`chatprobe.paths`; this module only finds and reads the configuration.

Discovery, first match wins:

1. ``$CHATPROBE_PROJECT``: a project folder or a configuration file (child processes get
   it, so they see the project their parent saw wherever they start);
2. from the starting folder upwards, the first folder holding ``chatprobe.toml``, or a
   ``pyproject.toml`` with a ``[tool.chatprobe]`` table (``chatprobe.toml`` wins when a folder
   has both);
3. none: a project without configuration rooted at the current directory (built-in data
   only; results, cassettes and reports under the current directory).

The keys (``specs/config.schema.yaml``, docs/projects.md): ``providers``, ``models``,
``builtin_suites``, ``paths.{profiles,suites,scenarios,cassettes,results,reports}``,
``timeouts``, ``slo``, ``thresholds.max_error_rate``. A mistake is one line,
``chatprobe.toml:3: timeouts.idle: ...``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from chatprobe.errors import ConfigError
from chatprobe.yamlfile import YamlDoc

__all__ = [
    "CONFIG_FILE",
    "PROJECT_ENV",
    "Project",
    "child_env",
    "current_project",
    "find_project",
    "load_project",
]

CONFIG_FILE = "chatprobe.toml"
PYPROJECT = "pyproject.toml"
PROJECT_ENV = "CHATPROBE_PROJECT"
"""A project folder or configuration file; skips discovery (set for child processes)."""

DEFAULT_PATHS: dict[str, Any] = {
    "profiles": ["profiles"],
    "suites": ["suites"],
    "scenarios": ["scenarios"],
    "cassettes": "cassettes",
    "results": "results",
    "reports": "reports",
}


@dataclass(frozen=True, slots=True)
class Project:
    """A project's resolved configuration (paths absolute)."""

    root: Path
    config: Path | None = None  # None: no configuration file found (built-in data only)
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    builtin_suites: bool = True
    profiles: tuple[Path, ...] = ()
    suites: tuple[Path, ...] = ()
    scenarios: tuple[Path, ...] = ()
    cassettes: Path = Path("cassettes")
    results: Path = Path("results")
    reports: Path = Path("reports")
    timeouts: dict[str, Any] = field(default_factory=dict)
    slo: dict[str, float] = field(default_factory=dict)
    max_error_rate: float | None = None

    @property
    def shown_config(self) -> str:
        """The configuration file as messages name it (relative to the current directory
        when inside it)."""
        return _shown(self.config) if self.config is not None else ""

    @property
    def found(self) -> bool:
        """Whether a configuration file was found (a real project, not the fallback)."""
        return self.config is not None


def find_config(start: Path) -> Path | None:
    """The configuration file governing ``start`` (a folder), searching upwards."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = folder / PYPROJECT
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def _has_tool_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if "chatprobe" not in text:  # skip parsing the common case
        return False
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return bool(re.search(r"^\s*\[\s*tool\s*\.\s*chatprobe\s*[.\]]", text, re.M))
    return isinstance(data.get("tool"), dict) and "chatprobe" in data["tool"]


def find_project(start: Path | str | None = None) -> Project:
    """The project for ``start`` (default: the current directory); see the module docstring."""
    configured = os.environ.get(PROJECT_ENV)
    if configured:
        target = Path(configured).resolve()
        if target.is_dir():
            config = target / CONFIG_FILE
            if not config.is_file():
                config = target / PYPROJECT
            if not config.is_file():
                raise ConfigError(
                    f"${PROJECT_ENV} names a folder without {CONFIG_FILE} or {PYPROJECT}",
                    path=str(target),
                )
        elif target.is_file():
            config = target
        else:
            raise ConfigError(f"${PROJECT_ENV}: no such file or folder", path=str(target))
        return load_project(config)
    here = Path(start) if start is not None else Path.cwd()
    found = find_config(here)
    if found is None:
        return _defaults(here.resolve())
    return load_project(found)


@cache
def _current(cwd: str, env: str | None) -> Project:
    return find_project(cwd)


def current_project() -> Project:
    """The project of the current directory (cached per directory and ``$CHATPROBE_PROJECT``)."""
    return _current(os.getcwd(), os.environ.get(PROJECT_ENV))


def child_env() -> dict[str, str]:
    """The environment for a chatprobe child process (locust, the emulator, ``chatprobe
    check`` under ``chatprobe run``): this one, plus ``$CHATPROBE_PROJECT`` naming the
    current project's configuration, so the child sees the same project wherever it starts."""
    env = dict(os.environ)
    project = current_project()
    if project.config is not None:
        env[PROJECT_ENV] = str(project.config)
    return env


def _defaults(root: Path, config: Path | None = None) -> Project:
    """The default folders of a project at ``root``; without a configuration file, no input
    folders at all (an unrelated ``suites/`` or ``profiles/`` is not chatprobe's), only the
    outputs under ``root``."""
    inputs = config is not None
    return Project(
        root=root,
        config=config,
        profiles=tuple(root / p for p in DEFAULT_PATHS["profiles"] if inputs),
        suites=tuple(root / p for p in DEFAULT_PATHS["suites"] if inputs),
        scenarios=tuple(root / p for p in DEFAULT_PATHS["scenarios"] if inputs),
        cassettes=root / DEFAULT_PATHS["cassettes"],
        results=root / DEFAULT_PATHS["results"],
        reports=root / DEFAULT_PATHS["reports"],
    )


# ---------------------------------------------------------------------------- reading


def load_project(config: Path | str) -> Project:
    """Read and validate a configuration file; a mistake is a one-line ConfigError."""
    path = Path(config).resolve()
    doc = _read(path)
    from chatprobe.specs import raise_schema_error

    raise_schema_error(doc, _validator())
    data: dict[str, Any] = doc.data
    root = path.parent
    base = _defaults(root, path)
    paths = data.get("paths") or {}

    def many(key: str) -> tuple[Path, ...]:
        if key not in paths:
            return tuple(getattr(base, key))
        found = []
        for i, item in enumerate(paths[key]):
            target = (root / item).resolve()
            if not target.exists():
                raise doc.error(f"no such file or folder: {target}", ("paths", key, i))
            found.append(target)
        return tuple(found)

    def one(key: str) -> Path:
        return (root / paths[key]).resolve() if key in paths else Path(getattr(base, key))

    providers = []
    for i, ref in enumerate(data.get("providers") or ()):
        if ref.endswith((".yaml", ".yml")) or "/" in ref:
            target = (root / ref).resolve()
            if not target.is_file():
                raise doc.error(f"no such profile file: {target}", ("providers", i))
            ref = str(target)
        providers.append(ref)
    thresholds = data.get("thresholds") or {}
    return Project(
        root=root,
        config=path,
        providers=tuple(providers),
        models=tuple(data.get("models") or ()),
        builtin_suites=bool(data.get("builtin_suites", True)),
        profiles=many("profiles"),
        suites=many("suites"),
        scenarios=many("scenarios"),
        cassettes=one("cassettes"),
        results=one("results"),
        reports=one("reports"),
        timeouts=dict(data.get("timeouts") or {}),
        slo={k: float(v) for k, v in (data.get("slo") or {}).items()},
        max_error_rate=thresholds.get("max_error_rate"),
    )


def _read(path: Path) -> YamlDoc:
    """The configuration as a document with a line for each key (errors point at lines)."""
    shown = _shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=shown) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", path=shown) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else max(1, len(text.splitlines()))
        message = re.sub(r"\s*\((at line \d+, column \d+|at end of document)\)", "", str(exc))
        raise ConfigError(f"invalid TOML: {message}", path=shown, line=line) from None
    prefix: tuple[str, ...] = ()
    if path.name == PYPROJECT:
        prefix = ("tool", "chatprobe")
        table = (data.get("tool") or {}).get("chatprobe")
        if table is None:
            raise ConfigError("no [tool.chatprobe] table", path=shown)
        data = table
    return YamlDoc(data=data, path=shown, lines=_key_lines(text, prefix))


def _shown(path: Path) -> str:
    """The path as a user would type it: relative to the current directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


_KEY = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_TABLE = re.compile(rf"^\[\[?\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*\]\]?")
_ASSIGN = re.compile(rf"^({_KEY}(?:\s*\.\s*{_KEY})*)\s*=")


def _split_key(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in re.findall(_KEY, dotted))


def _key_lines(text: str, prefix: tuple[str, ...]) -> dict[tuple[str | int, ...], int]:
    """Line (1-based) of each table and key, relative to ``prefix``; values inside inline
    tables and multi-line arrays take their key's line (enough for a one-line error)."""
    lines: dict[tuple[str | int, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        header = _TABLE.match(stripped)
        if header:
            table = _split_key(header.group(1))
            key: tuple[str, ...] = table
        else:
            assign = _ASSIGN.match(stripped)
            if not assign:
                continue
            key = table + _split_key(assign.group(1))
        if key[: len(prefix)] != prefix:
            continue
        rel = key[len(prefix) :]
        for end in range(len(rel) + 1):
            lines.setdefault(rel[:end], number)
    return lines


@cache
def _validator() -> Any:
    """The configuration schema, with a scenario's ``slo`` and ``timeouts`` plugged in."""
    import jsonschema

    from chatprobe._data import schema_file
    from chatprobe.yamlfile import load_yaml

    schema = load_yaml(schema_file("config")).data
    scenario = load_yaml(schema_file("scenario")).data
    for key in ("slo", "timeouts"):
        schema["properties"][key] = {
            **scenario["properties"][key],
            "description": schema["properties"][key]["description"],
        }
    schema["$defs"] = {**scenario.get("$defs", {}), **schema.get("$defs", {})}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)
