"""One sample per request: its fields (defined once, here), the builder, the writer, the reader.

A *sample* is the flat JSON object written to ``samples.jsonl`` for every completed request
of a load run. :data:`SAMPLE_FIELDS` lists every field with its type, unit and meaning;
``docs/results-format.md`` carries the same table (a test compares the two), the builder
:func:`build_sample` emits exactly these fields, and the reader decodes exactly these.

* Building: :func:`build_sample` maps a finished :class:`~chatprobe.record.RequestRecord`
  plus where it sat in the run (stage, worker, offset, warm-up) to a sample, scrubbing the
  fields that can hold provider text. :func:`new_sample` makes one from values (synthetic
  folders, tests), with the same names and the same scrubbing.
* Writing: :func:`encode_sample` is the one encoding (one JSON line); :class:`SampleWriter`
  is the one writer of ``samples.jsonl``, used by a local run (one sample at a time) and by
  a distributed master (blocks of lines shipped by workers, which encode with
  :func:`encode_sample`). Every write is flushed, so an interrupt loses at most the line being
  written, which the reader then skips and counts.
* Reading: ``samples.jsonl`` is decoded in 4 MiB chunks (msgspec, typed, reading only the
  fields marked as columns below and skipping the rest without building them) into typed
  columns (:class:`SampleTable`: ``array`` of doubles and ints, categories as small codes)
  instead of a list of dicts, so a million samples fit in a few hundred megabytes; large
  files are read by several processes over byte ranges. A truncated last line (the run was
  interrupted mid-write) and any corrupt line are skipped and counted, never fatal.
  :func:`table_from_rows` builds the same table from rows in memory.
"""

from __future__ import annotations

import contextlib
import gc
import math
import operator
import os
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec
import orjson

from chatprobe.errors import ConfigError
from chatprobe.scrub import scrub_text

if TYPE_CHECKING:
    from chatprobe.record import RequestRecord

__all__ = [
    "EXCERPT_CHARS",
    "SAMPLE_FIELDS",
    "SampleField",
    "SampleTable",
    "SampleWriter",
    "build_sample",
    "encode_sample",
    "iter_sample_batches",
    "load_samples",
    "new_sample",
    "table_from_rows",
]

EXCERPT_CHARS = 200  # output_excerpt keeps this many characters of the answer
DETAIL_CHARS = 300  # error_detail is cut here
ANOMALY_CHARS = 120  # each anomaly note is cut here
MAX_ANOMALIES = 5  # notes kept per sample


@dataclass(frozen=True, slots=True)
class SampleField:
    """One field of a sample.

    ``type`` is the JSON type as documented (``string``, ``number``, ``integer``,
    ``boolean``, ``array of string``; ``| null`` when it may be null); ``column`` says how the
    reader keeps it: ``float`` / ``int`` (a typed column, null as NaN / -1), ``code`` (a
    category, stored once and coded per sample), ``key`` (an identifier of many values, such
    as a session: coded per sample in a 64-bit column, -1 for null), ``flag`` (a byte per
    sample), ``text``
    (counted per group, not kept per sample), or ``""`` (not read by reports).
    """

    name: str
    type: str
    unit: str
    meaning: str
    column: str = ""
    optional: bool = False  # present only on some samples


