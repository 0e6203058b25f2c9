"""The peer process stops answering (paused with SIGSTOP, or killed) while the connection is
parked: after ``unresponsive_after`` unanswered PINGs the engine wakes the application with
UNRESPONSIVE, and aioquic, resumed, ends the connection at its idle deadline.  Both roles.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from offload_scenario import (
    GEOMETRY,
    IDLE_TIMEOUT,
    POLICY,
    client_configuration,
    echo_handler,
    request,
    server_configuration,
    wait_until,
)

from quic_offload.aioquic import OffloadRuntime, connect, controller_of, serve

PEER = Path(__file__).with_name("peer_process.py")


async def start_peer(*args: str) -> tuple[asyncio.subprocess.Process, int]:
    """Start the peer and wait (without blocking the loop) for its READY line."""
    proc = await asyncio.create_subprocess_exec(sys.executable, str(PEER), *args,
                                                stdout=asyncio.subprocess.PIPE)
    line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    if not line.startswith("READY"):
        proc.kill()
        raise AssertionError(f"peer process did not start: {line!r}")
    return proc, int(line.split()[1])


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await asyncio.wait_for(proc.wait(), 5)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGSTOP, signal.SIGKILL], ids=["paused", "killed"])
def test_unresponsive_server_wakes_parked_client(how: int, backend: str, certs) -> None:
    async def scenario() -> None:
        proc, port = await start_peer("server", str(certs[0]), str(certs[1]), str(IDLE_TIMEOUT))
        runtime = OffloadRuntime(GEOMETRY, backend=backend)
        try:
            async with connect("127.0.0.1", port, configuration=client_configuration(),
                               policy=POLICY, offload=runtime) as client:
                assert await request(client, b"hi") == b"hi"
                controller = controller_of(client)
                await wait_until(lambda: controller.state == "parked", 3, "the park")
                os.kill(proc.pid, how)
                await wait_until(lambda: runtime.counters["wakes"].get("UNRESPONSIVE") == 1,
                                 5, "the UNRESPONSIVE wake")
                await asyncio.wait_for(client.wait_closed(), 5)
                assert runtime.engine_stats()["wakes"]["UNRESPONSIVE"] == 1
                assert controller.last_writeback.pings_sent >= POLICY.unresponsive_after
        finally:
            await stop(proc)
            runtime.close()
    asyncio.run(scenario())


@pytest.mark.slow
def test_unresponsive_client_wakes_parked_server(backend: str, certs) -> None:
    async def scenario() -> None:
        runtime = OffloadRuntime(GEOMETRY, backend=backend)
        server = await serve("127.0.0.1", 0, configuration=server_configuration(*certs),
                             policy=POLICY, offload=runtime, stream_handler=echo_handler)
        port = server._transport.get_extra_info("sockname")[1]
        proc, _ = await start_peer("client", "127.0.0.1", str(port), str(IDLE_TIMEOUT))
        try:
            await wait_until(lambda: server.controllers, 3, "the connection")
            controller = server.controllers[0]
            await wait_until(lambda: controller.state == "parked", 3, "the park")
            os.kill(proc.pid, signal.SIGSTOP)
            await wait_until(lambda: runtime.counters["wakes"].get("UNRESPONSIVE") == 1, 5,
                             "the UNRESPONSIVE wake")
            await asyncio.wait_for(controller.protocol.wait_closed(), 5)
        finally:
            await stop(proc)
            server.close()
            runtime.close()
    asyncio.run(scenario())
