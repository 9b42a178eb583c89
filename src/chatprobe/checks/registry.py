"""The check registry: named functions with a severity, a source and an applicability rule.

A check is a plain function ``(ctx, record, case) -> Iterable[Problem]`` decorated with
:func:`check`. Its docstring's first line is its description; ``source`` cites the rule
(an OpenAI reference path, a seed file, a DESIGN.md fact). ``applies`` decides whether the
check has anything to say about a record (a stream check on a plain response is *skipped*,
not passed). Profiles and suites switch checks off and declare deviations by name.

``endpoints`` names the API endpoints a check judges (:data:`ENDPOINTS`): most checks are
about chat completions; HTTP-level and error-envelope checks judge any endpoint, and
``models_list_model`` only ``GET /models``. A case's ``endpoint`` (``request.endpoint`` in a
suite) decides which apply; the others are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatprobe.checks.findings import Problem, Severity
from chatprobe.errors import UnknownNameError

if TYPE_CHECKING:
    from chatprobe.checks.context import CheckContext
    from chatprobe.record import RequestRecord

__all__ = [
    "ANY_ENDPOINT",
    "CHAT",
    "ENDPOINTS",
    "MODELS",
    "Check",
    "CheckFn",
    "check",
    "get_check",
    "registered",
]

CHAT = "chat"  # POST <base>/chat/completions
MODELS = "models"  # GET <base>/models
ENDPOINTS = (CHAT, MODELS)
ANY_ENDPOINT = frozenset(ENDPOINTS)

CheckFn = Callable[["CheckContext", "RequestRecord", Any], Iterable[Problem] | None]
Applies = Callable[["CheckContext", "RequestRecord", Any], bool]

_REGISTRY: dict[str, Check] = {}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    func: CheckFn
    severity: Severity
    source: str
    applies: Applies
    description: str
    endpoints: frozenset[str] = frozenset({CHAT})

    def describe(self) -> dict[str, str]:
        return {
            "severity": self.severity.value,
            "description": self.description,
            "source": self.source,
        }


def _always(ctx: Any, record: Any, case: Any) -> bool:
    return True


def check(
    *,
    severity: Severity | str,
    source: str,
    applies: Applies = _always,
    name: str | None = None,
    endpoints: Iterable[str] = (CHAT,),
) -> Callable[[CheckFn], CheckFn]:
    """Register the decorated function as a check named after it (judging ``endpoints``)."""
    judged = frozenset(endpoints)
    if not judged or not judged <= ANY_ENDPOINT:
        raise ValueError(f"endpoints must be among {ENDPOINTS}, got {sorted(judged)}")

    def register(func: CheckFn) -> CheckFn:
        key = name or func.__name__
        if key in _REGISTRY:
            raise ValueError(f"check {key!r} is registered twice")
        doc = (func.__doc__ or "").strip().splitlines()
        _REGISTRY[key] = Check(
            name=key,
            func=func,
            severity=Severity(severity),
            source=source,
            applies=applies,
            description=doc[0] if doc else key,
            endpoints=judged,
        )
        return func

    return register


def registered() -> dict[str, Check]:
    """Every check by name (built-ins are loaded on first use)."""
    from chatprobe.checks import builtin  # noqa: F401  (registers on import)

    return dict(sorted(_REGISTRY.items()))


def get_check(name: str) -> Check:
    checks = registered()
    if name not in checks:
        raise UnknownNameError("check", name, list(checks))
    return checks[name]
