"""One offload engine per event loop, shared by every offloaded server and client on it.

:class:`OffloadRuntime` owns an embedded engine (its own thread) and plugs the engine's CQ 0
into the loop: the loop wakes only when CQ 0 has entries -- a datagram for an active
connection, or a parked connection that needs the application.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from quic_offload.aioquic.engine_clock import EngineClock
from quic_offload.embedded import EmbeddedOffload, start_embedded_offload
from quic_offload.offload_client import OffloadGeometry

log = logging.getLogger(__name__)

_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OffloadRuntime] = (
    weakref.WeakKeyDictionary())


class OffloadRuntime:
    """An embedded offload engine serving one event loop."""

    def __init__(self, geometry: OffloadGeometry | None = None, *, backend: str = "auto",
                 mode: str = "translator",
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.embedded: EmbeddedOffload = start_embedded_offload(geometry, backend=backend,
                                                                mode=mode)
        self.client = self.embedded.client
        self.geometry = self.client.geometry
        self.clock = EngineClock(self.loop)
        self.closed = False
        #: Adapter-side counters (parks, resumes, refusals, wakes by reason, ...).
        self.counters: dict[str, Any] = {
            "parks": 0, "park_refused": 0, "park_blocked": 0, "resumes": 0,
            "events_while_parked": 0, "local_sends_while_parked": 0, "wakes": {},
        }
        self.loop.add_reader(self.client.fileno(), self.client.poll)
        log.info("event=offload_runtime_started backend=%s", self.backend)

    @classmethod
    def shared(cls, **kwargs: Any) -> OffloadRuntime:
        """The running loop's shared runtime, created on first use with ``kwargs``."""
        loop = asyncio.get_running_loop()
        runtime = _shared.get(loop)
        if runtime is None or runtime.closed:
            runtime = cls(loop=loop, **kwargs)
            _shared[loop] = runtime
        return runtime

    @property
    def backend(self) -> str:
        return self.embedded.backend

    def engine_stats(self) -> dict[str, Any]:
        """The engine's counters (PINGs, ACKs, wakes, drops, ...)."""
        return self.embedded.programs.stats().as_dict()

    def count_wake(self, reason: str) -> None:
        wakes = self.counters["wakes"]
        wakes[reason] = wakes.get(reason, 0) + 1

    def close(self) -> None:
        """Stop the engine.  Connections still parked are lost to the application."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.client.fileno())
        self.embedded.close()
        if _shared.get(self.loop) is self:
            del _shared[self.loop]
