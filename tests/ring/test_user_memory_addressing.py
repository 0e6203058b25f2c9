"""User addresses are base + offset into user memory: the same address names the same byte
wherever a process maps the region, NULL and out-of-region ranges fault, and the engine
posts -EFAULT for SQEs pointing outside user memory."""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable

import pytest

from uring.abi import EFAULT, prep_read, prep_sendmsg, prep_timeout
from uring.ring import Ring
from uring.rings import RingRegion
from uring.user_memory import USER_ADDR_BASE, UserMemoryFault


def test_same_user_address_same_byte_in_two_mappings_of_one_memfd() -> None:
    template = RingRegion.create(16, (16,), 8192)
    fd = os.memfd_create("ring-region")
    try:
        os.ftruncate(fd, template.layout.total_size)
        first = mmap.mmap(fd, template.layout.total_size)
        second = mmap.mmap(fd, template.layout.total_size)
        first[:] = bytes(template.buffer)
        a = RingRegion.attach(first).user_memory()
        b = RingRegion.attach(second).user_memory()
        addr = USER_ADDR_BASE + 1234
        a.write(addr, b"same bytes")
        assert b.read(addr, 10) == b"same bytes"
        assert a.real_address(addr) != b.real_address(addr)  # two different mappings
        a.release()
        b.release()
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("addr", "length"),
    [(0, 8), (USER_ADDR_BASE - 1, 2), (USER_ADDR_BASE + 4096 - 7, 8), (1 << 63, 1)],
)
def test_null_and_out_of_region_ranges_fault(addr: int, length: int) -> None:
    mem = RingRegion.create(16, (16,), 4096).user_memory()
    with pytest.raises(UserMemoryFault, match="outside user memory"):
        mem.read(addr, length)
    assert not mem.contains(addr, length)


def test_sqes_pointing_outside_user_memory_complete_efault(
    make_ring: Callable[..., Ring],
) -> None:
    ring = make_ring(user_memory=4096)
    outside = USER_ADDR_BASE + 4096
    ring.queue(prep_timeout(outside, user_data=1))
    ring.queue(prep_sendmsg(0, outside - 8, user_data=2))
    ring.queue(prep_read(0, 0, 16, 0, user_data=3))
    ring.submit(3, timeout=5)
    assert sorted((c.user_data, c.res) for c in ring.reap_cqes()) == [
        (1, -EFAULT), (2, -EFAULT), (3, -EFAULT)]
