"""The one transport policy: timeouts, TLS trust, request headers, request ids, the body cap,
and how each HTTP library's exceptions become an :class:`~chatprobe.record.ErrorClass`.

Two transports send chat requests: the contract client (httpx, :mod:`chatprobe.client`) and
the locust user (geventhttpclient, :mod:`chatprobe.load.exchange`). Everything they must agree on
lives here, once, so a contract check and a load sample of the same exchange say the same.

Timeouts (:class:`Timeouts`, seconds, ``None`` switches one off)::

    connect     TCP connect and TLS handshake (and waiting for a pooled connection)
    first_byte  request sent until the response head has arrived
    idle        the longest gap between two reads of the body (a stall)
    total       the whole exchange, connect included

The defaults (:data:`DEFAULT_TIMEOUTS`) fit hosted APIs: a first byte can take a minute
behind a busy gateway or a long prompt, a stream that sends nothing for 30 s has stalled,
10 s is generous for a handshake anywhere, and 10 minutes covers a long reasoning answer.

Exceptions are mapped by their type and by the phase the exchange was in (:class:`Phase`:
connecting, sending, waiting for the head, reading the body), never by message text or by
elapsed time, through one table per library (:func:`httpx_errors`,
:func:`geventhttpclient_errors`), the way httpx maps its backends' exceptions. The chain of
exceptions is read from the innermost out, so a certificate failure wrapped in
``httpx.ConnectError`` is still a ``tls_error`` (the cause, else the context: httpcore
re-raises ``from None``). The transports raise three exceptions of
their own, typed so the tables can map them::

    TransportEvent
    ├── PeerClosed      the server closed the connection (FIN) before the message ended
    ├── TotalTimeout    the exchange ran past its total timeout
    └── BodyTooLarge    the body grew past MAX_BODY_BYTES; reading stopped

A clean close and a reset stay apart: a body cut by a FIN is ``truncated_body`` (a plain
body) or ``truncated_stream`` (an event stream), a TCP RST is ``connection_reset``.
"""

from __future__ import annotations

import email.utils
import os
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from chatprobe._version import __version__
from chatprobe.durations import parse_timeout
from chatprobe.errors import ConfigError
from chatprobe.record import ErrorClass
from chatprobe.scrub import scrub_text

__all__ = [
    "DEFAULT_TIMEOUTS",
    "MAX_BODY_BYTES",
    "REQUEST_ID_HEADER",
    "TIMEOUT_FIELDS",
    "USER_AGENT",
    "BodyTooLarge",
    "ErrorTable",
    "PeerClosed",
    "Phase",
    "TLSConfig",
    "Timeouts",
    "TotalTimeout",
    "TransportEvent",
    "TransportOptions",
    "classify",
    "geventhttpclient_errors",
    "httpx_errors",
    "new_request_id",
    "request_headers",
    "retry_after_s",
    "stale_connection_note",
    "timeout_option",
]

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Every transport stops reading a response past this size (``protocol_error``)."""

USER_AGENT = f"chatprobe/{__version__}"

REQUEST_ID_HEADER = "X-Request-Id"
"""Sent with every request, fresh each time, and kept in the record (``request_id``), so a
sample or a finding joins the server's logs."""


def stale_connection_note(detail: str) -> str:
    """The anomaly a record keeps when its first try failed on a stale keep-alive connection."""
    return (
        f"connection_reset on a reused keep-alive connection before any response byte "
        f"({detail}); retried once on a new connection"
    )


