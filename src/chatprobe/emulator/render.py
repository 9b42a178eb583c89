"""Bytes on the wire, per provider dialect: bodies, stream chunks, ids and error envelopes.

Rendering is split so the per-request work is tiny. Everything that depends only on the plan
(model echo, text, usage, finish reasons) is rendered once per plan into JSON *rests*: the
bytes of an object after its first two members. Per request only the head
``{"id":"<id>","created":<unix>,`` is made and glued in front, one ``%``-format per chunk.

Dialects follow the profile's conventions:

* ``openai`` (and custom profiles): ``chatcmpl-`` ids, ``message.refusal: null``.
* ``aimlapi`` envelope (AI/ML API, Apilaplas): pipe-separated ids as in their documented
  example (``2025-04-09|09:53:23.624687-07|5.250.254.39|-1825976509``), message with role and
  content only, ``logprobs: null``; usage in streams only with ``stream_options.include_usage``.
* ``openrouter``: ``gen-<unix>-<rand>`` ids, ``provider`` and ``native_finish_reason`` fields,
  ``refusal``/``reasoning`` null in messages, usage always present and with ``cost``.

Streams: the first delta of a choice carries ``role`` (OpenRouter: every delta does); each
choice ends with its own chunk carrying ``finish_reason``; usage, when sent, is a last chunk
with ``choices: []``; then ``data: [DONE]``.

Reasoning models stream their thinking before the answer, in the format the request's knobs,
the model or the provider say (:data:`~chatprobe.emulator.dialect.REASONING_FORMATS`):
``reasoning_content`` deltas (DeepSeek, vLLM; the usual field of every profile but
OpenRouter's), ``reasoning`` text with ``reasoning_details`` (OpenRouter), the details only, or
``encrypted``: silence while it thinks (steps that write nothing but take their time), then
one ``reasoning.encrypted`` detail right before the answer.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any

import orjson

from chatprobe.emulator.dialect import NO_KNOBS, Knobs
from chatprobe.emulator.plan import ChoicePlan, Plan
from chatprobe.emulator.text import count_tokens
from chatprobe.emulator.truth import ANSWER, CONTENT, EVENT, REASONING
from chatprobe.profiles import ProviderProfile

__all__ = [
    "CACHED_BYTES",
    "CACHED_PLACEHOLDER",
    "Dialect",
    "StreamRender",
    "html_error_page",
    "status_line",
]

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_MARK = "\x00chatprobe-content\x00"  # never in generated text (NUL is not a word char)
_PACIFIC = timezone(timedelta(hours=-7))
_NATIVE_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "error": "ERROR"}
_OPENAI_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("insufficient_quota", "insufficient_quota"),
    404: ("invalid_request_error", "model_not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("requests", "rate_limit_exceeded"),
}


def status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode())


def html_error_page(status: int) -> bytes:
    """An HTML error page like the ones a reverse proxy in front of a provider returns."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return (
        f"<!DOCTYPE html>\n<html><head><title>{status} {phrase}</title></head>\n"
        f"<body><h1>{status} {phrase}</h1>\n<p>The gateway could not get a valid answer "
        f"from the upstream server.</p>\n<hr><address>emulated proxy (chatprobe)</address>"
        f"</body></html>\n"
    ).encode()


@dataclass(slots=True)
class StreamRender:
    """A plan's stream, as rests: content steps, then the closing chunks.

    ``content`` holds ``(step, rest, tokens, marks)`` by step then choice; ``marks`` says
    whether it carries reasoning or answer tokens; ``rest`` None is a silent step (hidden
    reasoning: its time passes, nothing is written).
    """

    steps: int  # content steps (a step holds one chunk of each choice still going)
    content: list[tuple[int, bytes | None, int, int]]
    tail: list[bytes]  # finish chunk per choice, then the usage chunk if any
    first: bytes | None = None  # a whole event before any content (Azure's filter results)
    weights: list[float] | None = None  # tokens per step when not one chunk per K tokens
    silent: bool = False  # some content steps write nothing (hidden reasoning)

    def __post_init__(self) -> None:
        self.silent = any(rest is None for _, rest, _, _ in self.content)


CACHED_PLACEHOLDER = 987_654_321_987_654
"""Rendered as ``prompt_tokens_details.cached_tokens`` in cached renders; each request puts
its own figure in its place (``bytes.replace``), so a plan renders once whatever the cache."""
CACHED_BYTES = b"%d" % CACHED_PLACEHOLDER

