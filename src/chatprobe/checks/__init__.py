"""Named contract checks (like schemathesis checks) and their evaluation.

Public API::

    from chatprobe.checks import check, registered, evaluate, CheckContext, Problem, Severity

    @check(severity=Severity.ERROR, source="where the rule is documented")
    def my_rule(ctx, record, case):
        '''One line saying what must hold.'''
        if something_wrong:
            yield Problem("what is wrong", path="/body/x", received=..., documented=...)

``registered()`` lists every check by name (the built-ins in :mod:`chatprobe.checks.builtin`);
``evaluate(ctx, record, case)`` runs them and decides the case outcome, turning failures the
profile documents into deviations. :class:`MatchRule` is a suite case's field rule
(``expect.match``), judged by the ``field_match`` check.
"""

from chatprobe.checks.context import CheckContext, document
from chatprobe.checks.evaluate import CheckResult, Evaluation, evaluate, worst
from chatprobe.checks.findings import Finding, Problem, Severity, schema_problems
from chatprobe.checks.match import MatchRule
from chatprobe.checks.registry import Check, check, get_check, registered

__all__ = [
    "Check",
    "CheckContext",
    "CheckResult",
    "Evaluation",
    "Finding",
    "MatchRule",
    "Problem",
    "Severity",
    "check",
    "document",
    "evaluate",
    "get_check",
    "registered",
    "schema_problems",
    "worst",
]
