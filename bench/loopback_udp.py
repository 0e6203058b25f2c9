"""The socket pair the ring benchmarks send through: a receiver with a large buffer (so a
batch never overflows it) and a sender, both on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def udp_pair(rx_blocking: bool = True) -> Iterator[tuple[socket.socket, socket.socket, tuple]]:
    """``(rx, tx, rx_address)``; both sockets are closed on exit."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(rx_blocking)
        tx.bind(("127.0.0.1", 0))
        yield rx, tx, rx.getsockname()
    finally:
        rx.close()
        tx.close()
