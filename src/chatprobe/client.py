"""The one httpx I/O path: send a chat request, plain or streamed, and fill a record.

The loop is deliberately small: read a network chunk, stamp ``perf_counter_ns()``, feed the
SSE decoder, append. Interpretation happens afterwards in :meth:`RequestRecord.finish`.
Everything the transports share (timeouts, TLS trust, headers, request ids, the body cap and
how exceptions map to error classes) is :mod:`chatprobe.transport`; nothing a provider does
raises out of :meth:`ChatClient.chat`.

Timeouts (:class:`~chatprobe.transport.Timeouts`): the read timeout is the first-byte limit
until the response head is in, then the idle limit (httpcore reads it from the request's
extensions when body iteration starts); whichever is shorter of it and what is left of the
total is armed, and a timeout of the total is ``timeout_total``.

Stamps are all user space (``perf_counter_ns`` right after each read returns): one clock
per record (``record.clock == "user"``).

What httpx does not say, a watched network backend (:func:`new_http_client`) counts per
thread: new connections, EOFs and bytes read. So a ``RemoteProtocolError`` after the server
closed the connection is a truncated body or stream (or, before a whole head, a
``connection_reset``) rather than a protocol error, and a failure on a reused keep-alive
connection before any response byte is retried once on a new connection (and noted in
``anomalies``). A client not made by :func:`new_http_client` works, without those two.

Such a client also stamps, under any wrapper of httpx's transport, when each piece of a
response body came off the connection (:class:`ResponseTiming`, read once per response with
:func:`take_response_timing`). vcrpy reads a whole stream inside the transport before the
client sees a byte, so while recording the record's own stamps all fall at the end; these
are the arrival times a cassette keeps (:mod:`chatprobe.cassettes`).
"""

from __future__ import annotations

import copy
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from chatprobe.profiles import ProviderProfile
from chatprobe.record import ErrorClass, RequestRecord, TimedEvent, requested_max_tokens
from chatprobe.scrub import scrub_headers, scrub_obj
from chatprobe.sse import SSEDecoder
from chatprobe.transport import (
    DEFAULT_TIMEOUTS,
    MAX_BODY_BYTES,
    REQUEST_ID_HEADER,
    BodyTooLarge,
    PeerClosed,
    Phase,
    Timeouts,
    TLSConfig,
    TotalTimeout,
    classify,
    httpx_errors,
    new_request_id,
    request_headers,
    stale_connection_note,
)

__all__ = [
    "ChatClient",
    "ResponseTiming",
    "Timeouts",
    "new_http_client",
    "take_response_timing",
]