# The sample, field by field: what the record says, then where it sat in the run.
_F = SampleField
SAMPLE_FIELDS: tuple[SampleField, ...] = (
    _F("provider", "string", "", "provider profile name (a custom endpoint: its name)", "code"),
    _F("model", "string", "", "canonical model name", "code"),
    _F("stream", "boolean", "", "the request asked for a stream"),
    _F(
        "request_id",
        "string | null",
        "",
        "the X-Request-Id the request carried (fresh per request): joins the server's logs",
    ),
    _F(
        "server_request_id",
        "string | null",
        "",
        "the server's own id for the request from its response headers "
        "(X-Chatprobe-Request-Id, the emulator's ground-truth key, else X-Request-Id)",
    ),
    _F(
        "t_wall",
        "number",
        "s",
        "send time as Unix time: wall clock, for display only, never for latency",
        "float",
    ),
    _F("lag_ms", "number | null", "ms", "open loop: t0 - t_sched (how late it went out)", "float"),
    _F("ttfb_ms", "number | null", "ms", "response headers received - t0", "float"),
    _F(
        "ttft_ms",
        "number | null",
        "ms",
        "first content, reasoning, refusal or tool-call delta - t0 (never the role-only chunk)",
        "float",
    ),
    _F(
        "ttfa_ms",
        "number | null",
        "ms",
        "first answer token - t0: content, refusal or tool-call delta, reasoning excluded "
        "(equals ttft_ms for a model that does not reason)",
        "float",
    ),
    _F(
        "itl_ms",
        "number | null",
        "ms",
        "(last token - first token) / (output_tokens - 1); null below 2 output tokens",
        "float",
    ),
    _F("e2e_ms", "number | null", "ms", "last content event - t0", "float"),
    _F("total_ms", "number | null", "ms", "end of the exchange (closed or failed) - t0", "float"),
    _F(
        "output_tokens",
        "integer",
        "tokens",
        "the last usage.completion_tokens, else an estimate (see token_source)",
        "int",
    ),
    _F("token_source", "string", "", "`usage`, `estimate` or `none`", "code"),
    _F(
        "reasoning_tokens",
        "integer | null",
        "tokens",
        "reasoning part of output_tokens: usage.completion_tokens_details.reasoning_tokens, "
        "else an estimate from the reasoning text; null when the reasoning was encrypted and "
        "no count was reported",
        "int",
    ),
    _F(
        "prompt_tokens",
        "integer | null",
        "tokens",
        "usage.prompt_tokens as reported; null without usage",
        "int",
    ),
    _F(
        "cached_tokens",
        "integer | null",
        "tokens",
        "usage.prompt_tokens_details.cached_tokens as reported (prompt tokens served from "
        "the provider's prefix cache); null when not reported",
        "int",
    ),
    _F(
        "input_tokens",
        "integer | null",
        "tokens",
        "the prompt as sent, counted by chatprobe's tokenizer (`chatprobe.tokens`, the text "
        "of the messages); null when not known. Compare with prompt_tokens",
        "int",
    ),
    _F(
        "max_tokens",
        "integer | null",
        "tokens",
        "the output cap requested (max_completion_tokens, else max_tokens); null when none "
        "was set. Compare with output_tokens",
        "int",
    ),
    _F("cost", "number | null", "USD", "cost the provider reported in usage.cost", "float"),
    _F("chunks", "integer", "", "data events parsed as JSON chunks"),
    _F("status", "integer | null", "", "HTTP status; null when no response arrived", "int"),
    _F(
        "error_class",
        "string | null",
        "",
        "why the request failed (README, error classes); null on success",
        "code",
    ),
    _F(
        "error_detail",
        "string",
        "",
        f"the failure in one line, at most {DETAIL_CHARS} characters, scrubbed",
        "text",
    ),
    _F(
        "anomalies",
        "array of string",
        "",
        "oddities that did not fail the request (e.g. `missing_done: ...`), at most "
        f"{MAX_ANOMALIES} notes of {ANOMALY_CHARS} characters, scrubbed",
        "text",
    ),
    _F(
        "clock",
        "string",
        "",
        "where the arrival stamps were taken: `kernel` (the kernel's receive time, Linux, "
        "over plain TCP and TLS alike) or `user` (right after each read returned: no kernel "
        "stamps here, or one out of order)",
        "code",
    ),
    _F(
        "ttft_bound_ms",
        "number | null",
        "ms",
        "how far ttft_ms can be off by the client's own lateness: t0 to the end of the "
        "request's write (a new connection's set-up included) plus how late the stamp of the "
        "read that carried the first token can be (its stamp minus the kernel receive time of "
        "the oldest byte it took; on either clock); null where no kernel receive time exists",
        "float",
    ),
    _F(
        "read_bound_ms",
        "number | null",
        "ms",
        "the same bound for the worst read of the exchange: how late any chunk's stamp can be",
        "float",
    ),
    _F(
        "checks_broken",
        "array of string | null",
        "",
        "conformance under load: the stream checks (chatprobe.load.conformance) this stream "
        "broke, `[]` when it broke none; null when it was not checked (not a stream, or "
        "outside the configured share)",
        "text",
    ),
    _F("scenario", "string", "", "scenario name", "code"),
    _F("stage", "string", "", "stage name, e.g. `16 users`", "code"),
    _F(
        "users",
        "integer",
        "",
        "concurrency at send time (closed loop: the stage's users; open loop: requests in "
        "flight in that process)",
        "int",
    ),
    _F("worker", "string", "", "`local` or `worker-<index>`"),
    _F(
        "t_offset_s",
        "number",
        "s",
        "run start to t0 (open loop: to the scheduled time t_sched)",
        "float",
    ),
    _F("warmup", "boolean", "", "sent during a stage's warm-up: left out of every figure", "flag"),
    _F(
        "retry_after_s",
        "number | null",
        "s",
        "the Retry-After of a 429 or 503 answer (seconds or an HTTP date, as seconds): the "
        "run held this target's users that long; null when absent",
        "float",
    ),
    _F(
        "backoff_s",
        "number | null",
        "s",
        "the backoff this request made its user take before its next request (a connection "
        "failure, or a 429/503 without Retry-After; exponential with jitter); null when none",
        "float",
    ),
    _F(
        "session",
        "string | null",
        "",
        "the conversation (or trace session) the request belongs to, unique in the run; "
        "null for a request on its own",
        "key",
    ),
    _F(
        "turn",
        "integer | null",
        "",
        "the request's place in its session, from 1: turn k's messages hold the answers of "
        "turns 1..k-1 (a tool result is a turn of its own); null outside a session",
        "int",
    ),
    _F(
        "output_excerpt",
        "string",
        "",
        f"the first {EXCERPT_CHARS} characters of the answer, scrubbed; only on the first "
        "3 successful samples per target",
        "text",
        optional=True,
    ),
)
_NAMES = tuple(f.name for f in SAMPLE_FIELDS)
_REQUIRED = tuple(f.name for f in SAMPLE_FIELDS if not f.optional)