def new_request_id() -> str:
    """A fresh request id (32 hex digits, random)."""
    return uuid.uuid4().hex


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """How long a ``Retry-After`` header asks the client to wait, in seconds: whole seconds
    (``"30"``) or an HTTP date (relative to ``now``, Unix time; default the wall clock);
    None when absent or unreadable. A date in the past means 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def request_headers(
    extra: Mapping[str, str] | None = None, *, stream: bool, api_key: str | None = None
) -> dict[str, str]:
    """The headers every chat request carries, then ``extra`` (a profile's headers), then the
    key. ``Accept-Encoding: identity``: a compressed event stream could not be timed per
    event."""
    headers = {
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",
        "User-Agent": USER_AGENT,
    }
    if stream:
        headers["Accept"] = "text/event-stream"
    headers.update(extra or {})
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


# ---------------------------------------------------------------------------- timeouts

TIMEOUT_FIELDS = ("connect", "first_byte", "idle", "total")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; ``None`` disables a limit. See the module docstring for what each bounds."""

    connect: float | None = 10.0
    first_byte: float | None = 60.0
    idle: float | None = 30.0
    total: float | None = 600.0

    def __post_init__(self) -> None:
        for name in TIMEOUT_FIELDS:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"must be more than 0 (or none), got {value}", field=name)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, base: Timeouts | None = None, where: str = "timeouts"
    ) -> Timeouts:
        """Limits written as durations (``2s``, ``500ms``, ``none``) over ``base``.

        The old ``read`` key (before ``first_byte``/``idle`` existed) sets both when they are
        not given themselves.
        """
        values = asdict(base or cls())
        if "read" in data:
            read = parse_timeout(data["read"], what=f"{where}.read")
            values["first_byte"] = values["idle"] = read
        for name in TIMEOUT_FIELDS:
            if name in data:
                values[name] = parse_timeout(data[name], what=f"{where}.{name}")
        return cls(**values)


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:g}s"


DEFAULT_TIMEOUTS = Timeouts()


# ---------------------------------------------------------------------------- TLS

CA_ENV_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
"""Where CA bundles are taken from when ``--ca-bundle`` is not given (every one that is set)."""


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Which certificates a transport trusts. No secret: paths and a flag.

    ``ca_bundles``: PEM files (or hashed directories) of CAs trusted *instead of* the default
    store (a company CA, a self-signed server). ``insecure``: no verification at all.
    ``source`` says where the bundles came from (``--ca-bundle``, or the environment
    variables that named them), for messages. With neither, the system's store is used, or
    certifi's where the system has none.
    """

    ca_bundles: tuple[str, ...] = ()
    insecure: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ca_bundles", tuple(self.ca_bundles))  # a list from JSON

    @classmethod
    def resolve(
        cls,
        ca_bundle: str | Path | None = None,
        *,
        insecure: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> TLSConfig:
        """The settings for a command line: ``--ca-bundle``, else every bundle that
        ``$SSL_CERT_FILE`` and ``$REQUESTS_CA_BUNDLE`` name; each is checked here (one clear
        line if unusable)."""
        if ca_bundle is not None and insecure:
            raise ConfigError("--ca-bundle and --insecure exclude each other")
        if insecure:
            return cls(insecure=True, source="--insecure")
        named: list[tuple[str, str]] = []
        if ca_bundle is not None:
            named.append((str(ca_bundle), "--ca-bundle"))
        else:
            env = os.environ if environ is None else environ
            named += [(env[v], v) for v in CA_ENV_VARIABLES if env.get(v)]
        paths: list[str] = []
        for given, source in named:
            path = str(Path(given).expanduser().resolve())
            try:
                _context(cls(ca_bundles=(path,)), ssl.create_default_context)
            except (OSError, ssl.SSLError, ValueError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise ConfigError(
                    f"cannot use {path} as a CA bundle: {reason}", field=source
                ) from None
            if path not in paths:
                paths.append(path)
        if not paths:
            return cls()
        return cls(ca_bundles=tuple(paths), source=", ".join(source for _, source in named))

    def context(self, create: Callable[..., ssl.SSLContext] | None = None) -> ssl.SSLContext:
        """A client context for these settings (cached per settings and factory).

        ``create`` is ``ssl.create_default_context`` unless given; the locust user passes
        gevent's, which is the same function once gevent has patched ``ssl``.
        """
        return _context(self, create or ssl.create_default_context)


@cache
def _context(config: TLSConfig, create: Callable[..., ssl.SSLContext]) -> ssl.SSLContext:
    if config.insecure:
        context = create()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if config.ca_bundles:  # exactly these, not the default store as well
        first, *rest = config.ca_bundles
        context = create(capath=first) if Path(first).is_dir() else create(cafile=first)
        for bundle in rest:
            if Path(bundle).is_dir():
                context.load_verify_locations(capath=bundle)
            else:
                context.load_verify_locations(cafile=bundle)
        return context
    context = create()
    if not context.get_ca_certs() and not _has_system_capath():
        import certifi

        context.load_verify_locations(cafile=certifi.where())
    return context


def _has_system_capath() -> bool:
    capath = ssl.get_default_verify_paths().capath
    return bool(capath) and Path(capath).is_dir() and any(Path(capath).iterdir())


# ---------------------------------------------------------------------------- command lines


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """What a command line says about transport: ``--ca-bundle``, ``--insecure`` and the
    timeouts it gives (``{"idle": "2s"}``: only those given; the rest come from a scenario or
    the defaults). ``chatprobe run`` hands them on to its children with :meth:`to_args`."""

    ca_bundle: str | None = None
    insecure: bool = False
    timeouts: Mapping[str, str] = field(default_factory=dict)

    def tls(self) -> TLSConfig:
        """The TLS settings, the environment's CA variables included; checked (one line)."""
        return TLSConfig.resolve(self.ca_bundle, insecure=self.insecure)

    def timeouts_over(self, base: Timeouts = DEFAULT_TIMEOUTS) -> Timeouts:
        """``base`` with the limits this command line gives."""
        return Timeouts.from_mapping(self.timeouts, base=base, where="command line")

    def to_args(self, prefix: str = "--") -> list[str]:
        """The same options, as a child command's arguments (``prefix="--chatprobe-"`` for
        the pytest plugin, whose options all carry its name)."""
        args: list[str] = []
        if self.ca_bundle:
            args += [f"{prefix}ca-bundle", str(self.ca_bundle)]
        if self.insecure:
            args.append(f"{prefix}insecure")
        for name in TIMEOUT_FIELDS:
            if name in self.timeouts:
                args += [timeout_option(name, prefix), str(self.timeouts[name])]
        return args


