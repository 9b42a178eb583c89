"""Recorded streams, served with their recorded timing (``chatprobe emulate --replay``).

A cassette recorded live keeps, for each interaction, when every piece of the response body
arrived after the request was sent (``chatprobe_timing``, :mod:`chatprobe.cassettes`). The
replay serves those pieces, byte for byte, at the same offsets from the moment it has read
a request (divided by ``--replay-speed``: 2 plays twice as fast), so a real provider's
pacing, its chunking and its quirks can be load-tested offline. The emulator's server plays
the answer (:mod:`chatprobe.emulator.server`): a step per piece, on the ``perf_counter``
clock, about a millisecond of timer resolution.

Which recording answers a request (the matching rule):

1. ``POST`` to any path ending in ``/chat/completions``: the recordings of chat requests
   whose body equals this one as JSON; several are served in turn.
2. Otherwise the recordings of the same ``model`` and the same ``stream`` flag (absent =
   false), in turn (round-robin in the order read: files sorted by path, interactions in
   file order), so a load scenario with its own prompts gets the recorded pacing.
3. Otherwise 404, in OpenAI's error envelope, naming the models and modes recorded.

``GET`` on a path ending in ``/models`` serves a recorded models list, else a list of the
recorded model ids. The API key is not checked (cassettes store it redacted). The ground
truth (``/_chatprobe/requests``) records each write as the emulator does; its
``ttft_ms_intended`` is the recorded time to the first token divided by the speed.

Interactions without timing (cassettes recorded before chatprobe kept it, or by plain vcrpy)
are served at once. Status, headers (less the framing ones: content-length,
transfer-encoding, content-encoding, connection, keep-alive, and a recorded
X-Chatprobe-Request-Id, which the replay's own replaces) and body are as recorded; a stream
is sent chunked, one HTTP chunk per recorded piece.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from chatprobe.cassettes import Interaction, chunk_bounds, read_interactions
from chatprobe.emulator.respond import CLOSE, KEEP, Reply, Request
from chatprobe.emulator.truth import (
    ANSWER,
    CONTENT,
    END,
    EVENT,
    HEADERS,
    REASONING,
    TruthLog,
    TruthRecord,
)
from chatprobe.errors import ConfigError
from chatprobe.record import delta_has_output
from chatprobe.sse import ServerSentEvent, SSEDecoder

__all__ = ["ReplayLibrary", "ReplayResponder", "cassette_files"]

_DROPPED = frozenset(
    (
        "content-length",
        "transfer-encoding",
        "content-encoding",
        "connection",
        "keep-alive",
        "x-chatprobe-request-id",  # the replay's own truth id replaces a recorded one
    )
)
_JSON = b"application/json"
_REASONING_KEYS = ("reasoning_content", "reasoning", "reasoning_details")


def cassette_files(paths: Iterable[str | Path]) -> list[Path]:
    """The cassette files named: files as given, folders searched for ``*.yaml``/``*.yml``."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
            if not found:
                raise ConfigError(f"no cassettes (*.yaml) under {path}", field="--replay")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise ConfigError(f"no such file or folder: {path}", field="--replay")
    return out


@dataclass(slots=True)
class _Piece:
    due_ms: float  # from the request read, at speed 1
    data: bytes
    marks: int


@dataclass(slots=True)
class _Recording:
    """One interaction, cut into timed pieces once, at load."""

    interaction: Interaction
    model: str
    stream: bool
    body_key: bytes | None  # the request body as canonical JSON
    head: bytes  # status line and headers, without the request id and the framing end
    head_ms: float
    pieces: list[_Piece]
    chunked: bool
    ttft_ms: float | None  # recorded time to first token (from the request send)


