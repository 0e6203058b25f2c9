"""``connect()``: aioquic's client, with the connection kept alive by the offload engine."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager

from aioquic.asyncio.protocol import QuicConnectionProtocol, QuicStreamHandler
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import NetworkAddress, QuicConnection, QuicTokenHandler
from aioquic.tls import SessionTicketHandler

from quic_offload.aioquic.key_capture import capture_first_secrets
from quic_offload.aioquic.parking import ParkingController
from quic_offload.aioquic.policy import OffloadPolicy
from quic_offload.aioquic.runtime import OffloadRuntime
from quic_offload.aioquic.server import check_cid_length
from quic_offload.aioquic.transport import OffloadDatagramTransport


@asynccontextmanager
async def connect(
    host: str,
    port: int,
    *,
    configuration: QuicConfiguration | None = None,
    create_protocol: Callable[..., QuicConnectionProtocol] = QuicConnectionProtocol,
    session_ticket_handler: SessionTicketHandler | None = None,
    stream_handler: QuicStreamHandler | None = None,
    token_handler: QuicTokenHandler | None = None,
    wait_connected: bool = True,
    local_port: int = 0,
    policy: OffloadPolicy | None = None,
    offload: OffloadRuntime | None = None,
) -> AsyncGenerator[QuicConnectionProtocol, None]:
    """Connect like :func:`aioquic.asyncio.connect`, with offload (one socket per
    connection, dual-stack IPv6 as aioquic does).  Yields the user's protocol."""
    loop = asyncio.get_running_loop()
    runtime = offload or OffloadRuntime.shared()
    policy = policy or OffloadPolicy()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    addr: NetworkAddress = infos[0][4]
    if len(addr) == 2:
        addr = ("::ffff:" + addr[0], addr[1], 0, 0)
    if configuration is None:
        configuration = QuicConfiguration(is_client=True)
    if configuration.server_name is None:
        configuration.server_name = host
    check_cid_length(configuration, runtime)
    connection = QuicConnection(configuration=configuration,
                                session_ticket_handler=session_ticket_handler,
                                token_handler=token_handler)
    secrets = capture_first_secrets(connection)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", local_port, 0, 0))
    except OSError:
        sock.close()
        raise
    protocol = create_protocol(connection, stream_handler=stream_handler)
    transport = OffloadDatagramTransport(runtime.client, sock, protocol, loop)
    protocol.connection_made(transport)
    ParkingController(runtime, protocol, sock, policy, secrets)
    try:
        protocol.connect(addr, transmit=wait_connected)
        if wait_connected:
            await protocol.wait_connected()
        yield protocol
    finally:
        protocol.close()
        await protocol.wait_closed()
        transport.close()
