"""TLS for the load client, in memory: the TLS layer never reads the socket itself.

A TLS socket (``ssl.SSLSocket``, gevent's too) reads the network inside OpenSSL, with
plain ``read`` calls, so a load client on one cannot get the kernel's receive stamp of the
bytes it decrypts, and pays for every token with a failed read, an exception and a retry
(gevent's SSL socket), on top of OpenSSL's own reads of a record's header and its body.
Here the TLS state is an ``ssl.SSLObject`` over two ``ssl.MemoryBIO`` buffers
(``SSLContext.wrap_bio``): the client reads the TCP socket itself, once per network read,
with ``recvmsg`` and ``SO_TIMESTAMPNS`` (:class:`~chatprobe.load.receive.StampedReader`),
and hands the ciphertext to :meth:`MemoryTLSSocket.feed`. An HTTPS sample is then stamped
on the same kernel clock as a plain-HTTP one, and a read costs what it costs over HTTP
plus the decryption.

The handshake, certificate and host name checks, alerts and close are OpenSSL's, as with
``wrap_socket``: the context is the one :class:`~chatprobe.transport.TLSConfig` builds. A
ragged EOF (the peer closed TCP without a TLS close) reads as the end of the stream, as
``suppress_ragged_eofs`` makes it for a TLS socket; HTTP framing tells a cut body.

Locust child only (gevent sockets).
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["MemoryTLSSocket"]

_READ_SIZE = 64 * 1024  # ciphertext asked of one network read outside the stamped reader


class MemoryTLSSocket:
    """A TLS client connection over a connected gevent TCP socket (module docstring).

    Offers what the connection pool and the exchange use of a socket: ``sendall``,
    ``recv``, ``settimeout``, ``fileno``, ``close``; and, for the stamped reader, ``tcp``
    (the socket beneath), :meth:`feed` and :meth:`take`.
    """

    __slots__ = ("__weakref__", "_closed", "_incoming", "_outgoing", "_tls", "ended", "tcp")

    def __init__(self, tcp: Any, context: ssl.SSLContext, server_hostname: str | None) -> None:
        self.tcp = tcp
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self._closed = False
        self.ended = False  # the peer closed TLS (close_notify), or TCP beneath it

    # ------------------------------------------------------------------ set-up and sending
    def do_handshake(self) -> None:
        """The TLS handshake, in the socket's timeout; raises what ``wrap_socket`` raises
        (``ssl.SSLCertVerificationError``, ``ssl.SSLEOFError``, ...)."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                if self._incoming.eof:  # closed mid-handshake (OpenSSL says so itself)
                    raise ssl.SSLEOFError("peer closed the connection in the handshake") from None
                self._flush()
                self._receive(self.tcp.recv(_READ_SIZE))
                continue
            self._flush()
            return

    def sendall(self, data: bytes) -> None:
        self._tls.write(data)
        self._flush()

    def _flush(self) -> None:
        """Send what the TLS layer has written (records, handshake or alert messages)."""
        out = self._outgoing.read()
        if out:
            self.tcp.sendall(out)

    # ------------------------------------------------------------------ receiving
    def _receive(self, ciphertext: bytes) -> None:
        if ciphertext:
            self._incoming.write(ciphertext)
        elif not self._incoming.eof:
            self._incoming.write_eof()

    def take(self, size: int) -> bytes:
        """Up to ``size`` decrypted bytes from what was received already, without reading
        the network (``b""``: no whole record is waiting; at the end of the stream too,
        when :attr:`ended` says so)."""
        parts: list[bytes] = []
        left = size
        while left > 0:
            try:
                part = self._tls.read(left)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.ended = True  # TCP closed without a close_notify (a ragged EOF)
                break
            if not part:  # the peer's close_notify: nothing more comes, TCP open or not
                self.ended = True
                break
            parts.append(part)
            left -= len(part)
        if self._outgoing.pending:  # a reply the peer's messages called for (key update)
            self._flush()
        return b"".join(parts)

    def feed(self, ciphertext: bytes, size: int) -> bytes:
        """Hand the TLS layer one network read (``b""``: the peer closed TCP); the
        decrypted bytes it completed, up to ``size`` (``b""`` when it completed no
        record: read again, unless :attr:`ended`)."""
        self._receive(ciphertext)
        return self.take(size)

    def recv(self, size: int) -> bytes:
        """Decrypted bytes (``b""`` at the end), reading the network as needed."""
        while True:
            data = self.take(size)
            if data or self.ended:
                return data
            self._receive(self.tcp.recv(_READ_SIZE))

    # ------------------------------------------------------------------ the socket beneath
    def settimeout(self, timeout: float | None) -> None:
        self.tcp.settimeout(timeout)

    def fileno(self) -> int:
        return int(self.tcp.fileno())

    def close(self) -> None:
        """Close the TCP connection (no close_notify: the pool closes a connection it no
        longer trusts, and a peer owes nothing to one that leaves)."""
        if not self._closed:
            self._closed = True
            self.tcp.close()
