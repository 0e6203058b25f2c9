"""The SQ/CQ ring views work across processes: a separate Python process that maps the same
memfd produces CQEs while this one consumes them, and every entry arrives once, in order.

This is the property the sidecar mode relies on (the engine in a daemon, the application in
its own process, one memfd between them); the child is a fresh interpreter, not a fork."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
import time

import pytest

from uring.rings import RingRegion

N = 20_000

CHILD = """
import mmap, sys, time
from uring.rings import RingRegion
fd, n = int(sys.argv[1]), int(sys.argv[2])
size = int(sys.argv[3])
cq = RingRegion.attach(mmap.mmap(fd, size)).cq(0)
i = 0
deadline = time.monotonic() + 30
while i < n and time.monotonic() < deadline:
    if cq.push(i, -i, i & 0xFFFF):
        i += 1
sys.exit(0 if i == n else 1)
"""


@pytest.mark.slow
def test_cqes_cross_a_process_boundary_in_order_without_loss() -> None:
    template = RingRegion.create(sq_entries=16, cq_entries=(64,), user_memory_size=0)
    size = template.layout.total_size
    fd = os.memfd_create("ring-handoff")
    try:
        os.ftruncate(fd, size)
        shared = mmap.mmap(fd, size)
        shared[:] = bytes(template.buffer)
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(fd), str(N), str(size)],
                                 pass_fds=(fd,))
        cq = RingRegion.attach(shared).cq(0)
        seen = 0
        deadline = time.monotonic() + 60
        while seen < N and time.monotonic() < deadline:
            cqe = cq.pop()
            if cqe is None:
                if child.poll() is not None and cq.ready() == 0:
                    break
                continue
            assert cqe == (seen, -seen, seen & 0xFFFF)
            seen += 1
        assert child.wait(timeout=30) == 0
        assert seen == N
    finally:
        os.close(fd)
