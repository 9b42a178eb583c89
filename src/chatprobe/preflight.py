"""Preflight: one request per distinct endpoint before a live check, load or run starts.

A run against a URL where nothing listens would otherwise start pytest or locust, send
thousands of requests that all fail the same way, and bury the one thing to fix. So before
``chatprobe check --live``, ``chatprobe load`` (live targets, or an ``--emulator-url``) and
``chatprobe run`` start, each distinct endpoint (scheme, host, port and base path) gets one
``GET <base>/models`` through the contract transport (:func:`chatprobe.client.new_http_client`,
with the run's TLS settings, no key sent). Any HTTP answer proves the endpoint reachable,
a 401, 404 or 405 included; only a failure at the connection level stops the command:
refused, DNS, TLS handshake, connect timeout, a reset before any response (something
that accepts the connection and then speaks no HTTP passes: the run will classify it). It ends
the command in one line (:class:`UnreachableError`, exit 2)::

    chatprobe: error: cannot connect to http://127.0.0.1:9/v1: connection refused

Each probe is bounded by :data:`PREFLIGHT_TIMEOUTS` (about 5 s). A server that accepts the
connection but is slow to answer passes: that is the run's to measure.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable

from chatprobe.errors import ChatprobeError
from chatprobe.record import ErrorClass
from chatprobe.transport import Phase, Timeouts, TLSConfig, classify, httpx_errors

__all__ = ["PREFLIGHT_TIMEOUTS", "UnreachableError", "base_of", "preflight", "unreachable_cause"]

PREFLIGHT_TIMEOUTS = Timeouts(connect=4.0, first_byte=1.0, idle=1.0, total=5.0)
"""Connect within 4 s; then 1 s for a first byte (not getting one still proves reachability)."""

CHAT_SUFFIX = "/chat/completions"


class UnreachableError(ChatprobeError):
    """An endpoint cannot be reached at all: the command stops before it starts."""


def base_of(url: str) -> str:
    """An endpoint's base URL from a chat-completions URL (or a base URL as it is)."""
    url = url.rstrip("/")
    return url[: -len(CHAT_SUFFIX)] if url.endswith(CHAT_SUFFIX) else url


def preflight(
    urls: Iterable[str], *, tls: TLSConfig | None = None, timeouts: Timeouts = PREFLIGHT_TIMEOUTS
) -> None:
    """Probe each distinct endpoint of ``urls`` (base or chat URLs) once; raise
    :class:`UnreachableError` for the first one that cannot be reached."""
    bases = list(dict.fromkeys(base_of(u) for u in urls))
    if not bases:
        return
    from chatprobe.client import new_http_client

    with new_http_client(tls) as http:
        for base in bases:
            cause = _probe(http, base + "/models", timeouts)
            if cause:
                raise UnreachableError(f"cannot connect to {base}: {cause}")


def _probe(http: object, url: str, timeouts: Timeouts) -> str | None:
    """None when ``url`` answered anything; else why it could not be reached, one line."""
    import httpx

    assert isinstance(http, httpx.Client)
    timeout = httpx.Timeout(
        connect=timeouts.connect,
        read=timeouts.first_byte,
        write=timeouts.connect,
        pool=timeouts.connect,
    )
    try:
        with http.stream("GET", url, timeout=timeout, headers={"Accept": "*/*"}):
            return None  # a response head arrived: reachable, whatever its status
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        return unreachable_cause(exc, Phase.CONNECT, timeouts)
    except httpx.TimeoutException:
        return None  # connected, no head in time: reachable (slow is the run's to measure)
    except httpx.HTTPError as exc:
        return unreachable_cause(exc, Phase.HEADERS, timeouts)


_CAUSES = {
    ErrorClass.TIMEOUT_CONNECT: "connection timed out",
    ErrorClass.CONNECTION_RESET: "connection reset before any response",
}


def unreachable_cause(exc: BaseException, phase: Phase, timeouts: Timeouts) -> str | None:
    """The cause of a connection-level failure in one line (the transport's table decides
    the class; the innermost OS error names it): ``connection refused``, ``host name not
    resolved (DNS)``, ``TLS handshake failed: ...``, ``connection timed out (4s)``; None for
    a failure that is not at the connection level."""
    cls, detail = classify(exc, phase, httpx_errors(), timeouts=timeouts)
    chain: list[BaseException] = []
    inner: BaseException | None = exc
    while inner is not None and len(chain) < 8:
        chain.append(inner)
        inner = inner.__cause__ or inner.__context__
    if cls is ErrorClass.TLS_ERROR:
        return f"TLS handshake failed: {detail}"
    if cls is ErrorClass.CONNECT_ERROR:
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return "connection refused"
        if any(isinstance(e, socket.gaierror) for e in chain):
            return "host name not resolved (DNS)"
        os_error = next((e for e in chain if isinstance(e, OSError) and e.strerror), None)
        return (os_error.strerror or "").lower() if os_error else detail
    if cls is ErrorClass.TIMEOUT_CONNECT:
        return f"connection timed out ({timeouts.connect:g}s)"
    if cls in _CAUSES:
        return _CAUSES[cls]
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return f"TLS handshake failed: {detail}"
    return None