# ---------------------------------------------------------------------------- building


def _round(ms: float | None) -> float | None:
    """Sample times keep 0.1 microsecond: finer digits are clock noise and cost bytes."""
    return None if ms is None else round(ms, 4)


def build_sample(
    record: RequestRecord,
    *,
    scenario: str,
    stage: str,
    users: int,
    worker: str,
    t_offset_s: float,
    warmup: bool,
    excerpt: bool = False,
    retry_after_s: float | None = None,
    backoff_s: float | None = None,
    session: str | None = None,
    turn: int | None = None,
    checks_broken: list[str] | None = None,
) -> dict[str, Any]:
    """The sample of one finished record, placed in its run (see :data:`SAMPLE_FIELDS`).

    ``excerpt`` adds ``output_excerpt`` when the request succeeded; ``retry_after_s`` and
    ``backoff_s`` say how the run held back after it (:mod:`chatprobe.load.polite`);
    ``checks_broken`` is the conformance-under-load verdict (None: not checked). Text a
    provider could have written (the error detail, anomalies, the excerpt) is scrubbed here,
    so every sample is safe to write as it is.
    """
    usage = record.usage or {}
    sample: dict[str, Any] = {
        "provider": record.provider,
        "model": record.model,
        "stream": record.stream,
        "request_id": record.request_id or None,
        "server_request_id": record.server_request_id,
        "t_wall": round(record.wall_start, 6),
        "lag_ms": _round(record.lag_ms),
        "ttfb_ms": _round(record.ttfb_ms),
        "ttft_ms": _round(record.ttft_ms),
        "ttfa_ms": _round(record.ttfa_ms),
        "itl_ms": _round(record.itl_ms),
        "e2e_ms": _round(record.e2e_ms),
        "total_ms": _round(record.total_ms),
        "output_tokens": record.output_tokens,
        "token_source": record.token_source,
        "reasoning_tokens": record.reasoning_tokens,
        "prompt_tokens": usage.get("prompt_tokens"),
        "cached_tokens": _cached_tokens(usage),
        "input_tokens": record.input_tokens,
        "max_tokens": record.max_tokens,
        "cost": usage.get("cost"),
        "chunks": len(record.chunks),
        "status": record.status,
        "error_class": record.error_class.value if record.error_class else None,
        "error_detail": scrub_text(record.error_detail[:DETAIL_CHARS]),
        "anomalies": [scrub_text(a[:ANOMALY_CHARS]) for a in record.anomalies[:MAX_ANOMALIES]],
        "clock": record.clock,
        "ttft_bound_ms": _round(record.ttft_bound_ms),
        "read_bound_ms": _round(record.read_bound_ms),
        "checks_broken": checks_broken,
        "scenario": scenario,
        "stage": stage,
        "users": users,
        "worker": worker,
        "t_offset_s": round(t_offset_s, 6),
        "warmup": warmup,
        "retry_after_s": retry_after_s,
        "backoff_s": None if backoff_s is None else round(backoff_s, 4),
        "session": session,
        "turn": turn,
    }
    if excerpt and record.ok:
        sample["output_excerpt"] = scrub_text(record.text[:EXCERPT_CHARS])
    return sample


