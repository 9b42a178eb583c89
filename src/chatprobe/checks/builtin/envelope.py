"""Error-response checks: the envelope (strict OpenAI and the provider's), status vs body code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatprobe import specs
from chatprobe.checks.context import CheckContext, error_response, has_kind
from chatprobe.checks.findings import Problem, Severity, schema_problems
from chatprobe.checks.registry import check
from chatprobe.record import RequestRecord


def _envelope(level: str, record: RequestRecord) -> Iterator[Problem]:
    if not isinstance(record.json, dict):
        yield Problem(
            "error body is not a JSON object",
            path="/body",
            received=record.body[:80].decode("utf-8", "replace"),
            documented=f"the {level} error envelope",
        )
        return
    yield from schema_problems(
        specs.validator(level, "error"), record.json, prefix="/body", label=f"{level}:error"
    )


@check(
    severity=Severity.ERROR,
    source="OpenAI ref #/components/schemas/ErrorResponse and /Error "
    "({error: {message, type, param, code}}; specs/schemas/openai-strict/error.yaml)",
    applies=error_response,
)
def strict_error_envelope(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """An error body is OpenAI's envelope {error: {message, type, param, code}}."""
    yield from _envelope(ctx.strict_level, record)


def _provider_errors(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return error_response(ctx, record, case) and has_kind(ctx.level, "error")


@check(
    severity=Severity.ERROR,
    source="specs/schemas/<provider level>/error.yaml; DESIGN provider facts (AI/ML API flat "
    "envelope {message, path, requestId, statusCode, timestamp}; OpenRouter "
    "{error: {code, message}})",
    applies=_provider_errors,
)
def provider_error_envelope(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """An error body is the provider's documented envelope, with a message."""
    yield from _envelope(ctx.level, record)


def _status_field(record: RequestRecord) -> tuple[str, Any] | None:
    body = record.json
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and "code" in error:
        return "/body/error/code", error["code"]
    if "statusCode" in body:
        return "/body/statusCode", body["statusCode"]
    return None


def _status_in_body(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    if not error_response(ctx, record, case):
        return False
    found = _status_field(record)
    if ctx.profile.status_equals_error_code:
        return True
    # Elsewhere only a numeric status field is comparable (OpenAI's `code` is a string).
    return found is not None and isinstance(found[1], int) and not isinstance(found[1], bool)


@check(
    severity=Severity.ERROR,
    source="DESIGN provider facts: OpenRouter 'errors {error: {code: <int>}} with HTTP status = "
    "code'; AI/ML API envelope statusCode; profile conventions.status_equals_error_code",
    applies=_status_in_body,
)
def error_status_matches_code(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """The HTTP status equals the status code the error body carries."""
    found = _status_field(record)
    if found is None:
        yield Problem(
            "error body carries no status code",
            path="/body/error/code",
            received=None,
            documented=f"the HTTP status ({record.status})",
        )
        return
    pointer, code = found
    if code != record.status:
        yield Problem(
            "HTTP status and the error body's code differ",
            path=pointer,
            received=code,
            documented=f"the HTTP status ({record.status})",
        )
