"""Ground truth: what the emulator did for each request, and when, by its own clock.

Times are ``time.perf_counter_ns()`` (CLOCK_MONOTONIC on Linux), comparable with a client's
stamps in any process on the same machine. Each is taken right before the ``write`` of the
bytes concerned, so a client's arrival stamp minus the truth stamp is the delivery delay.

=====================  ==================================================================
field                  meaning
=====================  ==================================================================
seq, request_id        sequence number (never reused, also across resets); the id sent
                       back as ``X-Chatprobe-Request-Id`` (the seq as a string)
provider, model,       profile name, canonical model name (None when the model was
model_id, path         unknown), the model string the client sent, the request path
stream                 whether a stream was asked for
status                 HTTP status sent (None if nothing was sent)
faults                 faults applied, e.g. ``["stall=2"]``
error                  why an error status was sent (validation message, auth, fault)
t_received_ns          request fully arrived: the kernel's receive stamp of its last bytes
                       where the platform gives one (Linux), else when it was parsed
t_parsed_ns            request parsed by the emulator's event loop (later than arrival by
                       the time the loop was busy elsewhere)
t_headers_ns           status line and headers written
t_first_content_ns     first event carrying a token written (plain: the body): reasoning,
                       answer text or a tool call, the time to first token
t_first_reasoning_ns   first event carrying reasoning written (None without)
t_first_answer_ns      first event carrying answer text or a tool call written (reasoning
                       excluded: the time to first answer token)
t_last_content_ns      last event carrying a token written
t_end_ns               last byte written, or the connection reset/closed/lost
ttft_ms_intended       the latency model's TTFT draw (ms)
itl_ms_intended        the drawn gaps' sum / (completion_tokens - 1), the client's ITL formula
prompt_tokens,         what usage reports (completion tokens include reasoning tokens)
completion_tokens,
reasoning_tokens
cached_tokens          prefix cache: prompt tokens found in the cache, as usage reports
                       them (None without a prefix cache)
tokens_sent, chunks    tokens in content events actually written, and those events' count
finish_reasons         per choice
dialect                the dialect knobs the answer was made with (``knob[=value],...``;
                       None for none)
stream_rule            the stream rule this stream breaks on purpose (``stream_rule`` fault)
outcome                ``complete``, ``reset`` (TCP RST), ``closed`` (FIN without finishing the
                       body), ``client_closed`` (the client went away first), ``in_flight``
event_times_ns         write time of every event (only with ``record_event_times``)
queue_ms               capacity model: time waiting for a slot (None without capacity)
prefill_wait_ms        capacity model: time waiting for the prefill lane after admission
prefill_ms             capacity model: prefill time (uncached prompt tokens x its cost)
batch_mean             capacity model: mean sequences decoding at the start of this
                       stream's gaps (what set its ITL)
sched_s                schedule time (s, compressed clock) when it was read (None without
                       a schedule)
windows                names of the scheduled windows it fell in
=====================  ==================================================================

With a capacity model, ``ttft_ms_intended`` and ``itl_ms_intended`` are the model's times for
this request (queue, prefill, base draw, and the gaps the shared decode budget allowed), so
actual - intended is still the emulator's own lateness.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import IO, Any

import orjson

__all__ = ["ANSWER", "CONTENT", "END", "EVENT", "HEADERS", "REASONING", "TruthLog", "TruthRecord"]

# What a written step carries, as bit flags (the server stamps the truth by them): the
# status line and headers, a token (reasoning or answer), an SSE event, the last byte.
HEADERS, CONTENT, EVENT, END, REASONING, ANSWER = 1, 2, 4, 8, 16, 32

_FIELDS = (
    "seq",
    "request_id",
    "provider",
    "model",
    "model_id",
    "path",
    "stream",
    "status",
    "faults",
    "error",
    "t_received_ns",
    "t_parsed_ns",
    "t_headers_ns",
    "t_first_content_ns",
    "t_first_reasoning_ns",
    "t_first_answer_ns",
    "t_last_content_ns",
    "t_end_ns",
    "ttft_ms_intended",
    "itl_ms_intended",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "tokens_sent",
    "chunks",
    "finish_reasons",
    "dialect",
    "stream_rule",
    "outcome",
    "event_times_ns",
    "queue_ms",
    "prefill_wait_ms",
    "prefill_ms",
    "batch_mean",
    "sched_s",
    "windows",
)


class TruthRecord:
    """One request's ground truth (see the module docstring for the fields)."""

    __slots__ = _FIELDS

    def __init__(
        self,
        seq: int,
        t_received_ns: int,
        path: str,
        provider: str,
        t_parsed_ns: int | None = None,
    ) -> None:
        self.seq = seq
        self.request_id = str(seq)
        self.provider = provider
        self.model: str | None = None
        self.model_id: str | None = None
        self.path = path
        self.stream = False
        self.status: int | None = None
        self.faults: list[str] = []
        self.error: str | None = None
        self.t_received_ns = t_received_ns
        self.t_parsed_ns = t_received_ns if t_parsed_ns is None else t_parsed_ns
        self.t_headers_ns: int | None = None
        self.t_first_content_ns: int | None = None
        self.t_first_reasoning_ns: int | None = None
        self.t_first_answer_ns: int | None = None
        self.t_last_content_ns: int | None = None
        self.t_end_ns: int | None = None
        self.ttft_ms_intended: float | None = None
        self.itl_ms_intended: float | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.tokens_sent = 0
        self.chunks = 0
        self.finish_reasons: list[str] = []
        self.dialect: str | None = None
        self.stream_rule: str | None = None
        self.outcome = "in_flight"
        self.event_times_ns: list[int] | None = None
        self.queue_ms: float | None = None
        self.prefill_wait_ms: float | None = None
        self.prefill_ms: float | None = None
        self.batch_mean: float | None = None
        self.sched_s: float | None = None
        self.windows: list[str] = []

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    def frozen(self) -> tuple[Any, ...]:
        """The fields' values in ``_FIELDS`` order, lists as tuples: only atomic values, so
        the garbage collector stops tracking it after its first pass (:class:`TruthLog`)."""
        values = (getattr(self, name) for name in _FIELDS)
        return tuple(tuple(v) if isinstance(v, list) else v for v in values)


