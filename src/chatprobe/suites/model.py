"""The suite model: what a loaded suite is, once defaults and overrides are applied.

A suite file holds cases; the loader (:mod:`chatprobe.suites.loader`) expands each case into
one :class:`CaseRun` per provider and model, with the suite defaults, the case and the
provider's override merged in that order. A ``CaseRun`` is everything needed to send the
request and judge the response; it knows nothing about pytest, vcrpy or HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import orjson

from chatprobe.checks.match import MatchRule
from chatprobe.profiles import ProviderProfile

__all__ = [
    "API_KEY_MODES",
    "CaseRun",
    "Expect",
    "StatusExpectation",
    "Suite",
    "safe_filename",
]

API_KEY_MODES = ("valid", "invalid", "missing")
INVALID_KEY = "chatprobe-invalid-key-000000000000"
"""Sent for ``api_key: invalid``: well-formed, never accepted, and not a secret."""


@dataclass(frozen=True, slots=True)
class StatusExpectation:
    """``201``, ``"4xx"``, ``(400, 404)`` or ``"success"`` (the profile's documented status)."""

    spec: int | str | tuple[int, ...] = "success"

    def allowed(self, profile: ProviderProfile) -> tuple[int, ...] | str:
        """The statuses allowed for ``profile``: a tuple, or a class like ``"4xx"``."""
        if self.spec == "success":
            return tuple(profile.success_status)
        if isinstance(self.spec, int):
            return (self.spec,)
        return self.spec

    def allows(self, status: int | None, profile: ProviderProfile) -> bool:
        if status is None:
            return False
        allowed = self.allowed(profile)
        if isinstance(allowed, str):
            return str(status)[0] == allowed[0]
        return status in allowed

    def describe(self, profile: ProviderProfile) -> str:
        allowed = self.allowed(profile)
        if isinstance(allowed, str):
            return allowed
        return " or ".join(str(s) for s in allowed)

    @property
    def client_error(self) -> bool:
        """True when only 4xx statuses are expected: the case sends a request that is wrong."""
        spec = self.spec
        if isinstance(spec, str):
            return spec == "4xx"
        codes = (spec,) if isinstance(spec, int) else spec
        return all(400 <= c < 500 for c in codes)

    @property
    def success(self) -> bool:
        spec = self.spec
        if isinstance(spec, str):
            return spec in ("success", "2xx")
        codes = (spec,) if isinstance(spec, int) else spec
        return all(200 <= c < 300 for c in codes)


@dataclass(frozen=True, slots=True)
class Expect:
    """Expectations for one case and provider, after merging."""

    status: StatusExpectation = field(default_factory=StatusExpectation)
    schema_level: str | None = None
    checks: Mapping[str, bool] = field(default_factory=dict)
    fails: tuple[str, ...] = ()
    match: tuple[MatchRule, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Expect:
        status = data.get("status", "success")
        if isinstance(status, list):
            status = tuple(status)
        return cls(
            status=StatusExpectation(status),
            schema_level=data.get("schema_level"),
            checks=dict(data.get("checks") or {}),
            fails=tuple(data.get("fails") or ()),
            match=tuple(MatchRule.from_dict(m) for m in data.get("match") or ()),
        )

    def enabled(self, check: str) -> bool:
        return self.checks.get(check, True)


def safe_filename(text: str) -> str:
    """Model names such as ``gemini-2.0-flash-exp:free`` made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


@dataclass(frozen=True, slots=True)
class CaseRun:
    """One case against one provider and model: one pytest item, one cassette."""

    suite: str
    case: str
    provider: str
    model: str  # canonical model name
    model_id: str  # what is sent to the provider
    source: str  # "file:line" of the case
    description: str = ""
    tags: tuple[str, ...] = ()
    body: dict[str, Any] | None = None
    raw_body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    api_key: str = "valid"
    fault: tuple[str, ...] = ()
    expect: Expect = field(default_factory=Expect)
    skip: str | None = None
    xfail: str | None = None
    deviations: Mapping[str, str] = field(default_factory=dict)
    profile: str = ""  # a profile file for a provider not shipped; "" -> by provider name

    @property
    def profile_ref(self) -> str:
        """What :func:`~chatprobe.profiles.load_profile` takes for this run's provider."""
        return self.profile or self.provider

    @property
    def id(self) -> str:
        """The pytest item name: ``hello[aimlapi-gemini-2.0-flash-exp]``."""
        return f"{self.case}[{self.provider}-{self.model}]"

    @property
    def sent_body(self) -> dict[str, Any] | None:
        """The body as a mapping (a ``raw_body`` is parsed when it is a JSON object)."""
        if self.body is not None:
            return self.body
        if self.raw_body is None:
            return None
        try:
            parsed = orjson.loads(self.raw_body)
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None

    @property
    def stream(self) -> bool:
        body = self.sent_body or {}
        return body.get("stream") is True

    @property
    def cassette(self) -> PurePosixPath:
        """Path below the cassette directory: ``<provider>/<suite>/<case>--<model>.yaml``."""
        return PurePosixPath(
            self.provider, *self.suite.split("/"), f"{self.case}--{safe_filename(self.model)}.yaml"
        )


@dataclass(frozen=True, slots=True)
class Suite:
    """A loaded, validated suite."""

    name: str
    path: str
    description: str
    runs: tuple[CaseRun, ...]
    cases: tuple[str, ...]
