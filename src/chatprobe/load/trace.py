"""Trace replay: open-loop arrivals read from a trace file, each request built to its lengths.

A trace is one request per line with its arrival time, input length and output length, and
optionally a session id and shared-prefix hashes. Three layouts are read (``--trace-format``,
or detected from the first line):

``jsonl`` (chatprobe's)
    ``{"timestamp": 12.5, "input_tokens": 900, "output_tokens": 120, "session": "u7",
    "hash_ids": [4, 9]}``: ``timestamp`` in seconds (any origin), ``session`` and
    ``hash_ids`` optional.
``mooncake`` (the Mooncake / FAST'25 traces)
    ``{"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47]}``:
    ``timestamp`` in milliseconds, one hash per block of 512 tokens; ``session_id`` when
    present.
``burstgpt`` (the BurstGPT CSV files)
    ``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type``: ``Timestamp``
    in seconds; ``Model`` is not used (the scenario's targets are); rows whose ``Response
    tokens`` is 0 (requests that failed in the original service) are skipped and counted.

Times are taken relative to the earliest request and divided by the speed (``--speed 2x``
replays twice as fast). Each request is sent at its trace time, whatever the responses do
(open loop); its sample's ``t_offset_s`` is that scheduled time and ``lag_ms`` how late it
really went out.

Prompts are built to the input length with chatprobe's tokenizer (:mod:`chatprobe.tokens`):
a request with ``hash_ids`` is the concatenation of one block of ``block_tokens`` tokens per
hash (the same hash, the same text, in every request), the last block cut to the length; so
requests whose hashes start alike share that prefix, as the original service's prefix
cache saw them. Without hashes, the requests of one session share the session's text as
their prefix (each request longer or shorter, as its length says); a request on its own gets
text of its own. ``max_tokens`` is the output length.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from chatprobe.errors import ConfigError
from chatprobe.tokens import text_of_tokens

__all__ = [
    "DEFAULT_BLOCK_TOKENS",
    "TRACE_FORMATS",
    "Trace",
    "TracePrompts",
    "TraceRequest",
    "detect_format",
    "load_trace",
    "parse_speed",
]

TRACE_FORMATS = ("jsonl", "mooncake", "burstgpt")
DEFAULT_BLOCK_TOKENS = 512  # Mooncake's block size: one hash per 512 tokens
BURSTGPT_COLUMNS = ("Timestamp", "Request tokens", "Response tokens")
_SPEED = re.compile(r"^\s*x?\s*(\d+(?:\.\d+)?|\.\d+)\s*x?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """One line of a trace: when (seconds from the first request, before scaling) and what."""

    t_s: float
    input_tokens: int
    output_tokens: int
    session: str | None = None
    hash_ids: tuple[str, ...] = ()
    turn: int | None = None  # place in its session, from 1 (None: no session)


@dataclass(frozen=True, slots=True)
class Trace:
    """A trace read and scaled: what a run plan carries to the load processes."""

    path: str
    format: str
    speed: float
    block_tokens: int
    requests: tuple[TraceRequest, ...]
    skipped: int = 0  # lines left out (BurstGPT's failed rows)

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last arrival, at the replay's speed."""
        return self.requests[-1].t_s / self.speed if self.requests else 0.0

    def offset_s(self, request: TraceRequest) -> float:
        """When ``request`` is due, in seconds from the run start."""
        return request.t_s / self.speed

    def head(self, count: int | None = None, until_s: float | None = None) -> Trace:
        """The first ``count`` requests, or those due before ``until_s`` (scaled)."""
        kept = self.requests
        if until_s is not None:
            kept = tuple(r for r in kept if self.offset_s(r) < until_s)
        if count is not None:
            kept = kept[:count]
        from dataclasses import replace

        return replace(self, requests=kept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "speed": self.speed,
            "block_tokens": self.block_tokens,
            "skipped": self.skipped,
            "requests": [
                [r.t_s, r.input_tokens, r.output_tokens, r.session, list(r.hash_ids), r.turn]
                for r in self.requests
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trace:
        return cls(
            path=str(data["path"]),
            format=str(data["format"]),
            speed=float(data["speed"]),
            block_tokens=int(data["block_tokens"]),
            skipped=int(data.get("skipped", 0)),
            requests=tuple(
                TraceRequest(float(t), int(i), int(o), s, tuple(h), turn)
                for t, i, o, s, h, turn in data["requests"]
            ),
        )

    def describe(self) -> str:
        return (
            f"{len(self.requests)} requests over {self.span_s:.3g} s "
            f"({self.format}, {self.speed:g}x)"
        )


def parse_speed(value: Any, *, what: str = "--speed") -> float:
    """``2x``, ``2``, ``0.5x`` -> 2.0, 2.0, 0.5: how many times faster than recorded."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        speed = float(value)
    else:
        match = _SPEED.match(str(value))
        if not match:
            raise ConfigError(f"expected a speed such as 2x or 0.5x, got {value!r}", field=what)
        speed = float(match.group(1))
    if not speed > 0:
        raise ConfigError(f"must be more than 0, got {value!r}", field=what)
    return speed


# ---------------------------------------------------------------------------- reading


def detect_format(path: Path, first_line: str) -> str:
    """The layout of a trace from its first non-empty line."""
    line = first_line.lstrip("\ufeff").strip()
    if line.startswith("{"):
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"not JSON: {exc}", path=str(path), line=1) from None
        if isinstance(item, dict) and "input_length" in item:
            return "mooncake"
        return "jsonl"
    header = [c.strip() for c in line.split(",")]
    if all(name in header for name in BURSTGPT_COLUMNS):
        return "burstgpt"
    raise ConfigError(
        "not a trace this version reads: expected JSON lines (chatprobe's or Mooncake's) "
        "or a BurstGPT CSV header (Timestamp,Model,Request tokens,Response tokens,...)",
        path=str(path),
        line=1,
    )


def load_trace(
    path: str | Path,
    fmt: str = "auto",
    *,
    speed: float = 1.0,
    block_tokens: int | None = None,
) -> Trace:
    """Read a trace file; every mistake is a ConfigError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the trace: {exc.strerror or exc}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", path=str(path)) from None
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise ConfigError("the trace holds no request", path=str(path))
    if fmt == "auto":
        fmt = detect_format(path, first)
    if fmt not in TRACE_FORMATS:
        raise ConfigError(
            f"unknown trace format {fmt!r} (known: auto, {', '.join(TRACE_FORMATS)})",
            field="--trace-format",
        )
    skipped = 0
    if fmt == "burstgpt":
        rows, skipped = _burstgpt(path, text)
    else:
        rows = list(_json_lines(path, text, mooncake=fmt == "mooncake"))
    if not rows:
        raise ConfigError("the trace holds no request", path=str(path))
    rows.sort(key=lambda r: r[0])  # stable: lines of one time keep their order
    origin = rows[0][0]
    turns: dict[str, int] = {}
    requests = []
    for t, tokens_in, tokens_out, session, hashes in rows:
        turn = None
        if session is not None:
            turn = turns[session] = turns.get(session, 0) + 1
        requests.append(TraceRequest(t - origin, tokens_in, tokens_out, session, hashes, turn))
    block = block_tokens or DEFAULT_BLOCK_TOKENS
    if block < 1:
        raise ConfigError("must be at least 1", field="block_tokens")
    return Trace(str(path), fmt, speed, block, tuple(requests), skipped)


_Row = tuple[float, int, int, str | None, tuple[str, ...]]


def _json_lines(path: Path, text: str, *, mooncake: bool) -> Iterator[_Row]:
    names = (
        ("timestamp", "input_length", "output_length", "session_id")
        if mooncake
        else ("timestamp", "input_tokens", "output_tokens", "session")
    )
    scale = 0.001 if mooncake else 1.0  # Mooncake's timestamps are milliseconds
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"not JSON: {exc}", path=str(path), line=number) from None
        if not isinstance(item, dict):
            raise ConfigError("expected a JSON object", path=str(path), line=number)

        where = (str(path), number)
        t = _number(item, names[0], float, 0, where) * scale
        tokens_in = int(_number(item, names[1], int, 1, where))
        tokens_out = int(_number(item, names[2], int, 1, where))
        session = item.get(names[3])
        if session is not None and not isinstance(session, str | int):
            raise ConfigError(
                "expected a string or an integer", path=str(path), line=number, field=names[3]
            )
        hashes = item.get("hash_ids") or []
        if not isinstance(hashes, list) or not all(
            isinstance(h, str | int) and not isinstance(h, bool) for h in hashes
        ):
            raise ConfigError(
                "expected a list of integers or strings",
                path=str(path),
                line=number,
                field="hash_ids",
            )
        yield (
            t,
            tokens_in,
            tokens_out,
            None if session is None else str(session),
            tuple(str(h) for h in hashes),
        )


def _number(
    item: Mapping[str, Any], name: str, kind: type, minimum: float, where: tuple[str, int]
) -> float:
    raw = item.get(name)
    if (
        isinstance(raw, int | float)
        and not isinstance(raw, bool)
        and raw >= minimum
        and (kind is float or raw == int(raw))
    ):
        return float(raw)
    what = "an integer" if kind is int else "a number"
    raise ConfigError(
        f"expected {what} >= {minimum:g}, got {raw!r}", path=where[0], line=where[1], field=name
    )


def _burstgpt(path: Path, text: str) -> tuple[list[_Row], int]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in BURSTGPT_COLUMNS if c not in header]
    if missing:
        raise ConfigError(f"missing column(s): {', '.join(missing)}", path=str(path), line=1)
    rows: list[_Row] = []
    skipped = 0
    for record in reader:
        number = reader.line_num
        try:
            t = float(record["Timestamp"])
            tokens_in = int(float(record["Request tokens"]))
            tokens_out = int(float(record["Response tokens"]))
        except (TypeError, ValueError):
            raise ConfigError(
                "Timestamp, Request tokens and Response tokens must be numbers",
                path=str(path),
                line=number,
            ) from None
        if t < 0 or tokens_in < 0 or tokens_out < 0:
            raise ConfigError("negative value", path=str(path), line=number)
        if tokens_out == 0 or tokens_in == 0:
            skipped += 1  # failed in the original service: nothing to replay
            continue
        rows.append((t, tokens_in, tokens_out, None, ()))
    return rows, skipped


