"""``serve()``: aioquic's server, with idle connections kept alive by the offload engine."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol, QuicStreamHandler
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.tls import SessionTicketFetcher, SessionTicketHandler

from quic_offload.aioquic.key_capture import capture_first_secrets
from quic_offload.aioquic.parking import ParkingController
from quic_offload.aioquic.policy import OffloadPolicy
from quic_offload.aioquic.runtime import OffloadRuntime
from quic_offload.aioquic.transport import OffloadDatagramTransport


class OffloadServer(QuicServer):
    """aioquic's :class:`~aioquic.asyncio.server.QuicServer` on an offloaded socket."""

    offload: OffloadRuntime
    controllers: list[ParkingController]

    @property
    def sockname(self) -> tuple:
        """The address the server listens on (useful after binding port 0)."""
        return self._transport.get_extra_info("sockname")

    def close(self) -> None:
        """Close every connection (parked ones are resumed first, by their own transmit)."""
        super().close()


def check_cid_length(configuration: QuicConfiguration, runtime: OffloadRuntime) -> None:
    if configuration.connection_id_length != runtime.geometry.host_cid_len:
        raise ValueError(
            f"configuration.connection_id_length is {configuration.connection_id_length} but "
            f"the offload engine indexes {runtime.geometry.host_cid_len}-byte connection IDs; "
            f"use OffloadGeometry(host_cid_len={configuration.connection_id_length})")


async def serve(
    host: str,
    port: int,
    *,
    configuration: QuicConfiguration,
    create_protocol: Callable[..., QuicConnectionProtocol] = QuicConnectionProtocol,
    session_ticket_fetcher: SessionTicketFetcher | None = None,
    session_ticket_handler: SessionTicketHandler | None = None,
    retry: bool = False,
    stream_handler: QuicStreamHandler | None = None,
    policy: OffloadPolicy | None = None,
    offload: OffloadRuntime | None = None,
) -> OffloadServer:
    """Start a QUIC server like :func:`aioquic.asyncio.serve`, with offload.

    ``policy`` says when connections park and how they are kept; ``offload`` is the engine to
    use (by default the running loop's shared one).  The user's protocol class is unchanged.
    """
    loop = asyncio.get_running_loop()
    runtime = offload or OffloadRuntime.shared()
    check_cid_length(configuration, runtime)
    policy = policy or OffloadPolicy()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    controllers: list[ParkingController] = []

    def offloaded_protocol(connection: QuicConnection, stream_handler: Any = None
                           ) -> QuicConnectionProtocol:
        secrets = capture_first_secrets(connection)
        protocol = create_protocol(connection, stream_handler=stream_handler)
        controllers.append(ParkingController(runtime, protocol, sock, policy, secrets))
        return protocol

    server = OffloadServer(
        configuration=configuration, create_protocol=offloaded_protocol,
        session_ticket_fetcher=session_ticket_fetcher,
        session_ticket_handler=session_ticket_handler, retry=retry,
        stream_handler=stream_handler,
    )
    server.offload = runtime
    server.controllers = controllers
    transport = OffloadDatagramTransport(runtime.client, sock, server, loop)
    server.connection_made(transport)
    return server
