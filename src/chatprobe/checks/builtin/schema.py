"""Shape checks: JSON Schema (strict OpenAI and provider level), constants, ids, model echo."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from chatprobe import specs
from chatprobe.checks.context import (
    CheckContext,
    annotation_chunk,
    as_list,
    has_kind,
    plain_success,
    streamed,
    success,
)
from chatprobe.checks.findings import Problem, Severity, schema_problems
from chatprobe.checks.registry import check
from chatprobe.record import RequestRecord

REF = "OpenAI ref #/components/schemas"


def _payloads(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[tuple[str, str, Any]]:
    """(kind, pointer, payload) for the plain body or every chunk of a stream."""
    if streamed(ctx, record, case):
        for i, chunk in enumerate(record.chunks):
            if "error" in chunk:  # a mid-stream error event is judged by midstream_error*
                continue
            yield "chunk", f"/chunks/{i}", chunk
    elif plain_success(ctx, record, case):
        yield "response", "/body", record.json


def _validate(level: str, ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    for kind, pointer, payload in _payloads(ctx, record, case):
        if not has_kind(level, kind):
            continue
        yield from schema_problems(
            specs.validator(level, kind), payload, prefix=pointer, label=f"{level}:{kind}"
        )


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionResponse and /CreateChatCompletionStreamResponse "
    "(specs/schemas/openai-strict/)",
    applies=success,
)
def strict_response_schema(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """The body, or every stream chunk, validates against strict OpenAI's schema."""
    yield from _validate(ctx.strict_level, ctx, record, case)


