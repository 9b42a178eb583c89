"""The documented schemas under ``specs/``: loaded once, compiled once, cached.

Layout: ``specs/schemas/<level>/<kind>.yaml`` where ``level`` is ``openai-strict`` or a
provider's documented level (``aimlapi``, ``apilaplas``, ``openrouter``) and ``kind`` is one of
:data:`KINDS`. Files may ``$ref`` each other by relative path
(``../openai-strict/chunk.yaml#/$defs/Usage``): every file is registered under
``https://chatprobe.dev/schemas/<level>/<kind>.yaml`` unless it declares its own ``$id``.

This module is also THE renderer of JSON-Schema failures (:func:`violations`): ``chatprobe
validate``, the checks' findings, user files (:func:`raise_schema_error`) and the emulator's
400 answers word and locate a violation the same way.
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml
from jsonschema.protocols import Validator
from referencing.jsonschema import DRAFT202012

from chatprobe.errors import ConfigError, UnknownNameError
from chatprobe.paths import specs_dir
from chatprobe.yamlfile import YamlDoc

__all__ = [
    "KINDS",
    "STRICT",
    "Violation",
    "levels",
    "most_relevant",
    "profile_validator",
    "raise_schema_error",
    "render",
    "schema",
    "validate",
    "validator",
    "violations",
]

KINDS = ("request", "response", "chunk", "error")
STRICT = "openai-strict"
_BASE = "https://chatprobe.dev/schemas/"
# libyaml's safe loader when available: the schemas load ~10x faster (every pytest run pays it).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Violation:
    """One schema violation, rendered once for every reader (see :func:`violations`).

    ``path`` locates the fault in the instance: for a missing required property, the
    property itself; for unexpected properties, the first of them. ``received`` is what to
    show as the offending value and ``rule`` the schema rule that rejected it (``{keyword:
    value}``, or a short phrase for combinators).
    """

    pointer: str
    message: str
    schema_path: str
    validator: str
    path: tuple[str | int, ...] = ()
    received: Any = field(default=None, compare=False)
    rule: Any = field(default=None, compare=False)

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
    return violations(validator(level, kind), instance)


# ---------------------------------------------------------------------------- the renderer
#
# Every JSON-Schema failure a user sees goes through here: `chatprobe validate`, the checks'
# findings, a user file's `file:line: field: message` and the emulator's 400 answers.

MAX_MESSAGE = 200
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 40, 40
_REQUIRED = re.compile(r"^'(.+)' is a required property$")


def violations(checker: Validator, instance: Any) -> list[Violation]:
    """Every violation of ``instance``, rendered, sorted by location then message.

    A payload nested deeper than the validator can follow is one violation at the root (the
    validator would otherwise raise RecursionError).
    """
    try:
        errors = list(checker.iter_errors(instance))
    except RecursionError:
        return [
            Violation(
                pointer="",
                message="nested too deeply to validate",
                schema_path="",
                validator="depth",
                received="JSON nested deeper than the validator can follow",
                rule="the documented schema",
            )
        ]
    return sorted((render(e) for e in errors), key=lambda v: (v.pointer, v.message))


def most_relevant(found: list[Violation]) -> Violation:
    """The violation to report when there is room for one (``found`` is not empty): the
    deepest, since it names the field a person has to fix; the first in order among equals."""
    return max(found, key=lambda v: len(v.path))


def render(error: jsonschema.ValidationError) -> Violation:
    """One jsonschema error as a :class:`Violation`."""
    error = _explain(error)
    path: tuple[str | int, ...] = tuple(error.absolute_path)
    keyword = str(error.validator)
    schema = error.schema if isinstance(error.schema, dict) else {}
    received: Any = error.instance
    message = _short(error.message)
    missing = _REQUIRED.match(error.message) if keyword == "required" else None
    if missing:  # point at the property that is missing, not at the object that lacks it
        path = (*path, missing.group(1))
        message = "missing required property"
        if isinstance(received, dict):
            received = {"keys": sorted(map(str, received))}
    elif keyword == "additionalProperties" and isinstance(received, dict):
        known = schema.get("properties") or {}
        extra = [k for k in received if k not in known]
        if extra and not schema.get("patternProperties"):
            first = extra[0] if isinstance(extra[0], int | str) else str(extra[0])
            path = (*path, first)  # point at the first unexpected key
            received = received[extra[0]]
            names = ", ".join(repr(k) for k in extra[:5]) + (", ..." if len(extra) > 5 else "")
            message = f"unexpected propert{'y' if len(extra) == 1 else 'ies'} {names}"
            if known:
                message += f" (allowed: {', '.join(sorted(map(str, known)))})"
    elif keyword in ("anyOf", "oneOf") and error.context:
        types = _branch_types(error)
        if types:  # every alternative rejected the value for its type
            message = f"{_REPR.repr(error.instance)} is not of type {types}"
    return Violation(
        pointer="".join(f"/{part}" for part in path),
        message=message,
        schema_path="/".join(str(p) for p in error.absolute_schema_path),
        validator=keyword,
        path=path,
        received=received,
        rule=_rule(keyword, schema),
    )


def _explain(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The branch failure that explains an ``anyOf``/``oneOf`` failure, when there is one.

    Nullable values are ``anyOf: [X, {type: null}]``; without this, a bad finish_reason reads
    "'error' is not valid under any of the given schemas" instead of "'error' is not one of
    [...]". Branches rejected only for the instance's type are ignored; if every branch is,
    the original error is kept (and :func:`render` lists the types).
    """
    while error.validator in ("anyOf", "oneOf") and error.context:
        relevant = [e for e in error.context if not _type_only(e)]
        if not relevant:
            break
        best = jsonschema.exceptions.best_match(relevant)
        if best is None:
            break
        error = best
    return error


def _type_only(error: jsonschema.ValidationError) -> bool:
    return error.validator == "type" and not error.relative_path


def _branch_types(error: jsonschema.ValidationError) -> str:
    """``'string', 'array' or 'null'`` when every branch failed on its type, else ``''``."""
    names: list[str] = []
    for branch in error.context or ():
        if not _type_only(branch):
            return ""
        value = branch.validator_value
        for name in value if isinstance(value, list) else [value]:
            if repr(name) not in names:
                names.append(repr(name))
    if len(names) < 2:
        return ", ".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _rule(keyword: str, schema: dict[str, Any]) -> Any:
    """The schema rule that rejected the value, e.g. ``{"required": ["id", "object"]}``."""
    rule = schema.get(keyword)
    if rule is None:
        return keyword
    if keyword in ("anyOf", "oneOf", "allOf"):
        return f"{keyword} of {len(rule)} alternatives"
    if keyword in ("properties", "$defs", "items", "if", "then", "else"):
        return keyword
    return {keyword: rule}


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def raise_schema_error(doc: YamlDoc, checker: Validator) -> None:
    """Validate a user file's data; raise its most relevant violation as a ConfigError with
    file, line and field (``file:line: field: message``)."""
    found = violations(checker, doc.data)
    if found:
        worst = most_relevant(found)
        raise doc.error(worst.message, worst.path)


@cache
def profile_validator() -> jsonschema.Draft202012Validator:
    path = specs_dir() / "profile.schema.yaml"
    return jsonschema.Draft202012Validator(
        _read(path), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
