"""What each request is: the targets, prepared once, and the choice of target and prompt.

Pure (no gevent): safe to import anywhere.

* :class:`RequestTemplate`: one target's request line and fixed headers, encoded once.
* :class:`PreparedTarget`: a plan target with everything the hot path needs precomputed
  (headers, the template, a :class:`~chatprobe.load.polite.TargetHold`).
* :class:`RequestChooser`: which target and which prompt the next request of a user gets
  (the plan's ``mix`` and ``prompt_order``), as a :class:`Choice` carrying the encoded body
  and what the sample says about it (the prompt's token count, the output cap asked for).
  This is the seam for other workloads (conversations, trace replay): a chooser that returns
  other choices changes what is sent without touching the exchange.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chatprobe.errors import ConfigError
from chatprobe.load.plan import RunPlan, TargetPlan
from chatprobe.load.polite import TargetHold
from chatprobe.load.work import encode_body, request_body
from chatprobe.scrub import scrub_headers
from chatprobe.transport import REQUEST_ID_HEADER, request_headers

__all__ = ["Choice", "PreparedTarget", "RequestChooser", "RequestTemplate"]


class RequestTemplate:
    """One target's request line and fixed headers, encoded once.

    Per request only ``X-Request-Id`` (fresh each time) and ``Content-Length`` are added, so
    the hot path neither rebuilds nor re-validates headers.
    """

    __slots__ = ("host", "port", "prefix", "tls", "url")

    def __init__(self, url: str, headers: Mapping[str, str], method: str = "POST") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}"]
        for name, value in headers.items():
            if name.lower() in ("host", "content-length", REQUEST_ID_HEADER.lower()):
                continue
            if any(c in f"{name}{value}" for c in "\r\n\0"):
                raise ConfigError(f"header {name!r} holds a line break or NUL")
            lines.append(f"{name}: {value}")
        try:
            self.prefix = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        except UnicodeEncodeError as exc:
            raise ConfigError(f"a request header is not Latin-1 text: {exc}") from None

    def encode(self, request_id: str, body: bytes) -> bytes:
        """The whole request: head and body, ready to send."""
        return (
            self.prefix
            + b"%s: %s\r\nContent-Length: %d\r\n\r\n"
            % (REQUEST_ID_HEADER.encode(), request_id.encode(), len(body))
            + body
        )


class PreparedTarget:
    """A target with everything the hot path needs precomputed: headers, bodies, names."""

    __slots__ = (
        "excerpts",
        "headers",
        "hold",
        "index",
        "label",
        "plan",
        "request",
        "request_headers",
        "url",
    )

    def __init__(self, index: int, plan: TargetPlan) -> None:
        self.index = index
        self.plan = plan
        self.label = plan.label
        self.url = plan.url
        headers = request_headers(plan.headers, stream=True, api_key=plan.api_key())
        self.headers = headers
        self.request_headers = scrub_headers(headers)
        self.request = RequestTemplate(plan.url, headers)  # the head, encoded once
        self.excerpts = 0  # output excerpts kept in samples so far
        self.hold = TargetHold()  # Retry-After: until when this target's users wait


@dataclass(frozen=True, slots=True)
class Choice:
    """One request to send: where, the encoded body, and what its sample records of it."""

    target: PreparedTarget
    body: bytes
    input_tokens: int | None = None  # the prompt's length as sent (chatprobe.tokens)
    max_tokens: int | None = None  # the output cap the body asks for
    session: str | None = None  # the conversation or trace session (load/workloads.py)
    turn: int | None = None  # place in the session, from 1


class RequestChooser:
    """Picks each request's target and prompt by the plan's ``mix`` and ``prompt_order``.

    ``mix: together`` keeps a user on one target (user index modulo targets); otherwise a
    user moves to the next target each turn. Prompts go round robin over the process (one
    counter) or at random (seeded by the run's seed and ``salt``, e.g. the worker index).
    """

    def __init__(self, plan: RunPlan, *, salt: str = "") -> None:
        self.plan = plan
        self._rng = random.Random(f"chatprobe-order:{plan.seed}{salt}")
        self._turn = 0
        self.targets: list[PreparedTarget] = []
        self._choices: list[list[Choice]] = []
        self.prepare()

    def prepare(self) -> None:
        """(Re)build the targets and bodies from the plan (a bare run's host may change)."""
        plan = self.plan
        self.targets = [PreparedTarget(i, t) for i, t in enumerate(plan.targets)]
        tokens = plan.prompt_tokens if len(plan.prompt_tokens) == len(plan.prompts) else []
        cap = plan.max_tokens_requested
        self._choices = [
            [
                Choice(
                    target,
                    self._body(target.plan, messages),
                    input_tokens=tokens[i] if tokens else None,
                    max_tokens=cap,
                )
                for i, messages in enumerate(plan.prompts)
            ]
            for target in self.targets
        ]

    def _body(self, target: TargetPlan, messages: list[dict[str, Any]]) -> bytes:
        plan = self.plan
        return encode_body(request_body(target.model_id, messages, plan.max_tokens, plan.request))

    def pick(self, user_index: int, turn: int) -> Choice:
        """The request user ``user_index`` sends on its ``turn``-th go."""
        n = len(self.targets)
        if self.plan.mix == "together":
            target = self.targets[user_index % n]
        else:
            target = self.targets[(user_index + turn) % n]
        choices = self._choices[target.index]
        if self.plan.prompt_order == "random":
            return choices[self._rng.randrange(len(choices))]
        choice = choices[self._turn % len(choices)]
        self._turn += 1
        return choice
