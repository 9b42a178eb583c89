"""One request to send, as the load loop hands it to the per-request path.

Pure (no gevent): built by the prompt pool (a single request), a conversation's next turn
(:mod:`chatprobe.load.conversation`) or a trace line (:mod:`chatprobe.load.trace`), and
consumed by the locust session, which sends :attr:`WorkItem.body` and copies the rest onto
the request record and the sample (``input_tokens``, ``max_tokens``, ``session``, ``turn``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["WorkItem", "request_body"]


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
