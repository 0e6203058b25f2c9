"""The peer closes a parked connection: the engine wakes the application with CLOSED and
hands the CONNECTION_CLOSE over, and aioquic ends the connection with the peer's error code
and reason.  Both roles.
"""

from __future__ import annotations

import asyncio

import pytest
from aioquic.quic import events
from offload_scenario import offloaded_pair, wait_until


@pytest.mark.slow
@pytest.mark.parametrize("role", ["server", "client"])
def test_wake_closed(role: str, backend: str, certs) -> None:
    async def scenario() -> None:
        async with offloaded_pair(role, certs, backend=backend) as pair:
            await pair.wait_parked()
            seen: list[events.QuicEvent] = []
            original = pair.local.quic_event_received

            def watch(event: events.QuicEvent) -> None:
                seen.append(event)
                original(event)

            pair.local.quic_event_received = watch
            pair.peer.close(error_code=0x1234, reason_phrase="going away")

            await wait_until(lambda: pair.runtime.counters["wakes"].get("CLOSED") == 1, 2,
                             "the CLOSED wake")
            await asyncio.wait_for(pair.local.wait_closed(), 3)
            closes = [e for e in seen if isinstance(e, events.ConnectionTerminated)]
            assert closes and closes[0].error_code == 0x1234
            assert closes[0].reason_phrase == "going away"
            assert pair.engine()["wakes"]["CLOSED"] == 1
    asyncio.run(scenario())
