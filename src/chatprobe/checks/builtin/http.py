"""HTTP-level checks: status codes, content type, auth, client errors, Retry-After, completeness."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from typing import Any

from chatprobe.checks.context import CheckContext, streamed, success
from chatprobe.checks.findings import Problem, Severity
from chatprobe.checks.registry import ANY_ENDPOINT, check
from chatprobe.record import ErrorClass, RequestRecord

OPENAI_REF = "OpenAI ref #/paths/~1chat~1completions/post/responses"

_INCOMPLETE = {
    ErrorClass.CONNECT_ERROR,
    ErrorClass.TLS_ERROR,
    ErrorClass.TIMEOUT_CONNECT,
    ErrorClass.TIMEOUT_FIRST_BYTE,
    ErrorClass.TIMEOUT_IDLE,
    ErrorClass.TIMEOUT_TOTAL,
    ErrorClass.CONNECTION_RESET,
    ErrorClass.TRUNCATED_BODY,
    ErrorClass.TRUNCATED_STREAM,
    ErrorClass.PROTOCOL_ERROR,
    ErrorClass.CLIENT_ERROR,
}


def _has_status(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return record.status is not None


@check(
    severity=Severity.CRITICAL,
    source="DESIGN 'Checks worth having'; record.py ErrorClass (transport and truncation classes)",
    endpoints=ANY_ENDPOINT,
)
def response_complete(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """The exchange completed: no transport failure, timeout or truncated body/stream."""
    if record.error_class in _INCOMPLETE:
        yield Problem(
            f"exchange did not complete ({record.error_class.value}): {record.error_detail}",
            path="/status" if record.status is None else "/events",
            received=record.error_class.value,
            documented="a complete HTTP response",
        )


@check(
    severity=Severity.ERROR,
    source="profile conventions.success_status; seed 001 ('201 Success'); DESIGN provider facts",
    applies=success,
)
def status_documented(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """A successful response uses the provider's documented success status."""
    if record.status not in ctx.profile.success_status:
        yield Problem(
            "success status differs from the provider's documentation",
            path="/status",
            received=record.status,
            documented=list(ctx.profile.success_status),
        )