def _cached_tokens(usage: Mapping[str, Any]) -> Any:
    details = usage.get("prompt_tokens_details")
    return details.get("cached_tokens") if isinstance(details, Mapping) else None


_DEFAULTS: dict[str, Any] = {
    "stream": True,
    "output_tokens": 0,
    "token_source": "none",
    "chunks": 0,
    "error_detail": "",
    "anomalies": [],
    "scenario": "",
    "stage": "",
    "users": 0,
    "worker": "local",
    "t_offset_s": 0.0,
    "t_wall": 0.0,
    "warmup": False,
    "clock": "user",
}


def new_sample(**values: Any) -> dict[str, Any]:
    """A sample from field values (synthetic folders, tests): every field of
    :data:`SAMPLE_FIELDS` in order, missing ones at their defaults (null, 0, ``""``, ``[]``);
    an unknown name is a :class:`TypeError`, so hand-made samples cannot drift from the
    format. Text fields are scrubbed like :func:`build_sample` does."""
    unknown = set(values) - set(_NAMES)
    if unknown:
        raise TypeError(f"not sample fields: {', '.join(sorted(unknown))}")
    sample = {name: values.get(name, _DEFAULTS.get(name)) for name in _REQUIRED}
    if values.get("output_excerpt") is not None:
        sample["output_excerpt"] = scrub_text(str(values["output_excerpt"])[:EXCERPT_CHARS])
    if sample["error_detail"]:
        sample["error_detail"] = scrub_text(str(sample["error_detail"])[:DETAIL_CHARS])
    sample["anomalies"] = [scrub_text(str(a)[:ANOMALY_CHARS]) for a in sample["anomalies"] or []]
    return sample


# ---------------------------------------------------------------------------- writing


def encode_sample(sample: Mapping[str, Any]) -> bytes:
    """One sample as one JSON line (with its newline): the only encoding of a sample."""
    return orjson.dumps(sample) + b"\n"


