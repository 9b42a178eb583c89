"""Results folders: written by every run, read by reports (see ``docs/results-format.md``).

Writing is crash-safe: JSON files go to ``name.tmp`` and are renamed into place
(:func:`write_json_atomic`), and ``samples.jsonl`` is appended and flushed one line at a time
(:class:`JsonlAppender`, :func:`append_jsonl`), so a run killed at any moment leaves a folder
that :func:`load_results` reads. Everything written is scrubbed of secrets first.

Reading is streaming and compact: ``samples.jsonl`` is decoded in 4 MiB chunks (msgspec,
typed, reading only the fields a report uses) into typed columns (:class:`SampleTable`,
``array`` of doubles and ints, categories as small codes) instead of a list of dicts, so a
million samples fit in a few hundred megabytes; large files are read by several processes
over byte ranges. A truncated last line (the run was interrupted mid-write) and any corrupt
line are skipped and counted, never fatal.

A run made of several commands (``chatprobe run`` = checks + load) shares one *group* id:
:func:`write_meta` copies ``$CHATPROBE_RUN_GROUP`` into ``meta.json``, and
:func:`latest_run_folders` returns every folder of the newest group.
"""

from __future__ import annotations

import contextlib
import gc
import math
import operator
import os
import platform
import secrets
import socket
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson

from chatprobe.errors import ConfigError
from chatprobe.paths import RESULTS_ENV, results_dir
from chatprobe.scrub import scrub_obj, scrub_text

__all__ = [
    "CONTRACT",
    "GROUP_ENV",
    "META",
    "RESULTS_ENV",
    "SAMPLES",
    "SCHEMA_VERSION",
    "SUMMARY",
    "JsonlAppender",
    "Results",
    "SampleTable",
    "append_jsonl",
    "find_run_folders",
    "finish_meta",
    "iter_sample_batches",
    "latest_run_folders",
    "load_results",
    "load_samples",
    "machine_info",
    "new_run_dir",
    "new_run_id",
    "read_meta",
    "results_root",
    "utc_now_iso",
    "write_json_atomic",
    "write_meta",
    "write_text_atomic",
]

SCHEMA_VERSION = 1
GROUP_ENV = "CHATPROBE_RUN_GROUP"  # set by `chatprobe run` so its parts share one group id

META = "meta.json"
SAMPLES = "samples.jsonl"
SUMMARY = "summary.json"
CONTRACT = "contract.json"

_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


# ---------------------------------------------------------------------------- writing


def utc_now_iso() -> str:
    """Now as ISO 8601 UTC with seconds, e.g. ``2025-04-09T16:53:23Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def results_root() -> Path:
    """``$CHATPROBE_RESULTS`` when set, else the project's ``paths.results``
    (:func:`chatprobe.paths.results_dir`; ``./results`` outside a project)."""
    return results_dir()


def new_run_id(now: float | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<4 hex>`` in UTC: sorts by time, unique across parallel runs."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return f"{stamp:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def new_run_dir(root: Path | str | None = None, run_id: str | None = None) -> Path:
    """Create and return ``<root>/<run-id>/`` (root defaults to :func:`results_root`)."""
    base = Path(root) if root is not None else results_root()
    base.mkdir(parents=True, exist_ok=True)
    for _ in range(20):
        path = base / (run_id or new_run_id())
        try:
            path.mkdir()
            return path
        except FileExistsError:
            if run_id is not None:
                raise ConfigError("results folder already exists", path=str(path)) from None
    raise ConfigError("could not create a fresh results folder", path=str(base))


def write_text_atomic(path: Path | str, text: str | bytes) -> Path:
    """Write to ``path.tmp``, flush to disk, rename over ``path``: readers never see half."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    data = text.encode() if isinstance(text, str) else text
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def write_json_atomic(path: Path | str, obj: Any, *, scrub: bool = True) -> Path:
    """Scrub secrets from ``obj`` and write it as indented JSON, atomically."""
    data = scrub_obj(obj) if scrub else obj
    return write_text_atomic(path, orjson.dumps(data, option=_OPTS) + b"\n")


def _jsonl_line(row: Mapping[str, Any], scrub: bool) -> bytes:
    return orjson.dumps(scrub_obj(dict(row)) if scrub else row, option=orjson.OPT_NON_STR_KEYS)


