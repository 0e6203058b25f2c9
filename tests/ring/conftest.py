"""Fixtures of the ring-engine suite: every test runs once per backend.

``backend`` is parametrized over ``portable`` and ``io_uring``; the io_uring run is skipped,
with the reason (``-ra`` prints it), only where ``io_uring_setup`` is refused.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from uring.backends import io_uring_available
from uring.ring import Ring

BACKENDS = ("portable", "io_uring")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "io_uring":
        ok, reason = io_uring_available()
        if not ok:
            pytest.skip(f"io_uring backend unavailable here: {reason}")
    return request.param


@pytest.fixture
def make_ring(backend: str) -> Iterator[Callable[..., Ring]]:
    """Factory for rings on the current backend; every ring is closed after the test."""
    rings: list[Ring] = []

    def make(**kwargs: object) -> Ring:
        kwargs.setdefault("backend", backend)
        ring = Ring.create(**kwargs)  # type: ignore[arg-type]
        rings.append(ring)
        return ring

    yield make
    for ring in rings:
        ring.close()


@pytest.fixture
def ring(make_ring: Callable[..., Ring]) -> Ring:
    """A ring with CQ 0 (64 entries) and two extra CQs (16 entries each)."""
    return make_ring(cq_entries=(64, 16, 16))


@pytest.fixture
def udp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two UDP sockets bound to 127.0.0.1: ``(receiver, sender)``."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx.bind(("127.0.0.1", 0))
    yield rx, tx
    rx.close()
    tx.close()
