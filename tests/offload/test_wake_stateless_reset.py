"""A stateless reset from the peer wakes the parked connection with STATELESS_RESET; the
application then drains the connection without sending anything (RFC 9000 §10.3.1), and it
ends with a ConnectionTerminated event.

Only servers hand out reset tokens in aioquic, so the offloaded side is the client and the
reset comes from the server's address with a random DCID, as a real reset does.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from aioquic.quic import events
from offload_scenario import offloaded_pair, wait_until


@pytest.mark.slow
def test_wake_stateless_reset(backend: str, certs) -> None:
    async def scenario() -> None:
        async with offloaded_pair("client", certs, backend=backend) as pair:
            await pair.wait_parked()
            quic = pair.local._quic
            token = quic._peer_cid.stateless_reset_token
            assert token and len(token) == 16
            terminated: list[events.ConnectionTerminated] = []
            original = pair.local.quic_event_received

            def watch(event: events.QuicEvent) -> None:
                if isinstance(event, events.ConnectionTerminated):
                    terminated.append(event)
                original(event)

            pair.local.quic_event_received = watch
            # first byte: short header with the fixed bit; then unpredictable bytes
            reset = bytes([0x40 | (os.urandom(1)[0] & 0x3F)]) + os.urandom(24) + token
            client_address = pair.peer._quic._network_paths[0].addr
            sent_before = pair.engine()["pings_sent"]
            pair.server._transport.sendto(reset, client_address)

            await wait_until(lambda: pair.runtime.counters["wakes"].get("STATELESS_RESET"), 2,
                             "the STATELESS_RESET wake")
            await wait_until(lambda: pair.controller.state == "active", 2, "the resume")
            assert quic._state.name in ("DRAINING", "TERMINATED")
            await wait_until(lambda: terminated, 3, "ConnectionTerminated")
            assert terminated[0].reason_phrase == "stateless reset"
            assert pair.engine()["pings_sent"] - sent_before <= 1  # nothing after the reset
    asyncio.run(scenario())


def test_noise_on_a_parked_clients_socket_is_dropped(backend: str, certs) -> None:
    """Not a reset (unknown token), not a connection of ours: counted and dropped by the
    engine, and the application never hears of it."""
    async def scenario() -> None:
        async with offloaded_pair("client", certs, backend=backend) as pair:
            await pair.wait_parked()
            client_address = pair.peer._quic._network_paths[0].addr
            for noise in (bytes([0x41]) + os.urandom(40),       # short header, unknown DCID
                          bytes([0xC0]) + os.urandom(60)):      # a stray long header
                pair.server._transport.sendto(noise, client_address)
            await wait_until(lambda: pair.engine()["dropped_unknown"] == 2, 2, "both drops")
            assert pair.runtime.counters["wakes"].get("STATELESS_RESET") is None
            assert pair.controller.state == "parked"
            assert pair.controller.resumes == 0
            assert pair.controller.events_while_parked == 0
    asyncio.run(scenario())