class JsonlAppender:
    """Appends one JSON object per line and flushes each, so an interrupt loses at most the
    line being written (which :func:`load_results` then skips and counts).

    Strings are scrubbed unless ``scrub=False`` (for rows already scrubbed upstream, such as
    ``RequestRecord.to_sample()`` of a scrubbed record, on a hot path).
    """

    def __init__(self, path: Path | str, *, scrub: bool = True) -> None:
        self.path = Path(path)
        self.scrub = scrub
        self.count = 0
        self._fh: IO[bytes] | None = open(self.path, "ab")  # noqa: SIM115 (closed in close())

    def write(self, row: Mapping[str, Any]) -> None:
        if self._fh is None:
            raise ValueError(f"{self.path} is closed")
        self._fh.write(_jsonl_line(row, self.scrub) + b"\n")
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_jsonl(
    path: Path | str, rows: Mapping[str, Any] | Iterable[Mapping[str, Any]], *, scrub: bool = True
) -> int:
    """Append one row (a mapping) or many rows to a JSON Lines file; returns rows written."""
    with JsonlAppender(path, scrub=scrub) as out:
        for row in [rows] if isinstance(rows, Mapping) else rows:
            out.write(row)
        return out.count


def machine_info() -> dict[str, Any]:
    """Hostname, platform, Python and CPU count, for ``meta.json``."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def write_meta(
    run_dir: Path | str,
    *,
    kind: str,
    data_source: str,
    providers: Iterable[str] = (),
    models: Iterable[str] = (),
    command: list[str] | None = None,
    notes: Iterable[str] = (),
    run_id: str | None = None,
    started_at: str | None = None,
    finished_at: str | None = None,
    interrupted: bool = False,
    group: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write ``meta.json`` at the start of a run (``finished_at`` null) and return it.

    ``command`` defaults to ``sys.argv`` (scrubbed, like everything else written here);
    ``group`` defaults to ``$CHATPROBE_RUN_GROUP``.
    """
    from chatprobe import __version__

    if kind not in ("load", "contract", "run"):
        raise ValueError(f"meta kind must be load, contract or run, not {kind!r}")
    if data_source not in ("emulated", "replayed", "live"):
        raise ValueError(f"data_source must be emulated, replayed or live, not {data_source!r}")
    run_dir = Path(run_dir)
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id or run_dir.name,
        "kind": kind,
        "group": group or os.environ.get(GROUP_ENV) or None,
        "started_at": started_at or utc_now_iso(),
        "finished_at": finished_at,
        "harness_version": __version__,
        "machine": machine_info(),
        "data_source": data_source,
        "command": [scrub_text(a) for a in (command if command is not None else sys.argv)],
        "providers": list(providers),
        "models": list(models),
        "interrupted": interrupted,
        "notes": list(notes),
        **extra,
    }
    write_json_atomic(run_dir / META, meta)
    return meta


def read_meta(run_dir: Path | str) -> dict[str, Any]:
    """The folder's ``meta.json``; a :class:`ConfigError` naming the file if unreadable."""
    path = Path(run_dir) / META
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ConfigError("not a JSON object", path=str(path))
    return data


def finish_meta(
    run_dir: Path | str, *, interrupted: bool = False, notes: Iterable[str] = (), **extra: Any
) -> dict[str, Any]:
    """Stamp ``finished_at`` (and ``interrupted``, extra notes and fields) into ``meta.json``."""
    meta = read_meta(run_dir)
    meta["finished_at"] = utc_now_iso()
    meta["interrupted"] = bool(meta.get("interrupted")) or interrupted
    meta["notes"] = [*meta.get("notes", []), *notes]
    meta.update(extra)
    write_json_atomic(Path(run_dir) / META, meta)
    return meta


# ---------------------------------------------------------------------------- reading

_NAN = math.nan

# Numeric sample columns. Missing or null -> NaN (floats) / -1 (ints).
_FLOAT_COLUMNS = ("t_offset_s", "t_wall", "ttft_ms", "itl_ms", "e2e_ms", "cost")
_INT_COLUMNS = ("output_tokens", "prompt_tokens", "users")
_KEYS = (  # every field a report reads, in the order of the tuples the builder takes
    "provider",
    "model",
    "error_class",
    "stage",
    "users",
    "warmup",
    "token_source",
    "scenario",
    *_FLOAT_COLUMNS,
    *(c for c in _INT_COLUMNS if c != "users"),
    "error_detail",
    "output_excerpt",
)


