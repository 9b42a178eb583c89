"""The request record: what every consumer (checks, metrics, load samples, reports) reads.

Transports (the httpx client in :mod:`chatprobe.client`, the locust user in
:mod:`chatprobe.load`) fill only the *raw* part of a record: the scrubbed request, status,
headers, the plain body, and the SSE events with their arrival times, plus a transport error
if one ended the exchange. :meth:`RequestRecord.finish` then derives everything else, in one
place: parsed chunks, the assembled message per choice, usage, token counts, timings and the
error class. Keeping I/O and interpretation apart keeps the load hot path lean (stamp, decode
lines, append) and makes every metric definable on a hand-built record in a test.

Clocks: every ``*_ns`` field is on the ``time.perf_counter_ns()`` time line (monotonic, for
latency); ``wall_start`` is ``time.time()`` and is for display only, never for latency.
``clock`` says where the arrival stamps of one record were taken: ``"user"`` (the transport
read ``perf_counter_ns()`` right after a read returned) or ``"kernel"`` (the kernel's receive
time of the bytes, moved onto the same time line; Linux, plain TCP only).

Metric definitions (see docs and ``DESIGN.md``):

* TTFB  = t_headers - t0
* TTFT  = t_first_token - t0, the first event carrying non-empty content, reasoning, refusal
  or a tool-call delta; never the role-only chunk. For a plain (non-streamed) response the
  first token arrives with the body, so TTFT = E2E.
* TTFA  = t_first_answer - t0 (time to first *answer* token): the same, reasoning excluded
  (content, refusal or a tool-call delta). Equal to TTFT for a model that does not reason.
* E2E   = t_last_token - t0 (last content event); ``total`` = t_end - t0 (stream closed).
* ITL   = (t_last_token - t_first_token) / (output_tokens - 1), the per-request mean
  (vLLM TPOT, aiperf ITL). Chunk gaps, a different distribution, are kept separately
  because one chunk can carry several tokens.
* output tokens = the *last* ``usage.completion_tokens`` seen (``token_source = "usage"``),
  else an estimate from the text (``"estimate"``, about 4 characters per token). Reasoning
  tokens are part of them; ``reasoning_tokens`` is the usage's
  ``completion_tokens_details.reasoning_tokens``, else an estimate from the reasoning text.

Streams are read in every de-facto dialect (see ``DESIGN.md``, "De-facto behaviour of real
servers"): tool-call deltas with or without ``index`` (:func:`_merge_tool_calls`); reasoning as
``reasoning_content``, ``reasoning`` or ``reasoning_details`` (text, summary or encrypted-only;
:func:`_reasoning`); usage on one chunk or cumulative on every chunk (the last one counts);
``finish_reason`` on one chunk or repeated; leading ``choices: []`` annotation chunks and
usage chunks with an empty-delta choice (neither is a token). Whether a dialect is a deviation
is for the checks to say; the measurements are the same in all of them.
"""

from __future__ import annotations

import itertools
import reprlib
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeGuard

import orjson

from chatprobe.sse import Comment, ServerSentEvent

__all__ = [
    "MISSING_DONE",
    "SERVER_REQUEST_ID_HEADERS",
    "AssembledChoice",
    "ErrorClass",
    "RequestRecord",
    "TimedEvent",
    "delta_has_output",
    "estimate_tokens",
    "requested_max_tokens",
]


