"""Contract suites: the YAML model, line-aware loading, execution, and ``derive``."""

from chatprobe.suites.loader import load_suite
from chatprobe.suites.model import CaseRun, Expect, MatchRule, StatusExpectation, Suite

__all__ = ["CaseRun", "Expect", "MatchRule", "StatusExpectation", "Suite", "load_suite"]
