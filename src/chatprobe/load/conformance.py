"""Conformance under load: the stream checks of the one check registry, run on load streams.

A load run already holds every stream it read as a finished :class:`RequestRecord`; the
cheap checks of the contract suites judge those records as they judge a suite's, through
the registry (:func:`chatprobe.checks.registry.get_check`), never a second implementation.
They run after :meth:`RequestRecord.finish`, when the request's timing is final, and
after a yield to the other users, so no stamp waits for them
(:meth:`LoadChecker.judge`).

Which checks (:data:`LOAD_CHECKS`): chunk schema (the provider's documented level), SSE
framing, ``[DONE]`` last, the same id and created on every chunk, one finish_reason per
choice, usage placement, tool-call validity (index, arguments as JSON, finish reason) and
an error inside a 200. A stream *broke* a check when the check applied and reported a
finding that fails (warnings do not count). ``share`` (``--conformance-share``, scenario
key ``conformance_share``) checks that share of the streams, spread evenly over a process's
requests (the n-th stream is checked when ``floor(n * share)`` steps), 0 switches it off.
"""

from __future__ import annotations

from typing import Any

import orjson

from chatprobe.checks.context import CheckContext
from chatprobe.checks.registry import Check, get_check
from chatprobe.profiles import ProviderProfile, load_profile
from chatprobe.record import RequestRecord

__all__ = ["LOAD_CHECKS", "LoadChecker"]

LOAD_CHECKS = (
    "provider_response_schema",
    "sse_framing",
    "stream_done_last",
    "stream_same_id_created",
    "stream_one_finish_reason",
    "stream_include_usage",
    "tool_call_index",
    "tool_call_arguments_json",
    "tool_call_finish_reason",
    "midstream_error",
)
"""The checks run on load streams: each cheap, each judging one stream on its own."""


class _LoadCase:
    """What the checks read of a case: the body sent and the model (no expectations)."""

    __slots__ = ("model", "sent_body")

    def __init__(self, model: str, sent_body: dict[str, Any]) -> None:
        self.model = model
        self.sent_body = sent_body


class LoadChecker:
    """Judges a share of one process's load streams with :data:`LOAD_CHECKS`."""

    def __init__(self, share: float) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"conformance share must be within 0..1, got {share}")
        self.share = share
        self.seen = 0
        self._checks: list[Check] = [get_check(name) for name in LOAD_CHECKS]
        self._contexts: dict[str, CheckContext] = {}

    def due(self) -> bool:
        """Whether the next stream is one to check (evenly spread: floor(n * share) steps)."""
        n = self.seen
        self.seen = n + 1
        return int((n + 1) * self.share) > int(n * self.share)

    def _context(self, provider: str) -> CheckContext:
        ctx = self._contexts.get(provider)
        if ctx is None:
            try:
                profile = load_profile(provider)
            except Exception:  # a custom endpoint: judged against plain OpenAI
                profile = ProviderProfile(
                    name=provider, title=provider, base_url="", api_key_env=""
                )
            ctx = self._contexts[provider] = CheckContext(
                profile=profile, level=profile.schema_level
            )
        return ctx

    def judge(self, record: RequestRecord, sent_body: bytes | dict[str, Any]) -> list[str]:
        """The names of the load checks ``record`` broke (``[]``: none); ``sent_body`` is
        the request body (JSON bytes, as sent, or parsed)."""
        ctx = self._context(record.provider)
        if isinstance(sent_body, bytes | bytearray):
            try:
                sent_body = orjson.loads(sent_body)
            except orjson.JSONDecodeError:
                sent_body = {}
        case = _LoadCase(record.model, sent_body if isinstance(sent_body, dict) else {})
        broken = []
        for chk in self._checks:
            try:
                if not chk.applies(ctx, record, case):
                    continue
                found = chk.func(ctx, record, case) or ()
                if any((p.severity or chk.severity).fails for p in found):
                    broken.append(chk.name)
            except Exception:  # a crashing check is not the stream's fault; never fatal
                continue
        return broken