class ErrorClass(StrEnum):
    """Why an exchange did not end in a complete, well-formed response.

    One primary class per record; secondary oddities go to ``record.anomalies``. A stream
    that carried its finish_reason but no ``data: [DONE]`` is complete: it is not an error
    but the anomaly :data:`MISSING_DONE` (the ``stream_done_last`` check reports it).
    """

    HTTP_STATUS = "http_status"  # non-2xx status other than the two below
    RATE_LIMITED = "rate_limited"  # 429: the provider asks the client to slow down
    UNAVAILABLE = "unavailable"  # 503: the provider (or its upstream) cannot serve now
    CONNECT_ERROR = "connect_error"  # refused / unreachable / DNS
    TLS_ERROR = "tls_error"  # TLS handshake failed: certificate not trusted, name mismatch
    TIMEOUT_CONNECT = "timeout_connect"
    TIMEOUT_FIRST_BYTE = "timeout_first_byte"  # no response headers in time
    TIMEOUT_IDLE = "timeout_idle"  # a gap between body bytes too long (stall)
    TIMEOUT_TOTAL = "timeout_total"  # whole exchange too long
    CONNECTION_RESET = "connection_reset"  # peer reset (RST), or closed before a whole head
    TRUNCATED_BODY = "truncated_body"  # plain body cut by a clean close (FIN) / too short
    PROTOCOL_ERROR = "protocol_error"  # malformed HTTP
    BAD_CONTENT_TYPE = "bad_content_type"  # e.g. an HTML page with 200, JSON when SSE asked
    BAD_JSON = "bad_json"  # a body or data payload that is not JSON
    MIDSTREAM_ERROR = "midstream_error"  # an error event inside a 200 stream
    TRUNCATED_STREAM = "truncated_stream"  # stream cut by a clean close, or ended with no
    #                                        finish_reason and no [DONE]
    EMPTY_RESPONSE = "empty_response"  # a well-formed 2xx answer with no choice in it
    CLIENT_ERROR = "client_error"  # the harness itself failed (a bug; counted, not raised)


MISSING_DONE = "missing_done"
"""Anomaly tag of a stream that finished (a finish_reason arrived) without ``data: [DONE]``:
its measurements stand, and contract checks report the missing sentinel as a finding."""

_STATUS_CLASSES = {429: ErrorClass.RATE_LIMITED, 503: ErrorClass.UNAVAILABLE}
"""Non-2xx statuses with a class of their own: load runs back off on them, and availability
(as OpenRouter computes uptime) leaves rate-limited requests out."""

_AFTER_DONE_TOLERATED = frozenset(
    {
        ErrorClass.CONNECTION_RESET,
        ErrorClass.TRUNCATED_STREAM,
        ErrorClass.TIMEOUT_IDLE,
        ErrorClass.TIMEOUT_TOTAL,
        ErrorClass.PROTOCOL_ERROR,
    }
)

SERVER_REQUEST_ID_HEADERS = ("x-chatprobe-request-id", "x-request-id", "request-id")
"""Response headers holding the server's own id for a request, the first found wins (the
emulator's ``X-Chatprobe-Request-Id`` is its ground truth's key)."""


@dataclass(slots=True)
class TimedEvent:
    """An SSE event or comment with the arrival time of the bytes that completed it."""

    t_ns: int
    item: ServerSentEvent | Comment


@dataclass(slots=True)
class AssembledChoice:
    """One choice put together from a plain message or from stream deltas."""

    index: int
    role: str | None = None
    content: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    finish_count: int = 0  # streamed: how many chunks carried a non-null finish_reason
    encrypted_reasoning: int = 0  # reasoning_details entries with no readable text

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "role": self.role,
            "content": self.content,
            "reasoning": self.reasoning,
            "refusal": self.refusal,
            "tool_calls": self.tool_calls,
            "finish_reason": self.finish_reason,
        }


_ROLE_CONTENT = frozenset(("role", "content"))


def estimate_tokens(text: str) -> int:
    """Rough token count for text when a provider reports no usage (about 4 chars/token)."""
    if not text:
        return 0
    return max(1, round(len(text) / 4))


def requested_max_tokens(body: Any) -> int | None:
    """The output cap a request body asks for: ``max_completion_tokens`` (OpenAI's newer
    name) when set, else ``max_tokens``; None when neither is a positive integer."""
    if not isinstance(body, dict):
        return None
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _ms(a: int | None, b: int | None) -> float | None:
    if a is None or b is None:
        return None
    return (b - a) / 1e6