def timeout_option(name: str, prefix: str = "--") -> str:
    """The command-line option of a timeout: ``first_byte`` -> ``--first-byte-timeout``."""
    return f"{prefix}{name.replace('_', '-')}-timeout"


# ---------------------------------------------------------------------------- errors


class Phase(StrEnum):
    """Where an exchange was when it failed."""

    CONNECT = "connect"  # DNS, TCP connect, TLS handshake, waiting for a pooled connection
    SEND = "send"  # writing the request
    HEADERS = "headers"  # waiting for or reading the response head
    BODY = "body"  # reading the body


class TransportEvent(Exception):
    """Something a transport detected itself and maps like an exception of a library."""


class PeerClosed(TransportEvent):
    """The server closed the connection (FIN, or TLS EOF) before the message was complete."""


class TotalTimeout(TransportEvent):
    """The whole exchange took longer than its total timeout."""


class BodyTooLarge(TransportEvent):
    """The body grew past the size limit; reading stopped."""


Outcome = ErrorClass | Mapping[Phase, ErrorClass]
ErrorTable = tuple[tuple[type[BaseException], Outcome], ...]
"""``(exception type, class or {phase: class})`` rows, the most specific type first; a row
whose mapping lacks the phase is passed over."""

E = ErrorClass
_RESET_OR_TRUNCATED: Mapping[Phase, ErrorClass] = {
    Phase.SEND: E.CONNECTION_RESET,
    Phase.HEADERS: E.CONNECTION_RESET,  # closed before a complete head: nothing to truncate
    Phase.BODY: E.TRUNCATED_BODY,  # a stream's is truncated_stream (see classify)
}
_TIMEOUT: Mapping[Phase, ErrorClass] = {
    Phase.CONNECT: E.TIMEOUT_CONNECT,
    Phase.SEND: E.TIMEOUT_FIRST_BYTE,  # the server is not even reading the request
    Phase.HEADERS: E.TIMEOUT_FIRST_BYTE,
    Phase.BODY: E.TIMEOUT_IDLE,
}

_COMMON: ErrorTable = (
    (TotalTimeout, E.TIMEOUT_TOTAL),
    (BodyTooLarge, E.PROTOCOL_ERROR),
    (PeerClosed, _RESET_OR_TRUNCATED),
    (ssl.SSLCertVerificationError, E.TLS_ERROR),
    (ssl.SSLEOFError, {Phase.CONNECT: E.TLS_ERROR, **_RESET_OR_TRUNCATED}),
    (ssl.SSLError, {Phase.CONNECT: E.TLS_ERROR}),
    (ssl.SSLError, E.PROTOCOL_ERROR),  # a broken record or an alert mid-exchange
    (TimeoutError, _TIMEOUT),
    (ConnectionRefusedError, E.CONNECT_ERROR),
    (ConnectionResetError, E.CONNECTION_RESET),
    (ConnectionAbortedError, E.CONNECTION_RESET),
    (BrokenPipeError, E.CONNECTION_RESET),
    (OSError, {Phase.CONNECT: E.CONNECT_ERROR}),  # unreachable, no route, DNS (gaierror)
    (OSError, E.CONNECTION_RESET),
)


