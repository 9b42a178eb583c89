"""What a check sees besides the record: the provider, the schema levels, and the response
document that every finding's JSON pointer points into.

The *response document* is one JSON value per record, the same for plain and streamed
answers, so that suites and findings name fields the same way::

    {
      "status": 201,
      "headers": {"content-type": "...", ...},     # lower-case names
      "body": {...},        # the parsed plain body (a completion or an error envelope)
      "chunks": [{...}],    # the parsed data payloads of a stream, in order
      "events": [...],      # the raw SSE events: {"data", "event"} or {"comment"}
      "choices": [{index, role, content, tool_calls, finish_reason, ...}],  # assembled
      "usage": {...},       # the last usage seen
      "text": "...",        # content of choice 0
      "error": {...}        # the provider's error object (envelope or mid-stream event)
    }

A finding at ``/chunks/3/id`` is chunk 3's ``id``; ``/body/usage/total_tokens`` is a plain
body's total. Suites' ``match`` paths are the dotted form (``chunks.3.id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from chatprobe import specs
from chatprobe.errors import ChatprobeError
from chatprobe.profiles import ProviderProfile
from chatprobe.record import RequestRecord
from chatprobe.sse import Comment

if TYPE_CHECKING:
    from chatprobe.suites.model import CaseRun

__all__ = [
    "CheckContext",
    "annotation_chunk",
    "as_list",
    "document",
    "error_response",
    "has_kind",
    "plain_success",
    "streamed",
    "success",
]


@dataclass(frozen=True, slots=True)
class CheckContext:
    """The provider under test and the schema levels to judge against."""

    profile: ProviderProfile
    level: str  # the provider's documented level (or the case's expect.schema_level)
    strict_level: str = specs.STRICT

    @classmethod
    def for_case(cls, profile: ProviderProfile, case: CaseRun) -> CheckContext:
        return cls(profile=profile, level=case.expect.schema_level or profile.schema_level)


@cache
def has_kind(level: str, kind: str) -> bool:
    """Whether ``specs/schemas/<level>/<kind>.yaml`` exists and compiles."""
    try:
        specs.validator(level, kind)
    except ChatprobeError:
        return False
    return True


# ---------------------------------------------------------------------- applicability
def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else ``[]``: providers put anything where a list belongs."""
    return value if isinstance(value, list) else []


def success(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return record.status is not None and 200 <= record.status < 300


def streamed(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """A 2xx answer to a streamed request that came back as SSE."""
    return success(ctx, record, case) and (
        bool(record.events) or record.content_type == "text/event-stream"
    )


def plain_success(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """A 2xx JSON object body (not a stream, not an error object in a 2xx)."""
    return (
        success(ctx, record, case)
        and not streamed(ctx, record, case)
        and isinstance(record.json, dict)
        and "error" not in record.json
    )


def error_response(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return record.status is not None and record.status >= 400


def annotation_chunk(record: RequestRecord) -> int | None:
    """0 when the stream opens with a prompt-annotation chunk, else None.

    Azure sends ``choices: []`` with ``prompt_filter_results`` (and an empty ``id``,
    ``object`` and ``model``, ``created: 0``) before the completion's first chunk; DESIGN
    lists it among tolerated first chunks. A leading ``choices: []`` chunk without usage is
    taken for one.
    """
    chunks = record.chunks
    if chunks and chunks[0].get("choices") == [] and not isinstance(chunks[0].get("usage"), dict):
        return 0
    return None


# ---------------------------------------------------------------------- the document
def document(record: RequestRecord) -> dict[str, Any]:
    """The response document (see the module docstring)."""
    body: Any = record.json
    if body is None and record.body:
        body = record.body.decode("utf-8", "replace")
    events: list[dict[str, Any]] = []
    for timed in record.events:
        item = timed.item
        if isinstance(item, Comment):
            events.append({"comment": item.text})
        else:
            events.append({"event": item.event, "data": item.data})
    return {
        "status": record.status,
        "headers": dict(record.response_headers),
        "body": body,
        "chunks": list(record.chunks),
        "events": events,
        "choices": [c.to_dict() for _, c in sorted(record.choices.items())],
        "usage": record.usage,
        "text": record.text,
        "error": record.error_payload,
    }


def usage_pointer(record: RequestRecord) -> str:
    """Where the record's usage came from: ``/body/usage`` or ``/chunks/<i>/usage``."""
    for i in range(len(record.chunks) - 1, -1, -1):
        if isinstance(record.chunks[i].get("usage"), dict):
            return f"/chunks/{i}/usage"
    return "/body/usage" if isinstance(record.json, dict) else "/usage"


def request_text(body: dict[str, Any] | None) -> str:
    """All text of the request's messages (to tell an empty prompt from a non-empty one)."""
    out: list[str] = []
    for message in (body or {}).get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
    return "".join(out)
