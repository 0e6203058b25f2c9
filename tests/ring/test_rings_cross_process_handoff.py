"""The SQ/CQ ring views work across processes: a forked child producing CQEs into a region
in shared memory and the parent consuming them see every entry once, in order.

This is the property the sidecar mode relies on (the engine in a daemon, the application in
its own process, one memfd between them)."""

from __future__ import annotations

import mmap
import os
import time

import pytest

from uring.rings import RingRegion

N = 20_000


@pytest.mark.slow
def test_cqes_cross_a_process_boundary_in_order_without_loss() -> None:
    layout_region = RingRegion.create(sq_entries=16, cq_entries=(64,), user_memory_size=0)
    shared = mmap.mmap(-1, layout_region.layout.total_size)
    shared[:] = bytes(layout_region.buffer)
    pid = os.fork()
    if pid == 0:  # child: producer
        try:
            cq = RingRegion.attach(shared).cq(0)
            i = 0
            deadline = time.monotonic() + 30
            while i < N and time.monotonic() < deadline:
                if cq.push(i, -i, i & 0xFFFF):
                    i += 1
        finally:
            os._exit(0)
    cq = RingRegion.attach(shared).cq(0)
    seen = 0
    deadline = time.monotonic() + 30
    while seen < N and time.monotonic() < deadline:
        cqe = cq.pop()
        if cqe is None:
            continue
        assert cqe == (seen, -seen, seen & 0xFFFF)
        seen += 1
    os.waitpid(pid, 0)
    assert seen == N
