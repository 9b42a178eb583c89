"""The one httpx I/O path: send a chat request, plain or streamed, and fill a record.

The loop is deliberately small: read a network chunk, stamp ``perf_counter_ns()``, feed the
SSE decoder, append. Interpretation happens afterwards in :meth:`RequestRecord.finish`.
Transport failures are mapped to an :class:`~chatprobe.record.ErrorClass` in one place,
:func:`_classify_exception`; nothing a provider does raises out of :meth:`ChatClient.chat`.

Timeouts: ``connect``; ``first_byte`` (request sent until response headers); ``idle`` (the
longest gap allowed between body bytes, i.e. a stall); ``total`` (whole exchange). The read
timeout is switched from ``first_byte`` to ``idle`` once headers arrive, because httpcore
reads it from the request's extensions when body iteration starts.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import httpx

from chatprobe.profiles import ProviderProfile
from chatprobe.record import MAX_BODY_BYTES, ErrorClass, RequestRecord, TimedEvent
from chatprobe.scrub import scrub_headers, scrub_obj, scrub_text
from chatprobe.sse import SSEDecoder

__all__ = ["USER_AGENT", "ChatClient", "Timeouts"]

USER_AGENT = "chatprobe/0.1"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; ``None`` disables a limit."""

    connect: float | None = 10.0
    first_byte: float | None = 120.0
    idle: float | None = 60.0
    total: float | None = 600.0


class _TotalTimeout(Exception):
    pass


class _TooLarge(Exception):
    pass


class ChatClient:
    """Sends chat completions to one provider and returns finished records.

    ``http`` lets tests and the pytest plugin supply their own ``httpx.Client`` (vcrpy patches
    httpx globally, so recording and replay need nothing special here).
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
    ) -> None:
        self.profile = profile
        self.max_body_bytes = max_body_bytes
        self.api_key = api_key
        self.timeouts = timeouts or Timeouts()
        self._own_http = http is None
        self.http = http or httpx.Client(http2=False, follow_redirects=False)
        self.headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT,
            **profile.headers,
            **(headers or {}),
        }

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
        send_headers = dict(self.headers)
        if stream:
            send_headers["Accept"] = "text/event-stream"
        key = api_key if api_key is not None else self.api_key
        if key:
            send_headers["Authorization"] = f"Bearer {key}"
        send_headers.update(headers or {})
        record = RequestRecord(
            provider=self.profile.name,
            model=canonical,
            model_id=str(body.get("model", "")),
            url=self.profile.chat_url,
            stream=stream,
            request_headers=scrub_headers(send_headers),
            request_body=scrub_obj(body),  # type: ignore[arg-type]
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
        """Perform the exchange and fill the raw part of ``record``."""
        t = self.timeouts
        timeout = httpx.Timeout(
            connect=t.connect, read=_min(t.first_byte, t.total), write=t.connect, pool=t.connect
        )
        request = self.http.build_request(
            record.method, record.url, content=content, headers=headers, timeout=timeout
        )
        deadline = None
        record.start()
        if t.total is not None:
            deadline = record.t0_ns + int(t.total * 1e9)
        response = None
        try:
            response = self.http.send(request, stream=True)
            record.t_headers_ns = time.perf_counter_ns()
            record.status = response.status_code
            record.response_headers = _headers(response)
            # From now on a read timeout means a gap between body bytes.
            request.extensions["timeout"] = {
                **request.extensions.get("timeout", {}),
                "read": t.idle,
            }
            encoded = response.headers.get("content-encoding", "identity") != "identity"
            chunks = response.iter_bytes() if encoded else response.iter_raw()
            is_sse = record.content_type == "text/event-stream"
            if is_sse:
                decoder = SSEDecoder()
                append = record.events.append
                received = 0
                for chunk in chunks:
                    now = time.perf_counter_ns()
                    for item in decoder.decode(chunk):
                        append(TimedEvent(now, item))
                    if deadline is not None and now > deadline:
                        raise _TotalTimeout
                    received += len(chunk)
                    if received > self.max_body_bytes:
                        raise _TooLarge(received)
                end = time.perf_counter_ns()
                for item in decoder.flush():
                    append(TimedEvent(end, item))
            else:
                parts = []
                received = 0
                for chunk in chunks:
                    parts.append(chunk)
                    if deadline is not None and time.perf_counter_ns() > deadline:
                        raise _TotalTimeout
                    received += len(chunk)
                    if received > self.max_body_bytes:
                        raise _TooLarge(received)
                record.body = b"".join(parts)
            record.t_end_ns = time.perf_counter_ns()
        except _TooLarge as exc:
            record.t_end_ns = time.perf_counter_ns()
            record.transport_error = ErrorClass.PROTOCOL_ERROR
            record.transport_detail = (
                f"response body exceeded {self.max_body_bytes} bytes ({exc.args[0]} read); "
                "stopped reading"
            )
        except _TotalTimeout:
            record.t_end_ns = time.perf_counter_ns()
            record.transport_error = ErrorClass.TIMEOUT_TOTAL
            record.transport_detail = f"exchange exceeded total timeout of {t.total}s"
        except Exception as exc:  # every transport failure becomes a classified record
            record.t_end_ns = time.perf_counter_ns()
            record.transport_error, record.transport_detail = _classify_exception(
                exc, headers_seen=record.t_headers_ns is not None, stream=record.stream
            )
        finally:
            if response is not None:
                response.close()


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _headers(response: httpx.Response) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        name = name.lower()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return scrub_headers(out)


def _classify_exception(
    exc: BaseException, *, headers_seen: bool, stream: bool
) -> tuple[ErrorClass, str]:
    """Map an httpx/httpcore exception to an error class and a scrubbed one-line detail."""
    detail = scrub_text(f"{type(exc).__name__}: {exc}")[:300]
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return ErrorClass.TIMEOUT_CONNECT, detail
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
        return (ErrorClass.TIMEOUT_IDLE if headers_seen else ErrorClass.TIMEOUT_FIRST_BYTE), detail
    if isinstance(exc, httpx.ConnectError):
        return ErrorClass.CONNECT_ERROR, detail
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc).lower()
        if headers_seen and ("incomplete chunked read" in text or "complete message body" in text):
            return (ErrorClass.CONNECTION_RESET if stream else ErrorClass.TRUNCATED_BODY), detail
        if not headers_seen and "without sending" in text:
            return ErrorClass.CONNECTION_RESET, detail
        return ErrorClass.PROTOCOL_ERROR, detail
    if isinstance(exc, httpx.ReadError | httpx.WriteError | ConnectionError):
        return ErrorClass.CONNECTION_RESET, detail
    if isinstance(exc, httpx.DecodingError):
        return ErrorClass.PROTOCOL_ERROR, detail
    return ErrorClass.CLIENT_ERROR, detail
