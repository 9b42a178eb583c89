"""Every vcrpy call chatprobe makes, in one place.

Cassettes live at ``cassettes/<provider>/<suite>/<case>--<model>.yaml``, one exchange each.
Requests are matched on method, path and body, the body compared as JSON when both sides parse
(key order and whitespace do not matter), so a changed case is a missing recording rather than
a silently replayed stale answer.

Secrets never reach the disk, in three layers:

1. ``before_record_request`` / ``before_record_response`` redact credential headers
   (``Authorization``, ``api-key``, cookies; :data:`chatprobe.scrub.SENSITIVE_HEADERS`) and scrub
   registered secrets and key-shaped strings from URIs, header values and bodies, in requests
   and responses alike;
2. the persister scrubs the serialized cassette text once more before writing it;
3. it writes to a temporary file and renames it into place, so an interrupted run never leaves
   half a cassette.

Recorded timing: vcrpy reads a whole response before the client sees it, so a cassette
would keep the bytes but not when they came. While recording, each interaction's response
also gets ``chatprobe_timing`` (:data:`TIMING_KEY`), the arrival of every piece of its body
as the connection pool stamped it (:class:`chatprobe.client.ResponseTiming`)::

    chatprobe_timing:
      version: 1
      head_ms: 41.2          # response head in, ms after the request was sent
      chunks:                # [ms after the request was sent, bytes of body.string]
      - [43.012, 25]
      - [93.5, 301]

Sizes count the body as stored (decoded, UTF-8); a compressed response's sizes are mapped
onto it. Only numbers are stored, so scrubbing has nothing to remove; should scrubbing
change the body's length, the reader stretches the sizes to fit (:func:`chunk_bounds`).
vcrpy ignores the extra key, so older versions read these cassettes, and cassettes without
it are read as untimed. ``chatprobe emulate --replay`` serves them with this timing.

Recording against the emulator rewrites the request URI to the provider's real base URL (the
emulator serves each provider under the real path, so only the origin changes) and stores
``metadata: {chatprobe: {recorded_from: emulator, ...}}`` in the cassette, so reports can say
"replayed (emulated recording)".
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from chatprobe.errors import CassetteError
from chatprobe.record import RequestRecord, TimedEvent
from chatprobe.scrub import REDACTED, SENSITIVE_HEADERS, scrub_text

__all__ = [
    "META_KEY",
    "RECORD_MODES",
    "TIMING_KEY",
    "Interaction",
    "Session",
    "cassette_metadata",
    "chunk_bounds",
    "json_body_matcher",
    "read_interactions",
    "recorded_record",
]

RECORD_MODES = ("none", "once", "new_episodes", "all")
META_KEY = "chatprobe"
TIMING_KEY = "chatprobe_timing"
TIMING_VERSION = 1


def _text_body(body: Any) -> Any:
    """Scrub a body given as bytes or str; binary that is not UTF-8 is kept as it is."""
    if isinstance(body, bytes):
        try:
            return scrub_text(body.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            return body
    if isinstance(body, str):
        return scrub_text(body)
    return body


def json_body_matcher(r1: Any, r2: Any) -> None:
    """vcrpy matcher: bodies equal as JSON when both parse, else byte for byte."""
    b1, b2 = _as_bytes(r1.body), _as_bytes(r2.body)
    if b1 == b2:
        return
    try:
        if orjson.loads(b1) == orjson.loads(b2):
            return
    except orjson.JSONDecodeError:
        pass
    raise AssertionError(f"bodies differ: {b1[:120]!r} != {b2[:120]!r}")


def _as_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


class _ScrubbingPersister:
    """vcrpy persister: readable errors on load; scrubbed, atomic writes on save."""

    @classmethod
    def load_cassette(cls, cassette_path: str | Path, serializer: Any) -> Any:
        from vcr.persisters.filesystem import CassetteNotFoundError
        from vcr.serialize import deserialize

        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        try:
            data = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CassetteError(f"{path}: cannot read cassette: {exc}") from None
        if not data.strip():
            raise CassetteNotFoundError()
        try:
            return deserialize(data, serializer)
        except Exception as exc:  # yaml errors, missing keys, old formats
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            mark = getattr(exc, "problem_mark", None) or getattr(
                exc.__context__, "problem_mark", None
            )
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise CassetteError(
                f"{where}: corrupt cassette ({type(exc).__name__}: {detail}); delete it and "
                "record again"
            ) from None

    @staticmethod
    def save_cassette(cassette_path: str | Path, cassette_dict: Any, serializer: Any) -> None:
        from vcr.serialize import serialize

        text = scrub_text(serialize(cassette_dict, serializer))
        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; cassettes are ordinary project files
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class Session:
    """vcrpy configured for one run: record mode and where the recorded URIs should point.

    ``rewrite`` maps an emulator origin (``http://127.0.0.1:PORT``) to the provider's real
    origin (``https://api.aimlapi.com``); requests are stored under the real one.
    """

    def __init__(self, record_mode: str = "none") -> None:
        import vcr

        if record_mode not in RECORD_MODES:
            raise ValueError(f"record mode {record_mode!r} (known: {', '.join(RECORD_MODES)})")
        self.record_mode = record_mode
        self.rewrite: dict[str, str] = {}
        from vcr.patch import PATCHER_NAMES

        self._vcr = vcr.VCR(
            serializer="yaml",
            # chatprobe speaks httpx only; building the other libraries' patches per cassette
            # was a third of the replay time
            skip_patchers=tuple(name for name in PATCHER_NAMES if name != "httpx"),
            record_mode=record_mode,
            match_on=["method", "path", "json_body"],
            before_record_request=self._request,
            before_record_response=self._response,
            decode_compressed_response=True,
        )
        self._vcr.register_matcher("json_body", json_body_matcher)
        self._vcr.register_persister(_ScrubbingPersister)

    # ------------------------------------------------------------------ hooks
    def _request(self, request: Any) -> Any:
        """A scrubbed copy of a vcrpy request (vcrpy calls this on every match and append)."""
        from vcr.request import Request

        uri = self._uri(request.uri)
        host = urlsplit(uri).netloc
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            if name.lower() == "host":
                headers[name] = host  # the real provider's, after a rewrite
            elif name.lower() in SENSITIVE_HEADERS:
                headers[name] = REDACTED
            else:
                headers[name] = scrub_text(str(value))
        return Request(request.method, uri, _text_body(request.body), headers)

    def _uri(self, uri: str) -> str:
        parts = urlsplit(uri)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin in self.rewrite:
            real = urlsplit(self.rewrite[origin])
            parts = parts._replace(scheme=real.scheme, netloc=real.netloc)
        return scrub_text(urlunsplit(parts))

    def _response(self, response: dict[str, Any]) -> dict[str, Any]:
        response = copy.deepcopy(response)
        headers = response.get("headers") or {}
        for name in list(headers):
            values = headers[name] if isinstance(headers[name], list) else [headers[name]]
            if name.lower() in SENSITIVE_HEADERS:
                headers[name] = [REDACTED for _ in values]
            else:
                headers[name] = [scrub_text(str(v)) for v in values]
        body = response.get("body") or {}
        if "string" in body:
            body["string"] = _text_body(body["string"])
        from chatprobe.client import take_response_timing

        timing = take_response_timing()  # None while a cassette loads: nothing was read
        if timing is not None:
            response[TIMING_KEY] = _timing_entry(timing, _as_bytes(body.get("string")))
        return response

    # ------------------------------------------------------------------ use
    @contextmanager
    def use(self, path: Path, metadata: dict[str, Any] | None = None) -> Iterator[Any]:
        """Activate ``path``; when recording, store ``metadata`` under ``chatprobe``."""
        from vcr.errors import MissingMetadataError

        from chatprobe.client import take_response_timing

        take_response_timing()  # a response read before this cassette is not one of its own
        with self._vcr.use_cassette(str(path)) as cassette:
            if metadata is not None and self.record_mode != "none":
                try:
                    stored = cassette.get_metadata(META_KEY, {})
                except MissingMetadataError:  # a write-protected cassette from plain vcrpy
                    stored = None
                fresh = self.record_mode == "all" or not len(cassette)
                if stored is not None and stored != metadata and fresh:
                    stored.clear()
                    stored.update(metadata)
                    cassette.dirty = True
            yield cassette


def cassette_metadata(cassette: Any) -> dict[str, Any]:
    """The ``chatprobe`` metadata of a loaded cassette ({} for a plain vcrpy cassette)."""
    from vcr.errors import MissingMetadataError

    try:
        value = cassette.get_metadata(META_KEY, {})
    except MissingMetadataError:
        return {}
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------------------- timing


def _timing_entry(timing: Any, body: bytes) -> dict[str, Any]:
    """The ``chatprobe_timing`` of one response (see the module docstring)."""
    del body  # sizes are stretched onto the stored body when read (chunk_bounds)
    return {
        "version": TIMING_VERSION,
        "head_ms": round(timing.head_ns / 1e6, 3),
        "chunks": [[round(t / 1e6, 3), size] for t, size in timing.chunks if size],
    }


@dataclass(frozen=True, slots=True)
class Interaction:
    """One recorded exchange, as a replay needs it (bodies as bytes)."""

    method: str
    uri: str
    request_body: bytes
    status: int
    headers: tuple[tuple[str, str], ...]  # as recorded, several values kept in order
    body: bytes
    timing: dict[str, Any] | None  # chatprobe_timing, None for an untimed recording
    source: str  # file and position, for messages


def read_interactions(path: Path) -> list[Interaction]:
    """The interactions of one cassette file (raises :class:`CassetteError` when it is not
    a readable cassette)."""
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CassetteError(f"{path}: cannot read cassette: {exc}") from None
    try:
        loaded = deserialize(text, yamlserializer)
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CassetteError(f"{path}: not a cassette ({type(exc).__name__}: {detail})") from None
    requests, responses = loaded[0], loaded[1]
    out = []
    for k, (request, response) in enumerate(zip(requests, responses, strict=False)):
        if not isinstance(response, dict):
            continue
        status = response.get("status") or {}
        code = status.get("code") if isinstance(status, dict) else status
        headers: list[tuple[str, str]] = []
        for name, values in (response.get("headers") or {}).items():
            for value in values if isinstance(values, list) else [values]:
                headers.append((str(name), str(value)))
        timing = response.get(TIMING_KEY)
        out.append(
            Interaction(
                method=str(request.method).upper(),
                uri=str(request.uri),
                request_body=_as_bytes(request.body),
                status=int(code) if isinstance(code, int) else 200,
                headers=tuple(headers),
                body=_as_bytes((response.get("body") or {}).get("string")),
                timing=timing if _valid_timing(timing) else None,
                source=f"{path}#{k + 1}",
            )
        )
    return out


def _valid_timing(timing: Any) -> bool:
    if not isinstance(timing, dict) or not isinstance(timing.get("chunks"), list):
        return False
    head = timing.get("head_ms")
    if not isinstance(head, int | float) or head < 0:
        return False
    return all(
        isinstance(c, list)
        and len(c) == 2
        and isinstance(c[0], int | float)
        and isinstance(c[1], int)
        and c[0] >= 0
        and c[1] >= 0
        for c in timing["chunks"]
    )


def chunk_bounds(timing: dict[str, Any], body_length: int) -> list[tuple[float, int]]:
    """``(offset_ms, end)`` per recorded piece: the body's bytes up to ``end`` had arrived
    by ``offset_ms``. Offsets never go back; the last piece ends at ``body_length``. When the
    recorded sizes do not add up to the body (scrubbing changed its length, or a compressed
    body was counted as sent), the ends are stretched in proportion."""
    chunks = timing["chunks"]
    total = sum(size for _, size in chunks)
    out: list[tuple[float, int]] = []
    seen = 0
    last = float(timing.get("head_ms") or 0.0)
    for offset, size in chunks:
        seen += size
        end = seen if total == body_length or not total else round(seen * body_length / total)
        last = max(last, float(offset))
        out.append((last, min(end, body_length)))
    if not out or out[-1][1] < body_length:
        out.append((last, body_length))
    return out


def recorded_record(interaction: Interaction) -> RequestRecord:
    """The finished record of a recording as its client saw it arrive: the body fed to the
    SSE decoder piece by piece, each stamped at its recorded offset (t0 = 0, the send).
    An untimed recording arrives all at once, at 0."""
    from chatprobe.sse import SSEDecoder

    try:
        sent = orjson.loads(interaction.request_body) if interaction.request_body else None
    except orjson.JSONDecodeError:
        sent = None
    record = RequestRecord(
        method=interaction.method,
        url=interaction.uri,
        stream=isinstance(sent, dict) and sent.get("stream") is True,
        status=interaction.status,
        t0_ns=0,
    )
    record.response_headers = {name.lower(): value for name, value in interaction.headers}
    body, timing = interaction.body, interaction.timing
    bounds = chunk_bounds(timing, len(body)) if timing else [(0.0, len(body))]
    record.t_headers_ns = int(float(timing["head_ms"]) * 1e6) if timing else 0
    end_ns = record.t_headers_ns
    if record.content_type == "text/event-stream":
        decoder = SSEDecoder()
        start = 0
        for offset, end in bounds:
            end_ns = int(offset * 1e6)
            record.events += [TimedEvent(end_ns, item) for item in decoder.decode(body[start:end])]
            start = max(start, end)
        record.events += [TimedEvent(end_ns, item) for item in decoder.flush()]
    else:
        record.body = body
        end_ns = int(bounds[-1][0] * 1e6)
    record.t_end_ns = end_ns
    return record.finish()