_NO_VARIANT = Knobs().render_key()
_AZURE_FILTER = orjson.dumps(
    {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [
            {
                "prompt_index": 0,
                "content_filter_results": {
                    kind: {"filtered": False, "severity": "safe"}
                    for kind in ("hate", "self_harm", "sexual", "violence")
                },
            }
        ],
    }
)

_ANSWER_MARKS = CONTENT | EVENT | ANSWER
_REASONING_MARKS = CONTENT | EVENT | REASONING


def _rest(obj: dict[str, Any]) -> bytes:
    """The JSON of ``obj`` without its opening brace (it follows the per-request head)."""
    return orjson.dumps(obj)[1:]


class Dialect:
    """How one provider profile shapes its answers."""

    def __init__(self, profile: ProviderProfile) -> None:
        self.profile = profile
        self.envelope = profile.error_envelope
        self.success = profile.success_status[0]
        self.extra = "native_finish_reason" in profile.extra_fields
        self.provider_field = "provider" in profile.extra_fields
        self.usage_always = profile.stream_usage == "always"
        self.usage_never = profile.stream_usage == "never"
        self.usage_cost = self.envelope == "openrouter"
        self.role_every_delta = self.envelope == "openrouter"
        self.comment = profile.sse_comment.encode() if profile.sse_comment else None
        self._templates: dict[tuple[str, int, bool], tuple[bytes, bytes]] = {}
        self.reasoning_format = (
            "reasoning" if self.envelope == "openrouter" else "reasoning_content"
        )
        self._upstreams: dict[str, str] = {}
        if self.envelope == "openrouter":
            self.message_extras: dict[str, Any] = {"refusal": None, "reasoning": None}
        elif self.envelope == "aimlapi":
            self.message_extras = {}
        else:
            self.message_extras = {"refusal": None}

    # ------------------------------------------------------------------ ids
    def new_id(self, rng: random.Random, now: float) -> str:
        if self.envelope == "openrouter":
            return f"gen-{int(now)}-{''.join(rng.choices(_ALNUM, k=20))}"
        if self.envelope == "aimlapi":
            stamp = datetime.fromtimestamp(now, _PACIFIC).strftime("%Y-%m-%d|%H:%M:%S.%f")
            ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
            return f"{stamp}-07|{ip}|{rng.randint(-(2**31), 2**31 - 1)}"
        return "chatcmpl-" + "".join(rng.choices(_ALNUM, k=29))

    @staticmethod
    def head(response_id: str, created: int) -> bytes:
        return b'{"id":"%s","created":%d,' % (response_id.encode(), created)

    # ------------------------------------------------------------------ shared parts
    def _upstream(self, plan: Plan) -> str:
        """OpenRouter's ``provider`` field: who served the model (Google for google/...)."""
        found = self._upstreams.get(plan.model.id)
        if found is None:
            family = plan.model.id.split("/", 1)[0] if "/" in plan.model.id else "google"
            found = {"google": "Google", "openai": "OpenAI", "anthropic": "Anthropic"}.get(
                family, family.title()
            )
            self._upstreams[plan.model.id] = found
        return found

    def _usage(self, plan: Plan, cache_field: bool = False) -> dict[str, Any]:
        usage = plan.usage
        if cache_field:  # each request puts its own figure here (see CACHED_PLACEHOLDER)
            details = usage.pop("completion_tokens_details", None)
            usage["prompt_tokens_details"] = {"cached_tokens": CACHED_PLACEHOLDER}
            if details is not None:
                usage["completion_tokens_details"] = details
        if self.usage_cost:
            usage["cost"] = round(plan.cost, 12)
        return usage

    def _meta(self, plan: Plan, obj: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"object": obj}
        if self.provider_field:
            meta["provider"] = self._upstream(plan)
        meta["model"] = plan.model.echo
        return meta

    def _finish_fields(self, reason: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"finish_reason": reason}
        if self.extra:
            fields["native_finish_reason"] = _NATIVE_FINISH.get(reason) if reason else None
        fields["logprobs"] = None
        return fields

    # ------------------------------------------------------------------ reasoning
    def reasoning_of(self, plan: Plan, knobs: Knobs) -> str | None:
        """How ``plan``'s reasoning is shown: a format, "hidden", or None (no reasoning)."""
        if not plan.reasons:
            return None
        if plan.reasoning_hidden:
            return "hidden"
        return knobs.reasoning or plan.model.latency.reasoning or self.reasoning_format

    @staticmethod
    def _detail(text: str) -> dict[str, Any]:
        return {"type": "reasoning.text", "text": text, "format": "unknown", "index": 0}

    @staticmethod
    def _encrypted(thoughts: list[str]) -> dict[str, Any]:
        """An opaque blob standing for the reasoning (its size grows with the thinking)."""
        digest = hashlib.shake_256("".join(thoughts).encode()).digest(max(16, 3 * len(thoughts)))
        data = base64.b64encode(digest).decode()
        return {"type": "reasoning.encrypted", "data": data, "format": "unknown", "index": 0}

    def _reasoning_delta(self, fmt: str, text: str) -> dict[str, Any]:
        if fmt == "reasoning_content":
            return {"content": None, "reasoning_content": text}
        if fmt == "reasoning":
            return {"content": "", "reasoning": text, "reasoning_details": [self._detail(text)]}
        return {"content": "", "reasoning_details": [self._detail(text)]}

    def _reasoning_message(self, fmt: str | None, thoughts: list[str]) -> dict[str, Any]:
        text = "".join(thoughts)
        if fmt is None or fmt == "hidden" or not thoughts:
            return {}
        if fmt == "reasoning_content":
            return {"reasoning_content": text}
        if fmt == "reasoning":
            return {"reasoning": text, "reasoning_details": [self._detail(text)]}
        if fmt == "reasoning_details":
            return {"reasoning_details": [self._detail(text)]}
        return {"reasoning_details": [self._encrypted(thoughts)]}

    # ------------------------------------------------------------------ plain
    def plain_rest(self, plan: Plan, knobs: Knobs = NO_KNOBS, cache_field: bool = False) -> bytes:
        fmt = self.reasoning_of(plan, knobs)
        key = ("plain", fmt, cache_field)
        cached = plan.rendered.get(key)
        if cached is None:
            choices = []
            for choice in plan.choices:
                message: dict[str, Any] = {"role": "assistant"}
                call = choice.tool_call
                if call is not None:
                    message["content"] = None
                    message["tool_calls"] = [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                    ]
                else:
                    message["content"] = choice.text
                message.update(self.message_extras)
                message.update(self._reasoning_message(fmt, choice.reasoning))
                choices.append(
                    {
                        "index": choice.index,
                        **self._finish_fields(choice.finish_reason),
                        "message": message,
                    }
                )
            body = {
                **self._meta(plan, "chat.completion"),
                "choices": choices,
                "usage": self._usage(plan, cache_field),
            }
            cached = plan.rendered[key] = _rest(body)
        return cached

    # ------------------------------------------------------------------ stream
    def stream(
        self,
        plan: Plan,
        tokens_per_chunk: int,
        knobs: Knobs = NO_KNOBS,
        cache_field: bool = False,
    ) -> StreamRender:
        fmt = self.reasoning_of(plan, knobs)
        variant = None if knobs is NO_KNOBS else knobs.render_key()
        if variant == _NO_VARIANT:
            variant = None
        key = ("stream", tokens_per_chunk, fmt, cache_field, variant)
        cached = plan.rendered.get(key)
        if cached is None:
            if variant is None:  # the usual stream: byte templates, the fast path
                render = self._render_stream(plan, tokens_per_chunk, fmt, cache_field)
            else:
                render = self._render_variant(plan, tokens_per_chunk, fmt, cache_field, knobs)
            cached = plan.rendered[key] = render
        return cached

    def _chunk(self, plan: Plan, index: int, delta: dict[str, Any], reason: str | None) -> bytes:
        choice = {"index": index, "delta": delta, **self._finish_fields(reason)}
        return _rest({**self._meta(plan, "chat.completion.chunk"), "choices": [choice]})

    def _deltas(
        self, choice: ChoicePlan, k: int, no_index: bool = False
    ) -> list[tuple[dict[str, Any], int]]:
        """Tool-call deltas: id, type and name first, then the arguments in pieces.

        ``no_index``: Gemini's style, no ``index``; id-less deltas continue the call.
        """
        call = choice.tool_call
        out: list[tuple[dict[str, Any], int]] = []
        if call is not None:
            at: dict[str, Any] = {} if no_index else {"index": 0}
            first = {
                **at,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            out.append(({"content": None, "tool_calls": [first]}, count_tokens(call.name)))
            pieces = call.arg_pieces
            for i in range(0, len(pieces), k):
                part = pieces[i : i + k]
                out.append(
                    (
                        {"tool_calls": [{**at, "function": {"arguments": "".join(part)}}]},
                        len(part),
                    )
                )
        else:
            pieces = choice.pieces
            for i in range(0, len(pieces), k):
                part = pieces[i : i + k]
                out.append(({"content": "".join(part)}, len(part)))
        return out

    def _content_template(self, plan: Plan, index: int, role: bool) -> tuple[bytes, bytes]:
        """The bytes around a content string in a content chunk, made by rendering the chunk
        once with a marker, so a chunk costs one ``orjson.dumps(str)`` and two joins."""
        key = (plan.model.name, index, role)
        found = self._templates.get(key)
        if found is None:
            delta = {"role": "assistant", "content": _MARK} if role else {"content": _MARK}
            rendered = self._chunk(plan, index, delta, None)
            before, _, after = rendered.partition(orjson.dumps(_MARK))
            found = self._templates[key] = (before, after)
        return found

    def _render_stream(
        self, plan: Plan, k: int, fmt: str | None, cache_field: bool
    ) -> StreamRender:
        per_choice: list[list[tuple[bytes | None, int, int]]] = []
        dumps = orjson.dumps
        for choice in plan.choices:
            rests: list[tuple[bytes | None, int, int]] = self._thinking(plan, choice, k, fmt)
            shown = any(rest is not None for rest, _, _ in rests)
            if choice.tool_call is None:
                pieces = choice.pieces
                later = (
                    self._content_template(plan, choice.index, True)
                    if self.role_every_delta
                    else (self._content_template(plan, choice.index, False))
                )
                first = later if shown else self._content_template(plan, choice.index, True)
                for i in range(0, len(pieces), k):
                    before, after = first if i == 0 else later
                    part = pieces[i] if k == 1 else "".join(pieces[i : i + k])
                    rest = before + dumps(part) + after
                    rests.append((rest, min(k, len(pieces) - i), _ANSWER_MARKS))
            else:
                for position, (delta, tokens) in enumerate(self._deltas(choice, k)):
                    if (position == 0 and not shown) or self.role_every_delta:
                        delta = {"role": "assistant", **delta}
                    rest = self._chunk(plan, choice.index, delta, None)
                    rests.append((rest, tokens, _ANSWER_MARKS))
            per_choice.append(rests)
        depth = max((len(r) for r in per_choice), default=0)
        if len(per_choice) == 1:
            content = [(j, *pair) for j, pair in enumerate(per_choice[0])]
        else:
            content = [(j, *r[j]) for j in range(depth) for r in per_choice if j < len(r)]
        tail = []
        for choice, rests in zip(plan.choices, per_choice, strict=True):
            closing: dict[str, Any] = {}
            if not any(rest is not None for rest, _, _ in rests) or self.role_every_delta:
                closing = {"role": "assistant", "content": ""}
            tail.append(self._chunk(plan, choice.index, closing, choice.finish_reason))
        if self.usage_always or (plan.include_usage and not self.usage_never):
            tail.append(
                _rest(
                    {
                        **self._meta(plan, "chat.completion.chunk"),
                        "choices": [],
                        "usage": self._usage(plan, cache_field),
                    }
                )
            )
        return StreamRender(depth, content, tail)

    def _render_variant(
        self, plan: Plan, k: int, fmt: str | None, cache_field: bool, knobs: Knobs
    ) -> StreamRender:
        """The stream with render knobs on: every chunk rendered whole (slower, rarer)."""
        per_choice: list[list[tuple[dict[str, Any] | None, int, int, float]]] = []
        for choice in plan.choices:
            items = self._thinking_deltas(choice, k, fmt)
            if choice.tool_call is not None:
                for call, tokens in self._deltas(choice, k, bool(knobs.tool_calls_no_index)):
                    items.append((call, tokens, _ANSWER_MARKS, float(tokens)))
            elif knobs.one_char_chunks:
                for piece in choice.pieces:
                    for at, char in enumerate(piece):
                        last = at == len(piece) - 1
                        items.append(
                            ({"content": char}, 1 if last else 0, _ANSWER_MARKS, 1 / len(piece))
                        )
            else:
                pieces = choice.pieces
                for i in range(0, len(pieces), k):
                    part = pieces[i : i + k]
                    items.append(({"content": "".join(part)}, len(part), _ANSWER_MARKS, len(part)))
            shown = False
            for position, (shows, tokens, marks, weight) in enumerate(items):
                if shows is None:
                    continue
                if not shown or self.role_every_delta:
                    items[position] = ({"role": "assistant", **shows}, tokens, marks, weight)
                shown = True
            per_choice.append(items)
        depth = max((len(r) for r in per_choice), default=0)
        order = [
            (j, c) for j in range(depth) for c in range(len(per_choice)) if j < len(per_choice[c])
        ]
        weights = [0.0] * depth
        content: list[tuple[int, bytes | None, int, int]] = []
        emitted = 0
        every = bool(knobs.usage_every_chunk)
        for j, c in order:
            step_delta, tokens, marks, weight = per_choice[c][j]
            weights[j] = max(weights[j], weight)
            emitted += tokens
            if step_delta is None:
                content.append((j, None, tokens, 0))
                continue
            choice = plan.choices[c]
            reason = choice.finish_reason if knobs.finish_reason_every_chunk else None
            obj = self._chunk_obj(plan, choice.index, step_delta, reason)
            if every:
                obj["usage"] = self._usage_so_far(plan, emitted, cache_field)
            content.append((j, _rest(obj), tokens, marks))
        tail = []
        for choice, items in zip(plan.choices, per_choice, strict=True):
            closing: dict[str, Any] = {}
            if not any(d is not None for d, _, _, _ in items) or self.role_every_delta:
                closing = {"role": "assistant", "content": ""}
            obj = self._chunk_obj(plan, choice.index, closing, choice.finish_reason)
            if every:
                obj["usage"] = self._usage(plan, cache_field)
            tail.append(_rest(obj))
        sends_usage = self.usage_always or (plan.include_usage and not self.usage_never)
        if sends_usage and not every:
            choices: list[dict[str, Any]] = (
                [{"index": 0, "delta": {}}] if knobs.usage_chunk_with_choice else []
            )
            tail.append(
                _rest(
                    {
                        **self._meta(plan, "chat.completion.chunk"),
                        "choices": choices,
                        "usage": self._usage(plan, cache_field),
                    }
                )
            )
        first = _AZURE_FILTER if knobs.azure_prompt_filter else None
        uniform = not knobs.one_char_chunks
        return StreamRender(depth, content, tail, first, None if uniform else weights)

    def _chunk_obj(
        self, plan: Plan, index: int, delta: dict[str, Any], reason: str | None
    ) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, **self._finish_fields(reason)}
        return {**self._meta(plan, "chat.completion.chunk"), "choices": [choice]}

    def _usage_so_far(self, plan: Plan, emitted: int, cache_field: bool) -> dict[str, Any]:
        """Cumulative usage after ``emitted`` completion tokens (Gemini's every-chunk usage)."""
        usage: dict[str, Any] = {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": emitted,
            "total_tokens": plan.prompt_tokens + emitted,
        }
        if cache_field:
            usage["prompt_tokens_details"] = {"cached_tokens": CACHED_PLACEHOLDER}
        return usage

    def _thinking_deltas(
        self, choice: ChoicePlan, k: int, fmt: str | None
    ) -> list[tuple[dict[str, Any] | None, int, int, float]]:
        """:meth:`_thinking` as deltas (None for a silent step), for :meth:`_render_variant`."""
        thoughts = choice.reasoning
        if fmt is None or not thoughts:
            return []
        out: list[tuple[dict[str, Any] | None, int, int, float]] = []
        for i in range(0, len(thoughts), k):
            part = thoughts[i : i + k]
            if fmt in ("hidden", "encrypted"):
                out.append((None, len(part), 0, float(len(part))))
            else:
                delta = self._reasoning_delta(fmt, "".join(part))
                out.append((delta, len(part), _REASONING_MARKS, float(len(part))))
        if fmt == "encrypted":
            blob = {"content": "", "reasoning_details": [self._encrypted(thoughts)]}
            _, tokens, _, weight = out[-1]
            out[-1] = (blob, tokens, _REASONING_MARKS, weight)
        return out

    def _thinking(
        self, plan: Plan, choice: ChoicePlan, k: int, fmt: str | None
    ) -> list[tuple[bytes | None, int, int]]:
        """A choice's reasoning steps: deltas in ``fmt``, or silent steps (then a blob)."""
        thoughts = choice.reasoning
        if fmt is None or not thoughts:
            return []
        out: list[tuple[bytes | None, int, int]] = []
        for i in range(0, len(thoughts), k):
            part = thoughts[i : i + k]
            if fmt in ("hidden", "encrypted"):
                out.append((None, len(part), 0))
                continue
            delta = self._reasoning_delta(fmt, "".join(part))
            if i == 0 or self.role_every_delta:
                delta = {"role": "assistant", **delta}
            out.append((self._chunk(plan, choice.index, delta, None), len(part), _REASONING_MARKS))
        if fmt == "encrypted":  # the last thinking step shows the encrypted blob
            delta = {"role": "assistant", "content": "", "reasoning_details": []}
            delta["reasoning_details"] = [self._encrypted(thoughts)]
            _, tokens, _ = out[-1]
            out[-1] = (self._chunk(plan, choice.index, delta, None), tokens, _REASONING_MARKS)
        return out

    def usage_rest(self, plan: Plan) -> bytes:
        """A usage chunk (``choices: []``), whether or not the stream sends one."""
        cached = plan.rendered.get("usage_chunk")
        if cached is None:
            cached = plan.rendered["usage_chunk"] = _rest(
                {
                    **self._meta(plan, "chat.completion.chunk"),
                    "choices": [],
                    "usage": self._usage(plan),
                }
            )
        return cached

    def midstream_error_rest(self, plan: Plan) -> bytes:
        """An OpenRouter-style error event: top-level ``error`` plus a choice ending in error."""
        cached = plan.rendered.get("midstream_error")
        if cached is None:
            choice = {"index": 0, "delta": {"content": ""}, **self._finish_fields("error")}
            cached = plan.rendered["midstream_error"] = _rest(
                {
                    **self._meta(plan, "chat.completion.chunk"),
                    "error": {"code": 502, "message": "Upstream provider failed mid-stream"},
                    "choices": [choice],
                }
            )
        return cached

    def error_in_body_rest(self) -> bytes:
        """A 2xx plain body that holds an error instead of a completion (midstream_error)."""
        return _rest({"error": {"code": 502, "message": "Upstream provider failed mid-stream"}})

    # ------------------------------------------------------------------ errors
    def error_body(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        path: str = "/v1/chat/completions",
        rng: random.Random | None = None,
        details: list[str] | None = None,
        envelope: str | None = None,
        code_as_string: bool = False,
    ) -> bytes:
        """The provider's error envelope for ``status`` (or ``envelope``'s).

        AI/ML API answers a bad body NestJS-style, one message per violated rule
        (``details``), with ``error: "Bad Request"``. ``code_as_string``: LiteLLM's proxy
        shape, ``{error: {message, type, param: "None", code: "<status>"}}``.
        """
        envelope = envelope or self.envelope
        if code_as_string:
            kind = _OPENAI_TYPES.get(status, ("server_error" if status >= 500 else "", None))[0]
            return orjson.dumps(
                {
                    "error": {
                        "message": message,
                        "type": kind or "invalid_request_error",
                        "param": "None",
                        "code": str(status),
                    }
                }
            )
        if envelope == "openrouter":
            error: dict[str, Any] = {"code": status, "message": message}
            if status >= 500 or status == 429:
                error["metadata"] = {"provider_name": "Google", "raw": message}
            return orjson.dumps({"error": error})
        if envelope == "aimlapi":
            rng = rng or random.Random()
            body: dict[str, Any] = {
                "message": details if details else message,
                "path": path,
                "requestId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "statusCode": status,
                "timestamp": datetime.now(UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
            }
            if details:
                body["error"] = "Bad Request"
            return orjson.dumps(body)
        kind, default_code = _OPENAI_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        return orjson.dumps(
            {
                "error": {
                    "message": message,
                    "type": kind,
                    "param": param,
                    "code": default_code if code is None else code,
                }
            }
        )

    def no_credits_status(self) -> int:
        return {"openrouter": 402, "aimlapi": 403}.get(self.envelope, 429)
