"""Error-response checks: the envelope (strict OpenAI and the provider's), status vs body code,
and the meaning of OpenAI's ``code`` and ``param`` fields."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatprobe import specs
from chatprobe.checks.context import CheckContext, error_response, has_kind
from chatprobe.checks.findings import Problem, Severity, schema_problems
from chatprobe.checks.registry import ANY_ENDPOINT, check
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
    endpoints=ANY_ENDPOINT,
)
def strict_error_envelope(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """An error body is OpenAI's envelope {error: {message, type, param, code}}."""
    yield from _envelope(ctx.strict_level, record)


def _provider_errors(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """A provider envelope of its own (for ``openai-strict``, strict_error_envelope says it)."""
    return (
        error_response(ctx, record, case)
        and ctx.level != ctx.strict_level
        and has_kind(ctx.level, "error")
    )


@check(
    severity=Severity.ERROR,
    source="specs/schemas/<provider level>/error.yaml; DESIGN provider facts (AI/ML API flat "
    "envelope {message, path, requestId, statusCode, timestamp}; OpenRouter "
    "{error: {code, message}})",
    applies=_provider_errors,
    endpoints=ANY_ENDPOINT,
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
    endpoints=ANY_ENDPOINT,
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
    if _number_text(code) == record.status:
        return  # the status as a string: its type is the envelope schema's finding
    if code != record.status:
        yield Problem(
            "HTTP status and the error body's code differ",
            path=pointer,
            received=code,
            documented=f"the HTTP status ({record.status})",
        )


def _number_text(value: Any) -> int | None:
    """``"401"`` -> 401: a string of ASCII digits as its number, anything else None."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return None


def _error_object(record: RequestRecord) -> dict[str, Any] | None:
    """The ``error`` object of an OpenAI-style envelope ``{error: {...}}``, if any."""
    body = record.json
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _string_code(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """An error answered in OpenAI's envelope, whose ``code`` is a string by documentation."""
    error = _error_object(record)
    return (
        error_response(ctx, record, case)
        and ctx.profile.error_envelope == "openai"
        and not ctx.profile.status_equals_error_code
        and error is not None
        and isinstance(error.get("code"), str)
    )


OPENAI_CODES = "a machine-readable code such as invalid_api_key, model_not_found or null"


@check(
    severity=Severity.ERROR,
    source="OpenAI ref #/components/schemas/Error/properties/code (a string or null: OpenAI "
    "answers machine-readable codes such as invalid_api_key, model_not_found, "
    "rate_limit_exceeded; the status is the HTTP status line's); DESIGN de-facto errors "
    "('code ... the HTTP status as a string')",
    applies=_string_code,
    endpoints=ANY_ENDPOINT,
)
def error_code_documented(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """An OpenAI-style error `code` names the error; it is not the HTTP status as a string.

    A client that switches on ``code`` (``invalid_api_key``, ``model_not_found``) finds no
    case for ``"401"``. Providers that document status = code as an integer (OpenRouter) are
    judged by ``error_status_matches_code`` and their envelope schema instead.
    """
    code = (_error_object(record) or {}).get("code")
    number = _number_text(code)
    if number is None:
        return
    if number == record.status:
        message = "error code is the HTTP status as a string, not a name for the error"
    else:
        message = f"error code is a status number other than the HTTP status ({record.status})"
    yield Problem(message, path="/body/error/code", received=code, documented=OPENAI_CODES)


_NULL_TEXT = frozenset({"none", "null", "nil", "undefined", ""})


def _has_param(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    error = _error_object(record)
    return error_response(ctx, record, case) and error is not None and "param" in error


@check(
    severity=Severity.ERROR,
    source="OpenAI ref #/components/schemas/Error/properties/param (the request parameter the "
    "error is about: a string, or null); DESIGN de-facto errors",
    applies=_has_param,
    endpoints=ANY_ENDPOINT,
)
def error_param_null(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """An error's `param` names a request parameter or is null, never the string "None".

    ``"None"``, ``"null"``, ``"undefined"`` or ``""`` are a null turned into text (Python's
    ``str(None)``): a client that reports ``param`` when it is not null names a parameter
    that does not exist.
    """
    param = (_error_object(record) or {}).get("param")
    if isinstance(param, str) and param.strip().lower() in _NULL_TEXT:
        yield Problem(
            "param is a null written as a string",
            path="/body/error/param",
            received=param,
            documented="the name of a request parameter, or null",
        )