@check(
    severity=Severity.ERROR,
    source=f"{OPENAI_REF} (only '200' is declared)",
    applies=success,
    endpoints=ANY_ENDPOINT,
)
def status_openai(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """A successful response has status 200, the only success OpenAI declares."""
    if record.status != 200:
        yield Problem(
            "success status is not OpenAI's", path="/status", received=record.status, documented=200
        )


def _auth_case(case: Any) -> bool:
    """A case that sends a wrong or no key: its status is auth_401's to judge."""
    return case.api_key in ("invalid", "missing")


def _status_to_judge(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    if record.status is None:
        return False
    return not (_auth_case(case) and case.expect.status.allowed(ctx.profile) == (401,))


@check(
    severity=Severity.ERROR,
    source="the case's expect.status (suite file)",
    applies=_status_to_judge,
    endpoints=ANY_ENDPOINT,
)
def expected_status(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """The HTTP status is the one the case expects (default: the documented success status).

    A bad-key or missing-key case that expects 401 is judged by ``auth_401`` alone.
    """
    expect = case.expect.status
    if not expect.allows(record.status, ctx.profile):
        detail = f": {record.error_detail}" if record.error_detail else ""
        yield Problem(
            f"unexpected HTTP status{detail}",
            path="/status",
            received=record.status,
            documented=expect.describe(ctx.profile),
        )


@check(
    severity=Severity.ERROR,
    source=f"{OPENAI_REF}/200/content (application/json, text/event-stream); "
    "DESIGN error envelopes",
    applies=_has_status,
    endpoints=ANY_ENDPOINT,
)
def content_type(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """Plain answers and errors are application/json; streamed answers text/event-stream."""
    got = record.content_type or "(none)"
    if success(ctx, record, case) and case.stream:
        want = "text/event-stream"
    elif record.status is not None and (success(ctx, record, case) or record.status >= 400):
        want = "application/json"
    else:
        return
    if got != want and not (record.status == 204 and not record.body):
        yield Problem(
            "wrong Content-Type", path="/headers/content-type", received=got, documented=want
        )


@check(
    severity=Severity.ERROR,
    source="OpenAI ref #/components/schemas (every body and data payload is a JSON object)",
    applies=_has_status,
    endpoints=ANY_ENDPOINT,
)
def json_body(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """Bodies and stream data payloads are JSON objects."""
    if streamed(ctx, record, case):
        from chatprobe.sse import ServerSentEvent

        for i, timed in enumerate(record.events):
            item = timed.item
            if not isinstance(item, ServerSentEvent) or item.is_done:
                continue
            if not _is_json_object(item.data):
                yield Problem(
                    "data payload is not a JSON object",
                    path=f"/events/{i}/data",
                    received=item.data[:80],
                    documented="a JSON chat.completion.chunk",
                )
        return
    if not record.body:
        yield Problem("empty body", path="/body", received="", documented="a JSON object")
    elif not isinstance(record.json, dict):
        yield Problem(
            "body is not a JSON object",
            path="/body",
            received=record.body[:80].decode("utf-8", "replace"),
            documented="a JSON object",
        )


def _is_json_object(text: str) -> bool:
    import orjson

    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


def _bad_key(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return record.status is not None and _auth_case(case)


@check(
    severity=Severity.CRITICAL,
    source="DESIGN 'missing/bad key -> 401'; OpenRouter errors (401); "
    "OpenAI ref security ApiKeyAuth",
    applies=_bad_key,
    endpoints=ANY_ENDPOINT,
)
def auth_401(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """A missing or wrong API key is refused with 401."""
    if record.status != 401:
        yield Problem(
            f"a request with a {case.api_key} key was not refused with 401",
            path="/status",
            received=record.status,
            documented=401,
        )


def _client_error_case(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """A case whose request the documentation rejects; a valid body sent with a wrong or no
    key is not one (auth_401 judges it)."""
    return (
        record.status is not None
        and case.expect.status.client_error
        and not case.fault
        and not _auth_case(case)
    )


@check(
    severity=Severity.CRITICAL,
    source="DESIGN 'bad requests -> 4xx never 5xx'; seed 001 / DESIGN (bad body 400)",
    applies=_client_error_case,
)
def bad_request_4xx(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """A request the documentation rejects gets a 4xx: never a 5xx, never a success."""
    status = record.status or 0
    if status >= 500:
        yield Problem(
            "server error for a client error",
            path="/status",
            received=status,
            documented="4xx",
        )
    elif 200 <= status < 300:
        yield Problem(
            "accepted a request the documented schema rejects",
            path="/status",
            received=status,
            documented="4xx",
            severity=Severity.ERROR,
        )
    elif not 400 <= status < 500:
        yield Problem("not a client error", path="/status", received=status, documented="4xx")


def _is_429(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return record.status == 429


@check(
    severity=Severity.ERROR,
    source="OpenAI ref #/components/responses/TooManyRequests/headers/Retry-After (integer >= 1); "
    "DESIGN OpenRouter facts (Retry-After on 429/503)",
    applies=_is_429,
    endpoints=ANY_ENDPOINT,
)
def retry_after_429(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """A 429 carries Retry-After: whole seconds (>= 1) or an HTTP date."""
    value = record.response_headers.get("retry-after")
    if value is None:
        yield Problem(
            "429 without Retry-After",
            path="/headers/retry-after",
            received=None,
            documented="integer seconds >= 1",
        )
        return
    value = value.strip()
    if value.isdigit():
        if int(value) < 1:
            yield Problem(
                "Retry-After below 1 second",
                path="/headers/retry-after",
                received=value,
                documented="integer >= 1",
            )
    elif email.utils.parsedate_tz(value) is None:
        yield Problem(
            "Retry-After is neither seconds nor an HTTP date",
            path="/headers/retry-after",
            received=value,
            documented="integer seconds >= 1 or an HTTP-date",
        )
