"""From a request body to a *plan*: what the emulator will answer, before any timing.

A plan is a pure function of the provider, the emulator seed and the request body (plus the
``X-Chatprobe-Output-Tokens`` override), so the server caches plans by body bytes: a load
run repeating one request pays for JSON parsing, schema validation and text generation once.

Validation, in order, each failure a :class:`Reject` (answered in the provider's envelope):

1. the body is JSON and an object (400);
2. ``model`` is a string naming a model of the profile, by canonical name, provider id or
   echoed name (404 otherwise);
3. the provider's documented request schema, ``specs/schemas/<schema_level>/request.yaml``,
   when it exists (400 naming the field by JSON pointer and dotted path);
4. the emulator's own checks of every field it reads (400 naming the field), so garbage can
   never crash it even where a schema is lax.

Tool calls (deterministic rule): with ``tools`` given, a tool is called when ``tool_choice``
is ``"required"`` (the tool named in the last user message, else the first), names a
function, or is ``"auto"``/absent and the last user message contains a tool's name
(case-insensitive; the first such tool). ``"none"`` never calls. Arguments are generated from
the function's ``parameters`` schema; ``completion_tokens`` counts the tokens of the name and
of the arguments string.

Usage: ``prompt_tokens`` counts the tokenizer's tokens over the text of every message (string
content, text parts, assistant tool-call names and arguments) plus
:data:`~chatprobe.emulator.text.IMAGE_TOKENS` per image part; ``completion_tokens`` is the
number of tokens emitted over all choices. A model whose profile sets
``emulator: {prompt_tokens_zero: true}`` reports ``prompt_tokens: 0`` (AI/ML API's documented
gemini-1.5-flash example does), unless quirks are switched off.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from chatprobe.emulator.text import (
    IMAGE_TOKENS,
    count_tokens,
    generate_pieces,
    iter_text_parts,
    split_pieces,
    text_seed,
    tool_arguments,
)
from chatprobe.errors import ChatprobeError
from chatprobe.profiles import ModelInfo, ProviderProfile

__all__ = ["ChoicePlan", "Plan", "Reject", "ToolCallPlan", "build_plan", "warm_validator"]

MAX_CHOICES = 16
MAX_STOP = 16


class Reject(Exception):
    """A request the provider would refuse: status, message and the field at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        pointer: str | None = None,
        code: str | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.pointer = pointer
        self.code = code
        self.details = details or []  # one line per violated rule (validation errors)


@dataclass(slots=True)
class ToolCallPlan:
    id: str
    name: str
    arguments: str
    arg_pieces: list[str]


@dataclass(slots=True)
class ChoicePlan:
    index: int
    pieces: list[str]  # content, one token per piece (empty for a tool call)
    finish_reason: str  # stop | length | tool_calls
    tool_call: ToolCallPlan | None = None
    reasoning: list[str] = field(default_factory=list)  # thinking before the answer, by token

    @property
    def tokens(self) -> int:
        """Completion tokens of this choice: reasoning, then the answer or the tool call."""
        if self.tool_call is not None:
            answer = count_tokens(self.tool_call.name) + len(self.tool_call.arg_pieces)
        else:
            answer = len(self.pieces)
        return len(self.reasoning) + answer

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass(slots=True)
class Plan:
    """Everything about an answer that does not depend on time or the request's sequence."""

    profile: ProviderProfile
    model: ModelInfo
    model_sent: str
    stream: bool
    include_usage: bool
    choices: list[ChoicePlan]
    prompt_tokens: int
    images: int
    completion_tokens: int
    input_tokens: int = 0  # the prompt's real size, even where usage reports a quirk
    reasons: bool = False  # a reasoning model: usage has completion_tokens_details
    reasoning_hidden: bool = False  # OpenRouter reasoning.exclude: thinks, shows nothing
    messages: list[Any] = field(default_factory=list)  # the request's (for the prefix cache)
    rendered: dict[Any, Any] = field(default_factory=dict)  # render cache, see render.py

    @property
    def reasoning_tokens(self) -> int:
        return sum(len(c.reasoning) for c in self.choices)

    @property
    def usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.reasons:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage

    def answer_message(self) -> dict[str, Any]:
        """The first choice as the assistant message a client sends back next turn."""
        choice = self.choices[0]
        call = choice.tool_call
        if call is None:
            return {"role": "assistant", "content": choice.text}
        function = {"name": call.name, "arguments": call.arguments}
        return {"role": "assistant", "content": None, "tool_calls": [{"function": function}]}

    @property
    def cost(self) -> float:
        """USD by the profile's pricing (0 without pricing)."""
        price = self.model.pricing
        if price is None:
            return 0.0
        return price.cost(self.prompt_tokens, self.completion_tokens) + (
            self.images * price.input_per_kimage / 1000
        )