class SampleWriter:
    """``samples.jsonl``, appended and flushed line by line: the one writer of samples.

    A local run writes each sample as it completes (:meth:`write`); a distributed master
    writes the blocks of lines its workers ship (:meth:`write_lines`; workers encode with
    :func:`encode_sample` and keep no file). Samples come scrubbed from :func:`build_sample`
    or :func:`new_sample`.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.count = 0
        self._fh: IO[bytes] | None = open(self.path, "ab")  # noqa: SIM115 (closed in close())

    def write(self, sample: Mapping[str, Any]) -> None:
        self.write_lines(encode_sample(sample), 1)

    def write_lines(self, blob: bytes, n: int) -> None:
        """Append ``n`` already encoded lines (a worker's batch)."""
        if self._fh is None:
            raise ValueError(f"{self.path} is closed")
        if blob:
            self._fh.write(blob if blob.endswith(b"\n") else blob + b"\n")
            self._fh.flush()
            self.count += n

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- reading

_NAN = math.nan
_COLUMN_TYPES = {"float": float, "int": int, "code": str, "key": str, "flag": bool}
_READ = tuple(f for f in SAMPLE_FIELDS if f.column)
_KEYS = tuple(f.name for f in _READ)  # the order of the tuples the table builder takes
FLOAT_COLUMNS = tuple(f.name for f in _READ if f.column == "float")
INT_COLUMNS = tuple(f.name for f in _READ if f.column == "int")


def _read_type(f: SampleField) -> Any:
    if f.name in ("anomalies", "checks_broken"):
        return list[str] | None
    return _COLUMN_TYPES.get(f.column, str) | None


# Decoding into a struct of only these fields skips every other field without building
# it, about 3x faster than a dict per line; a line that does not fit these types sends its
# chunk to the lenient dict path.
_Sample: Any = msgspec.defstruct(
    "_Sample", [(f.name, _read_type(f), None) for f in _READ], gc=False
)
_DECODER = msgspec.json.Decoder(list[_Sample])
_ATTRS = operator.attrgetter(*_KEYS)


@dataclass
class SampleTable:
    """``samples.jsonl`` as typed columns, one entry per sample.

    ``group[i]`` indexes :attr:`groups` (``(provider, model)``); ``error[i]`` indexes
    :attr:`error_classes` (index 0 is ``""`` = success); ``stage[i]`` indexes :attr:`stages`;
    ``source[i]`` indexes :attr:`token_sources`; ``session[i]`` indexes :attr:`sessions`
    (-1: not in a session). Missing floats are NaN and missing ints are -1. Error messages
    and anomalies are counted per (group, class or tag, warm-up), output excerpts kept per
    group, not per sample. ``user_clock[i]`` is 1 where the sample's stamps were taken in
    user space. Conformance under load: ``checked`` counts the streams checked per (group,
    warm-up), ``broken`` those that broke each check per (group, check, warm-up).
    """

    groups: list[tuple[str, str]] = field(default_factory=list)
    error_classes: list[str] = field(default_factory=lambda: [""])
    stages: list[str] = field(default_factory=list)
    token_sources: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)  # the session column's values
    session: array = field(default_factory=lambda: array("q"))  # index in sessions, -1: none
    group: array = field(default_factory=lambda: array("H"))
    error: array = field(default_factory=lambda: array("H"))
    stage: array = field(default_factory=lambda: array("H"))
    source: array = field(default_factory=lambda: array("H"))
    warmup: bytearray = field(default_factory=bytearray)
    user_clock: bytearray = field(default_factory=bytearray)
    floats: dict[str, array] = field(
        default_factory=lambda: {name: array("d") for name in FLOAT_COLUMNS}
    )
    ints: dict[str, array] = field(
        default_factory=lambda: {name: array("q") for name in INT_COLUMNS}
    )
    error_details: dict[tuple[int, str, str, bool], int] = field(default_factory=dict)
    anomalies: dict[tuple[int, str, bool], int] = field(default_factory=dict)
    excerpts: dict[int, list[str]] = field(default_factory=dict)
    checked: dict[tuple[int, bool], int] = field(default_factory=dict)
    broken: dict[tuple[int, str, bool], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.group)

    def column(self, name: str) -> array:
        """A float or int column by its sample field name."""
        if name in self.floats:
            return self.floats[name]
        return self.ints[name]


_MAX_DETAILS = 2000  # distinct (group, class, message) kept; the rest are counted as "other"
_MAX_EXCERPTS = 3  # output excerpts kept per group
_DIGITS = re.compile(r"\d+")


def anomaly_tag(note: str) -> str:
    """What kind of anomaly a note is: its text before the first colon, numbers as N
    (``"missing_done: stream ended ..."`` -> ``"missing_done"``)."""
    return _DIGITS.sub("N", str(note).split(":", 1)[0].strip())[:60]