class _Sample(msgspec.Struct, gc=False):
    """The fields of a sample a report reads. Decoding into it skips every other field
    without building it, about 3x faster than a dict per line; a line that does not fit
    these types sends its chunk to the lenient dict path."""

    provider: str | None = None
    model: str | None = None
    error_class: str | None = None
    stage: str | int | None = None
    users: int | None = None
    warmup: bool | None = None
    token_source: str | None = None
    scenario: str | None = None
    t_offset_s: float | None = None
    t_wall: float | None = None
    ttft_ms: float | None = None
    itl_ms: float | None = None
    e2e_ms: float | None = None
    cost: float | None = None
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    error_detail: str | None = None
    output_excerpt: str | None = None


_DECODER = msgspec.json.Decoder(list[_Sample])
_ATTRS = operator.attrgetter(*_KEYS)


@dataclass
class SampleTable:
    """``samples.jsonl`` as typed columns, one entry per sample.

    ``group[i]`` indexes :attr:`groups` (``(provider, model)``); ``error[i]`` indexes
    :attr:`error_classes` (index 0 is ``""`` = success); ``stage[i]`` indexes :attr:`stages`.
    Missing floats are NaN and missing ints are -1. Error messages and output excerpts are
    kept per group and class with counts, not per sample.
    """

    groups: list[tuple[str, str]] = field(default_factory=list)
    error_classes: list[str] = field(default_factory=lambda: [""])
    stages: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    group: array = field(default_factory=lambda: array("H"))
    error: array = field(default_factory=lambda: array("H"))
    stage: array = field(default_factory=lambda: array("H"))
    warmup: bytearray = field(default_factory=bytearray)
    floats: dict[str, array] = field(
        default_factory=lambda: {name: array("d") for name in _FLOAT_COLUMNS}
    )
    ints: dict[str, array] = field(
        default_factory=lambda: {name: array("q") for name in _INT_COLUMNS}
    )
    token_estimated: array = field(default_factory=lambda: array("q"))  # per group: count
    error_details: dict[tuple[int, str, str], int] = field(default_factory=dict)
    excerpts: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.group)

    def column(self, name: str) -> array:
        """A float or int column by its ``samples.jsonl`` field name."""
        if name in self.floats:
            return self.floats[name]
        return self.ints[name]


_MAX_DETAILS = 2000  # distinct (group, class, message) kept; the rest are counted as "other"
_MAX_EXCERPTS = 3  # output excerpts kept per group


class _TableBuilder:
    """Fills a :class:`SampleTable` from batches of parsed rows."""

    def __init__(self) -> None:
        self.t = SampleTable()
        self._group_codes: dict[tuple[str, str], int] = {}
        self._error_codes: dict[Any, int] = {"": 0, None: 0}
        self._stage_codes: dict[tuple[Any, Any], int] = {}
        self._scenario_seen: set[Any] = set()

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
        t.warmup.extend(map(bool, cols["warmup"]))
        for name in _FLOAT_COLUMNS:
            values = cols[name]
            try:  # build first: a failed extend() would leave a partial column behind
                t.floats[name].extend(array("d", [_NAN if v is None else v for v in values]))
            except TypeError:
                t.floats[name].extend(array("d", [_as_float(v) for v in values]))
        for name in _INT_COLUMNS:
            values = cols[name]
            try:
                t.ints[name].extend(array("q", [-1 if v is None else v for v in values]))
            except (TypeError, OverflowError):
                t.ints[name].extend(array("q", [_as_int(v) for v in values]))
        while len(t.token_estimated) < len(t.groups):
            t.token_estimated.append(0)
        sources = cols["token_source"]
        for g in [g for g, src in zip(groups, sources, strict=True) if src == "estimate"]:
            t.token_estimated[g] += 1
        enames = t.error_classes
        details = cols["error_detail"]
        for k in [k for k, e in enumerate(errors) if e]:
            detail = details[k]
            key = (groups[k], enames[errors[k]], str(detail)[:300] if detail else "")
            if key not in t.error_details and len(t.error_details) >= _MAX_DETAILS:
                key = (groups[k], enames[errors[k]], "(other messages)")
            t.error_details[key] = t.error_details.get(key, 0) + 1
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


@dataclass
class Results:
    """One loaded results folder."""

    path: Path
    meta: dict[str, Any]
    summary: dict[str, Any] | None = None
    contract: dict[str, Any] | None = None
    samples: SampleTable | None = None
    skipped_lines: int = 0  # unparseable lines in samples.jsonl (skipped, counted)
    truncated_tail: bool = False  # the last line was cut off (an interrupted write)
    bad_line_numbers: list[int] = field(default_factory=list)  # the first few, 1-based

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.path.name)

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind") or "")

    @property
    def data_source(self) -> str:
        return str(self.meta.get("data_source") or (self.contract or {}).get("data_source") or "")


