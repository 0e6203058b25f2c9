"""The peer's PINGs are answered by the engine while the connection is parked: each
ack-eliciting packet gets exactly one ACK-only packet, whose ACK Delay is within
max_ack_delay, and the application is not woken for any of it.
"""

from __future__ import annotations

import asyncio

import pytest
from offload_scenario import LoopProbe, offloaded_pair

MAX_ACK_DELAY = 0.025  # what aioquic peers assume (the transport parameter's default)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["server", "client"])
def test_peer_pings_are_acked_while_parked(role: str, backend: str, certs) -> None:
    async def scenario() -> None:
        async with offloaded_pair(role, certs, backend=backend) as pair:
            await pair.wait_parked()
            probe = LoopProbe(pair.local)
            delays: list[float] = []
            loss = pair.peer._quic._loss
            original = loss.on_ack_received

            def record(*, ack_rangeset, ack_delay, now, space):  # noqa: ANN001, ANN202
                delays.append(ack_delay)
                return original(ack_rangeset=ack_rangeset, ack_delay=ack_delay, now=now,
                                space=space)

            loss.on_ack_received = record
            before = pair.engine()
            for _ in range(5):
                await asyncio.wait_for(pair.peer.ping(), 2)  # returns once our ACK arrived
            after = pair.engine()

            assert after["acks_sent"] - before["acks_sent"] == 5
            assert delays and max(delays) <= MAX_ACK_DELAY
            assert pair.controller.state == "parked"
            assert probe.total_while_parked == 0
            assert after["wakes"] == before["wakes"]
    asyncio.run(scenario())