class _TableBuilder:
    """Fills a :class:`SampleTable` from batches of parsed rows."""

    def __init__(self) -> None:
        self.t = SampleTable()
        self._group_codes: dict[tuple[str, str], int] = {}
        self._error_codes: dict[Any, int] = {"": 0, None: 0}
        self._stage_codes: dict[tuple[Any, Any], int] = {}
        self._source_codes: dict[Any, int] = {}
        self._scenario_seen: set[Any] = set()
        self._session_codes: dict[Any, int] = {None: -1, "": -1}

    @staticmethod
    def _codes(
        keys: list[Any], codes: dict[Any, int], names: list[Any], name: Any = None
    ) -> list[int]:
        """Map keys to small integer codes, adding ``name(key)`` to ``names`` for new ones."""
        out = [codes.get(k) for k in keys]
        if None in out:
            for i, code in enumerate(out):
                if code is None:
                    key = keys[i]
                    code = codes.get(key)
                    if code is None:
                        code = codes[key] = len(names)
                        names.append(name(key) if name else key)
                    out[i] = code
        return out  # type: ignore[return-value]

    def table(self) -> SampleTable:
        """The table built so far, with one stage code per stage label (stages are coded by
        (stage, users) while reading, and an open-loop stage's users vary)."""
        t = self.t
        first: dict[str, int] = {}
        remap = [first.setdefault(label, code) for code, label in enumerate(t.stages)]
        if len(first) < len(t.stages):
            renumber = {code: k for k, code in enumerate(first.values())}
            t.stage = array("H", [renumber[remap[x]] for x in t.stage])
            t.stages = list(first)
            self._stage_codes = {}  # stale once renumbered; the table is complete
        return t

    def add(self, tuples: list[tuple[Any, ...]]) -> None:
        """Append samples given as tuples of the :data:`_KEYS` fields."""
        if not tuples:
            return
        t = self.t
        cols = dict(zip(_KEYS, zip(*tuples, strict=True), strict=True))
        groups = self._codes(
            list(zip(cols["provider"], cols["model"], strict=True)),
            self._group_codes,
            t.groups,
            lambda key: (str(key[0] or "?"), str(key[1] or "?")),
        )
        t.group.extend(groups)
        errors = self._codes(
            list(cols["error_class"]), self._error_codes, t.error_classes, lambda k: str(k)
        )
        t.error.extend(errors)
        t.stage.extend(
            self._codes(
                list(zip(cols["stage"], cols["users"], strict=True)),
                self._stage_codes,
                t.stages,
                lambda key: _stage_label(*key),
            )
        )
        t.source.extend(
            self._codes(
                list(cols["token_source"]),
                self._source_codes,
                t.token_sources,
                lambda k: str(k or "none"),
            )
        )
        t.session.extend(self._codes(list(cols["session"]), self._session_codes, t.sessions, str))
        warm = list(map(bool, cols["warmup"]))
        t.warmup.extend(warm)
        t.user_clock.extend(c != "kernel" for c in cols["clock"])
        for name in FLOAT_COLUMNS:
            values = cols[name]
            try:  # build first: a failed extend() would leave a partial column behind
                t.floats[name].extend(array("d", [_NAN if v is None else v for v in values]))
            except TypeError:
                t.floats[name].extend(array("d", [_as_float(v) for v in values]))
        for name in INT_COLUMNS:
            values = cols[name]
            try:
                t.ints[name].extend(array("q", [-1 if v is None else v for v in values]))
            except (TypeError, OverflowError):
                t.ints[name].extend(array("q", [_as_int(v) for v in values]))
        enames = t.error_classes
        details = cols["error_detail"]
        for k in [k for k, e in enumerate(errors) if e]:
            detail = details[k]
            text = str(detail)[:DETAIL_CHARS] if detail else ""
            key = (groups[k], enames[errors[k]], text, warm[k])
            if key not in t.error_details and len(t.error_details) >= _MAX_DETAILS:
                key = (groups[k], enames[errors[k]], "(other messages)", warm[k])
            t.error_details[key] = t.error_details.get(key, 0) + 1
        notes = cols["anomalies"]
        for k in [k for k, x in enumerate(notes) if x]:
            if not isinstance(notes[k], list):
                continue
            for tag in {anomaly_tag(n) for n in notes[k]}:
                key2 = (groups[k], tag, warm[k])
                t.anomalies[key2] = t.anomalies.get(key2, 0) + 1
        verdicts = cols["checks_broken"]
        for k in [k for k, x in enumerate(verdicts) if isinstance(x, list)]:
            key3 = (groups[k], warm[k])
            t.checked[key3] = t.checked.get(key3, 0) + 1
            for name in set(map(str, verdicts[k])):
                key4 = (groups[k], name, warm[k])
                t.broken[key4] = t.broken.get(key4, 0) + 1
        excerpts = cols["output_excerpt"]
        for k in [k for k, x in enumerate(excerpts) if x]:
            kept = t.excerpts.setdefault(groups[k], [])
            if len(kept) < _MAX_EXCERPTS:
                kept.append(str(excerpts[k])[:500])
        for scenario in set(cols["scenario"]) - self._scenario_seen:
            self._scenario_seen.add(scenario)
            if scenario:
                t.scenarios.append(str(scenario))


def _stage_label(stage: Any, users: Any) -> str:
    if stage is not None and stage != "":
        return str(stage)
    return f"{users} users" if users is not None else ""


def _as_float(v: Any) -> float:
    if isinstance(v, bool):
        return _NAN
    try:
        return float(v)
    except (TypeError, ValueError):
        return _NAN


def _as_int(v: Any) -> int:
    if isinstance(v, bool):
        return -1
    try:
        out = int(v)
    except (TypeError, ValueError, OverflowError):
        return -1
    return out if -(2**62) < out < 2**62 else -1


