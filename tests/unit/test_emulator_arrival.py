"""The emulator's stamping listener keeps accepted connections only while something else
holds them (a connection dropped before it is claimed leaves nothing behind)."""

from __future__ import annotations

import gc
import socket

import pytest

from chatprobe.emulator.arrival import KERNEL_TIMESTAMPS, listening_socket

pytestmark = pytest.mark.skipif(not KERNEL_TIMESTAMPS, reason="needs Linux kernel stamps")


def test_a_dropped_connection_leaves_no_entry() -> None:
    listener = listening_socket("127.0.0.1", 0, 8)
    assert listener is not None
    listener.setblocking(True)
    port = listener.getsockname()[1]
    with listener, socket.create_connection(("127.0.0.1", port)) as client:
        conn, _ = listener.accept()
        fd = conn.fileno()
        assert listener.accepted[fd] is conn  # claimable while the connection is held
        conn.close()
        del conn  # what asyncio does with a connection whose TLS handshake failed
        gc.collect()
        assert fd not in listener.accepted
        client.close()
