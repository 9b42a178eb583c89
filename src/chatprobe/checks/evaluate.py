"""Run every applicable check on a record and decide the case's outcome.

Per check the status is one of:

``pass``       applicable, no finding
``warn``       only warning-severity findings (reported, never fails a case)
``fail``       a critical or error finding
``deviation``  it failed, but the profile (or the case's override) documents the deviation
``expected``   it failed and the case lists it in ``expect.fails`` (fault injection)
``skip``       not applicable, switched off by the suite, or disabled by the profile

The case outcome is ``failed`` when a check has status ``fail``, when a check listed in
``expect.fails`` did not fail, or when a check crashed; else ``deviation`` when any check
deviated; else ``passed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from chatprobe.checks.context import CheckContext
from chatprobe.checks.findings import MAX_PROBLEMS, Finding
from chatprobe.checks.registry import CHAT, registered
from chatprobe.record import RequestRecord
from chatprobe.scrub import scrub_text

__all__ = ["CheckResult", "Evaluation", "evaluate", "worst"]


@dataclass(slots=True)
class CheckResult:
    name: str
    status: str
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""  # why skipped, or the documented deviation


@dataclass(slots=True)
class Evaluation:
    """Everything the checks said about one record."""

    results: dict[str, CheckResult]
    outcome: str  # passed | failed | deviation
    problems: list[str] = field(default_factory=list)  # expectation failures not from a check

    @property
    def failures(self) -> list[Finding]:
        return [f for r in self.results.values() if r.status == "fail" for f in r.findings]

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results.values() for f in r.findings]

    @property
    def deviations(self) -> list[dict[str, str]]:
        return [
            {"check": r.name, "reason": r.reason}
            for r in self.results.values()
            if r.status == "deviation"
        ]

    def statuses(self) -> dict[str, str]:
        return {name: r.status for name, r in self.results.items()}

    def summary(self) -> str:
        """Failure text for a person: one line per finding, deviations and expectations."""
        lines = [f"{f.severity.value.upper()} {f}" for f in self.failures]
        lines += self.problems
        return "\n".join(lines)


def evaluate(
    ctx: CheckContext,
    record: RequestRecord,
    case: Any,
    *,
    deviations: Mapping[str, str] | None = None,
) -> Evaluation:
    """Run the checks on ``record`` for ``case`` (a :class:`~chatprobe.suites.model.CaseRun`)."""
    documented = {
        **ctx.profile.deviations,
        **(getattr(case, "deviations", None) or {}),  # the case's per-provider override
        **(deviations or {}),
    }
    expected = set(case.expect.fails)
    disabled = set(ctx.profile.disabled_checks)
    endpoint = getattr(case, "endpoint", CHAT)
    results: dict[str, CheckResult] = {}
    problems: list[str] = []
    for name, chk in registered().items():
        if name in disabled:
            results[name] = CheckResult(name, "skip", reason="disabled by the provider profile")
            continue
        if not case.expect.enabled(name):
            results[name] = CheckResult(name, "skip", reason="switched off by the suite")
            continue
        if endpoint not in chk.endpoints:
            results[name] = CheckResult(name, "skip", reason=f"not about the {endpoint} endpoint")
            if name in expected:
                problems.append(f"expected check {name} to fail, but it did not apply")
            continue
        try:
            applies = chk.applies(ctx, record, case)
            found = (
                [] if not applies else list(islice(chk.func(ctx, record, case) or (), MAX_PROBLEMS))
            )
        except Exception as exc:  # a check must never take the run down; report it loudly
            applies = True
            found = []
            problems.append(f"check {name} crashed: {type(exc).__name__}: {scrub_text(str(exc))}")
        if not applies:
            results[name] = CheckResult(name, "skip", reason="not applicable")
            if name in expected:
                problems.append(f"expected check {name} to fail, but it did not apply")
            continue
        findings = [Finding(name, p.severity or chk.severity, p.render(), p.path) for p in found]
        failing = any(f.severity.fails for f in findings)
        if findings and name in expected:
            status = "expected"
        elif findings and name in documented:
            status = "deviation"
        elif failing:
            status = "fail"
        elif findings:
            status = "warn"
        else:
            status = "pass"
        if name in expected and not failing:
            problems.append(f"expected check {name} to fail, but it passed")
        results[name] = CheckResult(name, status, findings, reason=documented.get(name, ""))
    statuses = {r.status for r in results.values()}
    if "fail" in statuses or problems:
        outcome = "failed"
    elif "deviation" in statuses:
        outcome = "deviation"
    else:
        outcome = "passed"
    return Evaluation(results=results, outcome=outcome, problems=problems)


def worst(statuses: list[str]) -> str:
    """A provider x check matrix cell from per-case statuses: fail > deviation > pass > skip."""
    if "fail" in statuses:
        return "fail"
    if "deviation" in statuses:
        return "deviation"
    if "pass" in statuses or "warn" in statuses:
        return "pass"
    return "skip"
