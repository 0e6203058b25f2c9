"""Converting between the event loop's clock and the engine's.

The engine stamps times with CLOCK_MONOTONIC in nanoseconds; aioquic takes ``loop.time()``
in seconds.  Both loops this project runs on (asyncio's and uvloop's) count from the same
monotonic clock, but uvloop's is cached per loop iteration with millisecond resolution, so
the offset is measured at each conversion instead of assumed to be zero.
"""

from __future__ import annotations

import asyncio
import time


class EngineClock:
    """Engine nanoseconds <-> loop seconds for one event loop."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def to_loop(self, engine_ns: int) -> float:
        return engine_ns / 1e9 + (self.loop.time() - time.monotonic())

    def to_engine(self, loop_time: float) -> int:
        return int((loop_time - self.loop.time() + time.monotonic()) * 1e9)
