"""Conformance under load: the stream checks of the one check registry, run on load streams.

A load run already holds every stream it read as a finished :class:`RequestRecord`; the
cheap checks of the contract suites judge those records as they judge a suite's, through
the registry (:func:`chatprobe.checks.registry.get_check`), never a second implementation.
They run after :meth:`RequestRecord.finish`, when the request's timing is final (the
stamps are the kernel's or were taken as each read returned, so nothing waits for them),
at about 0.25 ms of CPU per 64-chunk stream (benchmarks B1 with and without; a yield
between checks cost more than it spared the other users).

Which checks (:data:`LOAD_CHECKS`): chunk schema (the provider's documented level), SSE
framing, ``[DONE]`` last, the same id and created on every chunk, one finish_reason per
choice, usage placement, tool-call validity (index, arguments as JSON, finish reason) and
an error inside a 200. A stream *broke* a check when the check applied and reported a
finding that fails (warnings do not count). The chunk schema is the one costly check (a
JSON Schema validation per chunk, about 0.3 ms each): it judges each *distinct* chunk once
per process, chunks that differ only in their output text (content, reasoning, refusal,
tool-call arguments), their ``id`` or their ``created`` counting as one (the documented
schemas constrain those only by type, so the verdict is the same); chunks of shapes already
found valid are skipped. A 64-chunk stream then costs about 0.15 ms of checks instead of
27 ms. ``share`` (``--conformance-share``, scenario
key ``conformance_share``) checks that share of the streams, spread evenly over a process's
requests (the n-th stream is checked when ``floor(n * share)`` steps), 0 switches it off.

Off the timing path: a due stream is not judged by the user that read it but queued for
:class:`IdleJudge`, a greenlet that judges when the event loop has nothing else to do
(``gevent.idle``), so a check never delays another stream's read or a scheduled send. The
sample is kept once judged. The queue is bounded (:data:`QUEUE_LIMIT`): a client with no
idle time (saturated) keeps the streams that find it full without judging them (their
``checks_broken`` is null), so checks never add to a saturated client's load; the summary
says how many streams were checked, and the shares are of those.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from chatprobe.checks.context import CheckContext
from chatprobe.checks.registry import Check, get_check
from chatprobe.load.idlegate import IdleQueue
from chatprobe.profiles import ProviderProfile, load_profile
from chatprobe.record import RequestRecord

__all__ = ["LOAD_CHECKS", "QUEUE_LIMIT", "IdleJudge", "LoadChecker", "distinct_chunks", "shape_key"]

LOAD_CHECKS = (
    "provider_response_schema",
    "sse_framing",
    "stream_done_last",
    "stream_same_id_created",
    "stream_one_finish_reason",
    "stream_include_usage",
    "tool_call_index",
    "tool_call_arguments_json",
    "tool_call_finish_reason",
    "midstream_error",
)
"""The checks run on load streams: each cheap, each judging one stream on its own."""

_PER_CHUNK = frozenset({"provider_response_schema"})  # judged on distinct chunk shapes
_TEXT_KEYS = frozenset({"content", "reasoning_content", "reasoning", "refusal", "arguments"})


_MEMO_CAP = 4096  # valid shapes remembered per process (then forgotten and relearned)

JUDGE_PRIORITY = -1
"""libev idle priority of the judge: below the IdleGate's users (default 0)."""
QUEUE_LIMIT = 64
"""Streams waiting for the idle judge at most; one more is kept unjudged."""


# In the chunk's JSON (orjson: no spaces, so each key reads "key":value): every output text,
# id and created value, blanked to its type. A JSON string cannot hold an unescaped quote,
# so the string pattern is exact.
_BLANK = re.compile(
    rb'"(' + b"|".join(k.encode() for k in sorted(_TEXT_KEYS | {"id"})) + rb')":"(?:[^"\\]|\\.)*"'
)
_CREATED = re.compile(rb'"created":\d+')


def _blank(match: re.Match[bytes]) -> bytes:
    return b'"' + match.group(1) + b'":""'


def shape_key(chunk: Any) -> bytes:
    """What a chunk schema can tell apart: the chunk with its output text, ids and created
    values blanked (their types kept). Two chunks with one key get one verdict, whichever
    way the key was made: only values the schemas constrain by type alone are blanked."""
    if type(chunk) is dict:  # the common chunk, one choice and a text delta: no regex
        choices = chunk.get("choices")
        if type(choices) is list and len(choices) == 1 and type(choices[0]) is dict:
            choice = choices[0]
            delta = choice.get("delta")
            if type(delta) is dict and "tool_calls" not in delta and "function_call" not in delta:
                shaped = dict(chunk)
                if type(shaped.get("id")) is str:
                    shaped["id"] = ""
                if type(shaped.get("created")) is int:
                    shaped["created"] = 0
                blank = {
                    k: "" if k in _TEXT_KEYS and type(v) is str else v for k, v in delta.items()
                }
                shaped["choices"] = [{**choice, "delta": blank}]
                return orjson.dumps(shaped)
    raw = _BLANK.sub(_blank, orjson.dumps(chunk))
    return _CREATED.sub(b'"created":0', raw)


def distinct_chunks(record: RequestRecord, known: set[bytes]) -> tuple[RequestRecord, list[bytes]]:
    """``record`` with each chunk shape (:func:`shape_key`) once and none of ``known``, and
    the keys of the chunks kept."""
    seen = set(known)
    kept, keys = [], []
    for chunk in record.chunks:
        key = shape_key(chunk)
        if key not in seen:
            seen.add(key)
            kept.append(chunk)
            keys.append(key)
    if len(kept) == len(record.chunks):
        return record, keys
    return dataclasses.replace(record, chunks=kept), keys


