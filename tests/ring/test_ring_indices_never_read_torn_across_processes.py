"""Ring indices cross a process boundary whole: while another process keeps storing a
growing SQ tail and a growing provided-buffer-ring tail through the ring classes, every load
through the ring classes here sees a value that never goes backwards.  (A store made with
``struct.pack_into`` zeroes its target first, so such a tail is sometimes read as 0.)"""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
import time

import pytest

from uring.buf_ring import BufRing, BufRingConsumer
from uring.rings import RingRegion

STORES = 300_000

CHILD = """
import mmap, sys
from uring.buf_ring import BufRing
from uring.rings import RingRegion
fd, size, ring_addr, n = (int(a) for a in sys.argv[1:5])
region = RingRegion.attach(mmap.mmap(fd, size))
sq = region.sq()
bufs = BufRing(region.user_memory(), ring_addr, 16, 0)
for i in range(1, n):
    sq.set_tail(i)
    bufs.add(0, 0, 0)
    bufs.publish()
"""


@pytest.mark.slow
def test_indices_never_go_backwards_while_another_process_stores_them() -> None:
    template = RingRegion.create(sq_entries=16, cq_entries=(16,), user_memory_size=4096)
    size = template.layout.total_size
    ring_addr = template.user_memory().base + 256
    fd = os.memfd_create("ring-indices")
    try:
        os.ftruncate(fd, size)
        shared = mmap.mmap(fd, size)
        shared[:] = bytes(template.buffer)
        region = RingRegion.attach(shared)
        sq = region.sq()
        BufRing(region.user_memory(), ring_addr, 16, 0).publish()  # tail 0 in place
        consumer = BufRingConsumer(region.user_memory(), ring_addr, 16, 0)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(fd), str(size), str(ring_addr), str(STORES)],
            pass_fds=(fd,))
        backwards = reads = 0
        last_sq = last_buf = 0
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            tail = sq.tail()
            buf_tail = consumer.tail()
            reads += 1
            # the buffer-ring tail is 16 bits and wraps; a step back of more than half the
            # range is a wrap, anything else is a value read while it was being written
            if tail < last_sq or 0 < (last_buf - buf_tail) & 0xFFFF < 0x8000:
                backwards += 1
            last_sq, last_buf = tail, buf_tail
        assert child.wait(timeout=30) == 0
        assert reads > 1000, "the child finished before the check could watch it"
        assert backwards == 0, f"{backwards} of {reads} loads saw an index go backwards"
        assert sq.tail() == STORES - 1
    finally:
        os.close(fd)
