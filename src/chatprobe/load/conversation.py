"""Conversations: sessions of several turns whose history grows with the real answers.

A scenario's ``conversation:`` block (docs/load.md) turns every unit of work into a
*session*: turn 1 sends the first user message; each answer is appended to the history as the
assistant message the server actually streamed (content, or the tool calls it made), so turn
k's request holds the answers of turns 1..k-1, as a chat client sends them; between turns the
session waits a *think time* drawn from a distribution. A *tool-call turn* offers a tool and
asks for it to be called (``tool_choice: required``); when the answer is a tool call, the next
turn waits a simulated tool latency instead of the think time and sends the tool's result
(``role: tool``) instead of a user message. A failed turn ends its session: there is no
answer to build the next turn on.

This module is pure (no gevent): :class:`Conversation` builds each turn's request and takes
each answer; :func:`run_session` drives one with the caller's ``send`` and ``wait``, so the
locust session supplies the network and the clock and tests supply fakes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatprobe.durations import parse_duration
from chatprobe.errors import ConfigError
from chatprobe.load.work import WorkItem, encode_body, request_body
from chatprobe.record import requested_max_tokens
from chatprobe.tokens import count_messages, text_of_tokens

if TYPE_CHECKING:
    from chatprobe.record import RequestRecord

__all__ = [
    "PAUSE_KINDS",
    "Conversation",
    "ConversationSpec",
    "Pause",
    "run_session",
]

PAUSE_KINDS = ("fixed", "uniform", "exponential")
DEFAULT_TOOL = "lookup"

Messages = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Pause:
    """A wait drawn each time it is used, in seconds.

    ``fixed``: ``mean_s``; ``uniform``: between ``min_s`` and ``max_s``; ``exponential``:
    mean ``mean_s`` (memoryless, as users arrive and think), cut at ``max_s`` when given.
    """

    distribution: str = "fixed"
    mean_s: float = 0.0
    min_s: float = 0.0
    max_s: float | None = None

    def draw(self, rng: random.Random) -> float:
        if self.distribution == "uniform":
            return rng.uniform(self.min_s, self.max_s if self.max_s is not None else self.min_s)
        if self.distribution == "exponential":
            value = rng.expovariate(1.0 / self.mean_s) if self.mean_s > 0 else 0.0
            return min(value, self.max_s) if self.max_s is not None else value
        return self.mean_s

    @classmethod
    def parse(cls, value: Any, *, what: str) -> Pause:
        """``2s`` (fixed), ``{distribution: uniform, min: 1s, max: 3s}`` or
        ``{distribution: exponential, mean: 2s[, max: 10s]}``; durations as everywhere
        (:func:`chatprobe.durations.parse_duration`). Mistakes raise ConfigError(field=what)."""
        if not isinstance(value, Mapping):
            return cls("fixed", parse_duration(value, what=what))
        kind = str(value.get("distribution", "fixed"))
        if kind not in PAUSE_KINDS:
            raise ConfigError(
                f"unknown distribution {kind!r} (known: {', '.join(PAUSE_KINDS)})", field=what
            )

        def seconds(key: str) -> float | None:
            raw = value.get(key)
            return None if raw is None else parse_duration(raw, what=f"{what}.{key}")

        mean, lo, hi = seconds("mean"), seconds("min"), seconds("max")
        if kind == "uniform":
            if lo is None or hi is None:
                raise ConfigError("a uniform distribution needs min and max", field=what)
            if lo > hi:
                raise ConfigError("min must not exceed max", field=what)
            return cls(kind, (lo + hi) / 2, lo, hi)
        if mean is None:
            raise ConfigError(f"a {kind} distribution needs mean", field=what)
        return cls(kind, mean, 0.0, hi if kind == "exponential" else None)

    def __str__(self) -> str:
        if self.distribution == "uniform":
            return f"uniform {self.min_s:g}-{self.max_s:g} s"
        if self.distribution == "exponential":
            return f"exponential, mean {self.mean_s:g} s"
        return f"{self.mean_s:g} s"


@dataclass(frozen=True, slots=True)
class ConversationSpec:
    """A scenario's ``conversation:`` block (see the module docstring)."""

    turns: int = 2
    think_time: Pause = field(default_factory=Pause)
    tool_turns: tuple[int, ...] = ()  # turns that ask for a tool call
    tool_latency: Pause = field(default_factory=Pause)
    tool_name: str = DEFAULT_TOOL
    tool_result_tokens: int = 32

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConversationSpec:
        values = dict(data)
        values["think_time"] = Pause(**values.get("think_time") or {})
        values["tool_latency"] = Pause(**values.get("tool_latency") or {})
        values["tool_turns"] = tuple(values.get("tool_turns") or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    def tool(self) -> dict[str, Any]:
        """The one tool a tool-call turn offers."""
        return {
            "type": "function",
            "function": {
                "name": self.tool_name,
                "description": "Look something up (a tool simulated by chatprobe).",
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string"}},
                    "required": ["query"],
                },
            },
        }


