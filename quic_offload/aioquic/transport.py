"""A datagram transport whose receive side is the offload engine's CQ 0.

aioquic's protocols talk to an :class:`asyncio.DatagramTransport`.  This one sends straight
from the socket (the engine's keepalives go out of the same socket, so the peer and any NAT
see one address) and receives what the engine hands over: every datagram of a connection
the engine does not hold.  The loop never reads the socket itself, which is what lets a
parked connection cost the application nothing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from quic_offload.offload_client import OffloadClient

log = logging.getLogger(__name__)


class OffloadDatagramTransport(asyncio.DatagramTransport):
    """The socket's transport while the offload engine reads it."""

    def __init__(self, client: OffloadClient, sock: socket.socket,
                 protocol: asyncio.DatagramProtocol, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        sock.setblocking(False)
        self._client = client
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._loop = loop
        self._closing = False
        self.send_errors = 0
        client.add_socket(self._fd, self._received)

    def _received(self, data: bytes, addr: Any) -> None:
        if not self._closing:
            self._protocol.datagram_received(data, addr)

    # -- asyncio.DatagramTransport ----------------------------------------------------------

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if self._closing:
            return
        try:
            if addr is None:
                self._sock.send(data)
            else:
                self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.send_errors += 1  # a full socket buffer drops a datagram, as UDP may
        except OSError as exc:
            self.send_errors += 1
            self._protocol.error_received(exc)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        if name == "sockname":
            try:
                return self._sock.getsockname()
            except OSError:
                return default
        if name == "peername":
            try:
                return self._sock.getpeername()
            except OSError:
                return default
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        # the socket may only be closed once the engine let go of its descriptor
        self._client.remove_socket(self._fd, self._removed)

    def abort(self) -> None:
        self.close()

    def _removed(self) -> None:
        self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, None)

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass
