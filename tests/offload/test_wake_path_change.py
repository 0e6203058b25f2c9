"""The peer moves to a new port (a NAT rebinding) while the connection is parked: the
engine wakes the application with PATH_CHANGE and hands the datagram over, aioquic validates
the new path (RFC 9000 §9.3), requests flow on the new path, and the connection parks again
and is kept alive there.

The offloaded side is the server: clients are the ones that migrate.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from offload_scenario import offloaded_pair, request, wait_until


@pytest.mark.slow
def test_wake_path_change(backend: str, certs) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with offloaded_pair("server", certs, backend=backend) as pair:
            await pair.wait_parked()
            old_port = pair.local._quic._network_paths[0].addr[1]

            # rebind: the client's datagrams now leave from another socket
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(("::", 0, 0, 0))
            old_transport = pair.peer._transport
            await loop.create_datagram_endpoint(lambda: pair.peer, sock=sock)
            new_port = sock.getsockname()[1]
            assert new_port != old_port

            await asyncio.wait_for(pair.peer.ping(), 3)
            assert pair.runtime.counters["wakes"].get("PATH_CHANGE") == 1
            assert await request(pair.peer, b"from the new path") == b"from the new path"
            path = pair.local._quic._network_paths[0]
            assert path.addr[1] == new_port and path.is_validated

            await pair.wait_parked()
            acked = pair.engine()["acks_received"]
            await wait_until(lambda: pair.engine()["acks_received"] >= acked + 5, 3,
                             "keepalives on the new path")
            assert await request(pair.local, b"server asks") == b"server asks"
            old_transport.close()
    asyncio.run(scenario())
