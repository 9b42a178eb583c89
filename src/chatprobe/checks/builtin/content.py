"""Content checks: finish reasons, usage arithmetic, tool calls, and the parameters whose
effect can be seen (max_tokens, stop, n, tool_choice)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from chatprobe.checks.context import (
    CheckContext,
    as_list,
    plain_success,
    request_text,
    streamed,
    success,
    usage_pointer,
)
from chatprobe.checks.findings import Problem, Severity
from chatprobe.checks.registry import check
from chatprobe.record import AssembledChoice, RequestRecord

REF = "OpenAI ref #/components/schemas"
OPENAI_FINISH = ("stop", "length", "tool_calls", "content_filter", "function_call")


def _finish_reasons(record: RequestRecord, plain: bool) -> Iterator[tuple[str, Any]]:
    """(pointer, finish_reason) for every choice of a body or every non-null one of a stream."""
    if plain:
        for j, choice in enumerate(as_list(record.json.get("choices"))):
            if isinstance(choice, dict):
                yield f"/body/choices/{j}/finish_reason", choice.get("finish_reason")
        return
    for i, chunk in enumerate(record.chunks):
        for j, choice in enumerate(as_list(chunk.get("choices"))):
            if isinstance(choice, dict) and choice.get("finish_reason") is not None:
                yield f"/chunks/{i}/choices/{j}/finish_reason", choice["finish_reason"]


def _answered(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return plain_success(ctx, record, case) or streamed(ctx, record, case)


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionResponse/properties/choices/items/properties/finish_reason "
    "(enum stop, length, tool_calls, content_filter, function_call)",
    applies=_answered,
)
def finish_reason_openai(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """Every finish_reason is one of OpenAI's."""
    for pointer, reason in _finish_reasons(record, plain_success(ctx, record, case)):
        if reason is not None and reason not in OPENAI_FINISH:
            yield Problem(
                "finish_reason outside OpenAI's enum",
                path=pointer,
                received=reason,
                documented=list(OPENAI_FINISH),
            )


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionResponse/.../finish_reason (required); profile "
    "conventions.finish_reasons_extra (OpenRouter 'error')",
    applies=_answered,
)
def finish_reason_documented(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """Every choice ends with a finish_reason that OpenAI or the provider documents."""
    allowed = [*OPENAI_FINISH, *ctx.profile.finish_reasons_extra]
    plain = plain_success(ctx, record, case)
    for pointer, reason in _finish_reasons(record, plain):
        if reason is None:
            yield Problem(
                "choice has no finish_reason", path=pointer, received=None, documented=allowed
            )
        elif reason not in allowed:
            yield Problem(
                "undocumented finish_reason", path=pointer, received=reason, documented=allowed
            )


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CompletionUsage; seeds 000/001/002 (usage in every example response)",
    applies=plain_success,
)
def usage_present(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """A plain completion reports usage."""
    usage = record.json.get("usage")
    if not isinstance(usage, dict):
        yield Problem(
            "no usage in the completion",
            path="/body/usage",
            received=usage,
            documented="{prompt_tokens, completion_tokens, total_tokens}",
        )


def _has_usage(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return success(ctx, record, case) and isinstance(record.usage, dict)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CompletionUsage/properties/total_tokens ('prompt + completion'); DESIGN "
    "'usage arithmetic (total = prompt + completion, all >= 0)'",
    applies=_has_usage,
)
def usage_arithmetic(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """Usage counts are integers >= 0 and total_tokens = prompt_tokens + completion_tokens."""
    usage: dict[str, Any] = record.usage or {}
    pointer = usage_pointer(record)
    bad = False
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        if not _count(usage.get(key)):
            bad = True
            yield Problem(
                f"{key} is not a count",
                path=f"{pointer}/{key}",
                received=usage.get(key),
                documented="an integer >= 0",
            )
    if bad:
        return
    prompt, completion, total = (
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["total_tokens"],
    )
    if total != prompt + completion:
        yield Problem(
            f"total_tokens is not prompt_tokens + completion_tokens ({prompt} + {completion})",
            path=f"{pointer}/total_tokens",
            received=total,
            documented=prompt + completion,
        )


@check(
    severity=Severity.WARNING,
    source="DESIGN 'warn on 0 prompt tokens for a non-empty prompt'; seed 002 (example with "
    "prompt_tokens 0)",
    applies=_has_usage,
)
def usage_prompt_tokens_zero(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """A non-empty prompt is counted as more than 0 prompt tokens."""
    usage: dict[str, Any] = record.usage or {}
    if usage.get("prompt_tokens") == 0 and request_text(case.sent_body).strip():
        yield Problem(
            "0 prompt tokens for a non-empty prompt",
            path=f"{usage_pointer(record)}/prompt_tokens",
            received=0,
            documented="> 0",
        )


def _streamed_tool_calls(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return streamed(ctx, record, case) and any(c.tool_calls for c in record.choices.values())


@check(
    severity=Severity.ERROR,
    source=f"{REF}/ChatCompletionMessageToolCallChunk (index required); DESIGN 'tool-call delta "
    "assembly (index present)' and de-facto tool calls (Gemini's endpoint sends no index)",
    applies=_streamed_tool_calls,
)
def tool_call_index(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """Every streamed tool-call delta carries an integer index, one index per call.

    One finding per choice: the calls are assembled without the index (see
    ``record._merge_tool_calls``), so a missing index costs a client that relies on it, not
    the measurement, and the other tool-call checks judge the assembled calls.
    """
    missing: dict[int, list[tuple[str, Any]]] = {}
    total: dict[int, int] = {}
    for i, chunk in enumerate(record.chunks):
        for j, choice in enumerate(as_list(chunk.get("choices"))):
            delta = choice.get("delta") if isinstance(choice, dict) else None
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            owner = choice.get("index", 0) if isinstance(choice, dict) else 0
            owner = owner if isinstance(owner, int) else 0
            for k, call in enumerate(as_list(calls)):
                total[owner] = total.get(owner, 0) + 1
                index = call.get("index") if isinstance(call, dict) else None
                if not isinstance(index, int) or isinstance(index, bool):
                    pointer = f"/chunks/{i}/choices/{j}/delta/tool_calls/{k}/index"
                    missing.setdefault(owner, []).append((pointer, index))
    for owner, where in sorted(missing.items()):
        pointer, value = where[0]
        yield Problem(
            f"{len(where)} of {total[owner]} tool-call deltas of choice {owner} carry no "
            "integer index",
            path=pointer,
            received=value,
            documented="an integer index on every delta",
        )
    for j, (owner, choice) in enumerate(sorted(record.choices.items())):
        if owner in missing:
            continue  # indexes were assigned by assembly, not sent
        seen: dict[Any, str | None] = {}
        for k, call in enumerate(choice.tool_calls):
            if call.get("index") in seen:
                yield Problem(
                    f"two tool calls of choice {owner} share index {call.get('index')}",
                    path=f"/choices/{j}/tool_calls/{k}/index",
                    received=[seen[call.get("index")], call.get("id")],
                    documented="one index per call",
                )
                break
            seen[call.get("index")] = call.get("id")


def _tool_calls(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[tuple[str, int, Any]]:
    """(pointer to the call, choice index, call) for every call, plain or assembled."""
    if plain_success(ctx, record, case):
        for j, choice in enumerate(as_list(record.json.get("choices"))):
            message = choice.get("message") if isinstance(choice, dict) else None
            calls = message.get("tool_calls") if isinstance(message, dict) else None
            for k, call in enumerate(as_list(calls)):
                yield f"/body/choices/{j}/message/tool_calls/{k}", j, call
    elif streamed(ctx, record, case):
        for j, (_, choice) in enumerate(sorted(record.choices.items())):
            for k, call in enumerate(choice.tool_calls):
                yield f"/choices/{j}/tool_calls/{k}", j, call


def _has_tool_calls(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return any(True for _ in _tool_calls(ctx, record, case))


@check(
    severity=Severity.ERROR,
    source=f"{REF}/ChatCompletionMessageToolCall (id, type function, function.name, "
    "function.arguments 'in JSON format'); DESIGN 'arguments join to JSON'",
    applies=_has_tool_calls,
)
def tool_call_arguments_json(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """Each tool call has an id, type function, a name, and arguments that are a JSON object.

    A choice that finished with ``length`` hit max_tokens inside the arguments, so cut
    arguments are expected there and only the other fields are checked.
    """
    plain = plain_success(ctx, record, case)
    for pointer, j, call in _tool_calls(ctx, record, case):
        if not isinstance(call, dict):
            yield Problem(
                "tool call is not an object", path=pointer, received=call, documented="object"
            )
            continue
        if not isinstance(call.get("id"), str) or not call["id"]:
            yield Problem(
                "tool call without id",
                path=f"{pointer}/id",
                received=call.get("id"),
                documented="a non-empty string",
            )
        if call.get("type") != "function":
            yield Problem(
                "tool call type",
                path=f"{pointer}/type",
                received=call.get("type"),
                documented="function",
            )
        raw_function = call.get("function")
        function = raw_function if isinstance(raw_function, dict) else {}
        if not isinstance(function.get("name"), str) or not function.get("name"):
            yield Problem(
                "tool call without a function name",
                path=f"{pointer}/function/name",
                received=function.get("name"),
                documented="a non-empty string",
            )
        arguments = function.get("arguments")
        if _choice_finish(record, plain, j)[1] == "length":
            continue
        try:
            parsed = orjson.loads(arguments) if isinstance(arguments, str) else None
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            yield Problem(
                "tool call arguments are not a JSON object",
                path=f"{pointer}/function/arguments",
                received=arguments,
                documented="a JSON object as a string",
            )


def _named_choice(case: Any) -> str | None:
    choice = (case.sent_body or {}).get("tool_choice")
    if isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return function["name"]
    return None


def _choice_finish(record: RequestRecord, plain: bool, j: int) -> tuple[str, Any]:
    if plain:
        choices = as_list(record.json.get("choices"))
        choice = choices[j] if j < len(choices) else None
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        return f"/body/choices/{j}/finish_reason", reason
    ordered = [c for _, c in sorted(record.choices.items())]
    return f"/choices/{j}/finish_reason", ordered[j].finish_reason if j < len(ordered) else None


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionResponse/.../finish_reason ('tool_calls if the model called "
    "a tool'); DESIGN 'finish tool_calls'",
    applies=_has_tool_calls,
)
def tool_call_finish_reason(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """A choice that calls tools finishes with tool_calls (stop if tool_choice named one).

    ``length`` is also right when the request set max_tokens: the limit cut the call short.
    """
    allowed = ["tool_calls", "stop"] if _named_choice(case) else ["tool_calls"]
    body = case.sent_body or {}
    if body.get("max_tokens") is not None or body.get("max_completion_tokens") is not None:
        allowed.append("length")
    plain = plain_success(ctx, record, case)
    for j in sorted({j for _, j, _ in _tool_calls(ctx, record, case)}):
        pointer, reason = _choice_finish(record, plain, j)
        if reason not in allowed:
            yield Problem(
                "a choice with tool calls has the wrong finish_reason",
                path=pointer,
                received=reason,
                documented=allowed,
            )


def _tool_choice_binding(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    body = case.sent_body or {}
    choice = body.get("tool_choice")
    return (
        _answered(ctx, record, case)
        and bool(body.get("tools"))
        and (choice in ("none", "required") or _named_choice(case) is not None)
    )


@check(
    severity=Severity.ERROR,
    source=f"{REF}/ChatCompletionToolChoiceOption ('none' never calls, 'required' must call, a "
    "named function must be called); seed 001 (tool_choice)",
    applies=_tool_choice_binding,
)
def tool_choice_honoured(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """tool_choice none/required/named is obeyed."""
    body = case.sent_body or {}
    choice = body.get("tool_choice")
    named = _named_choice(case)
    calls = list(_tool_calls(ctx, record, case))
    if choice == "none" and calls:
        yield Problem(
            "tool called although tool_choice is none",
            path=calls[0][0],
            received=calls[0][2],
            documented="no tool calls",
        )
    elif (choice == "required" or named) and not calls:
        yield Problem(
            "no tool call although tool_choice requires one",
            path="/choices/0/tool_calls",
            received=[],
            documented=f"a call of {named}" if named else "at least one tool call",
        )
    elif named:
        for pointer, _, call in calls:
            name = (call.get("function") or {}).get("name") if isinstance(call, dict) else None
            if name != named:
                yield Problem(
                    "called a function other than the one tool_choice names",
                    path=f"{pointer}/function/name",
                    received=name,
                    documented=named,
                )


def _limit(case: Any) -> int | float | None:
    body = case.sent_body or {}
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
            return value
    return None


def _max_tokens_case(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    completion = (record.usage or {}).get("completion_tokens")
    return _answered(ctx, record, case) and _limit(case) is not None and _count(completion)


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionRequest/properties/max_tokens; seed 001 (max_tokens >= 1); "
    "DESIGN 'max_tokens honoured'",
    applies=_max_tokens_case,
)
def max_tokens_honoured(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """No more completion tokens than max_tokens allows (per choice)."""
    limit = _limit(case) or 0
    choices = _choices_asked(case)
    completion = (record.usage or {})["completion_tokens"]
    if completion > limit * choices:
        yield Problem(
            "more completion tokens than max_tokens allows",
            path=f"{usage_pointer(record)}/completion_tokens",
            received=completion,
            documented=f"<= {limit:g}" + (f" x {choices} choices" if choices > 1 else ""),
        )


def _choices_asked(case: Any) -> int:
    n = (case.sent_body or {}).get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def _limit_reached(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """Every choice used up max_tokens exactly (usage counts the tokens of all choices)."""
    if not _max_tokens_case(ctx, record, case) or any("error" in c for c in record.chunks):
        return False
    completion = (record.usage or {})["completion_tokens"]
    return bool(completion == (_limit(case) or 0) * _choices_asked(case))


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionResponse/properties/choices/items/properties/"
    "finish_reason ('length if the maximum number of tokens specified in the request was "
    "reached'); DESIGN 'max_tokens honoured'",
    applies=_limit_reached,
)
def max_tokens_finish_length(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """A choice that used up max_tokens finishes with `length`.

    Judged when the completion has exactly max_tokens tokens per choice; more than that is
    ``max_tokens_honoured``'s finding. A reader of ``finish_reason: "stop"`` takes the
    answer for complete when the limit cut it. (A model that ends by itself on exactly the
    last allowed token would be flagged too: rare, and then the server cannot tell either.)
    """
    plain = plain_success(ctx, record, case)
    for j in range(len(record.choices)):
        pointer, reason = _choice_finish(record, plain, j)
        if reason != "length":
            yield Problem(
                f"max_tokens ({_limit(case):g}) was used up but the choice finished {reason!r}",
                path=pointer,
                received=reason,
                documented="length",
            )


def _stops(case: Any) -> list[str]:
    stop = (case.sent_body or {}).get("stop")
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def _stop_case(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return _answered(ctx, record, case) and bool(_stops(case))


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionRequest/properties/stop ('sequences where the API will stop "
    "generating ... will not contain the stop sequence'); seed 001 (stop)",
    applies=_stop_case,
)
def stop_honoured(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """The generated text never contains a stop sequence."""
    stops = _stops(case)
    plain = plain_success(ctx, record, case)
    for j, (_, choice) in enumerate(sorted(record.choices.items())):
        for stop in stops:
            if stop in choice.content:
                yield Problem(
                    f"output contains the stop sequence {stop!r}",
                    path=f"/body/choices/{j}/message/content" if plain else f"/choices/{j}/content",
                    received=choice.content[:80],
                    documented=f"text without {stop!r}",
                )


def _n_case(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    n = (case.sent_body or {}).get("n")
    return (
        _answered(ctx, record, case) and isinstance(n, int) and not isinstance(n, bool) and n >= 1
    )


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionRequest/properties/n ('How many chat completion choices to "
    "generate')",
    applies=_n_case,
)
def n_honoured(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """As many choices as `n` asks for."""
    n = (case.sent_body or {})["n"]
    got = len(record.choices)
    if got != n:
        yield Problem(
            "wrong number of choices",
            path="/body/choices" if plain_success(ctx, record, case) else "/choices",
            received=got,
            documented=n,
        )


def _no_error(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """An answer to judge: a plain body, or a stream with chunks and no error event."""
    if plain_success(ctx, record, case):
        return True
    return (
        streamed(ctx, record, case)
        and bool(record.chunks)
        and not any("error" in c for c in record.chunks)
    )


@check(
    severity=Severity.ERROR,
    source=f"{REF}/ChatCompletionResponseMessage (role assistant) and "
    "/ChatCompletionStreamResponseDelta (role on the first delta)",
    applies=_no_error,
)
def assistant_message(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """At least one choice; each is an assistant message with text or tool calls."""
    plain = plain_success(ctx, record, case)
    base = "/body/choices" if plain else "/choices"
    if not record.choices:
        yield Problem("no choices", path=base, received=[], documented="at least one choice")
        return
    for j, (_, choice) in enumerate(sorted(record.choices.items())):
        if choice.role != "assistant":
            yield Problem(
                "choice is not an assistant message",
                path=f"{base}/{j}/message/role" if plain else f"{base}/{j}/role",
                received=choice.role,
                documented="assistant",
            )
        empty = not (choice.content or choice.tool_calls or choice.refusal)
        if empty and _reasoned(choice):
            continue  # thinking and no answer: answer_after_reasoning says what it means
        if empty and choice.finish_reason in ("stop", "length"):
            yield Problem(
                "empty message",
                path=f"{base}/{j}/message/content" if plain else f"{base}/{j}/content",
                received=choice.content,
                documented="text or tool calls",
            )


def _reasoned(choice: AssembledChoice) -> bool:
    return bool(choice.reasoning or choice.encrypted_reasoning)


def _reasoning_only(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """A choice that reasoned (readable or encrypted) and finished with no answer."""
    return _no_error(ctx, record, case) and any(
        _reasoned(c) and c.finish_reason and not (c.content or c.tool_calls or c.refusal)
        for c in record.choices.values()
    )


@check(
    severity=Severity.WARNING,
    source="DESIGN 'reasoning models stream their thinking ... time to first answer token "
    "differs from time to first token'; OpenAI ref #/components/schemas/CompletionUsage/"
    "properties/completion_tokens_details (reasoning tokens count against the limit)",
    applies=_reasoning_only,
)
def answer_after_reasoning(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """A reasoning model answers after it reasons: thinking alone is no answer.

    Reasoning tokens count against ``max_tokens``, so a small limit can be used up while the
    model still thinks (finish ``length``): the request needs a larger limit, and the
    provider is not at fault for the missing text; the finding says so. Any other finish
    after thinking alone is an answer that never came. Either way the time to first answer
    token is undefined for such a choice, and a load run's TTFA leaves it out.
    """
    plain = plain_success(ctx, record, case)
    base = "/body/choices" if plain else "/choices"
    for j, (_, choice) in enumerate(sorted(record.choices.items())):
        if not _reasoned(choice) or choice.content or choice.tool_calls or choice.refusal:
            continue
        if not choice.finish_reason:
            continue
        thought = (
            f"{len(choice.reasoning)} characters of reasoning"
            if choice.reasoning
            else f"{choice.encrypted_reasoning} encrypted reasoning entries"
        )
        if choice.finish_reason == "length":
            message = (
                f"max_tokens was used up while the model was reasoning ({thought}, no answer): "
                "reasoning tokens count against the limit; ask for more tokens"
            )
        else:
            message = f"the model reasoned ({thought}) but gave no answer"
        yield Problem(
            message,
            path=f"{base}/{j}/message/content" if plain else f"{base}/{j}/content",
            received=choice.finish_reason,
            documented="answer text, a refusal or tool calls after the reasoning",
        )
