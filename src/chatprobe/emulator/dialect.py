"""Dialect knobs: the de-facto variations of the OpenAI formats real servers send.

Each knob switches one variation on, for one request (``X-Chatprobe-Dialect:
knob[=value][,knob...]``), for every request (``--dialect knob[=value]``, repeatable, or a
scenario's ``emulator.dialect`` list) or for one model (a profile model's ``emulator:
{dialect: [...]}``). A request's knobs are the model's, then the configuration's, then its
header's (a later value wins).

=====================  ======================================================================
knob                   what changes
=====================  ======================================================================
reasoning=FORMAT       how a reasoning model streams its thinking: ``reasoning_content``
                       (DeepSeek, vLLM), ``reasoning`` (OpenRouter: ``reasoning`` text plus
                       ``reasoning_details``), ``reasoning_details`` (the details only), or
                       ``encrypted`` (nothing while it thinks, then one encrypted
                       ``reasoning_details`` item before the answer)
=====================  ======================================================================
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

    def over(self, base: Knobs) -> Knobs:
        """``base`` with every knob set here replacing its value."""
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


# knob -> (parser of its value: None for a flag, the description)
KNOBS: dict[str, tuple[Callable[[str], Any] | None, str]] = {
    "reasoning": (_choice(REASONING_FORMATS), "how a reasoning model streams its thinking"),
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
        if known is None:
            problems.append(f"unknown dialect knob {name!r} (known: {', '.join(KNOBS)})")
            continue
        parser = known[0]
        if parser is None:
            if sep:
                problems.append(f"dialect knob {name!r} takes no value")
                continue
            values[name] = True
            continue
        if not sep:
            problems.append(f"dialect knob {name!r} needs a value: {name}=...")
            continue
        try:
            values[name] = parser(value.strip())
        except ValueError as exc:
            problems.append(f"dialect knob {name}={value.strip()}: {exc}")
    return Knobs(**values), problems
