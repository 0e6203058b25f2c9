"""The peer updates its keys (twice) while the connection is parked: the engine follows
each update (RFC 9001 §6), keeps answering and pinging under the new keys, and the
application resumes with the current keys and key phase -- the header-protection key
unchanged -- so requests in both directions work afterwards.  Both roles.
"""

from __future__ import annotations

import asyncio

import pytest
from aioquic.tls import Epoch
from offload_scenario import offloaded_pair, request, wait_until


@pytest.mark.slow
@pytest.mark.parametrize("role", ["server", "client"])
def test_key_update_while_parked(role: str, backend: str, certs) -> None:
    async def scenario() -> None:
        async with offloaded_pair(role, certs, backend=backend) as pair:
            await pair.wait_parked()
            phase = pair.local._quic._cryptos[Epoch.ONE_RTT].recv.key_phase
            for update in (1, 2):
                pair.peer.request_key_update()
                await asyncio.wait_for(pair.peer.ping(), 2)
                await wait_until(lambda u=update: pair.engine()["key_updates"] == u, 2,
                                 f"key update {update} followed")
                acked = pair.engine()["acks_received"]
                await wait_until(lambda a=acked: pair.engine()["acks_received"] >= a + 3, 3,
                                 "keepalives under the new keys")
            assert pair.controller.state == "parked"
            assert pair.engine()["wakes"]["KEY_UPDATE"] == 0

            assert await request(pair.local, b"after two updates") == b"after two updates"
            crypto = pair.local._quic._cryptos[Epoch.ONE_RTT]
            assert crypto.recv.key_phase == phase  # two flips
            assert crypto.send.secret == pair.peer._quic._cryptos[Epoch.ONE_RTT].recv.secret
            assert await request(pair.peer, b"peer asks") == b"peer asks"
    asyncio.run(scenario())
