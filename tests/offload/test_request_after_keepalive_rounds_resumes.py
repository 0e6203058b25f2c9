"""After many keepalive rounds, a stream request from either side -- the offloaded
application or its peer -- is delivered intact and answered; the resumed connection keeps
working for further requests and parks again.  Both roles, all three cipher suites, both
backends.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from offload_scenario import SUITES, offloaded_pair, request, wait_until


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("role", ["server", "client"])
def test_request_after_keepalive_rounds_resumes(role: str, suite: str, backend: str,
                                                certs) -> None:
    async def scenario() -> None:
        async with offloaded_pair(role, certs, backend=backend, suite=suite) as pair:
            assert await request(pair.peer, b"first") == b"first"
            await pair.wait_parked()
            await wait_until(lambda: pair.engine()["acks_received"] >= 8, 5,
                             "8 acknowledged keepalives")

            # the peer asks: the engine wakes the application with the datagram
            payload = os.urandom(3000)  # several datagrams, one stream
            assert await request(pair.peer, payload) == payload
            assert pair.controller.resumes == 1
            assert pair.runtime.counters["wakes"].get("DATA") == 1

            await pair.wait_parked()
            assert pair.controller.parks == 2
            await wait_until(lambda: pair.engine()["acks_received"] >= 16, 5,
                             "8 more acknowledged keepalives")

            # the application asks: its send resumes the connection first
            payload = os.urandom(2000)
            assert await request(pair.local, payload) == payload
            assert pair.controller.resumes == 2
            for i in range(3):
                assert await request(pair.local, b"again %d" % i) == b"again %d" % i
            await pair.wait_parked()
            assert pair.controller.parks == 3
            assert pair.engine()["dropped_duplicate"] == 0
            assert pair.peer.terminated is None
    asyncio.run(scenario())
