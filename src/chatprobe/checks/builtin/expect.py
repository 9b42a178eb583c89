"""The case's own field rules (``expect.match``), evaluated on the response document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatprobe.checks.context import CheckContext, document
from chatprobe.checks.findings import Problem, Severity
from chatprobe.checks.match import evaluate
from chatprobe.checks.registry import check
from chatprobe.record import RequestRecord


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
