"""Embedded mode: the offload engine on its own thread inside the application's process.

:func:`start_embedded_offload` builds the whole stack -- a ring with the four CQs of an
offload, an engine on the chosen backend running the crypto-shim helper environment, the
offload programs in their slots -- starts the engine thread and returns the application-side
:class:`~quic_offload.offload_client.OffloadClient` (already started) with the programs, whose
maps hold the engine's counters.
"""

from __future__ import annotations

from dataclasses import dataclass

from quic_offload.offload_client import OffloadClient, OffloadGeometry
from quic_offload.offload_programs import (
    OffloadPrograms,
    attach_offload_programs,
    load_offload_programs,
)
from quic_offload.shim_helpers import ShimEnv
from uring.ring import Ring


@dataclass
class EmbeddedOffload:
    ring: Ring
    programs: OffloadPrograms
    client: OffloadClient

    @property
    def backend(self) -> str:
        return self.ring.backend

    def close(self) -> None:
        """Stop the long-lived requests and the engine thread, release the ring."""
        self.client.stop()
        self.ring.close()


def start_embedded_offload(
    geometry: OffloadGeometry | None = None, *, backend: str = "auto",
    mode: str = "translator", cq_entries: tuple[int, int, int, int] = (4096, 64, 1024, 256),
) -> EmbeddedOffload:
    """A running embedded offload engine (see the module docstring)."""
    geometry = geometry or OffloadGeometry()
    geometry.check()
    programs = load_offload_programs(mode)
    ring = Ring.create(sq_entries=1024, cq_entries=cq_entries,
                       user_memory=geometry.user_memory_size(), backend=backend,
                       env_factory=ShimEnv, wait_batch_us=round(geometry.wait_batch * 1e6))
    try:
        attach_offload_programs(ring.engine, programs)
        ring.engine.start()
        client = OffloadClient(ring, geometry)
        client.start()
    except BaseException:
        ring.close()
        raise
    return EmbeddedOffload(ring, programs, client)
