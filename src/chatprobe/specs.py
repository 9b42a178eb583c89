"""The documented schemas under ``specs/``: loaded once, compiled once, cached.

Layout: ``specs/schemas/<level>/<kind>.yaml`` where ``level`` is ``openai-strict`` or a
provider's documented level (``aimlapi``, ``apilaplas``, ``openrouter``) and ``kind`` is one of
:data:`KINDS`. Files may ``$ref`` each other by relative path
(``../openai-strict/chunk.yaml#/$defs/Usage``): every file is registered under
``https://chatprobe.dev/schemas/<level>/<kind>.yaml`` unless it declares its own ``$id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml
from referencing.jsonschema import DRAFT202012

from chatprobe.errors import ConfigError, UnknownNameError
from chatprobe.paths import specs_dir

__all__ = [
    "KINDS",
    "STRICT",
    "Violation",
    "levels",
    "profile_validator",
    "schema",
    "validate",
    "validator",
]

KINDS = ("request", "response", "chunk", "error")
STRICT = "openai-strict"
_BASE = "https://chatprobe.dev/schemas/"
# libyaml's safe loader when available: the schemas load ~10x faster (every pytest run pays it).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Violation:
    """One schema violation, located by JSON pointer into the instance."""

    pointer: str
    message: str
    schema_path: str
    validator: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


def _schemas_root() -> Path:
    return specs_dir() / "schemas"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            path=str(path),
            line=mark.line + 1 if mark else None,
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("a schema document must be a mapping", path=str(path))
    return data


@cache
def levels() -> tuple[str, ...]:
    """Schema levels present under ``specs/schemas/``."""
    root = _schemas_root()
    if not root.is_dir():
        return ()
    return tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))


@cache
def _registry() -> referencing.Registry:
    resources = []
    root = _schemas_root()
    for path in sorted(root.glob("*/*.yaml")):
        contents = _read(path)
        uri = contents.get("$id") or f"{_BASE}{path.parent.name}/{path.name}"
        resources.append((uri, DRAFT202012.create_resource(contents)))
    return referencing.Registry().with_resources(resources)


@cache
def schema(level: str, kind: str) -> dict[str, Any]:
    """The raw schema document for ``level``/``kind``."""
    if kind not in KINDS:
        raise UnknownNameError("schema kind", kind, KINDS)
    if level not in levels():
        raise UnknownNameError("schema level", level, levels())
    path = _schemas_root() / level / f"{kind}.yaml"
    if not path.is_file():
        raise ConfigError(f"no {kind} schema for level {level}", path=str(path))
    return _read(path)


@cache
def validator(level: str, kind: str) -> jsonschema.Draft202012Validator:
    """A compiled, cached validator for ``level``/``kind``."""
    contents = schema(level, kind)
    if "$id" not in contents:
        contents = {**contents, "$id": f"{_BASE}{level}/{kind}.yaml"}
    jsonschema.Draft202012Validator.check_schema(contents)
    return jsonschema.Draft202012Validator(
        contents,
        registry=_registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def validate(level: str, kind: str, instance: Any) -> list[Violation]:
    """All violations of ``instance`` against ``level``/``kind``, sorted by location."""
    found = []
    for raw in validator(level, kind).iter_errors(instance):
        error = _explain(raw)
        pointer = "".join(f"/{p}" for p in error.absolute_path)
        found.append(
            Violation(
                pointer=pointer,
                message=error.message,
                schema_path="/".join(str(p) for p in error.absolute_schema_path),
                validator=str(error.validator),
            )
        )
    return sorted(found, key=lambda v: (v.pointer, v.message))


def _explain(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The branch failure that explains an ``anyOf``/``oneOf`` failure, when there is one.

    Nullable values are ``anyOf: [X, {type: null}]``; without this, a bad finish_reason reads
    "'error' is not valid under any of the given schemas" instead of "'error' is not one of
    [...]". Branches rejected only for the instance's type are ignored; if every branch is,
    the original error is kept.
    """
    while error.validator in ("anyOf", "oneOf") and error.context:
        relevant = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
        if not relevant:
            break
        error = jsonschema.exceptions.best_match(relevant)
    return error


@cache
def profile_validator() -> jsonschema.Draft202012Validator:
    path = specs_dir() / "profile.schema.yaml"
    return jsonschema.Draft202012Validator(
        _read(path), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
