"""One request's body and what its sample says about it, before a target is attached.

Pure (no gevent): :func:`request_body` is the one chat-completions body every load request
sends (the prompt pool's, a conversation's turn, a trace line); a conversation's next turn
(:mod:`chatprobe.load.conversation`) is a :class:`WorkItem`, which
:mod:`chatprobe.load.workloads` turns into the per-request path's
:class:`~chatprobe.load.targets.Choice` (body, ``input_tokens``, ``max_tokens``,
``session``, ``turn``, all copied onto the record and the sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["WorkItem", "encode_body", "request_body"]


@dataclass(slots=True)
class WorkItem:
    """A request body with what the sample says about it."""

    body: bytes
    input_tokens: int | None = None  # the messages' length by chatprobe.tokens
    max_tokens: int | None = None  # the output cap the body asks for
    session: str | None = None  # the conversation or trace session, unique in the run
    turn: int | None = None  # place in the session, from 1


def request_body(
    model_id: str,
    messages: list[dict[str, Any]],
    max_tokens: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The chat-completions body every load request sends: a stream with usage, the
    scenario's ``request`` fields over the defaults (``stream`` stays on)."""
    body: dict[str, Any] = {
        "model": model_id,
        "messages": messages,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if extra:
        body.update(extra)
    body["stream"] = True
    return body


def encode_body(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)