class ChatClient:
    """Sends chat completions to one provider and returns finished records.

    ``http`` lets the caller share one ``httpx.Client`` across clients (make it with
    :func:`new_http_client`; vcrpy patches httpx globally, so recording and replay need
    nothing special here); without it the client makes its own, trusting what ``tls`` says.
    """

    def __init__(
        self,
        profile: ProviderProfile,
        *,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        http: httpx.Client | None = None,
        headers: dict[str, str] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        tls: TLSConfig | None = None,
    ) -> None:
        self.profile = profile
        self.max_body_bytes = max_body_bytes
        self.api_key = api_key
        self.timeouts = timeouts or DEFAULT_TIMEOUTS
        self._own_http = http is None
        self.http = http or new_http_client(tls)
        self.headers = {**profile.headers, **(headers or {})}

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chat(
        self,
        body: dict[str, Any],
        *,
        model: str | None = None,
        headers: dict[str, str] | None = None,
        api_key: str | None = None,
        raw_body: bytes | None = None,
    ) -> RequestRecord:
        """Send ``body`` (``model`` given as a canonical name is mapped to the provider's id).

        ``raw_body`` sends bytes as they are (for malformed-request tests); ``api_key``
        overrides the client's key for this call (bad-key tests).
        """
        body = copy.deepcopy(body)
        canonical = model or str(body.get("model", ""))
        if model is not None:
            try:
                body["model"] = self.profile.model(model).id
            except Exception:
                body["model"] = model
        stream = bool(body.get("stream"))
        key = api_key if api_key is not None else self.api_key
        send_headers = request_headers(self.headers, stream=stream, api_key=key)
        send_headers.update(headers or {})
        record = RequestRecord(
            provider=self.profile.name,
            model=canonical,
            model_id=str(body.get("model", "")),
            url=self.profile.chat_url,
            stream=stream,
            request_headers=scrub_headers(send_headers),
            request_body=scrub_obj(body),  # type: ignore[arg-type]
            max_tokens=requested_max_tokens(body),
        )
        import orjson

        content = raw_body if raw_body is not None else orjson.dumps(body)
        self.send(record, content, send_headers)
        return record.finish()

    def list_models(
        self, *, headers: dict[str, str] | None = None, api_key: str | None = None
    ) -> RequestRecord:
        """``GET <base>/models`` (the models-list contract case); the list is ``record.json``."""
        send_headers = {k: v for k, v in self.headers.items() if k != "Content-Type"}
        key = api_key if api_key is not None else self.api_key
        if key:
            send_headers["Authorization"] = f"Bearer {key}"
        send_headers.update(headers or {})
        record = RequestRecord(
            provider=self.profile.name,
            method="GET",
            url=self.profile.models_url,
            request_headers=scrub_headers(send_headers),
        )
        self.send(record, b"", send_headers)
        return record.finish()

    def send(self, record: RequestRecord, content: bytes, headers: dict[str, str]) -> None:
        """Perform the exchange and fill the raw part of ``record`` (a reused connection
        that fails before any response byte is retried once on a new one)."""
        record.request_id = new_request_id()
        headers = {**headers, REQUEST_ID_HEADER: record.request_id}
        record.request_headers[REQUEST_ID_HEADER] = record.request_id
        if self._attempt(record, content, headers, retry=True):
            record.anomalies.append(stale_connection_note(record.transport_detail))
            record.transport_error, record.transport_detail = None, ""
            self._attempt(record, content, headers, retry=False)

    def _attempt(
        self, record: RequestRecord, content: bytes, headers: dict[str, str], *, retry: bool
    ) -> bool:
        """One try; True when it failed on a stale connection and is worth one more."""
        t = self.timeouts
        first_byte, total_armed = t.first_byte, False
        if t.total is not None and (first_byte is None or t.total < first_byte):
            first_byte, total_armed = t.total, True
        timeout = httpx.Timeout(
            connect=t.connect, read=first_byte, write=t.first_byte, pool=t.connect
        )
        request = self.http.build_request(
            record.method, record.url, content=content, headers=headers, timeout=timeout
        )
        watch = _WATCHES.get(self.http)
        before = watch.snapshot() if watch is not None else None
        response = None
        record.start()  # the request is built: only the exchange counts from here
        deadline = None if t.total is None else record.t0_ns + int(t.total * 1e9)
        phase = Phase.HEADERS
        received = 0
        try:
            response = self.http.send(request, stream=True)
            record.t_headers_ns = time.perf_counter_ns()
            record.status = response.status_code
            record.response_headers = _headers(response)
            phase = Phase.BODY
            # From now on a read timeout means a gap between body bytes.
            read, total_armed = _arm(t.idle, deadline)
            request.extensions["timeout"] = {**request.extensions.get("timeout", {}), "read": read}
            encoded = response.headers.get("content-encoding", "identity") != "identity"
            chunks = response.iter_bytes() if encoded else response.iter_raw()
            limit = self.max_body_bytes
            if record.content_type == "text/event-stream":
                decoder = SSEDecoder()
                append = record.events.append
                for chunk in chunks:
                    now = time.perf_counter_ns()
                    for item in decoder.decode(chunk):
                        append(TimedEvent(now, item))
                    received += len(chunk)
                    _check_limits(now, deadline, received, limit)
                end = time.perf_counter_ns()
                for item in decoder.flush():
                    append(TimedEvent(end, item))
            else:
                parts = []
                for chunk in chunks:
                    parts.append(chunk)
                    received += len(chunk)
                    _check_limits(time.perf_counter_ns(), deadline, received, limit)
                record.body = b"".join(parts)
            record.t_end_ns = time.perf_counter_ns()
        except Exception as exc:  # every transport failure becomes a classified record
            record.t_end_ns = time.perf_counter_ns()
            if response is None:
                phase = _phase(exc)
            seen = watch.since(before) if watch is not None and before is not None else None
            if isinstance(exc, httpx.TimeoutException) and total_armed:
                exc = TotalTimeout()
            elif isinstance(exc, httpx.RemoteProtocolError) and seen is not None and seen.eofs:
                where = "response head" if phase is not Phase.BODY else "body"
                exc = PeerClosed(
                    f"server closed the connection before the {where} was complete "
                    f"({received} body bytes read)"
                )
            cls, detail = classify(
                exc,
                phase,
                httpx_errors(),
                stream=record.content_type == "text/event-stream",
                timeouts=t,
            )
            record.transport_error, record.transport_detail = cls, detail
            stale = (
                retry
                and seen is not None
                and seen.connects == 0  # the request went out on a pooled connection
                and seen.bytes == 0  # and nothing came back on it
                and cls is ErrorClass.CONNECTION_RESET
                and phase in (Phase.SEND, Phase.HEADERS)
            )
            if stale:
                record.events.clear()
                return True
        finally:
            if response is not None:
                response.close()
        return False


def _arm(limit: float | None, deadline: int | None) -> tuple[float | None, bool]:
    """The read timeout to set: the phase's ``limit`` or what is left of the total, whichever
    is shorter; and whether it is the total."""
    if deadline is None:
        return limit, False
    left = max(0.001, (deadline - time.perf_counter_ns()) / 1e9)
    if limit is None or left < limit:
        return left, True
    return limit, False


def _check_limits(now: int, deadline: int | None, received: int, limit: int) -> None:
    if deadline is not None and now > deadline:
        raise TotalTimeout
    if received > limit:
        raise BodyTooLarge(f"response body exceeded {limit} bytes ({received} read); stopped")


