"""When to park a connection and how the engine keeps it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OffloadPolicy:
    """Per-connection offload policy.

    * ``park_after`` -- seconds without any send or receive before a quiescent connection is
      handed to the engine;
    * ``keepalive_interval`` -- seconds between PINGs while parked (jittered down by up to
      1/8; never closer to the idle deadline than one PTO, whatever the interval);
    * ``unresponsive_after`` -- unanswered PINGs after which the application is woken with
      ``UNRESPONSIVE``.
    """

    park_after: float = 5.0
    keepalive_interval: float = 15.0
    unresponsive_after: int = 3

    def __post_init__(self) -> None:
        if self.park_after < 0:
            raise ValueError(f"park_after={self.park_after}: must be >= 0 seconds")
        if self.keepalive_interval <= 0:
            raise ValueError(
                f"keepalive_interval={self.keepalive_interval}: must be > 0 seconds")
        if not 1 <= self.unresponsive_after <= 255:
            raise ValueError(f"unresponsive_after={self.unresponsive_after}: must be 1..255")
