"""The case's own field rules (``expect.match``), evaluated on the response document."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from chatprobe.checks.context import CheckContext, document
from chatprobe.checks.findings import Problem, Severity
from chatprobe.checks.registry import check
from chatprobe.record import RequestRecord
from chatprobe.suites.model import MatchRule

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


def _has_rules(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return bool(case.expect.match)


@check(
    severity=Severity.ERROR,
    source="the case's expect.match rules (suite file)",
    applies=_has_rules,
)
def field_match(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """The response meets the case's field rules (type, regex, equals, contains, range, length)."""
    doc = document(record)
    for rule in case.expect.match:
        yield from evaluate(rule, doc)
