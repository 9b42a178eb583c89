"""What a check reports: severities, problems and findings.

A check function yields :class:`Problem` objects (what is wrong, where, what was received and
what is documented); the evaluator stamps each with the check's name and severity, making a
:class:`Finding`. Messages read ``<what>. Received: X / Documented: Y`` and every finding
carries a JSON pointer into the *response document* (see :mod:`chatprobe.checks.context`),
e.g. ``/chunks/3/id`` or ``/body/usage/total_tokens``.

Schema violations are rendered by :func:`chatprobe.specs.violations`, the one renderer
``chatprobe validate`` uses too; :func:`schema_problems` turns each into a problem: pointer,
message, the offending value and an excerpt of the schema rule that rejected it.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from chatprobe.scrub import scrub_text
from chatprobe.specs import Validator, violations

__all__ = [
    "MAX_PROBLEMS",
    "Finding",
    "Problem",
    "Severity",
    "excerpt",
    "schema_problems",
]

MAX_PROBLEMS = 20  # per check and record: a broken stream of 500 chunks is one story, not 500


class Severity(StrEnum):
    """How bad a failed check is.

    ``critical`` and ``error`` fail a case; ``warning`` is reported and never fails one.
    """

    CRITICAL = "critical"  # the protocol is broken: framing, auth, 5xx for a client error
    ERROR = "error"  # a documented rule is broken
    WARNING = "warning"  # suspicious but allowed (e.g. 0 prompt tokens for a non-empty prompt)

    @property
    def fails(self) -> bool:
        return self is not Severity.WARNING


_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing a check found wrong, before the check's name and severity are attached."""

    message: str
    path: str = ""  # JSON pointer into the response document
    received: Any = _UNSET
    documented: Any = _UNSET
    severity: Severity | None = None  # overrides the check's default for this problem

    def render(self) -> str:
        text = self.message
        tail = []
        if self.received is not _UNSET:
            tail.append(f"Received: {excerpt(self.received)}")
        if self.documented is not _UNSET:
            documented = self.documented
            tail.append(
                f"Documented: {documented if isinstance(documented, str) else excerpt(documented)}"
            )
        if tail:
            text = f"{text.rstrip('.')}. {' / '.join(tail)}"
        return text


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem attributed to a named check."""

    check: str
    severity: Severity
    message: str
    path: str = ""

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.check}{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity.value,
            "message": scrub_text(self.message),
            "path": self.path,
        }


# Bounded repr: provider JSON may nest ~1000 levels deep, where repr() hits RecursionError.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 6, 120, 120


def excerpt(value: Any, limit: int = 120) -> str:
    """A short, single-line, scrubbed rendering of a JSON value for a message."""
    try:
        text = orjson.dumps(value, default=str).decode()
    except TypeError:  # not JSON, or nested deeper than orjson writes (a hostile payload)
        text = _REPR.repr(value)
    text = scrub_text(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schema_problems(
    validator: Validator,
    instance: Any,
    *,
    prefix: str = "",
    label: str = "",
) -> Iterator[Problem]:
    """Every violation of ``instance`` (as :func:`chatprobe.specs.violations` renders it) as
    a :class:`Problem`.

    ``prefix`` locates ``instance`` inside the response document (``/body``, ``/chunks/4``);
    ``label`` names the schema (``openai-strict:chunk``).
    """
    for violation in violations(validator, instance):
        where = f"{label} {violation.schema_path}".strip()
        rule = violation.rule
        yield Problem(
            message=f"{violation.message} [{where}]" if label else violation.message,
            path=prefix + violation.pointer or "/",
            received=violation.received,
            documented=rule if isinstance(rule, str) else excerpt(rule, limit=100),
        )
