"""pytest collectors and items for suite files.

A suite that fails to load (bad YAML, wrong type, unknown check, provider or model, duplicate
case name) becomes ONE failing item whose report is the loader's ``file:line: field: message``,
never a collection crash that hides the other suites.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chatprobe.errors import ChatprobeError
from chatprobe.pytest_plugin.state import (
    add_result,
    custom_profiles,
    runner_for,
    selected_providers,
)
from chatprobe.suites.model import CaseRun


class SuiteError(Exception):
    """A suite could not be loaded; the message is the one-line location and reason."""


class CaseFailure(Exception):
    """A case failed; carries the runner's result."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.message)
        self.result = result


class SuiteFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from chatprobe.suites.loader import load_suite

        try:
            suite = load_suite(self.path, custom=custom_profiles(self.config))
        except ChatprobeError as exc:
            yield InvalidSuiteItem.from_parent(self, name="invalid-suite", error=str(exc))
            return
        providers = set(selected_providers(self.config))
        models = set(self.config.getoption("chatprobe_models") or ())
        for run in suite.runs:
            if providers and run.provider not in providers:
                continue
            if models and run.model not in models:
                continue
            yield CaseItem.from_parent(self, name=run.id, run=run)


class InvalidSuiteItem(pytest.Item):
    def __init__(self, *, error: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        add_result(self.config, _InvalidSuite(str(self.path), self.error))
        raise SuiteError(self.error)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SuiteError):
            return f"invalid suite: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"invalid suite {self.path.name}"


class _InvalidSuite:
    """A result-like record of a suite that did not load (for contract.json)."""

    outcome = "error"

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": "invalid-suite",
            "suite": self.path,
            "provider": None,
            "model": None,
            "outcome": "error",
            "duration_s": 0.0,
            "findings": [],
            "deviations": [],
            "message": self.message,
            "checks": {},
        }


class CaseItem(pytest.Item):
    def __init__(self, *, run: CaseRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.add_marker("chatprobe")
        for tag in run.tags:
            self.keywords[tag] = True

    def runtest(self) -> None:
        result = runner_for(self.config).run(self.run)
        add_result(self.config, result)
        self.user_properties.append(("chatprobe_outcome", result.outcome))
        if result.data_source:
            self.user_properties.append(("chatprobe_data_source", result.data_source))
        for deviation in result.evaluation.deviations if result.evaluation else ():
            self.user_properties.append(
                ("chatprobe_deviation", f"{deviation['check']}: {deviation['reason']}")
            )
        if result.outcome == "skipped":  # reported at the case in the suite file
            raise pytest.skip.Exception(result.message, _use_item_location=True)
        if result.outcome == "xfailed":
            pytest.xfail(result.message)
        if result.outcome in ("failed", "error"):
            raise CaseFailure(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailure):
            result = excinfo.value.result
            lines = [f"{self.run.source}: {self.run.id}: {result.outcome}", result.message]
            where = [x for x in (result.data_source, result.cassette) if x]
            if where:
                lines.append(f"({', '.join(where)})")
            return "\n".join(line for line in lines if line)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        line = self.run.source.rsplit(":", 1)[-1]
        return (
            self.path,
            int(line) - 1 if line.isdigit() else None,
            f"{self.run.suite}::{self.run.id}",
        )