class ReplayLibrary:
    """Recorded interactions indexed for the matching rule (module docstring)."""

    def __init__(self, interactions: list[Interaction]) -> None:
        self.chats: list[_Recording] = []
        self.models_lists: list[Interaction] = []
        self.untimed = 0
        self._by_body: dict[bytes, list[_Recording]] = defaultdict(list)
        self._by_model: dict[tuple[str, bool], list[_Recording]] = defaultdict(list)
        self._turns: dict[Any, itertools.count[int]] = defaultdict(itertools.count)
        for interaction in interactions:
            path = urlsplit(interaction.uri).path.rstrip("/")
            if interaction.method == "GET" and path.endswith("/models"):
                self.models_lists.append(interaction)
            elif interaction.method == "POST" and path.endswith("/chat/completions"):
                recording = _recording(interaction)
                self.chats.append(recording)
                self.untimed += interaction.timing is None
                if recording.body_key is not None:
                    self._by_body[recording.body_key].append(recording)
                self._by_model[(recording.model, recording.stream)].append(recording)

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> ReplayLibrary:
        interactions: list[Interaction] = []
        for path in cassette_files(paths):
            interactions += read_interactions(path)
        library = cls(interactions)
        if not library.chats:
            raise ConfigError(
                "the cassettes hold no recorded chat completion (POST .../chat/completions)",
                field="--replay",
            )
        return library

    def match(self, body: bytes) -> tuple[_Recording | None, str]:
        """The recording that answers a chat request, or None and why not."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            same = self._by_body.get(_canonical(parsed))
            if same:
                return self._next(("body", same[0].body_key), same), ""
            model, stream = str(parsed.get("model", "")), parsed.get("stream") is True
            candidates = self._by_model.get((model, stream))
            if candidates:
                return self._next((model, stream), candidates), ""
            mode = "stream" if stream else "plain"
            return None, f"no recorded interaction for model {model!r} ({mode})"
        return None, "the request body is not a JSON object"

    def recorded(self) -> list[str]:
        """``model (stream|plain) x N`` for every model and mode recorded."""
        return [
            f"{model} ({'stream' if stream else 'plain'}) x {len(items)}"
            for (model, stream), items in self._by_model.items()
        ]

    def _next(self, key: Any, items: list[_Recording]) -> _Recording:
        return items[next(self._turns[key]) % len(items)]


def _canonical(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _recording(interaction: Interaction) -> _Recording:
    try:
        request = orjson.loads(interaction.request_body) if interaction.request_body else None
    except orjson.JSONDecodeError:
        request = None
    request = request if isinstance(request, dict) else {}
    headers = [(n, v) for n, v in interaction.headers if n.lower() not in _DROPPED]
    names = {n.lower() for n, _ in interaction.headers}
    content_type = next((v for n, v in interaction.headers if n.lower() == "content-type"), "")
    chunked = "transfer-encoding" in names or "text/event-stream" in content_type.lower()
    reason = _REASONS.get(interaction.status, "Status")
    head = f"HTTP/1.1 {interaction.status} {reason}\r\n".encode("latin-1")
    head += b"".join(f"{n}: {v}\r\n".encode("latin-1", "replace") for n, v in headers)
    head += b"Transfer-Encoding: chunked\r\n" if chunked else b""
    if not chunked:
        head += b"Content-Length: %d\r\n" % len(interaction.body)
    timing = interaction.timing
    body = interaction.body
    if timing is None:
        head_ms, bounds = 0.0, [(0.0, len(body))]
    else:
        head_ms, bounds = float(timing["head_ms"]), chunk_bounds(timing, len(body))
    pieces, ttft = _pieces(body, bounds, chunked, ok=200 <= interaction.status < 300)
    return _Recording(
        interaction=interaction,
        model=str(request.get("model", "")),
        stream=request.get("stream") is True,
        body_key=_canonical(request) if request else None,
        head=head,
        head_ms=head_ms,
        pieces=pieces,
        chunked=chunked,
        ttft_ms=ttft,
    )


def _pieces(
    body: bytes, bounds: list[tuple[float, int]], chunked: bool, *, ok: bool
) -> tuple[list[_Piece], float | None]:
    """The body cut at the recorded bounds, each piece framed and marked for the truth."""
    decoder = SSEDecoder()
    pieces: list[_Piece] = []
    ttft: float | None = None
    start = 0
    for offset, end in bounds:
        data = body[start:end]
        start = max(start, end)
        if not data:
            continue
        # a plain answer carries its tokens with the body; an error body carries none
        plain = CONTENT | ANSWER if ok else 0
        marks = _marks(decoder.decode(data)) if chunked else plain
        if marks & CONTENT and ttft is None:
            ttft = offset
        framed = b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
        pieces.append(_Piece(offset, framed, marks))
    if chunked:
        pieces.append(_Piece(pieces[-1].due_ms if pieces else 0.0, b"0\r\n\r\n", 0))
    if pieces:
        pieces[-1].marks |= END
    return pieces, ttft


def _marks(events: list[Any]) -> int:
    """Truth marks of the events completed in one piece (as the emulator marks its own)."""
    marks = 0
    for event in events:
        if not isinstance(event, ServerSentEvent):
            continue
        marks |= EVENT
        if event.data[:1] != "{":
            continue
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            continue
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not delta_has_output(delta):
                continue
            assert isinstance(delta, dict)
            marks |= CONTENT
            if any(delta.get(k) for k in _REASONING_KEYS):
                marks |= REASONING
            if delta.get("content") or delta.get("refusal") or delta.get("tool_calls"):
                marks |= ANSWER
    return marks


_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ReplayResponder:
    """Answers requests from a :class:`ReplayLibrary` (the emulator's server plays them)."""

    schedule = None  # no scheduled windows in a replay

    def __init__(self, library: ReplayLibrary, truth: TruthLog, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ConfigError("must be a positive number", field="--replay-speed")
        self.library = library
        self.truth = truth
        self.speed = speed

    def respond(self, req: Request) -> Reply:
        path = req.path.rstrip("/") or "/"
        if path.startswith("/_chatprobe/"):
            return self._control(req, path)
        if path.endswith("/models") and req.method in ("GET", "HEAD"):
            return self._models(req)
        if not path.endswith("/chat/completions"):
            return _error(req, 404, f"no route for {req.method} {path} in a replay")
        if req.method != "POST":
            return _error(req, 405, "method not allowed")
        recording, why = self.library.match(req.body)
        record = self.truth.open(req.t_received_ns, req.path, "replay", req.t_parsed_ns)
        if recording is None:
            record.status = 404
            record.error = why
            recorded = "; ".join(self.library.recorded())
            return _error(req, 404, f"{why}; the cassettes hold: {recorded}", record)
        return self._play(req, recording, record)

    def _play(self, req: Request, rec: _Recording, record: TruthRecord) -> Reply:
        record.model = record.model_id = rec.model or None
        record.stream = rec.stream
        record.status = rec.interaction.status
        if rec.ttft_ms is not None:
            record.ttft_ms_intended = rec.ttft_ms / self.speed
        t0 = req.t_received_ns
        scale = 1e6 / self.speed
        head = b"".join(
            (
                rec.head,
                b"X-Chatprobe-Request-Id: %d\r\n" % record.seq,
                b"" if req.keep_alive else b"Connection: close\r\n",
                b"\r\n",
            )
        )
        steps = [(t0 + int(rec.head_ms * scale), head, HEADERS, 0)]
        steps += [(t0 + int(p.due_ms * scale), p.data, p.marks, 0) for p in rec.pieces]
        if req.method == "HEAD" or not rec.pieces:
            steps = [(steps[0][0], head, HEADERS | END, 0)]
        return Reply(steps, KEEP if req.keep_alive else CLOSE, record)

    def _models(self, req: Request) -> Reply:
        lists = self.library.models_lists
        if lists:
            body = lists[0].body
        else:
            ids = sorted({r.model for r in self.library.chats if r.model})
            body = orjson.dumps(
                {"object": "list", "data": [{"id": m, "object": "model"} for m in ids]}
            )
        return _plain(req, 200, _JSON, body)

    # ------------------------------------------------------------------ control
    def stats(self) -> dict[str, Any]:
        stats = self.truth.stats()
        stats["replay"] = {
            "interactions": len(self.library.chats),
            "untimed": self.library.untimed,
            "speed": self.speed,
            "recorded": self.library.recorded(),
        }
        return stats

    def reset(self) -> None:
        self.truth.reset()

    def schedule_summary(self) -> dict[str, Any]:
        return {"clock": 1.0, "windows": [], "t0_ns": None, "now_s": None}

    def _control(self, req: Request, path: str) -> Reply:
        if path == "/_chatprobe/requests" and req.method == "GET":
            since = parse_qs(req.query).get("since", ["0"])[0]
            seq = int(since) if since.isdigit() else 0
            return _plain(req, 200, _JSON, orjson.dumps(self.truth.since(seq)))
        if path == "/_chatprobe/stats" and req.method == "GET":
            return _plain(req, 200, _JSON, orjson.dumps(self.stats()))
        if path == "/_chatprobe/schedule" and req.method == "GET":
            return _plain(req, 200, _JSON, orjson.dumps(self.schedule_summary()))
        if path == "/_chatprobe/reset" and req.method == "POST":
            self.reset()
            return _plain(req, 200, _JSON, b'{"reset":true}')
        return _error(req, 404, "unknown control endpoint")


def _plain(
    req: Request, status: int, content_type: bytes, body: bytes, record: TruthRecord | None = None
) -> Reply:
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        status,
        _REASONS.get(status, "Status").encode(),
        content_type,
        len(body),
        b"" if req.keep_alive else b"Connection: close\r\n",
    )
    payload = head if req.method == "HEAD" else head + body
    if record is not None:
        record.status = status
    return Reply(
        [(req.t_received_ns, payload, HEADERS | END, 0)], KEEP if req.keep_alive else CLOSE, record
    )


def _error(req: Request, status: int, message: str, record: TruthRecord | None = None) -> Reply:
    body = orjson.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": "not_found"}}
    )
    return _plain(req, status, _JSON, body, record)