@dataclass(slots=True)
class RequestRecord:
    """One request and its response, raw and interpreted."""

    # --- identity and request (scrubbed before it is stored) ---
    request_id: str = ""  # the X-Request-Id this request carried (see chatprobe.transport)
    provider: str = ""
    model: str = ""  # canonical model name
    model_id: str = ""  # the provider's id that was sent
    url: str = ""
    method: str = "POST"
    stream: bool = False
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: dict[str, Any] | None = None
    # what was asked for, set by whoever built the request (None: not known)
    input_tokens: int | None = None  # the prompt's length by chatprobe.tokens (message text)
    max_tokens: int | None = None  # max_tokens (or max_completion_tokens) requested

    # --- raw, filled by a transport ---
    wall_start: float = 0.0  # time.time(), display only
    t_sched_ns: int | None = None  # open loop: when the request was meant to go
    t0_ns: int = 0  # request sent
    t_headers_ns: int | None = None
    t_end_ns: int | None = None  # body complete, or the moment the exchange failed
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""  # plain body, or the raw body of a non-SSE answer to a stream
    events: list[TimedEvent] = field(default_factory=list)
    transport_error: ErrorClass | None = None
    transport_detail: str = ""
    clock: str = "user"  # where arrival stamps were taken: user | kernel
    # the client's own lateness (see chatprobe.load.receive): how long getting the request
    # out took (t0 to the end of the write, a new connection's set-up included), and for
    # each arrival stamp how late it can be (any event that got it, and the last event that
    # got it: exact when it ended the read); empty / None: the transport cannot tell
    send_late_ns: int | None = None
    stamp_bounds_ns: dict[int, int] = field(default_factory=dict)
    stamp_last_bounds_ns: dict[int, int] = field(default_factory=dict)

    # --- derived by finish() ---
    chunks: list[dict[str, Any]] = field(default_factory=list)  # parsed data payloads
    chunk_times_ns: list[int] = field(default_factory=list)  # arrival of each chunk
    json: Any = None  # parsed plain body (response or error envelope)
    done: bool = False  # [DONE] seen
    done_index: int | None = None  # position of [DONE] among events (framing checks)
    choices: dict[int, AssembledChoice] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    usage_count: int = 0  # how many chunks carried a non-null usage
    output_tokens: int = 0
    token_source: str = "none"  # usage | estimate | none
    t_first_token_ns: int | None = None  # first output of any kind (reasoning included)
    first_token_position: int | None = None  # the event that brought it, in events
    t_first_answer_ns: int | None = None  # first answer output: content, refusal, tool call
    t_last_token_ns: int | None = None
    reasoning_tokens: int | None = None  # None: encrypted reasoning and no count reported
    content_times_ns: list[int] = field(default_factory=list)
    error_class: ErrorClass | None = None
    error_detail: str = ""
    error_payload: Any = None  # the provider's error object (envelope or mid-stream)
    anomalies: list[str] = field(default_factory=list)
    timing_valid: bool = True  # False: the stamps broke an invariant; no figure is reported
    finished: bool = False

    # ------------------------------------------------------------------ timing helpers
    def start(self) -> None:
        """Stamp the send time (call right before the request is written)."""
        self.wall_start = time.time()
        self.t0_ns = time.perf_counter_ns()

    @property
    def ok(self) -> bool:
        return self.finished and self.error_class is None

    @property
    def content_type(self) -> str:
        return self.response_headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def lag_ms(self) -> float | None:
        return _ms(self.t_sched_ns, self.t0_ns) if self.t_sched_ns is not None else None

    @property
    def ttfb_ms(self) -> float | None:
        return _ms(self.t0_ns, self.t_headers_ns) if self.timing_valid else None

    @property
    def ttft_ms(self) -> float | None:
        return _ms(self.t0_ns, self.t_first_token_ns) if self.timing_valid else None

    @property
    def ttfa_ms(self) -> float | None:
        """Time to first answer token: reasoning excluded (see the module docstring)."""
        return _ms(self.t0_ns, self.t_first_answer_ns) if self.timing_valid else None

    @property
    def e2e_ms(self) -> float | None:
        return _ms(self.t0_ns, self.t_last_token_ns) if self.timing_valid else None

    @property
    def total_ms(self) -> float | None:
        return _ms(self.t0_ns, self.t_end_ns) if self.timing_valid else None

    @property
    def itl_ms(self) -> float | None:
        first, last, n = self.t_first_token_ns, self.t_last_token_ns, self.output_tokens
        if first is None or last is None or n < 2 or not self.timing_valid:
            return None
        return (last - first) / (n - 1) / 1e6

    @property
    def ttft_bound_ms(self) -> float | None:
        """How far TTFT can be off by the client's own doing: the send's lateness plus how
        late the read that carried the first token can be (None: no bound is known)."""
        t = self.t_first_token_ns
        bounds = self.stamp_bounds_ns
        if t is None or not bounds or not self.timing_valid:
            return None
        late = bounds.get(t)
        if late is None:  # an event completed by the end of the stream: the worst read
            late = max(bounds.values())
        elif self._first_token_ends_its_stamp():
            late = self.stamp_last_bounds_ns.get(t, late)
        return (late + (self.send_late_ns or 0)) / 1e6

    def _first_token_ends_its_stamp(self) -> bool:
        """The first token's event is the last event stamped with its time (the read that
        completed it completed nothing after it): that read's last-event bound applies."""
        i = self.first_token_position
        if i is None or i >= len(self.events):
            return False
        t = self.events[i].t_ns
        return i + 1 == len(self.events) or self.events[i + 1].t_ns != t

    @property
    def read_bound_ms(self) -> float | None:
        """The worst read's bound in this exchange: how late any chunk's stamp can be."""
        bounds = self.stamp_bounds_ns
        if not bounds or not self.timing_valid:
            return None
        return max(bounds.values()) / 1e6

    @property
    def chunk_gaps_ms(self) -> list[float]:
        if not self.timing_valid:
            return []
        t = self.content_times_ns
        return [(b - a) / 1e6 for a, b in itertools.pairwise(t)]

    @property
    def server_request_id(self) -> str | None:
        """The server's own id for this request, from the response headers (if it sent one)."""
        headers = self.response_headers
        for name in SERVER_REQUEST_ID_HEADERS:
            value = headers.get(name)
            if value:
                return value
        return None

    @property
    def text(self) -> str:
        """Content of choice 0 (the common case)."""
        choice = self.choices.get(0)
        return choice.content if choice else ""

    # ------------------------------------------------------------------ interpretation
    def finish(self) -> RequestRecord:
        """Derive chunks, message, usage, tokens, timings and the error class. Idempotent."""
        if self.finished:
            return self
        self.finished = True
        if self.t_end_ns is None:
            self.t_end_ns = time.perf_counter_ns()
        is_sse = self.content_type == "text/event-stream" or bool(self.events)
        if self.status is not None and 200 <= self.status < 300 and is_sse:
            self._interpret_stream()
        elif self.body:
            self._interpret_body()
        elif self.events:
            # A non-2xx answer framed as SSE: its data is the error body.
            self.body = "\n".join(
                e.item.data for e in self.events if isinstance(e.item, ServerSentEvent)
            ).encode()
            self._interpret_body()
        self._count_tokens()
        self._classify()
        self._check_timing()
        return self

    def _check_timing(self) -> None:
        """Enforce 0 <= TTFB <= TTFT <= E2E <= total (so ITL and chunk gaps >= 0), in one place.

        The stamps are taken in that order on one clock, so a violation means a transport
        mixed clocks or stamped out of order: the record says so in ``anomalies`` and reports
        none of its timings rather than impossible ones.
        """
        stamps = (
            ("send", self.t0_ns),
            ("response head", self.t_headers_ns),
            ("first token", self.t_first_token_ns),
            ("last token", self.t_last_token_ns),
            ("end", self.t_end_ns),
        )
        present = [(name, t) for name, t in stamps if t is not None]
        problems = [
            f"{later} stamped {(t_earlier - t_later) / 1e6:.3f} ms before {earlier}"
            for (earlier, t_earlier), (later, t_later) in itertools.pairwise(present)
            if t_later < t_earlier
        ]
        for times, what in ((self.content_times_ns, "content"), (self.chunk_times_ns, "chunk")):
            back = next((i for i in range(1, len(times)) if times[i] < times[i - 1]), None)
            if back is not None:
                problems.append(f"{what} event {back} stamped before the one before it")
        if problems:
            self.timing_valid = False
            self.anomalies.append(
                f"impossible timing ({self.clock} clock): {'; '.join(problems)}; "
                "no timing reported for this request"
            )

    def _interpret_body(self) -> None:
        try:
            self.json = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            self.json = None
            return
        if not isinstance(self.json, dict):
            return
        if self.status is not None and 200 <= self.status < 300:
            choices = self.json.get("choices")
            for raw in choices if isinstance(choices, list) else ():
                if not isinstance(raw, dict):
                    continue
                index = raw.get("index", 0) if isinstance(raw.get("index"), int) else 0
                choice = self.choices.setdefault(index, AssembledChoice(index))
                message = raw.get("message") or {}
                if isinstance(message, dict):
                    choice.role = message.get("role")
                    choice.content = _text(message.get("content"))
                    choice.reasoning, choice.encrypted_reasoning = _reasoning(message)
                    choice.refusal = _text(message.get("refusal"))
                    calls = message.get("tool_calls")
                    if isinstance(calls, list):
                        choice.tool_calls = [c for c in calls if isinstance(c, dict)]
                choice.finish_reason = raw.get("finish_reason")
                choice.finish_count = 1 if choice.finish_reason else 0
            usage = self.json.get("usage")
            if isinstance(usage, dict):
                self.usage = usage
                self.usage_count = 1
            choices = self.choices.values()
            if any(c.content or c.tool_calls or c.refusal for c in choices):
                self.t_first_answer_ns = self.t_end_ns
            if self.t_first_answer_ns is not None or any(
                c.reasoning or c.encrypted_reasoning for c in choices
            ):
                self.t_first_token_ns = self.t_last_token_ns = self.t_end_ns
                self.content_times_ns = [self.t_end_ns] if self.t_end_ns else []
        if "error" in self.json and self.error_payload is None:
            self.error_payload = self.json["error"]

    def _interpret_stream(self) -> None:
        for position, timed in enumerate(self.events):
            item = timed.item
            if isinstance(item, Comment):
                continue
            if self.done:
                self.anomalies.append(f"event after [DONE] at position {position}")
            if item.data[:1] != "{" and item.is_done:  # a JSON object is never [DONE]
                if not self.done:
                    self.done = True
                    self.done_index = position
                continue
            try:
                payload = orjson.loads(item.data)
            except orjson.JSONDecodeError:
                if item.event == "error":
                    self.error_payload = item.data[:500]
                    self._note_error(ErrorClass.MIDSTREAM_ERROR, f"error event: {item.data[:200]}")
                else:
                    self._note_error(ErrorClass.BAD_JSON, f"data is not JSON: {item.data[:80]!r}")
                continue
            if item.event == "error" or (isinstance(payload, dict) and "error" in payload):
                self.error_payload = (
                    payload.get("error", payload) if isinstance(payload, dict) else payload
                )
                self._note_error(ErrorClass.MIDSTREAM_ERROR, _error_message(self.error_payload))
            if not isinstance(payload, dict):
                self._note_error(ErrorClass.BAD_JSON, "data payload is not a JSON object")
                continue
            self.chunks.append(payload)
            self.chunk_times_ns.append(timed.t_ns)
            self._apply_chunk(payload, timed.t_ns)
            if self.first_token_position is None and self.t_first_token_ns is not None:
                self.first_token_position = position

    def _apply_chunk(self, chunk: dict[str, Any], t_ns: int) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage  # cumulative where sent on every chunk: the last one wins
            self.usage_count += 1
        has_answer = has_reasoning = False
        choices = chunk.get("choices")
        for raw in choices if isinstance(choices, list) else ():  # [] : annotations or usage
            if not isinstance(raw, dict):
                continue
            index = raw.get("index", 0) if isinstance(raw.get("index"), int) else 0
            choice = self.choices.get(index)
            if choice is None:
                choice = self.choices[index] = AssembledChoice(index)
            delta = raw.get("delta")
            if isinstance(delta, dict):
                if delta.get("role"):
                    choice.role = delta["role"]
                piece = delta.get("content")
                if isinstance(piece, str) and piece:
                    choice.content += piece
                    has_answer = True
                elif isinstance(piece, list):  # content parts in a delta (rare)
                    text = _text(piece)
                    if text:
                        choice.content += text
                        has_answer = True
                if not _ROLE_CONTENT.issuperset(delta):  # skip for the common delta
                    reasoning, encrypted = _reasoning(delta)
                    if reasoning or encrypted:
                        choice.reasoning += reasoning
                        choice.encrypted_reasoning += encrypted
                        has_reasoning = True
                    refusal = delta.get("refusal")
                    if isinstance(refusal, str) and refusal:
                        choice.refusal += refusal
                        has_answer = True
                    calls = delta.get("tool_calls")
                    if isinstance(calls, list) and calls:
                        _merge_tool_calls(choice, calls)
                        has_answer = True
            reason = raw.get("finish_reason")
            if reason is not None and reason != "":  # some servers send "" for "not yet"
                choice.finish_reason = reason
                choice.finish_count += 1
        if has_answer or has_reasoning:
            if self.t_first_token_ns is None:
                self.t_first_token_ns = t_ns
            if has_answer and self.t_first_answer_ns is None:
                self.t_first_answer_ns = t_ns
            self.t_last_token_ns = t_ns
            self.content_times_ns.append(t_ns)

    def _count_tokens(self) -> None:
        choices = self.choices.values()
        reasoning = "".join(c.reasoning for c in choices)
        details = (self.usage or {}).get("completion_tokens_details")
        reported = details.get("reasoning_tokens") if isinstance(details, dict) else None
        if _is_count(reported):
            self.reasoning_tokens = reported
        elif any(c.encrypted_reasoning for c in choices):
            self.reasoning_tokens = None  # no text to estimate from
        else:
            self.reasoning_tokens = estimate_tokens(reasoning)
        completion = self.usage.get("completion_tokens") if self.usage else None
        if _is_count(completion):
            self.output_tokens = completion
            self.token_source = "usage"
            return
        text = reasoning + "".join(
            c.content + c.refusal + "".join(_arguments(t) for t in c.tool_calls) for c in choices
        )
        self.output_tokens = estimate_tokens(text)
        self.token_source = "estimate" if text else "none"

    def _note_error(self, cls: ErrorClass, detail: str) -> None:
        if self.error_class is None:
            self.error_class = cls
            self.error_detail = detail
        else:
            self.anomalies.append(f"{cls.value}: {detail}")

    def _classify(self) -> None:
        """Choose the primary error class; transport failures outrank content problems."""
        stream_error = self.error_class
        stream_detail = self.error_detail
        self.error_class = None
        self.error_detail = ""
        finished_ok = self.done and any(c.finish_reason for c in self.choices.values())
        if self.transport_error is not None:
            if finished_ok and self.transport_error in _AFTER_DONE_TOLERATED:
                # The answer was complete; how the connection ended is noted, not counted.
                self.anomalies.append(
                    f"{self.transport_error.value} after [DONE]: {self.transport_detail}"
                )
            else:
                self.error_class = self.transport_error
                self.error_detail = self.transport_detail
        elif self.status is None:
            self.error_class = ErrorClass.CLIENT_ERROR
            self.error_detail = self.transport_detail or "no response"
        elif not 200 <= self.status < 300:
            self.error_class = _STATUS_CLASSES.get(self.status, ErrorClass.HTTP_STATUS)
            self.error_detail = f"HTTP {self.status}"
            if self.json is not None and self.error_payload is not None:
                self.error_detail += f": {_error_message(self.error_payload)}"
            elif self.body and self.json is None:
                self.error_detail += f" ({self.content_type or 'no content type'} body)"
        if self.error_class is not None:
            if stream_error is not None:
                self.anomalies.append(f"{stream_error.value}: {stream_detail}")
            return
        # A 2xx answer: judge the body.
        if self.stream and not self.events and self.content_type != "text/event-stream":
            self.error_class = ErrorClass.BAD_CONTENT_TYPE
            self.error_detail = f"stream requested but got {self.content_type or 'no content type'}"
        elif stream_error is not None:
            self.error_class, self.error_detail = stream_error, stream_detail
        elif self.events or self.content_type == "text/event-stream":
            if not self.done:
                if any(c.finish_reason for c in self.choices.values()):
                    # Complete answer, missing sentinel: a finding, never a lost measurement.
                    self.anomalies.append(f"{MISSING_DONE}: stream ended without data: [DONE]")
                else:
                    self.error_class = ErrorClass.TRUNCATED_STREAM
                    self.error_detail = "stream ended without finish_reason or [DONE]"
            elif not self.choices:
                self.error_class = ErrorClass.EMPTY_RESPONSE
                self.error_detail = "stream ended with [DONE] but no chunk carried a choice"
        elif not self.stream:
            if self.json is None:
                self.error_class = (
                    ErrorClass.BAD_CONTENT_TYPE
                    if self.content_type not in ("application/json", "")
                    else ErrorClass.BAD_JSON
                )
                self.error_detail = f"body is not JSON ({self.content_type or 'no type'})"
            elif not isinstance(self.json, dict):
                self.error_class = ErrorClass.BAD_JSON
                self.error_detail = f"body is JSON but not an object ({type(self.json).__name__})"
            elif "error" in self.json:
                self.error_class = ErrorClass.MIDSTREAM_ERROR
                self.error_detail = f"error in a 2xx body: {_error_message(self.json['error'])}"
            elif not self.choices and self.method == "POST":  # a GET lists, never answers
                self.error_class = ErrorClass.EMPTY_RESPONSE
                kind = type(self.json.get("choices")).__name__
                self.error_detail = f"2xx body has no usable choice (choices: {kind})"

    # ------------------------------------------------------------------ output
    def summary_line(self) -> str:
        parts = [f"{self.provider}/{self.model}", f"status={self.status}"]
        if self.ttft_ms is not None:
            parts.append(f"ttft={self.ttft_ms:.1f}ms")
        parts.append(f"tokens={self.output_tokens}({self.token_source})")
        if self.error_class:
            parts.append(f"error={self.error_class.value}: {self.error_detail}")
        return " ".join(parts)