def _provider_level(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    """A provider level of its own: for an ``openai-strict`` provider (every ``--base-url``
    endpoint) ``strict_response_schema`` already says everything, once."""
    return (
        success(ctx, record, case)
        and ctx.level != ctx.strict_level
        and (has_kind(ctx.level, "chunk") or has_kind(ctx.level, "response"))
    )


@check(
    severity=Severity.ERROR,
    source="specs/schemas/<provider level>/response.yaml and chunk.yaml (seeds 000-004, DESIGN)",
    applies=_provider_level,
)
def provider_response_schema(
    ctx: CheckContext, record: RequestRecord, case: Any
) -> Iterator[Problem]:
    """The body, or every stream chunk, validates against the provider's documented schema."""
    yield from _validate(ctx.level, ctx, record, case)


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionResponse/properties/object (enum chat.completion) and "
    "CreateChatCompletionStreamResponse/properties/object (chat.completion.chunk)",
    applies=success,
)
def object_constant(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """`object` is chat.completion (plain) or chat.completion.chunk (every chunk).

    On a leading prompt-annotation chunk (Azure: ``object: ""``) a warning.
    """
    annotation = _annotation_pointer(record)
    for kind, pointer, payload in _payloads(ctx, record, case):
        want = "chat.completion" if kind == "response" else "chat.completion.chunk"
        got = payload.get("object") if isinstance(payload, dict) else None
        if got != want:
            leading = pointer == annotation
            yield Problem(
                "wrong object type" + (" on the prompt-annotation chunk" if leading else ""),
                path=f"{pointer}/object",
                received=got,
                documented=want,
                severity=Severity.WARNING if leading else None,
            )


def _annotation_pointer(record: RequestRecord) -> str | None:
    index = annotation_chunk(record)
    return None if index is None else f"/chunks/{index}"


@check(
    severity=Severity.ERROR,
    source=f"{REF}/CreateChatCompletionResponse/properties/id (required string); "
    "CreateChatCompletionStreamResponse/properties/id",
    applies=success,
)
def id_present(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """Every completion and chunk has a non-empty string id.

    On a leading prompt-annotation chunk (Azure: ``id: ""``) a warning.
    """
    annotation = _annotation_pointer(record)
    for _, pointer, payload in _payloads(ctx, record, case):
        value = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(value, str) or not value.strip():
            leading = pointer == annotation
            yield Problem(
                "missing or empty id" + (" on the prompt-annotation chunk" if leading else ""),
                path=f"{pointer}/id",
                received=value,
                documented="a non-empty string",
                severity=Severity.WARNING if leading else None,
            )


def _has_pattern(ctx: CheckContext, record: RequestRecord, case: Any) -> bool:
    return bool(ctx.profile.id_pattern) and success(ctx, record, case)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@check(
    severity=Severity.ERROR,
    source="profile conventions.id_pattern; seed 000 (AI/ML API id example); "
    "DESIGN ('gen-<unix>-<rand>')",
    applies=_has_pattern,
)
def id_format(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """Ids have the provider's documented format."""
    pattern = _compiled(str(ctx.profile.id_pattern))
    for _, pointer, payload in _payloads(ctx, record, case):
        value = payload.get("id") if isinstance(payload, dict) else None
        if isinstance(value, str) and value and not pattern.search(value):
            yield Problem(
                "id does not have the documented format",
                path=f"{pointer}/id",
                received=value,
                documented=ctx.profile.id_pattern,
            )


@check(
    severity=Severity.WARNING,
    source="DESIGN provider facts ('model echoed as google/...'); seed 000 example; "
    "profile models.*.echo; --base-url endpoints: the id or its dated snapshot",
    applies=success,
)
def model_echo(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """`model` in the answer is the name the provider documents for the requested model.

    A ``--base-url`` endpoint documents nothing, so the requested id is expected, or a dated
    snapshot of it (OpenAI answers ``gpt-4o-mini`` with ``gpt-4o-mini-2024-07-18``).
    """
    try:
        want = ctx.profile.model(case.model).echo
    except Exception:
        return
    snapshot = _snapshot_of(want) if ctx.profile.custom_endpoint else None
    for _, pointer, payload in _payloads(ctx, record, case):
        got = payload.get("model") if isinstance(payload, dict) else None
        if got != want and not (snapshot and isinstance(got, str) and snapshot.fullmatch(got)):
            yield Problem(
                "model echo differs", path=f"{pointer}/model", received=got, documented=want
            )
            return


@cache
def _snapshot_of(model: str) -> re.Pattern[str]:
    """``<model>-YYYY-MM-DD``: an alias answered by a dated snapshot."""
    return re.compile(re.escape(model) + r"-\d{4}-\d{2}-\d{2}")


@cache
def _openai_fields() -> dict[str, frozenset[str]]:
    """Property names OpenAI defines, per level of the response and chunk objects."""

    def props(schema: dict[str, Any]) -> frozenset[str]:
        return frozenset((schema or {}).get("properties", {}))

    out = {}
    for kind in ("response", "chunk"):
        root = _resolve(specs.schema(specs.STRICT, kind), specs.schema(specs.STRICT, kind))
        choice = _resolve(root["properties"]["choices"]["items"], specs.schema(specs.STRICT, kind))
        inner_key = "message" if kind == "response" else "delta"
        inner = _resolve(choice["properties"][inner_key], specs.schema(specs.STRICT, kind))
        out[kind] = props(root)
        out[f"{kind}.choice"] = props(choice)
        out[f"{kind}.{inner_key}"] = props(inner)
    return out


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s and merge ``allOf`` parts: enough to list properties."""
    seen = 0
    while (
        isinstance(node, dict)
        and "$ref" in node
        and str(node["$ref"]).startswith("#/")
        and seen < 10
    ):
        target: Any = root
        for part in str(node["$ref"])[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
    if isinstance(node, dict) and "allOf" in node:
        merged = {k: v for k, v in node.items() if k != "allOf"}
        properties = dict(merged.get("properties", {}))
        for part in node["allOf"]:
            properties.update(_resolve(part, root).get("properties", {}))
        merged["properties"] = properties
        return merged
    return node if isinstance(node, dict) else {}


@check(
    severity=Severity.WARNING,
    source=f"{REF}/CreateChatCompletionResponse, /ChatCompletionResponseMessage, "
    "/CreateChatCompletionStreamResponse (properties); profile conventions.extra_fields",
    applies=success,
)
def extra_fields(ctx: CheckContext, record: RequestRecord, case: Any) -> Iterator[Problem]:
    """Completions, choices and messages carry only fields OpenAI defines."""
    fields = _openai_fields()
    seen: set[str] = set()
    for kind, pointer, payload in _payloads(ctx, record, case):
        if not isinstance(payload, dict):
            continue
        inner_key = "message" if kind == "response" else "delta"
        extra = [(f"{pointer}/{k}", k) for k in payload if k not in fields[kind]]
        for j, choice in enumerate(as_list(payload.get("choices"))):
            if not isinstance(choice, dict):
                continue
            extra += [
                (f"{pointer}/choices/{j}/{k}", k)
                for k in choice
                if k not in fields[f"{kind}.choice"]
            ]
            inner = choice.get(inner_key)
            if isinstance(inner, dict):
                extra += [
                    (f"{pointer}/choices/{j}/{inner_key}/{k}", k)
                    for k in inner
                    if k not in fields[f"{kind}.{inner_key}"]
                ]
        for path, key in extra:
            shape = re.sub(r"/\d+", "/*", path.removeprefix(pointer))
            if shape in seen:  # one finding per field and place, not one per chunk
                continue
            seen.add(shape)
            yield Problem(
                f"field {key!r} is not defined by OpenAI",
                path=path,
                received=key,
                documented="OpenAI's properties",
            )