def table_from_rows(rows: Iterable[Mapping[str, Any]]) -> SampleTable:
    """The :class:`SampleTable` of samples held in memory (dicts with sample field names)."""
    builder = _TableBuilder()
    builder.add([tuple(map(row.get, _KEYS)) for row in rows if isinstance(row, Mapping)])
    return builder.table()


_CHUNK = 4 << 20  # bytes read and parsed at once


def iter_sample_batches(
    path: Path, start: int = 0, end: int | None = None, first_line: int = 1
) -> Iterator[tuple[list[Any], list[int], bool]]:
    """Yield ``(rows, bad_line_numbers, truncated_tail)`` per chunk of ``samples.jsonl``,
    rows as parsed JSON values (normally dicts).

    A chunk of whole lines is parsed with one ``orjson.loads`` of the lines joined as a
    JSON array (fast); if that fails, line by line, so one bad line costs only itself. A
    last line with no newline that does not parse is a truncated tail. ``start``/``end``
    select a byte range that begins at a line start (for parallel reading).
    """
    yield from _iter_chunks(path, start, end, first_line, _parse_body)


def _iter_chunks(
    path: Path,
    start: int,
    end: int | None,
    first_line: int,
    parse: Callable[[bytes, int], tuple[list[Any], list[int]]],
) -> Iterator[tuple[list[Any], list[int], bool]]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    with fh:
        fh.seek(start)
        remaining = -1 if end is None else end - start
        rest = b""
        line = first_line  # number of the first line in the next body
        while remaining != 0:
            chunk = fh.read(_CHUNK if remaining < 0 else min(_CHUNK, remaining))
            if not chunk:
                break
            if remaining > 0:
                remaining -= len(chunk)
            data = rest + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            body, rest = data[:cut], data[cut + 1 :]
            rows, bad = parse(body, line)
            line += body.count(b"\n") + 1
            yield rows, bad, False
        if rest.strip():
            rows, bad = parse(rest, line)
            yield rows, bad, bool(bad)


def _decode_tuples(body: bytes, first_line: int) -> tuple[list[tuple[Any, ...]], list[int]]:
    """Lines as tuples of the :data:`_KEYS` fields: typed decoding when every line fits,
    else the lenient dict path (bad lines skipped and numbered, odd values coerced later)."""
    try:
        samples = _DECODER.decode(b"[" + body.replace(b"\n", b",") + b"]")
        if len(samples) == body.count(b"\n") + 1:
            return list(map(_ATTRS, samples)), []
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    rows, bad = _parse_body(body, first_line)
    return [tuple(map(r.get, _KEYS)) for r in rows if isinstance(r, dict)], bad


def _parse_body(body: bytes, first_line: int) -> tuple[list[Any], list[int]]:
    """Parse newline-separated JSON values; returns the values and the bad line numbers."""
    try:
        rows = orjson.loads(b"[" + body.replace(b"\n", b",") + b"]")
        if isinstance(rows, list) and len(rows) == body.count(b"\n") + 1:
            return rows, []
    except orjson.JSONDecodeError:
        pass
    rows, bad = [], []
    for offset, raw in enumerate(body.split(b"\n")):
        if not raw.strip():
            continue
        try:
            rows.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            bad.append(first_line + offset)
    return rows, bad


PARALLEL_MIN_BYTES = 32 << 20  # below this, one process reads faster than a pool starts


@dataclass
class _Part:
    """What one reader of a byte range found."""

    table: SampleTable
    lines: int
    skipped: int
    bad: list[int]
    truncated: bool


def _load_range(path: str, start: int, end: int | None) -> _Part:
    builder = _TableBuilder()
    skipped = 0
    bad_lines: list[int] = []
    truncated = False
    lines = 0
    with _no_gc():
        for rows, bad, cut in _iter_chunks(Path(path), start, end, 1, _decode_tuples):
            builder.add(rows)
            skipped += len(bad)
            bad_lines.extend(bad[: max(0, 10 - len(bad_lines))])
            truncated = truncated or cut
    if end is not None or start:
        with open(path, "rb") as fh:  # line count of the range, for global line numbers
            fh.seek(start)
            todo = -1 if end is None else end - start
            while todo != 0 and (block := fh.read(_CHUNK if todo < 0 else min(_CHUNK, todo))):
                lines += block.count(b"\n")
                todo = todo - len(block) if todo > 0 else todo
    return _Part(builder.table(), lines, skipped, bad_lines, truncated)