def _read_json(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError(f"not valid JSON ({exc.msg})", path=str(path), line=line) from None


def _read_optional(path: Path, what: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object", path=str(path))
    return data


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
    return _Part(builder.t, lines, skipped, bad_lines, truncated)


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
        t.group.extend(array("H", [gmap[g] for g in p.group]))
        t.error.extend(array("H", [emap[e] for e in p.error]))
        t.stage.extend(array("H", [smap[x] for x in p.stage]))
        t.warmup.extend(p.warmup)
        for name, col in p.floats.items():
            t.floats[name].extend(col)
        for name, col in p.ints.items():
            t.ints[name].extend(col)
        while len(t.token_estimated) < len(t.groups):
            t.token_estimated.append(0)
        for g, count in enumerate(p.token_estimated):
            t.token_estimated[gmap[g]] += count
        for (g, cls, msg), count in p.error_details.items():
            key = (gmap[g], cls, msg)
            t.error_details[key] = t.error_details.get(key, 0) + count
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


def load_results(path: Path | str) -> Results:
    """Load one results folder; a :class:`ConfigError` (one line) if it is not readable.

    The folder needs ``meta.json`` and at least one of ``samples.jsonl``, ``summary.json``
    or ``contract.json``. Unparseable sample lines are skipped and counted.
    """
    folder = Path(path)
    if not folder.exists():
        raise ConfigError("results folder not found", path=str(folder))
    if not folder.is_dir():
        raise ConfigError("not a results folder (expected a directory)", path=str(folder))
    if not os.access(folder, os.R_OK | os.X_OK):
        raise ConfigError("results folder is not readable (permission denied)", path=str(folder))
    if not (folder / META).exists():
        raise ConfigError(
            "not a results folder: meta.json is missing (was it written by chatprobe?)",
            path=str(folder),
        )
    meta = read_meta(folder)
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(
            f"unsupported schema_version {version!r} (this chatprobe reads {SCHEMA_VERSION})",
            path=str(folder / META),
            field="schema_version",
        )
    result = Results(path=folder, meta=meta)
    result.summary = _read_optional(folder / SUMMARY, "summary.json")
    result.contract = _read_optional(folder / CONTRACT, "contract.json")
    samples_path = folder / SAMPLES
    if samples_path.exists():
        table, skipped, bad, truncated = load_samples(samples_path)
        result.samples = table
        result.skipped_lines = skipped
        result.bad_line_numbers = bad
        result.truncated_tail = truncated
    if result.samples is None and result.summary is None and result.contract is None:
        raise ConfigError(
            "results folder holds no samples.jsonl, summary.json or contract.json (empty run?)",
            path=str(folder),
        )
    return result


def find_run_folders(root: Path | str) -> list[Path]:
    """Sub-folders of ``root`` that hold a ``meta.json``, oldest first (run ids sort by time)."""
    base = Path(root)
    try:
        entries = list(base.iterdir())
    except FileNotFoundError:
        raise ConfigError("results folder not found", path=str(base)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(base)) from None
    found = [p for p in entries if p.is_dir() and (p / META).is_file()]
    return sorted(found, key=lambda p: (_started(p), p.name))


def _started(folder: Path) -> str:
    try:
        return str(read_meta(folder).get("started_at") or "")
    except ConfigError:
        return ""


def latest_run_folders(root: Path | str | None = None) -> list[Path]:
    """The folders of the last run under ``root``: every folder sharing the newest folder's
    ``group`` (set by ``chatprobe run``); without a group, the newest folder of each kind."""
    base = Path(root) if root is not None else results_root()
    folders = find_run_folders(base)
    if not folders:
        raise ConfigError(
            "no results found (run `chatprobe run`, `chatprobe check` or `chatprobe load` first)",
            path=str(base),
        )
    metas = {}
    for folder in folders:
        try:
            metas[folder] = read_meta(folder)
        except ConfigError:
            continue
    newest = folders[-1]
    group = (metas.get(newest) or {}).get("group")
    if group:
        return [f for f in folders if (metas.get(f) or {}).get("group") == group]
    by_kind: dict[str, Path] = {}
    for folder in folders:
        meta = metas.get(folder) or {}
        if meta.get("group"):
            continue
        by_kind[str(meta.get("kind"))] = folder
    return sorted(by_kind.values(), key=lambda p: (_started(p), p.name)) or [newest]