class _LoadCase:
    """What the checks read of a case: the body sent and the model (no expectations)."""

    __slots__ = ("model", "sent_body")

    def __init__(self, model: str, sent_body: dict[str, Any]) -> None:
        self.model = model
        self.sent_body = sent_body


class LoadChecker:
    """Judges a share of one process's load streams with :data:`LOAD_CHECKS`."""

    def __init__(self, share: float) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"conformance share must be within 0..1, got {share}")
        self.share = share
        self.seen = 0
        self._checks: list[Check] = [get_check(name) for name in LOAD_CHECKS]
        self._contexts: dict[str, CheckContext] = {}
        self._valid: dict[str, set[bytes]] = {}  # provider -> chunk shapes the schema passed

    def warm(self, providers: list[str]) -> None:
        """Judge one small synthetic stream per provider before the load starts.

        The first judgement loads the provider's profile and builds its schema validators
        (about 50-100 ms): during a run that would be one slice in which no stream is read.
        """
        if not self.share:
            return
        chunk = {"id": "warm", "created": 1, "object": "chat.completion.chunk", "model": "m"}
        for provider in dict.fromkeys(providers):
            record = RequestRecord(stream=True, provider=provider, model="m", model_id="m")
            record.status = 200
            record.chunks = [
                {**chunk, "choices": [{"index": 0, "delta": {"content": "a"}}]},
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
            self.judge(record, {"model": "m", "messages": [], "stream": True})

    def due(self) -> bool:
        """Whether the next stream is one to check (evenly spread: floor(n * share) steps)."""
        n = self.seen
        self.seen = n + 1
        return int((n + 1) * self.share) > int(n * self.share)

    def _context(self, provider: str) -> CheckContext:
        ctx = self._contexts.get(provider)
        if ctx is None:
            try:
                profile = load_profile(provider)
            except Exception:  # a custom endpoint: judged against plain OpenAI
                profile = ProviderProfile(
                    name=provider, title=provider, base_url="", api_key_env=""
                )
            ctx = self._contexts[provider] = CheckContext(
                profile=profile, level=profile.schema_level
            )
        return ctx

    def judge(self, record: RequestRecord, sent_body: bytes | dict[str, Any]) -> list[str] | None:
        """The names of the load checks ``record`` broke (``[]``: none); ``sent_body`` is
        the request body (JSON bytes, as sent, or parsed). None when judging failed: a
        stream no check can read never takes its request (or the load user) down."""
        try:
            return self._judge(record, sent_body)
        except Exception:
            return None

    def _judge(self, record: RequestRecord, sent_body: bytes | dict[str, Any]) -> list[str]:
        ctx = self._context(record.provider)
        if isinstance(sent_body, bytes | bytearray):
            try:
                sent_body = orjson.loads(sent_body)
            except orjson.JSONDecodeError:
                sent_body = {}
        case = _LoadCase(record.model, sent_body if isinstance(sent_body, dict) else {})
        broken = []
        for chk in self._checks:
            judged, keys = record, list[bytes]()
            if chk.name in _PER_CHUNK:
                valid = self._valid.setdefault(f"{record.provider}/{chk.name}", set())
                try:
                    judged, keys = distinct_chunks(record, valid)
                except (TypeError, ValueError, RecursionError):  # nested past orjson's limit
                    judged, keys = record, []
                if not judged.chunks and record.chunks:
                    continue  # every chunk of a shape the schema already passed
            try:
                if not chk.applies(ctx, judged, case):
                    continue
                found = list(chk.func(ctx, judged, case) or ())
            except Exception:  # a crashing check is not the stream's fault; never fatal
                continue
            if any((p.severity or chk.severity).fails for p in found):
                broken.append(chk.name)
            elif keys:
                if len(valid) > _MEMO_CAP:
                    valid.clear()
                valid.update(keys)
        return broken


Keep = Callable[[list[str] | None], None]
"""Keeps a judged stream's sample, given the checks it broke (None: not judged)."""


Queued = tuple[RequestRecord, bytes | dict[str, Any], Keep]


class IdleJudge(IdleQueue[Queued]):
    """Judges queued streams with a :class:`LoadChecker` whenever the event loop is idle
    (module docstring); ``keep`` of each stream runs once it is judged or skipped."""

    priority = JUDGE_PRIORITY  # nothing else is ready, no user at the IdleGate

    def __init__(self, checker: LoadChecker, limit: int = QUEUE_LIMIT) -> None:
        super().__init__()
        self.checker = checker
        self.limit = limit
        self.judged = 0
        self.skipped = 0  # streams kept unjudged: the queue was full

    def submit(self, record: RequestRecord, sent_body: bytes | dict[str, Any], keep: Keep) -> None:
        """Queue ``record`` for judging; kept at once, unjudged, when the queue is full."""
        if len(self._queue) >= self.limit:
            self.skipped += 1
            keep(None)
            return
        self._push((record, sent_body, keep))

    def _serve(self, queue: deque[Queued]) -> None:
        if queue:
            record, body, keep = queue.popleft()
            self.judged += 1
            keep(self.checker.judge(record, body))

    def flush(self) -> None:
        """Judge and keep every queued stream now (the run is ending)."""
        queue = self._queue
        while queue:
            record, body, keep = queue.popleft()
            self.judged += 1
            keep(self.checker.judge(record, body))
