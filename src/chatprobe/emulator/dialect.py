"""Dialect knobs: the de-facto variations of the OpenAI formats real servers send.

Each knob switches one variation on, for one request (``X-Chatprobe-Dialect:
knob[=value][,knob...]``), for every request (``--dialect knob[=value]``, repeatable, or a
scenario's ``emulator.dialect`` list), for one model (a profile model's ``emulator:
{dialect: [...]}``) or for a scheduled window (``dialect:knob,...@START-END``, a contract
change). A request's knobs are the model's, then the configuration's, then its windows',
then its header's (a later value wins).

===========================  ================================================================
knob                         what changes (who does this)
===========================  ================================================================
reasoning=FORMAT             how a reasoning model streams its thinking: ``reasoning_content``
                             (DeepSeek, vLLM), ``reasoning`` (OpenRouter: text plus
                             ``reasoning_details``), ``reasoning_details`` (the details
                             only), ``encrypted`` (nothing while it thinks, then one
                             encrypted ``reasoning_details`` item before the answer)
tool_calls_no_index          tool-call deltas without ``index``: a call starts with its id and
                             name, id-less deltas continue it (Gemini's OpenAI-compatible API)
usage_every_chunk            every chunk carries the usage so far, cumulative; no separate
                             usage chunk (Gemini's OpenAI-compatible API)
usage_chunk_with_choice      the usage chunk has ``choices: [{"index": 0, "delta": {}}]``
                             instead of ``[]`` (LiteLLM)
finish_reason_every_chunk    every chunk of a choice carries its final ``finish_reason``
                             (some proxies)
azure_prompt_filter          a first chunk with ``choices: []``, empty id and model, and
                             ``prompt_filter_results`` (Azure OpenAI)
sse_comments[=N]             an SSE comment line (``: keep-alive``) before every Nth event
                             (default every event)
line_ends=cr|crlf|lf         the SSE line ending (``cr``: CR only, legal and rare)
one_char_chunks              one character per content chunk (each token's time spread over
                             its characters)
tokens_per_chunk=K           K tokens per streamed event (gateways that batch)
error_code_as_string         error bodies ``{"error": {message, type, param: "None",
                             code: "<HTTP status>"}}`` (LiteLLM's proxy)
envelope=NAME                error bodies in another provider's envelope (``openai``,
                             ``openrouter``, ``aimlapi``)
close_after_error            error answers say ``Connection: close`` and the socket closes
no_models                    ``GET .../models`` answers 404 (servers without the endpoint)
===========================  ================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from functools import cache
from typing import Any

from chatprobe.errors import ConfigError

__all__ = ["KNOBS", "NO_KNOBS", "REASONING_FORMATS", "Knobs", "parse_knob_header", "parse_knobs"]

REASONING_FORMATS = ("reasoning_content", "reasoning", "reasoning_details", "encrypted")


@dataclass(frozen=True, slots=True)
class Knobs:
    """A set of knobs; None means "not set here" (so sets can be layered)."""

    reasoning: str | None = None
    tool_calls_no_index: bool | None = None
    usage_every_chunk: bool | None = None
    usage_chunk_with_choice: bool | None = None
    finish_reason_every_chunk: bool | None = None
    azure_prompt_filter: bool | None = None
    sse_comments: int | None = None
    line_ends: str | None = None
    one_char_chunks: bool | None = None
    tokens_per_chunk: int | None = None
    error_code_as_string: bool | None = None
    envelope: str | None = None
    close_after_error: bool | None = None
    no_models: bool | None = None

    def render_key(self) -> tuple[Any, ...]:
        """The knobs that change a plan's rendered chunks (part of the render cache key)."""
        return (
            self.tool_calls_no_index,
            self.usage_every_chunk,
            self.usage_chunk_with_choice,
            self.finish_reason_every_chunk,
            self.azure_prompt_filter,
            self.one_char_chunks,
        )

    def over(self, base: Knobs) -> Knobs:
        """``base`` with every knob set here replacing its value."""
        if self is NO_KNOBS:  # the usual case, at no cost
            return base
        if base is NO_KNOBS:
            return self
        changes = {f.name: getattr(self, f.name) for f in fields(self)}
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(base, **changes) if changes else base

    def items(self) -> list[str]:
        """The knobs that are set, as ``knob[=value]`` items (what parses back to this)."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value is False:
                continue
            out.append(f.name if value is True else f"{f.name}={value}")
        return out

    def __str__(self) -> str:
        return ",".join(self.items())


NO_KNOBS = Knobs()


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("expected a positive integer")
    return number


_FLAG = None
_OPTIONAL_COUNT = "optional"  # a flag, or =N

# knob -> parser of its value (None: a flag; "optional": a flag or a positive count)
KNOBS: dict[str, Callable[[str], Any] | str | None] = {
    "reasoning": _choice(REASONING_FORMATS),
    "tool_calls_no_index": _FLAG,
    "usage_every_chunk": _FLAG,
    "usage_chunk_with_choice": _FLAG,
    "finish_reason_every_chunk": _FLAG,
    "azure_prompt_filter": _FLAG,
    "sse_comments": _OPTIONAL_COUNT,
    "line_ends": _choice(("cr", "crlf", "lf")),
    "one_char_chunks": _FLAG,
    "tokens_per_chunk": _positive,
    "error_code_as_string": _FLAG,
    "envelope": _choice(("openai", "openrouter", "aimlapi")),
    "close_after_error": _FLAG,
    "no_models": _FLAG,
}


def parse_knobs(text: str | Iterable[str], *, source: str = "--dialect") -> Knobs:
    """Knobs from ``knob[=value]`` items (a comma-separated string or a list of items)."""
    knobs, unknown = _parse(text)
    if unknown:
        raise ConfigError(unknown[0], field=source)
    return knobs


@cache
def parse_knob_header(value: str) -> tuple[Knobs, tuple[str, ...]]:
    """Knobs from an ``X-Chatprobe-Dialect`` value, and a message per item not understood."""
    knobs, problems = _parse(value)
    return knobs, tuple(problems)


def _parse(text: str | Iterable[str]) -> tuple[Knobs, list[str]]:
    items = text.split(",") if isinstance(text, str) else list(text)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        known = KNOBS.get(name)
        if name not in KNOBS:
            problems.append(f"unknown dialect knob {name!r} (known: {', '.join(KNOBS)})")
            continue
        if known is _FLAG:
            if sep:
                problems.append(f"dialect knob {name!r} takes no value")
                continue
            values[name] = True
            continue
        if known == _OPTIONAL_COUNT and not sep:
            values[name] = 1
            continue
        if not sep:
            problems.append(f"dialect knob {name!r} needs a value: {name}=...")
            continue
        parser = _positive if known == _OPTIONAL_COUNT else known
        assert callable(parser)
        try:
            values[name] = parser(value.strip())
        except ValueError as exc:
            problems.append(f"dialect knob {name}={value.strip()}: {exc}")
    return (Knobs(**values) if values else NO_KNOBS), problems