@cache
def httpx_errors() -> ErrorTable:
    """httpx's exceptions (it wraps the socket's, which :data:`_COMMON` maps by cause)."""
    import httpx

    return (
        *_COMMON,
        (httpx.PoolTimeout, E.TIMEOUT_CONNECT),
        (httpx.TimeoutException, _TIMEOUT),
        (httpx.ConnectError, E.CONNECT_ERROR),
        (httpx.RemoteProtocolError, E.PROTOCOL_ERROR),  # EOF is told apart by the caller
        (httpx.DecodingError, E.PROTOCOL_ERROR),
        (httpx.NetworkError, {Phase.CONNECT: E.CONNECT_ERROR}),
        (httpx.NetworkError, E.CONNECTION_RESET),
    )


@cache
def geventhttpclient_errors() -> ErrorTable:
    """geventhttpclient's exceptions (locust child only: it imports gevent)."""
    from geventhttpclient.response import HTTPParseError

    return (*_COMMON, (HTTPParseError, E.PROTOCOL_ERROR))


def classify(
    exc: BaseException,
    phase: Phase,
    table: ErrorTable,
    *,
    stream: bool = False,
    timeouts: Timeouts | None = None,
) -> tuple[ErrorClass, str]:
    """The error class of ``exc`` raised in ``phase``, and a scrubbed one-line detail.

    The exception and what it was raised from are tried innermost first (the cause, else
    the context: httpcore re-raises with ``from None``, which hides the cause but keeps the
    context; a :class:`TransportEvent` says all there is and ends the chain); an exception
    nothing in ``table`` knows is a harness bug: ``client_error``. With
    ``stream``, a body cut short is ``truncated_stream``. With ``timeouts``, a timeout's
    detail names the limit that ran out.
    """
    chain = [exc]
    while not isinstance(chain[-1], TransportEvent) and len(chain) < 8:
        inner = chain[-1].__cause__ or chain[-1].__context__
        if inner is None:
            break
        chain.append(inner)
    found = E.CLIENT_ERROR
    for candidate in reversed(chain):
        cls = _lookup(candidate, phase, table)
        if cls is not None:
            found = cls
            break
    if found is E.TRUNCATED_BODY and stream:
        found = E.TRUNCATED_STREAM
    return found, _detail(exc, chain, found, timeouts)


def _lookup(exc: BaseException, phase: Phase, table: ErrorTable) -> ErrorClass | None:
    for kind, outcome in table:
        if isinstance(exc, kind):
            if isinstance(outcome, ErrorClass):
                return outcome
            cls = outcome.get(phase)
            if cls is not None:
                return cls
    return None


_LIMITS = {
    E.TIMEOUT_CONNECT: ("connect", "no connection"),
    E.TIMEOUT_FIRST_BYTE: ("first_byte", "no response head"),
    E.TIMEOUT_IDLE: ("idle", "no body bytes"),
    E.TIMEOUT_TOTAL: ("total", "the exchange did not end"),
}


def _detail(
    exc: BaseException, chain: list[BaseException], cls: ErrorClass, timeouts: Timeouts | None
) -> str:
    if cls is E.TLS_ERROR:
        root = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
        if root is not None:
            reason = root.verify_message or root.reason or "not trusted"
            text = (
                f"certificate verification failed ({reason}): trust the server's CA with "
                "--ca-bundle FILE (or SSL_CERT_FILE), or skip verification with --insecure"
            )
            return scrub_text(text)[:300]
    if cls in _LIMITS and timeouts is not None:
        name, what = _LIMITS[cls]
        limit = getattr(timeouts, name)
        option = timeout_option(name)
        return f"{what} within the {name.replace('_', ' ')} timeout ({_seconds(limit)}; {option})"
    if isinstance(exc, TransportEvent) and str(exc):
        return scrub_text(str(exc))[:300]
    return scrub_text(f"{type(exc).__name__}: {exc}".rstrip(": "))[:300]
