"""Building blocks of the offload tests: a real aioquic peer on loopback and one offloaded
endpoint, in either role, plus probes that count what the application's loop did.

Loaded by ``conftest.py`` under the name ``offload_scenario``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.asyncio import connect as plain_connect
from aioquic.asyncio import serve as plain_serve
from aioquic.asyncio.server import QuicServer
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.tls import CipherSuite

from quic_offload.aioquic import (
    OffloadPolicy,
    OffloadRuntime,
    ParkingController,
    connect,
    controller_of,
    serve,
)
from quic_offload.offload_client import OffloadGeometry

#: Compressed timing: a 0.5 s idle timeout kept alive by PINGs every 0.1 s.
IDLE_TIMEOUT = 0.5
POLICY = OffloadPolicy(park_after=0.1, keepalive_interval=0.1, unresponsive_after=3)
GEOMETRY = OffloadGeometry(tick=0.01)
ALPN = ["offload-test"]
SUITES = ("AES_128_GCM_SHA256", "AES_256_GCM_SHA384", "CHACHA20_POLY1305_SHA256")


def server_configuration(cert: Path, key: Path, *, suite: str | None = None,
                         idle_timeout: float = IDLE_TIMEOUT) -> QuicConfiguration:
    config = QuicConfiguration(is_client=False, alpn_protocols=ALPN, idle_timeout=idle_timeout)
    config.load_cert_chain(cert, key)
    if suite:
        config.cipher_suites = [CipherSuite[suite]]
    return config


def client_configuration(*, suite: str | None = None,
                         idle_timeout: float = IDLE_TIMEOUT) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=ALPN, idle_timeout=idle_timeout,
                               verify_mode=ssl.CERT_NONE)
    if suite:
        config.cipher_suites = [CipherSuite[suite]]
    return config


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Stream handler: send back everything, then FIN."""
    data = await reader.read()
    writer.write(data)
    writer.write_eof()


def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    asyncio.ensure_future(echo(reader, writer))


async def request(protocol: QuicConnectionProtocol, payload: bytes,
                  timeout: float = 5.0) -> bytes:
    """Open a stream, send ``payload`` with FIN, return what comes back before FIN."""
    reader, writer = await protocol.create_stream()
    writer.write(payload)
    writer.write_eof()
    return await asyncio.wait_for(reader.read(), timeout)


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class LoopProbe:
    """Counts the calls the event loop makes into a protocol, split by whether its
    connection was parked at that moment (installed outermost, over the controller)."""

    ENTRY_POINTS = ("datagram_received", "transmit", "_handle_timer", "quic_event_received")

    def __init__(self, protocol: QuicConnectionProtocol) -> None:
        self.protocol = protocol
        self.calls: dict[str, int] = dict.fromkeys(self.ENTRY_POINTS, 0)
        self.calls_while_parked: dict[str, int] = dict.fromkeys(self.ENTRY_POINTS, 0)
        for name in self.ENTRY_POINTS:
            setattr(protocol, name, self._wrap(name, getattr(protocol, name)))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            controller = controller_of(self.protocol)
            if controller is not None and controller.state == "parked":
                self.calls_while_parked[name] += 1
            return method(*args, **kwargs)
        return counted

    @property
    def total_while_parked(self) -> int:
        return sum(self.calls_while_parked.values())