def _phase(exc: BaseException) -> Phase:
    """Where an httpx exception raised before the response head came from (by its type)."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Phase.CONNECT
    if isinstance(exc, httpx.WriteError | httpx.WriteTimeout):
        return Phase.SEND
    return Phase.HEADERS


def _headers(response: httpx.Response) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        name = name.lower()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return scrub_headers(out)


# ---------------------------------------------------------------------------- http client


def new_http_client(tls: TLSConfig | None = None) -> httpx.Client:
    """An ``httpx.Client`` for chat requests: HTTP/1.1, no redirects, no proxy or CA settings
    from the environment (:class:`~chatprobe.transport.TLSConfig` reads those), trusting
    what ``tls`` says, with its network backend watched (see the module docstring)."""
    transport = httpx.HTTPTransport(verify=(tls or TLSConfig()).context(), trust_env=False)
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    client = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
    if backend is not None:  # httpx offers no public hook for the backend
        watch = _Watch()
        pool._network_backend = _WatchedBackend(backend, watch)  # type: ignore[union-attr]
        _WATCHES[client] = watch
    if pool is not None and callable(getattr(pool, "handle_request", None)):
        pool.handle_request = _timed(pool.handle_request)
    return client


@dataclass(frozen=True, slots=True)
class ResponseTiming:
    """When one response arrived, stamped by the connection pool (``perf_counter_ns``).

    ``head_ns``: the response head was in, from the moment the request was handed to the
    pool (the send). ``chunks``: ``(offset_ns, size)`` for each piece of the body as it came
    off the connection, ``size`` in bytes of the decoded body (a gzip or deflate body is
    inflated piece by piece to count them; any other ``content_encoding`` is counted as
    sent).
    """

    head_ns: int
    chunks: tuple[tuple[int, int], ...]
    content_encoding: str = ""


class _Timing(threading.local):
    last: ResponseTiming | None = None


_TIMING = _Timing()


def take_response_timing() -> ResponseTiming | None:
    """The timing of the last response body read to its end in this thread, once (None if
    there is none since the last call)."""
    timing, _TIMING.last = _TIMING.last, None
    return timing


def _timed(handle_request: Any) -> Any:
    def handle(request: httpcore.Request) -> httpcore.Response:
        _TIMING.last = None
        t_send = time.perf_counter_ns()
        response = handle_request(request)
        head = time.perf_counter_ns() - t_send
        encoding = ""
        for name, value in response.headers:
            if name.lower() == b"content-encoding":
                encoding = value.decode("latin-1").strip().lower()
        response.stream = _TimedBody(response.stream, t_send, head, encoding)
        return response

    return handle


class _TimedBody:
    """An httpcore response stream that stamps each piece it yields."""

    def __init__(self, stream: Any, t_send: int, head_ns: int, encoding: str) -> None:
        self._stream = stream
        self._t_send = t_send
        self._head_ns = head_ns
        self._encoding = encoding
        self._chunks: list[tuple[int, int]] = []
        self._published = False
        self._inflate: Any = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            import zlib

            self._inflate = zlib.decompressobj(wbits=47)  # gzip or zlib, told by the header

    def __iter__(self) -> Any:
        for piece in self._stream:
            if piece:
                t = time.perf_counter_ns() - self._t_send
                self._chunks.append((t, self._size(piece)))
            yield piece
        self._publish()

    def _size(self, piece: bytes) -> int:
        if self._inflate is None:
            return len(piece)
        try:
            return len(self._inflate.decompress(piece))
        except Exception:  # not what the header said: count it as sent
            self._inflate = None
            return len(piece)

    def close(self) -> None:
        self._publish()
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    def _publish(self) -> None:
        if not self._published:
            self._published = True
            _TIMING.last = ResponseTiming(self._head_ns, tuple(self._chunks), self._encoding)


@dataclass(frozen=True, slots=True)
class _Activity:
    connects: int = 0
    eofs: int = 0
    bytes: int = 0


class _Watch(threading.local):
    """What the network did, per thread (sync httpx does its I/O in the caller's thread)."""

    def __init__(self) -> None:
        self.connects = self.eofs = self.bytes = 0

    def snapshot(self) -> _Activity:
        return _Activity(self.connects, self.eofs, self.bytes)

    def since(self, before: _Activity) -> _Activity:
        now = self.snapshot()
        return _Activity(
            now.connects - before.connects, now.eofs - before.eofs, now.bytes - before.bytes
        )


_WATCHES: weakref.WeakKeyDictionary[httpx.Client, _Watch] = weakref.WeakKeyDictionary()


class _WatchedStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, watch: _Watch) -> None:
        self._stream = stream
        self._watch = watch

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._stream.read(max_bytes, timeout)
        if data:
            self._watch.bytes += len(data)
        else:
            self._watch.eofs += 1
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _WatchedStream(tls, self._watch)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _WatchedBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend, watch: _Watch) -> None:
        self._backend = backend
        self._watch = watch

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        self._watch.connects += 1
        return _WatchedStream(stream, self._watch)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, timeout, socket_options)
        self._watch.connects += 1
        return _WatchedStream(stream, self._watch)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)
