"""Contract suites: the YAML model, line-aware loading, execution, and ``derive``."""

from chatprobe.suites.loader import load_suite
from chatprobe.suites.model import CaseRun, Expect, StatusExpectation, Suite

__all__ = ["CaseRun", "Expect", "StatusExpectation", "Suite", "load_suite"]