# ---------------------------------------------------------------------------- prompts


class TracePrompts:
    """Prompt text for trace requests, shared where the trace says prefixes are shared."""

    def __init__(self, seed: int, block_tokens: int) -> None:
        self.seed = seed
        self.block_tokens = block_tokens
        # One block's text per hash; bounded so a long trace's unique hashes do not pile up.
        self._block = lru_cache(maxsize=4096)(self._make_block)

    def _make_block(self, hash_id: str) -> str:
        rng = random.Random(f"trace-block:{self.seed}:{hash_id}")
        return text_of_tokens(self.block_tokens, rng)

    def text(self, request: TraceRequest, index: int) -> str:
        """The prompt of ``request`` (the ``index``-th of the trace): exactly its input length
        in tokens (pieces of whole one-token words joined by spaces, so lengths add up)."""
        want = request.input_tokens
        parts: list[str] = []
        used = 0
        for hash_id in request.hash_ids:
            if used >= want:
                break
            take = min(self.block_tokens, want - used)
            if take == self.block_tokens:
                parts.append(self._block(hash_id))
            else:  # the last block, cut: the same seed gives (nearly) its beginning
                rng = random.Random(f"trace-block:{self.seed}:{hash_id}")
                parts.append(text_of_tokens(take, rng))
            used += take
        if used < want:
            if request.session is not None and not request.hash_ids:
                rng = random.Random(f"trace-session:{self.seed}:{request.session}")
            else:
                rng = random.Random(f"trace-request:{self.seed}:{index}")
            parts.append(text_of_tokens(want - used, rng))
        return " ".join(parts)

    def messages(self, request: TraceRequest, index: int) -> list[dict[str, Any]]:
        return [{"role": "user", "content": self.text(request, index)}]


def shard(trace: Trace, worker_index: int, drivers: int) -> Iterator[tuple[int, TraceRequest]]:
    """This load process's share of the trace: every ``drivers``-th request, in time order."""
    for index, request in enumerate(trace.requests):
        if index % max(1, drivers) == worker_index % max(1, drivers):
            yield index, request
