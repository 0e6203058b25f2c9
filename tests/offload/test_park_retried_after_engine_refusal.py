"""A park the engine side refuses (every slot taken) is tried again later -- with one warning,
not one per retry -- and once a slot is free, the waiting connection parks without any
traffic of its own to prompt it."""

from __future__ import annotations

import asyncio
import logging

from offload_scenario import (
    POLICY,
    client_configuration,
    echo_handler,
    request,
    server_configuration,
    wait_until,
)

from quic_offload.aioquic import OffloadRuntime, connect, controller_of
from quic_offload.offload_client import OffloadGeometry

#: Long enough that the connection left waiting is not lost to its idle timeout meanwhile.
IDLE_TIMEOUT = 10.0


def test_park_refused_for_lack_of_slots_is_retried(certs, backend: str, caplog) -> None:
    from aioquic.asyncio import serve as plain_serve

    async def scenario() -> None:
        runtime = OffloadRuntime(OffloadGeometry(tick=0.01, max_parked=1), backend=backend)
        server = await plain_serve("127.0.0.1", 0, configuration=server_configuration(
            *certs, idle_timeout=IDLE_TIMEOUT), stream_handler=echo_handler)
        address = server._transport.get_extra_info("sockname")[:2]
        config = client_configuration(idle_timeout=IDLE_TIMEOUT)
        try:
            async with connect(*address, configuration=config, policy=POLICY,
                               offload=runtime) as first:
                first_ctl = controller_of(first)
                await wait_until(lambda: first_ctl.state == "parked", 3, "the first park")
                async with connect(*address, configuration=config, policy=POLICY,
                                   offload=runtime) as second:
                    second_ctl = controller_of(second)
                    with caplog.at_level(logging.WARNING, "quic_offload"):
                        await wait_until(lambda: "slots are in use" in caplog.text, 3,
                                         "the engine to refuse the second park")
                        blocked = runtime.counters["park_blocked"]
                        await wait_until(lambda: runtime.counters["park_blocked"] > blocked,
                                         4, "a retry of the refused park")
                    # retried every second, said once: a warning per retry would flood logs
                    refusals = [r for r in caplog.records if "park_refused" in r.getMessage()]
                    assert len(refusals) == 1, [r.getMessage() for r in refusals]
                    assert second_ctl.state == "active"
                    # the first connection goes away: its slot frees up
                    assert await request(first, b"bye") == b"bye"
                    first.close()
                    await wait_until(lambda: second_ctl.state == "parked", 5,
                                     "the second connection to park once a slot is free")
                    assert await request(second, b"still here") == b"still here"
        finally:
            server.close()
            runtime.close()

    asyncio.run(scenario())
