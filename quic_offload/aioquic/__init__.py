"""aioquic with keepalive offload: drop-in ``serve()`` and ``connect()``.

    from quic_offload.aioquic import OffloadPolicy, connect, serve

    server = await serve("127.0.0.1", 4433, configuration=config,
                         policy=OffloadPolicy(park_after=5, keepalive_interval=15))

The user's protocol class is unchanged; idle connections are parked in the offload engine,
which sends their PINGs, answers the peer's, and hands them back when the application's
input is needed.
"""

from quic_offload.aioquic.client import connect
from quic_offload.aioquic.parking import ParkingController, controller_of
from quic_offload.aioquic.policy import OffloadPolicy
from quic_offload.aioquic.runtime import OffloadRuntime
from quic_offload.aioquic.server import OffloadServer, serve

__all__ = [
    "OffloadPolicy",
    "OffloadRuntime",
    "OffloadServer",
    "ParkingController",
    "connect",
    "controller_of",
    "serve",
]
