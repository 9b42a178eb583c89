"""A hostile chat-completions server for the reliability matrix: raw sockets, 127.0.0.1 only.

Every request is answered by one *behaviour* from :data:`BEHAVIOURS`, chosen by the request
header ``X-Hostile: NAME[:PARAM]`` (client tests pick each one), else drawn from the
server's ``mix`` with a seeded generator per request (load runs), else ``valid``. A behaviour
builds the exact bytes to send (a plain JSON body or a chunked SSE stream, following the
request's ``"stream"``) and how to end: FIN, RST, or a stall then FIN.

Nothing here is well-behaved on purpose: connections closed at seeded byte offsets of a
valid answer, garbage instead of HTTP, a 3 MB line, NUL bytes, invalid UTF-8, broken chunked
encoding, a 200 with an empty body, an HTML page, JSON with wrong types everywhere, HTML and
script in the model's text and in error messages.

The server counts what it received (``received``: requests whose head and body were read)
and which behaviour answered each (``by_behaviour``), so a test can compare the harness's
sample count with the server's own. Every connection is closed after one answer. A request
for ``.../models`` (the preflight of a live run) gets a plain model list instead, counted in
``model_lists`` and not in ``received``, so it draws no behaviour.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "BEHAVIOURS",
    "HOSTILE_ERROR",
    "HOSTILE_TEXT",
    "HostileServer",
    "Reply",
    "Request",
    "valid_reply",
]

HOSTILE_TEXT = "<script>alert(1)</script> & <img src=x onerror=alert(1)>"
HOSTILE_ERROR = "upstream <img src=x onerror=alert(2)> said <script>alert(3)</script>"
MODEL = "hostile-1"
WORDS = ("rivers", " meander", " because", " banks", " erode", " unevenly", " über", " 🌊", ".")


@dataclass(slots=True)
class Request:
    """What the server read: the body as JSON (``{}`` when it is not an object)."""

    seq: int
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


@dataclass(slots=True)
class Reply:
    """Bytes to send, then how the connection ends: ``fin``, ``rst`` or ``stall`` (then fin).

    ``done_at``: for a valid stream, the byte offset just past ``data: [DONE]`` (a cut at or
    after it leaves a complete answer), else ``None``.
    """

    data: bytes
    end: str = "fin"
    stall_s: float = 0.0
    done_at: int | None = None


# ---------------------------------------------------------------------------- building blocks


_current = threading.local()  # the request being answered, per handler thread


def http_head(status: int, headers: Sequence[tuple[str, str]], reason: str = "X") -> bytes:
    """A status line and headers; carries ``X-Chatprobe-Request-Id: hostile-<seq>`` so a
    harness sample can be joined with the behaviour that produced it."""
    seq = getattr(_current, "seq", None)
    ident = [("X-Chatprobe-Request-Id", f"hostile-{seq}")] if seq is not None else []
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in [*ident, *headers])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""


def sse(payload: Any) -> bytes:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return b"data: " + data + b"\n\n"


def plain(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    head = http_head(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ],
    )
    return head + body


def stream(events: Sequence[bytes], *, status: int = 200, terminate: bool = True) -> Reply:
    """A chunked ``text/event-stream`` answer, one HTTP chunk per event."""
    head = http_head(
        status,
        [
            ("Content-Type", "text/event-stream"),
            ("Transfer-Encoding", "chunked"),
            ("Connection", "close"),
        ],
    )
    out = bytearray(head)
    done_at = None
    for event in events:
        out += chunked(event)
        if event.startswith(b"data: [DONE]"):
            done_at = len(out)
    if terminate:
        out += b"0\r\n\r\n"
    return Reply(bytes(out), done_at=done_at)


def _chunk(rid: str, choices: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": choices,
        **extra,
    }


def completion_events(
    seq: int, words: Sequence[str] = WORDS, *, finish: str = "stop", usage: bool = True
) -> list[bytes]:
    """A well-formed OpenAI stream: role, one event per word, finish, usage, ``[DONE]``."""
    rid = f"chatcmpl-hostile-{seq}"
    events = [
        sse(
            _chunk(
                rid,
                [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            )
        ),
        *(
            sse(_chunk(rid, [{"index": 0, "delta": {"content": w}, "finish_reason": None}]))
            for w in words
        ),
        sse(_chunk(rid, [{"index": 0, "delta": {}, "finish_reason": finish}])),
    ]
    if usage:
        n = len(words)
        u = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5}
        events.append(sse(_chunk(rid, [], usage=u)))
    events.append(b"data: [DONE]\n\n")
    return events


def completion_body(seq: int, text: str = "".join(WORDS)) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-hostile-{seq}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
    }


def valid_reply(req: Request, text_words: Sequence[str] = WORDS) -> Reply:
    if req.stream:
        return stream(completion_events(req.seq, text_words))
    return Reply(plain(200, orjson.dumps(completion_body(req.seq, "".join(text_words)))))


# ---------------------------------------------------------------------------- behaviours

Behaviour = Callable[[random.Random, Request, str], Reply]


def _valid(rng: random.Random, req: Request, param: str) -> Reply:
    return valid_reply(req)


def _cut(rng: random.Random, req: Request, param: str) -> Reply:
    """A valid answer cut at a byte offset (``PARAM``, else seeded), then FIN."""
    full = valid_reply(req)
    offset = int(param) if param else rng.randrange(0, len(full.data))
    offset = max(0, min(offset, len(full.data) - 1))
    return Reply(full.data[:offset], "fin", done_at=full.done_at)


def _cut_rst(rng: random.Random, req: Request, param: str) -> Reply:
    reply = _cut(rng, req, param)
    reply.end = "rst"
    return reply


def _silent_close(rng: random.Random, req: Request, param: str) -> Reply:
    return Reply(b"", "fin")


def _garbage(rng: random.Random, req: Request, param: str) -> Reply:
    """Random bytes where the status line should be."""
    return Reply(rng.randbytes(rng.randrange(16, 4096)), "fin")


def _garbage_body(rng: random.Random, req: Request, param: str) -> Reply:
    """A proper 200 head, then random binary chunks (stream) or body (plain)."""
    blob = rng.randbytes(rng.randrange(64, 8192))
    if req.stream:
        return stream([blob[i : i + 500] for i in range(0, len(blob), 500)])
    return Reply(plain(200, blob))


def _giant_line(rng: random.Random, req: Request, param: str) -> Reply:
    """One 3 MB SSE data line (not JSON), then a valid stream; plain: a 3 MB JSON string."""
    size = int(param) if param else 3 * 1024 * 1024
    if req.stream:
        big = b"data: " + b"x" * size + b"\n\n"
        return stream([big, *completion_events(req.seq)])
    body = completion_body(req.seq, "y" * size)
    return Reply(plain(200, orjson.dumps(body)))


def _giant_header(rng: random.Random, req: Request, param: str) -> Reply:
    head = http_head(200, [("Content-Type", "application/json"), ("X-Big", "h" * 300_000)])
    return Reply(head + orjson.dumps(completion_body(req.seq)))


def _nul_bytes(rng: random.Random, req: Request, param: str) -> Reply:
    """Raw NUL bytes inside JSON strings (invalid JSON) and in an SSE field."""
    if req.stream:
        events = completion_events(req.seq)
        events.insert(2, b'data: {"id":"x\x00y","choices":[{"delta":{"content":"a\x00b"}}]}\n\n')
        events.insert(1, b"id: \x00\x00\nevent: \x00\ndata: \x00\n\n")
        return stream(events)
    body = orjson.dumps(completion_body(req.seq)).replace(b"rivers", b"riv\x00ers")
    return Reply(plain(200, body))


def _invalid_utf8(rng: random.Random, req: Request, param: str) -> Reply:
    bad = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x90\x28"
    if req.stream:
        events = completion_events(req.seq)
        events.insert(
            2, b'data: {"id":"u","choices":[{"index":0,"delta":{"content":"' + bad + b'"}}]}\n\n'
        )
        events.insert(1, b": " + bad + b"\n\n")
        return stream(events)
    body = orjson.dumps(completion_body(req.seq)).replace(b"rivers", bad)
    return Reply(plain(200, body))


def _bad_chunk_size(rng: random.Random, req: Request, param: str) -> Reply:
    """Transfer-Encoding: chunked with a chunk size that is not hex."""
    reply = stream(completion_events(req.seq)[:3], terminate=False)
    return Reply(reply.data + b"zz\r\ndata: nope\n\n\r\n0\r\n\r\n", "fin")


def _chunk_overrun(rng: random.Random, req: Request, param: str) -> Reply:
    """A chunk carrying more bytes than its size line says."""
    reply = stream(completion_events(req.seq)[:3], terminate=False)
    event = sse(_chunk("o", [{"index": 0, "delta": {"content": "overrun"}}]))
    return Reply(reply.data + b"5\r\n" + event + b"\r\n0\r\n\r\n", "fin")


def _chunk_short(rng: random.Random, req: Request, param: str) -> Reply:
    """A chunk announcing 4096 bytes, then 40 bytes and FIN."""
    reply = stream(completion_events(req.seq)[:3], terminate=False)
    return Reply(reply.data + b"1000\r\n" + b"data: " + b"z" * 34, "fin")


def _empty_200(rng: random.Random, req: Request, param: str) -> Reply:
    kind = "text/event-stream" if req.stream else "application/json"
    return Reply(plain(200, b"", kind))


def _html_200(rng: random.Random, req: Request, param: str) -> Reply:
    page = (
        b"<!doctype html><html><head><title>Gateway</title></head><body><h1>Welcome</h1>"
        b"<script>alert('x')</script></body></html>"
    )
    return Reply(plain(200, page, "text/html; charset=utf-8"))


def _json_array_200(rng: random.Random, req: Request, param: str) -> Reply:
    return Reply(plain(200, b'[1, "two", null, {"choices": 3}]'))


def _content_length_lie(rng: random.Random, req: Request, param: str) -> Reply:
    body = orjson.dumps(completion_body(req.seq))
    head = http_head(
        200, [("Content-Type", "application/json"), ("Content-Length", str(len(body) + 500))]
    )
    return Reply(head + body, "fin")


def _bad_status_line(rng: random.Random, req: Request, param: str) -> Reply:
    return Reply(b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}", "fin")


def _headers_no_end(rng: random.Random, req: Request, param: str) -> Reply:
    return Reply(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Half: ", "fin")


def _stall_headers(rng: random.Random, req: Request, param: str) -> Reply:
    """Headers, then silence for PARAM seconds (default 3) before FIN."""
    head = http_head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")])
    return Reply(head + chunked(completion_events(req.seq)[0]), "stall", float(param or 3))


# Wrong types, everywhere a client reads.
WRONG_CHUNKS: list[Any] = [
    {"id": "w", "choices": 5, "usage": 7},
    {"id": "w", "choices": True, "usage": [1]},
    {"id": 5, "object": 7, "created": "yesterday", "model": None, "choices": None},
    {"id": "w", "choices": "not a list"},
    {"id": "w", "choices": [None, 3, "x", []]},
    {"id": "w", "choices": [{"index": "0", "delta": "just a string"}]},
    {"id": "w", "choices": [{"index": 0, "delta": ["a", "b"], "finish_reason": 7}]},
    {"id": "w", "choices": [{"index": -1, "delta": {"content": 42, "role": 9}}]},
    b'{"id": "w", "choices": [{"index": 1000000000000000000000000000000, "delta": {}}]}',
    {"id": "w", "choices": [{"index": 1.5, "delta": {"content": {"text": "x"}}}]},
    {"id": "w", "choices": [{"index": 0, "delta": {"content": [1, {"text": 2}, {"text": "ok"}]}}]},
    {"id": "w", "choices": [{"index": 0, "delta": {"tool_calls": "call it"}}]},
    {"id": "w", "choices": [{"index": 0, "delta": {"tool_calls": [1, None, "x"]}}]},
    {
        "id": "w",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"index": "a", "function": "f"},
                        {"index": 0, "id": 3, "type": [], "function": {"name": 1, "arguments": {}}},
                        {"id": "c1", "function": {"name": "f", "arguments": "{not json"}},
                        {"index": 2.5, "function": None},
                    ]
                },
            }
        ],
    },
    {"id": "w", "choices": [{"index": 0, "delta": {"reasoning": 5, "refusal": ["no"]}}]},
    {"id": "w", "choices": [], "usage": "lots"},
    {"id": "w", "choices": [], "usage": {"prompt_tokens": "5", "completion_tokens": "9"}},
    {
        "id": "w",
        "choices": [],
        "usage": {"prompt_tokens": -1, "completion_tokens": 1.5, "total_tokens": None},
    },
    {"id": "w", "choices": [], "usage": {"completion_tokens": True}},
    {"id": "w", "choices": [{"index": 0, "delta": {}, "finish_reason": ["stop"]}]},
    {"id": "w", "choices": [{"index": 0, "delta": {}, "finish_reason": 0}]},
    {"error": "a string error"},
    {"error": {"code": "NaN", "message": None}},
    {"error": None, "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]},
    [1, 2, 3],
    "a json string",
    None,
    12.5,
]

WRONG_BODIES: list[Any] = [
    {"choices": 5, "usage": 7},
    {"choices": {"0": {"message": {"content": "x"}}}},
    {"id": 1, "object": None, "choices": None, "usage": "many"},
    {"choices": "x", "usage": {"prompt_tokens": "1", "completion_tokens": "2", "total_tokens": 3}},
    {"choices": [None, 1, "x"]},
    {"choices": [{"index": "0", "message": "hello", "finish_reason": 5}]},
    {"choices": [{"index": 0, "message": ["a"], "finish_reason": None}]},
    {"choices": [{"index": 0, "message": {"role": 3, "content": 4, "tool_calls": "x"}}]},
    {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [1, {"x": 1}]},
                "finish_reason": "tool_calls",
            }
        ]
    },
    {
        "choices": [
            {
                "index": 0,
                "message": {
                    "tool_calls": [{"id": 1, "type": 2, "function": {"name": 3, "arguments": 4}}]
                },
            }
        ]
    },
    {"choices": [{"index": 0, "message": {"content": [{"text": 1}, 2]}}], "usage": []},
    {"choices": [], "usage": {"completion_tokens": 1e308, "prompt_tokens": -5}},
    {"error": ["x"]},
    {"error": {"message": {"nested": True}, "code": []}},
]


def _wrong_types(rng: random.Random, req: Request, param: str) -> Reply:
    """Every shape a careless gateway could send, in one stream or one of many bodies."""
    if req.stream:
        events = [sse(c) for c in WRONG_CHUNKS]
        return stream([*events, b"data: [DONE]\n\n"])
    index = int(param) if param else rng.randrange(len(WRONG_BODIES))
    return Reply(plain(200, orjson.dumps(WRONG_BODIES[index % len(WRONG_BODIES)])))


def _deep_json(rng: random.Random, req: Request, param: str) -> Reply:
    """JSON nested PARAM levels deep (default 1000, under orjson's parse limit of 1024, over
    Python's recursion limit): in an extra field and in an error object."""
    depth = int(param) if param else 1000
    deep = b"[" * depth + b"]" * depth
    if req.stream:
        events = completion_events(req.seq)
        events.insert(2, b'data: {"id":"d","choices":[],"x":' + deep + b"}\n\n")
        events.insert(3, b'data: {"error":{"code":' + deep + b',"message":' + deep + b"}}\n\n")
        return stream(events)
    body = orjson.dumps(completion_body(req.seq))[:-1] + b',"x":' + deep + b',"error":' + deep
    return Reply(plain(200, body + b"}"))


def _echo_key(rng: random.Random, req: Request, param: str) -> Reply:
    """A careless gateway reflecting the caller's credentials: the Authorization value and the
    bare key in a header, a comment, the model's text and an error message."""
    auth = req.headers.get("authorization", "")
    key = auth.removeprefix("Bearer ").strip()
    if not req.stream:
        data = orjson.dumps({"error": {"message": f"key {key} is not valid ({auth})", "code": 401}})
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        return Reply(http_head(401, [*headers, ("X-Echo", auth), ("X-Key", key)]) + data)
    events = completion_events(req.seq, ["your key is ", key, " and ", auth])[:4]
    events.insert(1, f": debug {auth}\n\n".encode())
    error = {"error": {"code": 500, "message": f"upstream rejected {key}"}}
    return stream([*events, sse(error), b"data: [DONE]\n\n"])


def _hostile_content(rng: random.Random, req: Request, param: str) -> Reply:
    """A valid answer whose text is HTML and script."""
    words = [HOSTILE_TEXT[i : i + 7] for i in range(0, len(HOSTILE_TEXT), 7)]
    return valid_reply(req, words)


def _hostile_error(rng: random.Random, req: Request, param: str) -> Reply:
    """A 400 whose error message (and type) carry HTML and script."""
    body = {"error": {"message": HOSTILE_ERROR, "type": "<b>bad</b>", "param": None, "code": None}}
    return Reply(plain(400, orjson.dumps(body)))


def _hostile_midstream(rng: random.Random, req: Request, param: str) -> Reply:
    """Half a stream, then an error event whose message carries HTML and script."""
    if not req.stream:
        return _hostile_error(rng, req, param)
    events = completion_events(req.seq)[:3]
    error = {
        "id": f"chatcmpl-hostile-{req.seq}",
        "error": {"code": 502, "message": HOSTILE_ERROR},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    return stream([*events, sse(error), b"data: [DONE]\n\n"])


BEHAVIOURS: dict[str, Behaviour] = {
    "valid": _valid,
    "cut": _cut,
    "cut_rst": _cut_rst,
    "silent_close": _silent_close,
    "garbage": _garbage,
    "garbage_body": _garbage_body,
    "giant_line": _giant_line,
    "giant_header": _giant_header,
    "nul_bytes": _nul_bytes,
    "invalid_utf8": _invalid_utf8,
    "bad_chunk_size": _bad_chunk_size,
    "chunk_overrun": _chunk_overrun,
    "chunk_short": _chunk_short,
    "empty_200": _empty_200,
    "html_200": _html_200,
    "json_array_200": _json_array_200,
    "content_length_lie": _content_length_lie,
    "bad_status_line": _bad_status_line,
    "headers_no_end": _headers_no_end,
    "stall_headers": _stall_headers,
    "wrong_types": _wrong_types,
    "deep_json": _deep_json,
    "echo_key": _echo_key,
    "hostile_content": _hostile_content,
    "hostile_error": _hostile_error,
    "hostile_midstream": _hostile_midstream,
}


# ---------------------------------------------------------------------------- the server


class HostileServer:
    """Threaded raw-socket server; ``with HostileServer(mix=[...], seed=1) as srv: ...``.

    ``mix`` lists behaviour names (``name`` or ``name:param``) drawn uniformly per request
    when the request names none. ``max_stall_s`` bounds every stall so the server never
    outlives its test.
    """

    def __init__(self, mix: Sequence[str] = (), *, seed: int = 0, max_stall_s: float = 5.0) -> None:
        for item in mix:
            if item.partition(":")[0] not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {item!r}")
        self.mix = list(mix)
        self.seed = seed
        self.max_stall_s = max_stall_s
        self.received = 0
        self.model_lists = 0  # GET .../models (a preflight): answered plainly, not counted
        self.by_behaviour: Counter[str] = Counter()
        # (seq, behaviour, bytes sent, offset just past data: [DONE] in the full answer)
        self.log: list[tuple[int, str, int, int | None]] = []
        self.errors: list[str] = []  # the server's own failures (a test asserts none)
        self.authorizations: set[str] = set()  # every Authorization value presented
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self.port = self._sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True, name="hostile-accept")

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> HostileServer:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress (Linux)
        with contextlib.suppress(OSError):
            self._sock.close()
        self._accept.join(timeout=5)
        for thread in list(self._threads):
            thread.join(timeout=self.max_stall_s + 1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # ------------------------------------------------------------------ serving
    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()

    def _read_request(self, conn: socket.socket) -> tuple[str, dict[str, str], bytes] | None:
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            part = conn.recv(65536)
            if not part:
                return None
            data += part
            if len(data) > 1 << 20:
                return None
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if " " in lines[0] else "/"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        while len(body) < length:
            part = conn.recv(65536)
            if not part:
                return None
            body += part
        return path, headers, body

    def _choose(self, seq: int, headers: dict[str, str]) -> tuple[str, str, random.Random]:
        rng = random.Random(f"hostile:{self.seed}:{seq}")
        asked = headers.get("x-hostile")
        if asked:
            name, _, param = asked.partition(":")
        elif self.mix:
            name, _, param = rng.choice(self.mix).partition(":")
        else:
            name, param = "valid", ""
        return name, param, rng

    def _handle(self, conn: socket.socket) -> None:
        try:
            request = self._read_request(conn)
            if request is None:
                return
            path, headers, raw = request
            if path.rstrip("/").endswith("/models"):
                with self._lock:
                    self.model_lists += 1
                conn.sendall(plain(200, b'{"object": "list", "data": []}'))
                return
            with self._lock:
                seq = self.received
                self.received += 1
                self.authorizations.add(headers.get("authorization", ""))
            name, param, rng = self._choose(seq, headers)
            try:
                body = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                body = {}
            req = Request(seq, path, headers, body if isinstance(body, dict) else {})
            _current.seq = seq
            behaviour = BEHAVIOURS.get(name)
            if behaviour is None:
                reply = Reply(plain(400, orjson.dumps({"error": f"no behaviour {name}"})))
            else:
                reply = behaviour(rng, req, param)
            with self._lock:
                self.by_behaviour[name] += 1
                self.log.append((seq, name, len(reply.data), reply.done_at))
            self._send(conn, reply)
        except OSError:
            pass  # the client went away: that is its business
        except Exception as exc:  # a bug in this server; the tests assert there are none
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _send(self, conn: socket.socket, reply: Reply) -> None:
        if reply.data:
            conn.sendall(reply.data)
        if reply.end == "rst":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if reply.end == "stall":
            self._closing.wait(min(reply.stall_s, self.max_stall_s))
        try:
            conn.shutdown(socket.SHUT_WR)
            # Drain what the client still sends so the close is a FIN, not an RST.
            conn.settimeout(0.5)
            while conn.recv(65536):
                pass
        except OSError:
            pass