class EventRecorder(QuicConnectionProtocol):
    """aioquic's protocol, remembering the QUIC events it saw (for the peer side)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[events.QuicEvent] = []

    def quic_event_received(self, event: events.QuicEvent) -> None:
        self.events.append(event)
        super().quic_event_received(event)

    @property
    def terminated(self) -> events.ConnectionTerminated | None:
        for event in self.events:
            if isinstance(event, events.ConnectionTerminated):
                return event
        return None


@dataclass
class Pair:
    """One offloaded endpoint and its plain aioquic peer, connected."""

    role: str                                # the offloaded side's role
    runtime: OffloadRuntime
    local: QuicConnectionProtocol            # offloaded side
    peer: QuicConnectionProtocol             # plain aioquic side
    controller: ParkingController
    server: QuicServer                       # whichever side is the server
    server_address: tuple[str, int]
    extras: dict[str, Any] = field(default_factory=dict)

    async def wait_parked(self, timeout: float = 3.0) -> None:
        await wait_until(lambda: self.controller.state == "parked", timeout, "the park")

    def engine(self) -> dict[str, Any]:
        return self.runtime.engine_stats()


@asynccontextmanager
async def offloaded_pair(role: str, certs: tuple[Path, Path], *, backend: str = "portable",
                         suite: str | None = None, mode: str = "translator",
                         policy: OffloadPolicy = POLICY,
                         idle_timeout: float = IDLE_TIMEOUT) -> AsyncIterator[Pair]:
    """Connect an offloaded ``role`` ("server" or "client") to a plain aioquic peer."""
    cert, key = certs
    runtime = OffloadRuntime(GEOMETRY, backend=backend, mode=mode)
    try:
        if role == "server":
            server = await serve("127.0.0.1", 0, configuration=server_configuration(
                cert, key, suite=suite, idle_timeout=idle_timeout), policy=policy,
                offload=runtime, stream_handler=echo_handler)
            address = server._transport.get_extra_info("sockname")[:2]
            async with plain_connect(*address, configuration=client_configuration(
                    suite=suite, idle_timeout=idle_timeout), create_protocol=EventRecorder,
                    stream_handler=echo_handler) as peer:
                await wait_until(lambda: server.controllers, 2, "the server's connection")
                controller = server.controllers[0]
                yield Pair(role, runtime, controller.protocol, peer, controller, server,
                           address)
            server.close()
        else:
            server = await plain_serve("127.0.0.1", 0, configuration=server_configuration(
                cert, key, suite=suite, idle_timeout=idle_timeout),
                create_protocol=EventRecorder, stream_handler=echo_handler)
            address = server._transport.get_extra_info("sockname")[:2]
            async with connect(*address, configuration=client_configuration(
                    suite=suite, idle_timeout=idle_timeout), policy=policy, offload=runtime,
                    stream_handler=echo_handler) as local:
                await wait_until(lambda: server._protocols, 2, "the server's connection")
                peer = next(iter(server._protocols.values()))
                yield Pair(role, runtime, local, peer, controller_of(local), server, address)
            server.close()
    finally:
        runtime.close()


# -- sans-I/O aioquic pairs (no sockets, a hand-driven clock) -------------------------------

CLIENT_ADDR = ("127.0.0.1", 40001)
SERVER_ADDR = ("127.0.0.1", 40002)


class SansIoPair:
    """A client and a server :class:`QuicConnection` wired back to back in memory."""

    def __init__(self, certs: tuple[Path, Path], *, suite: str | None = None) -> None:
        from aioquic.quic.connection import QuicConnection

        from quic_offload.aioquic.key_capture import capture_first_secrets

        self.now = 1.0
        self.client = QuicConnection(configuration=client_configuration(suite=suite))
        self.client_secrets = capture_first_secrets(self.client)
        self.client.connect(SERVER_ADDR, now=self.now)
        self._server_config = server_configuration(*certs, suite=suite)
        self.server: Any = None
        self.server_secrets: Any = None
        self.settle()

    def _make_server(self) -> None:
        from aioquic.quic.connection import QuicConnection

        from quic_offload.aioquic.key_capture import capture_first_secrets

        self.server = QuicConnection(
            configuration=self._server_config,
            original_destination_connection_id=self.client._peer_cid.cid)
        self.server_secrets = capture_first_secrets(self.server)

    def exchange(self) -> int:
        """Deliver everything both sides want to send now; returns the datagram count."""
        count = 0
        for data, _ in self.client.datagrams_to_send(now=self.now):
            if self.server is None:
                self._make_server()
            self.server.receive_datagram(data, CLIENT_ADDR, now=self.now)
            count += 1
        if self.server is not None:
            for data, _ in self.server.datagrams_to_send(now=self.now):
                self.client.receive_datagram(data, SERVER_ADDR, now=self.now)
                count += 1
        return count

    def settle(self, rounds: int = 20) -> None:
        """Exchange (moving the clock past ACK delays) until nothing is left to send."""
        for _ in range(rounds):
            self.now += 0.03
            for conn in (self.client, self.server):
                if conn is not None:
                    timer = conn.get_timer()
                    if timer is not None and timer <= self.now:
                        conn.handle_timer(now=self.now)
            if not self.exchange():
                return

    def drain_events(self) -> None:
        for conn in (self.client, self.server):
            while conn.next_event() is not None:
                pass