def _dotted(path: Any) -> str:
    return ".".join(str(p) for p in path)


def _pointer(path: Any) -> str:
    return "".join(f"/{p}" for p in path)


def _bad(path: tuple[Any, ...], message: str, details: list[str] | None = None) -> Reject:
    dotted = _dotted(path)
    return Reject(
        400,
        f"Invalid request: {dotted}: {message}",
        param=dotted,
        pointer=_pointer(path),
        details=details or [f"{dotted}: {message}"],
    )


_VALID_SHAPES_MAX = 4096
_valid_shapes: dict[str, set[bytes]] = {}


def _shape(body: dict[str, Any]) -> bytes | None:
    """``body`` with every message text replaced by ``"x"`` (or kept empty).

    The documented request schemas constrain message text only by type and emptiness, so
    bodies of one shape validate alike; a load run varying only its prompts validates once.
    Only *valid* shapes are remembered: an invalid body is always validated as it is, so
    error messages quote the real values.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    shaped: list[Any] = []
    for message in messages:
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                message = {**message, "content": "x" if content else ""}
            elif isinstance(content, list):
                parts = [
                    {**p, "text": "x" if p["text"] else ""}
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                    else p
                    for p in content
                ]
                message = {**message, "content": parts}
        shaped.append(message)
    try:
        return orjson.dumps({**body, "messages": shaped})
    except TypeError:
        return None


def _schema_check(profile: ProviderProfile, body: dict[str, Any]) -> None:
    """Validate against the provider's documented request schema, when there is one."""
    validator = _request_validator(profile.schema_level)
    if validator is None:
        return
    shape = _shape(body)
    known = _valid_shapes.setdefault(profile.schema_level, set())
    if shape is not None and shape in known:
        return
    if shape is not None and validator.is_valid(body):
        if len(known) >= _VALID_SHAPES_MAX:
            known.clear()
        known.add(shape)
        return
    from chatprobe import specs

    found = specs.violations(validator, body)  # worded like `chatprobe validate` and the checks
    if not found:
        return
    details = [f"{_dotted(v.path) or 'body'}: {v.message}" for v in found[:10]]
    best = specs.most_relevant(found)
    if not best.path:
        raise Reject(400, f"Invalid request: {best.message}", details=details)
    raise _bad(best.path, best.message, details)


_validators: dict[str, Any] = {}