def _ranges(path: Path, size: int, parts: int) -> list[tuple[int, int | None]]:
    """Split a file into ``parts`` byte ranges that start at line starts."""
    bounds = [0]
    with open(path, "rb") as fh:
        for k in range(1, parts):
            fh.seek(size * k // parts)
            fh.readline()  # move to the next line start
            bounds.append(max(fh.tell(), bounds[-1]))
    ends: list[int | None] = [*bounds[1:], None]
    return [(a, b) for a, b in zip(bounds, ends, strict=True) if b is None or b > a]


def _merge(parts: list[_Part]) -> tuple[SampleTable, int, list[int], bool]:
    """Concatenate range tables in file order, re-coding categories."""
    out = _TableBuilder()
    t = out.t
    offset = 0
    skipped = 0
    bad: list[int] = []
    truncated = False
    for part in parts:
        p = part.table
        gmap = [out._codes([key], out._group_codes, t.groups)[0] for key in p.groups]
        emap = [out._codes([key], out._error_codes, t.error_classes)[0] for key in p.error_classes]
        smap = [out._codes([key], out._stage_codes, t.stages)[0] for key in p.stages]
        tmap = [out._codes([key], out._source_codes, t.token_sources)[0] for key in p.token_sources]
        kmap = [out._codes([key], out._session_codes, t.sessions)[0] for key in p.sessions]
        t.session.extend(array("q", [kmap[k] if k >= 0 else -1 for k in p.session]))
        t.group.extend(array("H", [gmap[g] for g in p.group]))
        t.error.extend(array("H", [emap[e] for e in p.error]))
        t.stage.extend(array("H", [smap[x] for x in p.stage]))
        t.source.extend(array("H", [tmap[x] for x in p.source]))
        t.warmup.extend(p.warmup)
        t.user_clock.extend(p.user_clock)
        for name, col in p.floats.items():
            t.floats[name].extend(col)
        for name, col in p.ints.items():
            t.ints[name].extend(col)
        for (g, cls, msg, warm), count in p.error_details.items():
            key = (gmap[g], cls, msg, warm)
            t.error_details[key] = t.error_details.get(key, 0) + count
        for (g, tag, warm), count in p.anomalies.items():
            key2 = (gmap[g], tag, warm)
            t.anomalies[key2] = t.anomalies.get(key2, 0) + count
        for (g, warm), count in p.checked.items():
            key3 = (gmap[g], warm)
            t.checked[key3] = t.checked.get(key3, 0) + count
        for (g, name, warm), count in p.broken.items():
            key4 = (gmap[g], name, warm)
            t.broken[key4] = t.broken.get(key4, 0) + count
        for g, texts in p.excerpts.items():
            kept = t.excerpts.setdefault(gmap[g], [])
            kept.extend(texts[: max(0, _MAX_EXCERPTS - len(kept))])
        t.scenarios.extend(x for x in p.scenarios if x not in t.scenarios)
        skipped += part.skipped
        bad.extend(n + offset for n in part.bad[: max(0, 10 - len(bad))])
        truncated = truncated or part.truncated
        offset += part.lines
    return t, skipped, bad, truncated


def load_samples(
    path: Path, *, processes: int | None = None
) -> tuple[SampleTable, int, list[int], bool]:
    """Parse ``samples.jsonl`` into a :class:`SampleTable`: (table, skipped, first bad, cut).

    Large files are read by one process per CPU (at most 4), each parsing a byte range into
    columns that are then concatenated: parsing JSON is the bulk of a report's time.
    """
    size = path.stat().st_size if path.exists() else 0
    if processes is None:
        processes = min(4, os.cpu_count() or 1) if size >= PARALLEL_MIN_BYTES else 1
    if processes > 1:
        try:
            return _load_parallel(path, size, processes)
        except (OSError, RuntimeError, ValueError, BrokenProcessPool):
            pass  # no fork here, or a pool that could not start: read in this process
    part = _load_range(str(path), 0, None)
    return part.table, part.skipped, part.bad, part.truncated


def _load_parallel(
    path: Path, size: int, processes: int
) -> tuple[SampleTable, int, list[int], bool]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ranges = _ranges(path, size, processes)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(len(ranges), mp_context=context) as pool:
        futures = [pool.submit(_load_range, str(path), a, b) for a, b in ranges]
        parts = [f.result() for f in futures]
    return _merge(parts)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing creates millions of acyclic dicts, and
    the collections it triggers would otherwise double the load time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
