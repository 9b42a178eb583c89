"""Stream checks: SSE framing, [DONE], id/created consistency, one finish per choice, usage chunk,
empty-choices chunks, mid-stream errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatprobe.checks.context import CheckContext, as_list, streamed, success
from chatprobe.checks.findings import Problem, Severity, excerpt
from chatprobe.checks.registry import check
from chatprobe.record import RequestRecord
from chatprobe.sse import Comment, ServerSentEvent

STREAM_REF = "OpenAI ref #/components/schemas/CreateChatCompletionStreamResponse"


def _data_events(record: RequestRecord) -> list[tuple[int, ServerSentEvent]]:
    return [(i, t.item) for i, t in enumerate(record.events) if isinstance(t.item, ServerSentEvent)]


def _content_chunks(record: RequestRecord) -> Iterator[tuple[int, dict[str, Any]]]:
    """Chunks that are not error events."""
    for i, chunk in enumerate(record.chunks):
        if "error" not in chunk:
            yield i, chunk


@check(
    severity=Severity.CRITICAL,
    source="WHATWG HTML 'event stream interpretation' (events end with a blank line); "
    f"{STREAM_REF} (one chunk per data event)",
    applies=streamed,
)
def sse_framing(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """The stream is well-formed SSE: data events, each ended by a blank line."""
    events = _data_events(record)
    if not events:
        yield Problem(
            "stream has no data events",
            path="/events",
            received=len(record.events),
            documented="data events carrying chat.completion.chunk payloads",
        )
        return
    for i, event in events:
        if not event.terminated:
            yield Problem(
                "event not terminated by a blank line (stream cut inside an event)",
                path=f"/events/{i}",
                received=event.data[:60],
                documented="'data: ...' followed by an empty line",
            )
    comments = [
        (i, t.item.text) for i, t in enumerate(record.events) if isinstance(t.item, Comment)
    ]
    expected = ctx.profile.sse_comment
    for i, text in comments:
        if expected is not None and text.strip() and text.strip() != expected:
            yield Problem(
                "unexpected SSE comment",
                path=f"/events/{i}/comment",
                received=text[:60],
                documented=expected,
                severity=Severity.WARNING,
            )


@check(
    severity=Severity.CRITICAL,
    source=f"{STREAM_REF}; OpenAI ref #/components/schemas/ChatCompletionStreamOptions "
    "('before the data: [DONE] message'); DESIGN '[DONE] last'",
    applies=streamed,
)
def stream_done_last(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """The stream ends with `data: [DONE]`, and nothing follows it."""
    events = _data_events(record)
    if not record.done:
        yield Problem(
            "stream ended without data: [DONE]",
            path=f"/events/{len(record.events)}",
            received=events[-1][1].data[:60] if events else None,
            documented="data: [DONE]",
        )
        return
    for i, event in events:
        if record.done_index is not None and i > record.done_index:
            yield Problem(
                "data event after [DONE]",
                path=f"/events/{i}",
                received=event.data[:60],
                documented="[DONE] last",
            )


@check(
    severity=Severity.ERROR,
    source=f"{STREAM_REF}/properties/id ('Each chunk has the same ID') and /created ('Each chunk "
    "has the same timestamp')",
    applies=streamed,
)
def stream_same_id_created(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """Every chunk carries the same id and created as the first."""
    first: dict[str, Any] | None = None
    for i, chunk in _content_chunks(record):
        if first is None:
            first = chunk
            continue
        for key in ("id", "created"):
            if key not in chunk:
                yield Problem(
                    f"chunk has no {key}",
                    path=f"/chunks/{i}/{key}",
                    received=None,
                    documented=first.get(key),
                )
            elif chunk[key] != first.get(key):
                yield Problem(
                    f"chunk {key} differs from the first chunk's",
                    path=f"/chunks/{i}/{key}",
                    received=chunk[key],
                    documented=first.get(key),
                )


@check(
    severity=Severity.ERROR,
    source=f"{STREAM_REF}/properties/choices/items (finish_reason null until the last chunk of "
    "the choice); DESIGN 'exactly one terminal finish_reason per choice'",
    applies=streamed,
)
def stream_one_finish_reason(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """Each choice gets exactly one non-null finish_reason, on its last chunk."""
    finishes: dict[int, list[int]] = {}
    last_seen: dict[int, int] = {}
    for i, chunk in enumerate(record.chunks):
        for j, choice in enumerate(as_list(chunk.get("choices"))):
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
            if index in finishes and finishes[index] and _has_delta(choice):
                yield Problem(
                    f"choice {index} continues after its finish_reason",
                    path=f"/chunks/{i}/choices/{j}/delta",
                    received=choice.get("delta"),
                    documented="no deltas after finish_reason",
                )
            last_seen[index] = i
            finishes.setdefault(index, [])
            if choice.get("finish_reason") is not None:
                finishes[index].append(i)
    if not finishes:
        yield Problem(
            "stream carried no choices",
            path="/chunks",
            received=len(record.chunks),
            documented="at least one choice with a finish_reason",
        )
    for index, where in sorted(finishes.items()):
        if not where:
            yield Problem(
                f"choice {index} never got a finish_reason",
                path=f"/chunks/{last_seen[index]}/choices",
                received=None,
                documented="one non-null finish_reason",
            )
        for extra in where[1:]:
            yield Problem(
                f"choice {index} got more than one finish_reason",
                path=f"/chunks/{extra}/choices",
                received=len(where),
                documented=1,
            )


def _has_delta(choice: dict[str, Any]) -> bool:
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return False
    return any(delta.get(k) for k in ("content", "tool_calls", "reasoning", "refusal"))


def _usage_expected(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """A stream that completed ([DONE], no error event) and should carry usage."""
    if not streamed(ctx, record, case) or ctx.profile.stream_usage == "never":
        return False
    if not record.done or any("error" in c for c in record.chunks):
        return False  # an unfinished stream is reported by stream_done_last / midstream_error
    if ctx.profile.stream_usage == "always":
        return True
    options = (case.sent_body or {}).get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


@check(
    severity=Severity.ERROR,
    source="OpenAI ref #/components/schemas/ChatCompletionStreamOptions/anyOf/0/properties/"
    "include_usage ('an additional chunk ... usage ... choices empty'); profile "
    "conventions.stream_usage (OpenRouter: always, in the last message)",
    applies=_usage_expected,
)
def stream_include_usage(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """When usage is asked for (or always sent), a completed stream ends with it, choices []."""
    chunks = list(_content_chunks(record))
    if not chunks:
        return
    i, last = chunks[-1]
    if not isinstance(last.get("usage"), dict):
        yield Problem(
            "last chunk carries no usage",
            path=f"/chunks/{i}/usage",
            received=last.get("usage"),
            documented="usage {prompt_tokens, completion_tokens, total_tokens}",
        )
        return
    if ctx.profile.stream_usage == "include_usage" and last.get("choices") != []:
        yield Problem(
            "usage chunk has non-empty choices",
            path=f"/chunks/{i}/choices",
            received=last.get("choices"),
            documented=[],
        )
    earlier = [k for k, c in chunks[:-1] if isinstance(c.get("usage"), dict)]
    if ctx.profile.stream_usage == "include_usage" and earlier:
        yield Problem(
            "usage on a chunk before the last (OpenAI sends it once, at the end)",
            path=f"/chunks/{earlier[0]}/usage",
            received=len(earlier) + 1,
            documented=1,
            severity=Severity.WARNING,
        )


@check(
    severity=Severity.WARNING,
    source=f"{STREAM_REF}/properties/choices ('Can also be empty for the last chunk if you set "
    "include_usage'); DESIGN 'empty-choices chunks tolerated'",
    applies=streamed,
)
def stream_empty_choices(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """Chunks with `choices: []` appear only first (prompt annotations) or last (usage)."""
    chunks = list(_content_chunks(record))
    for position, (i, chunk) in enumerate(chunks):
        if chunk.get("choices") != []:
            continue
        if position == 0 or (position == len(chunks) - 1 and isinstance(chunk.get("usage"), dict)):
            continue
        yield Problem(
            "a chunk with empty choices in the middle of the stream",
            path=f"/chunks/{i}/choices",
            received=[],
            documented="only a leading annotation chunk or the final usage chunk",
        )


@check(
    severity=Severity.ERROR,
    source="DESIGN provider facts (OpenRouter: 'mid-stream errors arrive as a data event with "
    "top-level error ... inside an HTTP 200 stream')",
    applies=success,
)
def midstream_error(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """No error event arrives inside a successful stream (nor an error in a 2xx body)."""
    if not streamed(ctx, record, case):
        if isinstance(record.json, dict) and "error" in record.json:
            error = record.json["error"]
            message = error.get("message") if isinstance(error, dict) else error
            yield Problem(
                f"error inside a {record.status} body: {_text(message)}",
                path="/body/error",
                received=error,
                documented="no error object in a successful response",
            )
        return
    for i, chunk in enumerate(record.chunks):
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            yield Problem(
                f"error inside a {record.status} stream: {_text(message)}",
                path=f"/chunks/{i}/error",
                received=error,
                documented="no error events in a successful stream",
            )


def _text(message: Any) -> str:
    return message if isinstance(message, str) else excerpt(message)


def _has_error_event(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return streamed(ctx, record, case) and any("error" in c for c in record.chunks)


@check(
    severity=Severity.ERROR,
    source="DESIGN provider facts (OpenRouter mid-stream error: top-level error {code, message} "
    "and finish_reason 'error'); profile conventions.finish_reasons_extra",
    applies=_has_error_event,
)
def midstream_error_shape(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """A mid-stream error event carries {error: {code, message}} and ends the choice."""
    for i, chunk in enumerate(record.chunks):
        if "error" not in chunk:
            continue
        error = chunk["error"]
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            yield Problem(
                "error event without a message",
                path=f"/chunks/{i}/error/message",
                received=error,
                documented="{error: {code, message}}",
            )
        elif "code" not in error:
            yield Problem(
                "error event without a code",
                path=f"/chunks/{i}/error/code",
                received=error,
                documented="{error: {code, message}}",
            )
        if "error" in ctx.profile.finish_reasons_extra:
            reasons = [
                c.get("finish_reason") for c in as_list(chunk.get("choices")) if isinstance(c, dict)
            ]
            if "error" not in reasons:
                yield Problem(
                    "error event does not end the choice with finish_reason 'error'",
                    path=f"/chunks/{i}/choices",
                    received=reasons,
                    documented=["error"],
                )
