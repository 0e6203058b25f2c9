"""A parked connection outlives 10x its negotiated idle timeout on engine PINGs alone, while
the application's loop makes zero calls into it; then it still carries a request.

Both roles (offloaded server with a plain aioquic client, offloaded client with a plain
aioquic server), both backends.
"""

from __future__ import annotations

import asyncio

import pytest
from offload_scenario import IDLE_TIMEOUT, LoopProbe, offloaded_pair, request


@pytest.mark.slow
@pytest.mark.parametrize("role", ["server", "client"])
def test_parked_connection_outlives_idle_timeout(role: str, backend: str, certs) -> None:
    async def scenario() -> None:
        async with offloaded_pair(role, certs, backend=backend) as pair:
            assert await request(pair.peer, b"warm-up") == b"warm-up"
            await pair.wait_parked()
            probe = LoopProbe(pair.local)
            before = pair.engine()
            await asyncio.sleep(10 * IDLE_TIMEOUT)
            after = pair.engine()

            assert pair.controller.state == "parked"
            assert probe.total_while_parked == 0, probe.calls_while_parked
            assert pair.controller.events_while_parked == 0
            assert pair.peer.terminated is None  # the peer never timed out
            assert pair.peer._quic._state.name == "CONNECTED"
            pings = after["pings_sent"] - before["pings_sent"]
            assert pings >= 10, after
            assert after["acks_received"] - before["acks_received"] >= pings - 2
            assert after["wakes"] == before["wakes"]

            assert await request(pair.local, b"after ten idle timeouts") == \
                b"after ten idle timeouts"
    asyncio.run(scenario())