def _text(value: Any) -> str:
    """Content as a string: plain strings, or the text of content parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            p.get("text", "")
            for p in value
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _arguments(call: dict[str, Any]) -> str:
    """A tool call's arguments as text, whatever type a provider put there."""
    function = call.get("function")
    return str(function.get("arguments") or "") if isinstance(function, dict) else ""


# Bounded repr for provider values: a payload may legally nest ~1000 levels deep (orjson's
# limit), which str() turns into a RecursionError.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 200, 200


def _short(value: Any) -> str:
    return value if isinstance(value, str) else _REPR.repr(value)[:200]


def _error_message(payload: Any) -> str:
    if isinstance(payload, dict):
        message = payload.get("message")
        code = payload.get("code", payload.get("statusCode"))
        text = _short(message) if message is not None else _short(payload)
        return f"{_short(code)}: {text}" if code is not None else text
    return _short(payload)[:200]


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_REASONING_TEXT = ("reasoning_content", "reasoning")  # DeepSeek / vLLM; OpenRouter


def _reasoning(container: dict[str, Any]) -> tuple[str, int]:
    """A delta's or message's reasoning in any dialect: (text, encrypted entries).

    ``reasoning_content`` (DeepSeek, vLLM) or ``reasoning`` (OpenRouter) carry the text; some
    servers send both with the same text, so the first non-empty one is taken, never both.
    ``reasoning_details`` (OpenRouter) is read only when neither is there, since OpenRouter
    repeats the same text in it: entries of type ``reasoning.text`` (``text``),
    ``reasoning.summary`` (``summary``) or ``reasoning.encrypted`` (``data``, no readable
    text: counted, so that an encrypted-only thinking phase still marks the first token).
    """
    for key in _REASONING_TEXT:
        value = container.get(key)
        if isinstance(value, str) and value:
            return value, 0
    details = container.get("reasoning_details")
    if not isinstance(details, list) or not details:
        return "", 0
    parts: list[str] = []
    encrypted = 0
    for detail in details:
        if not isinstance(detail, dict):
            continue
        text = detail.get("text")
        if not (isinstance(text, str) and text):
            text = detail.get("summary")
        if isinstance(text, str) and text:
            parts.append(text)
        elif detail.get("data") or str(detail.get("type", "")).endswith("encrypted"):
            encrypted += 1
    return "".join(parts), encrypted


