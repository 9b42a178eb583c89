"""Stream checks: SSE framing, [DONE], id/created consistency, one finish per choice, usage chunk,
empty-choices chunks, mid-stream errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatprobe.checks.context import CheckContext, annotation_chunk, as_list, streamed, success
from chatprobe.checks.findings import Problem, Severity, excerpt
from chatprobe.checks.registry import check
from chatprobe.record import RequestRecord, delta_has_output
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
    """Every chunk carries the same id and created as the first.

    A leading prompt-annotation chunk (Azure's ``choices: []`` with an empty id) is not part
    of the completion: the completion's first chunk is the reference.
    """
    first: dict[str, Any] | None = None
    skip = annotation_chunk(record)
    for i, chunk in _content_chunks(record):
        if i == skip:
            continue
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
    "the choice); DESIGN 'exactly one terminal finish_reason per choice' and 'some proxies put "
    "it on every chunk'",
    applies=streamed,
)
def stream_one_finish_reason(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """Each choice gets exactly one non-null finish_reason, on its last chunk.

    One finding per choice and kind. A proxy that repeats the same finish_reason on trailing
    chunks with no output (the usage chunk, say) deviates at warning level: the answer is
    whole and every reader sees the same reason. Output after a finish_reason, or a
    different second reason, is an error: a client that stops at the first finish_reason
    loses the rest, or cannot tell why the choice ended.
    """
    # choice index -> [(chunk i, position j in choices, finish_reason, carries output)]
    seen: dict[int, list[tuple[int, int, Any, bool]]] = {}
    for i, chunk in enumerate(record.chunks):
        for j, choice in enumerate(as_list(chunk.get("choices"))):
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
            reason = choice.get("finish_reason")
            output = delta_has_output(choice.get("delta"))
            seen.setdefault(index, []).append((i, j, reason, output))
    if not seen:
        yield Problem(
            "stream carried no choices",
            path="/chunks",
            received=len(record.chunks),
            documented="at least one choice with a finish_reason",
        )
    for index, entries in sorted(seen.items()):
        finishes = [k for k, (_, _, reason, _) in enumerate(entries) if reason not in (None, "")]
        if not finishes:
            yield Problem(
                f"choice {index} never got a finish_reason",
                path=f"/chunks/{entries[-1][0]}/choices",
                received=None,
                documented="one non-null finish_reason",
            )
            continue
        first = finishes[0]
        reason = entries[first][2]
        after = entries[first + 1 :]
        continued = [(i, j) for i, j, _, output in after if output]
        if continued:
            i, j = continued[0]
            yield Problem(
                f"choice {index} continues after its finish_reason ({len(continued)} chunks "
                "with output follow it)",
                path=f"/chunks/{i}/choices/{j}/delta",
                received=record.chunks[i]["choices"][j].get("delta"),
                documented="no deltas after finish_reason",
            )
        repeats = [(i, j, r) for i, j, r, _ in after if r not in (None, "")]
        if not repeats:
            continue
        others = sorted({str(r) for _, _, r in repeats if r != reason})
        i, j, _ = repeats[0]
        if others:
            yield Problem(
                f"choice {index} got more than one finish_reason ({reason!r}, then "
                f"{', '.join(repr(r) for r in others)})",
                path=f"/chunks/{i}/choices/{j}/finish_reason",
                received=len(repeats) + 1,
                documented=1,
            )
        elif not continued:
            yield Problem(
                f"choice {index} repeats finish_reason {reason!r} on {len(repeats)} trailing "
                "chunk(s) without output",
                path=f"/chunks/{i}/choices/{j}/finish_reason",
                received=len(repeats) + 1,
                documented=1,
                severity=Severity.WARNING,
            )
        else:
            yield Problem(
                f"choice {index} got more than one finish_reason",
                path=f"/chunks/{i}/choices/{j}/finish_reason",
                received=len(repeats) + 1,
                documented=1,
            )


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


GRANULARITY_MIN_TOKENS = 8
"""Answers shorter than this (completion tokens, or content chunks without usage) are not
judged by ``stream_chunk_granularity``: too few chunks to show a pattern."""
SPLIT_BELOW = 0.8
"""Fewer completion tokens per output chunk than this: the server splits tokens across
chunks (LiteLLM's mock: 19 tokens in 26 chunks of up to three characters, 0.73)."""
BATCH_ABOVE = 4.0
"""More completion tokens per output chunk than this: the server batches tokens."""
ONE_CHARACTER_SHARE = 0.5
"""At least this share of content chunks one ASCII character long: one character per chunk."""


def _granularity_case(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """A finished single-choice stream with output and no error event."""
    return (
        streamed(ctx, record, case)
        and len(record.choices) == 1
        and bool(record.content_times_ns)
        and any(c.finish_reason for c in record.choices.values())
        and not any("error" in c for c in record.chunks)
    )


@check(
    severity=Severity.WARNING,
    source="DESIGN 'Some servers stream one character per chunk, others batch many tokens per "
    "chunk: ITL per token and chunk gaps are different distributions'; DESIGN Metrics (ITL = "
    "(t_last - t_first) / (n - 1), chunk gaps kept separately); thresholds in "
    "checks/builtin/stream.py (SPLIT_BELOW, BATCH_ABOVE, ONE_CHARACTER_SHARE)",
    applies=_granularity_case,
)
def stream_chunk_granularity(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """Output chunks carry about one token each: not single characters, not token batches.

    Tokens per chunk = ``usage.completion_tokens`` / chunks with output (content, reasoning,
    refusal or tool-call deltas). Below ``SPLIT_BELOW`` (0.8) the server splits tokens (one
    character per chunk is the extreme): chunk gaps then measure the server's slicing, not
    decoding. Above ``BATCH_ABOVE`` (4) it batches tokens: chunk gaps are several tokens
    long, and ITL, computed from chunk arrivals, is an average that hides the gaps inside
    each batch (a whole answer in one chunk gives ITL 0). Answers under
    ``GRANULARITY_MIN_TOKENS`` (8) are not judged. Without usage only one ASCII character per
    chunk (``ONE_CHARACTER_SHARE`` of the content chunks) is judged: a CJK character is often
    a whole token. A warning: OpenAI does not define a chunk's size, but latency figures from
    such a stream mean something else.
    """
    pieces = [
        piece
        for chunk in record.chunks
        for choice in as_list(chunk.get("choices"))
        if isinstance(choice, dict) and isinstance(choice.get("delta"), dict)
        for piece in (choice["delta"].get("content"),)
        if isinstance(piece, str) and piece
    ]
    single = sum(1 for piece in pieces if len(piece) == 1 and piece.isascii())
    one_character = len(pieces) >= GRANULARITY_MIN_TOKENS and single >= ONE_CHARACTER_SHARE * len(
        pieces
    )
    shape = f"{single} of {len(pieces)} content chunks are one character"
    if record.token_source != "usage":
        if one_character:
            yield Problem(
                f"one character per chunk ({shape}): chunk gaps measure the server's slicing, "
                "not token decoding",
                path="/chunks",
                received=f"{single}/{len(pieces)} one-character chunks",
                documented="about one token per chunk",
            )
        return
    if record.output_tokens < GRANULARITY_MIN_TOKENS:
        return
    chunks = len(record.content_times_ns)
    ratio = record.output_tokens / chunks
    if ratio < SPLIT_BELOW:
        kind = f"one character per chunk ({shape})" if one_character else "chunks split tokens"
        yield Problem(
            f"{kind}: {chunks} output chunks for {record.output_tokens} completion tokens "
            f"({ratio:.2f} tokens per chunk); chunk gaps are not token gaps",
            path="/chunks",
            received=f"{ratio:.2f} tokens per chunk",
            documented=f"about one token per chunk (>= {SPLIT_BELOW:g})",
        )
    elif ratio > BATCH_ABOVE:
        yield Problem(
            f"chunks batch tokens: {record.output_tokens} completion tokens in {chunks} output "
            f"chunks ({ratio:.1f} per chunk); ITL is an average over chunk arrivals, the gaps "
            "inside a batch are not seen",
            path="/chunks",
            received=f"{ratio:.1f} tokens per chunk",
            documented=f"about one token per chunk (<= {BATCH_ABOVE:g})",
        )