def _thawed(values: tuple[Any, ...]) -> dict[str, Any]:
    """A :meth:`TruthRecord.frozen` record as :meth:`TruthRecord.to_dict` gave it (its only
    tuples are the lists it froze)."""
    return {
        name: list(v) if isinstance(v, tuple) else v
        for name, v in zip(_FIELDS, values, strict=True)
    }


class TruthLog:
    """Records (the finished ones capped), counters, and an optional JSON Lines file.

    A finished record is kept as a tuple of atomic values, not as an object: the garbage
    collector stops tracking such tuples, so a long run's tens of thousands of records add
    nothing to its full collections. As objects (a record and its three lists) they made
    each full collection of a busy emulator take tens of milliseconds (60 ms after about
    20,000 requests), during which no stream was written: the clients saw the first tokens
    of the streams due then arrive in one burst with later ones.
    """

    def __init__(self, cap: int = 100_000, jsonl_path: str | None = None) -> None:
        self._open: dict[int, TruthRecord] = {}  # in flight, by seq
        self._closed: deque[tuple[Any, ...]] = deque(maxlen=max(1, cap))
        self._next = 1
        self._jsonl: IO[bytes] | None = open(jsonl_path, "ab") if jsonl_path else None  # noqa: SIM115
        self.received = 0
        self.completed = 0
        self.in_flight = 0
        self.by_status: Counter[str] = Counter()
        self.by_fault: Counter[str] = Counter()
        self.by_provider: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.on_close: Callable[[TruthRecord], None] | None = None

    def open(
        self, t_received_ns: int, path: str, provider: str, t_parsed_ns: int | None = None
    ) -> TruthRecord:
        record = TruthRecord(self._next, t_received_ns, path, provider, t_parsed_ns)
        self._next += 1
        self._open[record.seq] = record
        self.received += 1
        self.in_flight += 1
        self.by_provider[provider] += 1
        return record

    def close(self, record: TruthRecord, outcome: str) -> None:
        """Mark ``record`` done (once) and count it."""
        if record.outcome != "in_flight":
            return
        record.outcome = outcome
        self.completed += 1
        self.in_flight = max(0, self.in_flight - 1)  # a reset may have zeroed it meanwhile
        self.by_outcome[outcome] += 1
        if record.status is not None:
            self.by_status[str(record.status)] += 1
        for fault in record.faults:
            self.by_fault[fault.partition("=")[0]] += 1
        if self.on_close is not None:
            self.on_close(record)
        if self._jsonl is not None:
            self._jsonl.write(orjson.dumps(record.to_dict()) + b"\n")
        if self._open.pop(record.seq, None) is not None:  # not forgotten by a reset
            self._closed.append(record.frozen())

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        """Records with a sequence number above ``seq`` (finished and in flight), oldest
        first."""
        out = [_thawed(r) for r in self._closed if r[0] > seq]
        out += [r.to_dict() for r in self._open.values() if r.seq > seq]
        out.sort(key=lambda r: int(r["seq"]))
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "completed": self.completed,
            "in_flight": self.in_flight,
            "last_seq": self._next - 1,
            "by_status": dict(self.by_status),
            "by_fault": dict(self.by_fault),
            "by_provider": dict(self.by_provider),
            "by_outcome": dict(self.by_outcome),
        }

    def reset(self) -> None:
        """Forget records and counters (sequence numbers keep counting)."""
        self._open.clear()
        self._closed.clear()
        self.received = self.completed = 0
        self.in_flight = 0
        for counter in (self.by_status, self.by_fault, self.by_provider, self.by_outcome):
            counter.clear()

    def flush(self) -> None:
        if self._jsonl is not None:
            self._jsonl.flush()

    def shutdown(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