def delta_has_output(delta: Any) -> bool:
    """Whether a stream delta carries output: content, reasoning (any dialect, encrypted
    included), a refusal or a tool call; the rule TTFT is timed by. A role-only delta, an
    empty one and LiteLLM's ``{"delta": {}}`` on the usage chunk carry none."""
    if not isinstance(delta, dict):
        return False
    if _text(delta.get("content")):
        return True
    refusal = delta.get("refusal")
    calls = delta.get("tool_calls")
    return (
        (isinstance(refusal, str) and bool(refusal))
        or (isinstance(calls, list) and bool(calls))
        or any(_reasoning(delta))
    )


def _merge_tool_calls(choice: AssembledChoice, deltas: list[Any]) -> None:
    """Assemble streamed tool-call deltas into calls, in each dialect seen in the wild.

    * OpenAI: every delta carries ``index``; a call's first delta also ``id``, ``type`` and
      the function name, later ones argument fragments (null fields may be left out).
    * Gemini's OpenAI-compatible endpoint: no ``index``. A delta with an ``id`` (or, without
      one, a function name) starts a call; a delta with neither continues the call begun
      last.
    * A server that reuses one ``index`` for parallel calls: a delta whose ``id`` differs
      from the id of the call at that index starts a new call.

    ``name`` and ``arguments`` fragments are concatenated. The ``tool_call_index`` check
    reports missing and repeated indexes; assembly never depends on them being right.
    """
    calls = choice.tool_calls
    for delta in deltas:
        if not isinstance(delta, dict):
            continue
        index = delta.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = None
        call_id = delta.get("id") if isinstance(delta.get("id"), str) else None
        raw_function = delta.get("function")
        function = raw_function if isinstance(raw_function, dict) else {}
        name = function.get("name") if isinstance(function.get("name"), str) else ""
        target = None
        if index is not None:
            target = next((c for c in reversed(calls) if c["index"] == index), None)
            if target is not None and call_id and target["id"] and target["id"] != call_id:
                target = None  # the index is reused by another call
        elif call_id:
            target = next((c for c in reversed(calls) if c["id"] == call_id), None)
        elif calls and (not name or not calls[-1]["function"]["name"]):
            target = calls[-1]  # an index-less, id-less fragment continues the last call
        if target is None:
            target = {
                "index": index if index is not None else len(calls),
                "id": None,
                "type": None,
                "function": {"name": "", "arguments": ""},
            }
            calls.append(target)
        if call_id:
            target["id"] = call_id
        if delta.get("type"):
            target["type"] = delta["type"]
        if name:
            target["function"]["name"] += name
        if isinstance(function.get("arguments"), str):
            target["function"]["arguments"] += function["arguments"]
