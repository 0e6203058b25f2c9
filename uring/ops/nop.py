"""IORING_OP_NOP: completes with 0; the cheapest way to measure a ring round trip."""

from __future__ import annotations

from typing import TYPE_CHECKING

from uring.requests import WAIT_IO

if TYPE_CHECKING:
    from uring.engine import Engine
    from uring.requests import Request


def issue_nop(engine: Engine, req: Request) -> None:
    # through the backend, so that on io_uring a NOP really crosses the kernel ring
    req.wait = WAIT_IO
    engine.backend.nop(req)