def warm_validator(profile: ProviderProfile) -> None:
    """Load and compile ``profile``'s request schema (and run it once) ahead of requests."""
    validator = _request_validator(profile.schema_level)
    if validator is not None:
        for _ in validator.iter_errors(
            {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        ):
            pass


def _request_validator(level: str) -> Any:
    if level not in _validators:
        from chatprobe import specs

        found = None
        if level in specs.levels():
            try:
                found = specs.validator(level, "request")
            except ChatprobeError:
                found = None
        _validators[level] = found
    return _validators[level]


def _optional_int(
    body: dict[str, Any], name: str, low: int, high: int | None = None, *, floor: bool = False
) -> int | None:
    """An integer field (``floor``: a number, rounded down, as AI/ML API documents max_tokens)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float) and (value.is_integer() or (floor and value >= low)):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad((name,), f"expected an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _bad((name,), f"{value} must be {bound}")
    return value


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise _bad(("messages",), "is required")
    if not isinstance(messages, list) or not messages:
        raise _bad(("messages",), "expected a non-empty array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(("messages", i), "expected an object")
        role = message.get("role")
        if not isinstance(role, str):
            raise _bad(("messages", i, "role"), "is required and must be a string")
        content = message.get("content")
        if content is None:
            if role != "assistant":
                raise _bad(("messages", i, "content"), "is required")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise _bad(("messages", i, "content", j), "expected a content part object")
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise _bad(("messages", i, "content", j, "text"), "must be a string")
        elif not isinstance(content, str):
            raise _bad(("messages", i, "content"), "expected a string or an array of parts")
    return messages


def _stop(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list) and len(stop) <= MAX_STOP:
        for i, item in enumerate(stop):
            if not isinstance(item, str):
                raise _bad(("stop", i), "must be a string")
        return [s for s in stop if s]
    raise _bad(("stop",), f"expected a string or an array of at most {MAX_STOP} strings")


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad(("tools",), "expected an array")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise _bad(("tools", i, "type"), "expected 'function'")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _bad(("tools", i, "function", "name"), "is required and must be a string")
    return tools


def _tool_to_call(
    body: dict[str, Any], tools: list[dict[str, Any]], last_user: str
) -> dict[str, Any] | None:
    choice = body.get("tool_choice")
    names = [t["function"]["name"] for t in tools]
    lowered = last_user.lower()
    mentioned = next((t for t, n in zip(tools, names, strict=True) if n.lower() in lowered), None)
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if choice.get("type") != "function" or not isinstance(name, str):
            raise _bad(("tool_choice",), "expected {type: 'function', function: {name}}")
        if name not in names:
            raise _bad(("tool_choice", "function", "name"), f"no tool named {name!r}")
        return tools[names.index(name)]
    if choice is not None and choice not in ("none", "auto", "required"):
        raise _bad(("tool_choice",), "expected 'none', 'auto', 'required' or a function")
    if not tools or choice == "none":
        return None
    if choice == "required":
        return mentioned or tools[0]
    return mentioned


def _prompt(messages: list[dict[str, Any]]) -> tuple[int, int, str]:
    """Prompt tokens, image parts and the text of the last user message."""
    tokens = images = 0
    last_user = ""
    for message in messages:
        content = message.get("content")
        text = "".join(iter_text_parts(content))
        tokens += count_tokens(text)
        if isinstance(content, list):
            images += sum(
                1 for p in content if isinstance(p, dict) and p.get("type") == "image_url"
            )
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                tokens += count_tokens(str(function.get("name", "")))
                tokens += count_tokens(str(function.get("arguments", "")))
        if message.get("role") == "user":
            last_user = text
    return tokens + images * IMAGE_TOKENS, images, last_user


def _cut(pieces: list[str], stops: list[str], limit: int | None) -> tuple[list[str], str]:
    """Apply stop sequences (text cut before the earliest one) and then the token limit."""
    reason = "stop"
    if stops:
        text = "".join(pieces)
        cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
        if cut >= 0:
            kept: list[str] = []
            used = 0
            for piece in pieces:
                if used + len(piece) <= cut:
                    kept.append(piece)
                    used += len(piece)
                    continue
                partial = piece[: cut - used]
                if partial.strip():
                    kept.append(partial)
                break
            pieces = kept
    if limit is not None and len(pieces) > limit:
        pieces, reason = pieces[:limit], "length"
    return pieces, reason


def build_plan(
    profile: ProviderProfile,
    body_bytes: bytes,
    *,
    seed: int,
    output_tokens: tuple[int, int],
    quirks: bool = True,
    reasoning_tokens: int | None = None,
) -> Plan:
    """Parse, validate and plan one chat-completion request; raise :class:`Reject`.

    ``reasoning_tokens`` fixes a reasoning model's thinking length (else a seeded draw in
    the model's range); ``max_tokens`` counts reasoning and answer together, as OpenAI's
    reasoning models do, and OpenRouter's ``reasoning: {max_tokens, exclude}`` caps the
    thinking or keeps it out of the answer.
    """
    try:
        body = orjson.loads(body_bytes)
    except orjson.JSONDecodeError as exc:
        raise Reject(400, f"Invalid request: body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise Reject(400, "Invalid request: body must be a JSON object")
    model_name = body.get("model")
    if model_name is None:
        raise _bad(("model",), "is required")
    if not isinstance(model_name, str):
        raise _bad(("model",), "must be a string")
    try:
        model = profile.model(model_name)
    except ChatprobeError:
        raise Reject(
            404,
            f"The model {model_name!r} does not exist or is not served by {profile.title}",
            param="model",
            pointer="/model",
            code="model_not_found",
        ) from None
    _schema_check(profile, body)
    messages = _messages(body)
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _bad(("stream",), "must be a boolean")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _bad(("stream_options",), "must be an object")
    include_usage = bool(options and options.get("include_usage") is True)
    n = _optional_int(body, "n", 1, MAX_CHOICES) or 1
    limit = _optional_int(body, "max_completion_tokens", 1, floor=True)
    limit = _optional_int(body, "max_tokens", 1, floor=True) if limit is None else limit
    stops = _stop(body)
    tools = _tools(body)
    prompt_tokens, images, last_user = _prompt(messages)
    tool = _tool_to_call(body, tools, last_user)
    input_tokens = prompt_tokens
    if quirks and model.latency.prompt_tokens_zero:
        prompt_tokens = 0
    think = model.latency.reasoning_tokens
    budget, hidden = _reasoning_options(body)
    lo, hi = output_tokens
    choices: list[ChoicePlan] = []
    for index in range(n):
        seed_value = text_seed(seed, model.id, messages, index)
        thoughts: list[str] = []
        if think:
            length = reasoning_tokens or think[0] + (seed_value >> 7) % (think[1] - think[0] + 1)
            if budget is not None:
                length = min(length, budget)
            thoughts = generate_pieces(seed_value ^ _REASONING_SALT, length)
            if limit is not None:
                thoughts = thoughts[:limit]
        left = None if limit is None else limit - len(thoughts)
        if tool is not None:
            choice = _tool_choice(index, seed_value, tool, left)
        else:
            length = lo + seed_value % (hi - lo + 1)
            pieces, reason = _cut(generate_pieces(seed_value, length), stops, left)
            choice = ChoicePlan(index, pieces, reason)
        choice.reasoning = thoughts
        choices.append(choice)
    return Plan(
        profile=profile,
        model=model,
        model_sent=model_name,
        stream=bool(stream),
        include_usage=include_usage,
        choices=choices,
        prompt_tokens=prompt_tokens,
        images=images,
        completion_tokens=sum(c.tokens for c in choices),
        input_tokens=input_tokens,
        reasons=bool(think),
        reasoning_hidden=hidden,
        messages=messages,
    )


_REASONING_SALT = 0x5EA5_0A1B_2C3D


def _reasoning_options(body: dict[str, Any]) -> tuple[int | None, bool]:
    """OpenRouter's ``reasoning`` object: a thinking budget, and whether to leave it out."""
    options = body.get("reasoning")
    if options is None:
        return None, False
    if not isinstance(options, dict):
        raise _bad(("reasoning",), "expected an object")
    budget = options.get("max_tokens")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)):
        raise _bad(("reasoning", "max_tokens"), "expected an integer")
    exclude = options.get("exclude", False)
    if not isinstance(exclude, bool):
        raise _bad(("reasoning", "exclude"), "expected a boolean")
    if options.get("enabled") is False or options.get("effort") == "none":
        budget = 0
    return (None if budget is None else max(0, budget)), exclude


def _tool_choice(
    index: int, seed_value: int, tool: dict[str, Any], limit: int | None = None
) -> ChoicePlan:
    """A call of ``tool``; ``max_tokens`` cuts its arguments as it would cut text.

    The function name is counted first; when the limit is reached inside the arguments they
    end where the budget ran out (no longer valid JSON) and the finish reason is ``length``,
    as OpenAI-compatible servers do.
    """
    rng = random.Random(seed_value)
    function = tool["function"]
    arguments = orjson.dumps(tool_arguments(rng, function.get("parameters"))).decode()
    call_id = "call_" + "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24)
    )
    pieces = [p for p in split_pieces(arguments) if p]
    reason = "tool_calls"
    if limit is not None:
        budget = max(0, limit - count_tokens(function["name"]))
        if len(pieces) > budget:
            pieces = pieces[:budget]
            arguments = "".join(pieces)
            reason = "length"
    return ChoicePlan(
        index,
        [],
        reason,
        ToolCallPlan(id=call_id, name=function["name"], arguments=arguments, arg_pieces=pieces),
    )
