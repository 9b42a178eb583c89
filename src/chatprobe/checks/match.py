"""Field rules (a suite case's ``expect.match``): what a rule is and how it is judged.

A :class:`MatchRule` names a dotted path into the response document (see
:mod:`chatprobe.checks.context`) and what must hold there: a type, a regex, an exact value, a
contained item, a numeric range, a length, or absence. :func:`evaluate` yields one
:class:`~chatprobe.checks.findings.Problem` per rule that fails. The suite loader builds the
rules (:meth:`MatchRule.from_dict`); the ``field_match`` check runs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from chatprobe.checks.findings import Problem

__all__ = ["MatchRule", "evaluate", "resolve"]


@dataclass(frozen=True, slots=True)
class MatchRule:
    """One field rule from ``expect.match`` (see ``specs/suite.schema.yaml``)."""

    path: str
    description: str = ""
    type: str | None = None
    regex: str | None = None
    equals: Any = None
    has_equals: bool = False
    contains: Any = None
    has_contains: bool = False
    range_min: float | None = None
    range_max: float | None = None
    length_min: int | None = None
    length_max: int | None = None
    absent: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatchRule:
        rng = data.get("range") or {}
        length = data.get("length")
        lmin: int | None
        lmax: int | None
        if isinstance(length, int):
            lmin = lmax = length
        else:
            lmin, lmax = (length or {}).get("min"), (length or {}).get("max")
        return cls(
            path=str(data["path"]),
            description=str(data.get("description", "")),
            type=data.get("type"),
            regex=data.get("regex"),
            equals=data.get("equals"),
            has_equals="equals" in data,
            contains=data.get("contains"),
            has_contains="contains" in data,
            range_min=rng.get("min"),
            range_max=rng.get("max"),
            length_min=lmin,
            length_max=lmax,
            absent=bool(data.get("absent", False)),
        )

    @property
    def pointer(self) -> str:
        return "/" + "/".join(self.path.split("."))


_MISSING: Any = object()
_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def resolve(doc: Any, path: str) -> Any:
    """Follow a dotted path (numbers index lists, negative from the end); missing -> _MISSING."""
    value = doc
    for part in path.split("."):
        if isinstance(value, dict):
            if part not in value:
                return _MISSING
            value = value[part]
        elif isinstance(value, list):
            try:
                value = value[int(part)]
            except (ValueError, IndexError):
                return _MISSING
        else:
            return _MISSING
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


def evaluate(rule: MatchRule, doc: Any) -> Iterator[Problem]:
    """Every way ``rule`` fails on ``doc``."""
    value = resolve(doc, rule.path)
    why = f" ({rule.description})" if rule.description else ""
    where = rule.pointer
    if rule.absent:
        if value is not _MISSING and value is not None:
            yield Problem(
                f"field should be absent{why}", path=where, received=value, documented="absent"
            )
        return
    if value is _MISSING:
        yield Problem(
            f"field missing{why}", path=where, received=None, documented=f"a value at {rule.path}"
        )
        return
    if rule.type and not _TYPES[rule.type](value):
        yield Problem(f"wrong type{why}", path=where, received=value, documented=rule.type)
    if rule.regex is not None and not re.search(rule.regex, _text(value)):
        yield Problem(
            f"no match for the regex{why}", path=where, received=value, documented=f"/{rule.regex}/"
        )
    if rule.has_equals and value != rule.equals:
        yield Problem(f"value differs{why}", path=where, received=value, documented=rule.equals)
    if rule.has_contains:
        if isinstance(value, list | dict):
            ok = rule.contains in value
        else:
            ok = _text(rule.contains) in _text(value)
        if not ok:
            yield Problem(
                f"does not contain the expected item{why}",
                path=where,
                received=value,
                documented=f"contains {rule.contains!r}",
            )
    if rule.range_min is not None or rule.range_max is not None:
        number = _TYPES["number"](value)
        low = rule.range_min if rule.range_min is not None else float("-inf")
        high = rule.range_max if rule.range_max is not None else float("inf")
        if not number or not low <= value <= high:
            yield Problem(
                f"out of range{why}",
                path=where,
                received=value,
                documented=f"{rule.range_min}..{rule.range_max}",
            )
    if rule.length_min is not None or rule.length_max is not None:
        size = len(value) if isinstance(value, str | list | dict) else None
        low = rule.length_min if rule.length_min is not None else 0
        high = rule.length_max if rule.length_max is not None else float("inf")
        if size is None or not low <= size <= high:
            yield Problem(
                f"wrong length{why}",
                path=where,
                received=size if size is not None else value,
                documented=f"length {rule.length_min}..{rule.length_max}",
            )