class Conversation:
    """One session's state: the history so far and what the next turn sends.

    ``prompts`` is the scenario's prompt pool (``messages`` lists); user turn k takes the
    user messages of entry ``first + k - 1`` (in turn), and the session opens with the
    system messages of its first entry. ``rng`` draws the pauses and the tool results.
    """

    def __init__(
        self,
        spec: ConversationSpec,
        session: str,
        *,
        model_id: str,
        prompts: list[Messages],
        first: int,
        max_tokens: int,
        extra: Mapping[str, Any] | None = None,
        rng: random.Random,
    ) -> None:
        self.spec = spec
        self.session = session
        self.model_id = model_id
        self.prompts = prompts
        self.first = first
        self.max_tokens = max_tokens
        self.extra = dict(extra or {})
        self.rng = rng
        opening = prompts[first % len(prompts)] if prompts else []
        self.messages: Messages = [dict(m) for m in opening if m.get("role") == "system"]
        self.tokens = count_messages(self.messages)  # the history's length, kept as it grows
        self.turn = 0  # turns sent
        self.user_turns = 0
        self.ended = False  # a turn failed, or the run ended it
        self.pending_calls: list[dict[str, Any]] = []  # tool calls awaiting their results

    @property
    def done(self) -> bool:
        return self.ended or self.turn >= self.spec.turns

    def _append(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.tokens += count_messages([message])

    def next_request(self) -> WorkItem:
        """The next turn's request: the history plus a user message or the tool's results."""
        if self.pending_calls:
            for call in self.pending_calls:
                result = text_of_tokens(self.spec.tool_result_tokens, self.rng)
                self._append({"role": "tool", "tool_call_id": call["id"], "content": result})
            self.pending_calls = []
        else:
            entry = self.prompts[(self.first + self.user_turns) % len(self.prompts)]
            self.user_turns += 1
            for message in entry:
                if message.get("role") != "system":
                    self._append(dict(message))
        self.turn += 1
        body = request_body(self.model_id, list(self.messages), self.max_tokens, self.extra)
        if self.spec.tool_turns:
            # Every request of the session offers the tool (a history holding tool calls
            # needs it); only a tool-call turn asks for a call.
            body["tools"] = [self.spec.tool()]
            body["tool_choice"] = "required" if self.turn in self.spec.tool_turns else "none"
        return WorkItem(
            body=encode_body(body),
            input_tokens=self.tokens,
            max_tokens=requested_max_tokens(body),
            session=self.session,
            turn=self.turn,
        )

    def answer(self, record: RequestRecord) -> None:
        """Take turn ``self.turn``'s outcome: append the answer, or end the session."""
        if not record.ok:
            self.ended = True
            return
        choice = record.choices.get(0)
        content = choice.content if choice is not None else ""
        calls = [c for c in (choice.tool_calls if choice is not None else []) if c]
        if calls:
            sent = [
                {
                    "id": str(call.get("id") or f"call_{self.session}_{self.turn}_{k}"),
                    "type": "function",
                    "function": {
                        "name": str((call.get("function") or {}).get("name") or ""),
                        "arguments": str((call.get("function") or {}).get("arguments") or ""),
                    },
                }
                for k, call in enumerate(calls)
            ]
            self._append({"role": "assistant", "content": content or None, "tool_calls": sent})
            self.pending_calls = sent
        else:
            self._append({"role": "assistant", "content": content})

    def pause(self) -> float:
        """Seconds to wait before the next turn: the tool's latency when a tool result is
        due, else the think time."""
        pause = self.spec.tool_latency if self.pending_calls else self.spec.think_time
        value = pause.draw(self.rng)
        return value if math.isfinite(value) and value > 0 else 0.0


def run_session(
    conversation: Conversation,
    send: Callable[[WorkItem], RequestRecord | None],
    wait: Callable[[float], bool],
) -> int:
    """Send every turn of ``conversation``; returns the turns sent.

    ``send`` sends one request and returns its finished record (None: no more requests may
    start, the session ends); ``wait(seconds)`` pauses and returns True when the run is
    ending, which ends the session too.
    """
    sent = 0
    while not conversation.done:
        if conversation.turn:
            seconds = conversation.pause()
            if wait(seconds):
                conversation.ended = True
                break
        item = conversation.next_request()
        record = send(item)
        if record is None:
            conversation.ended = True
            break
        sent += 1
        conversation.answer(record)
    return sent
