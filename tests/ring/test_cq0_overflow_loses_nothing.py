"""CQ 0 never loses a CQE: beyond its size CQEs wait on an overflow list, the SQ ring
flags IORING_SQ_CQ_OVERFLOW, and reaping drains everything in submission order."""

from __future__ import annotations

from collections.abc import Callable

from uring.abi import IORING_SQ_CQ_OVERFLOW, prep_nop
from uring.ring import Ring


def test_cq0_overflow_keeps_every_cqe_in_order(make_ring: Callable[..., Ring]) -> None:
    ring = make_ring(sq_entries=64, cq_entries=(4,))
    for i in range(50):
        ring.queue(prep_nop(user_data=i))
    ring.submit()
    ring.submit(50, timeout=5)  # waiting counts the overflow list too
    assert ring.cq_ready(0) == 4
    assert ring.engine.sq.flags() & IORING_SQ_CQ_OVERFLOW
    got = []
    while len(got) < 50:
        batch = ring.reap_cqes(0)
        assert batch, f"stalled after {len(got)} CQEs"
        got.extend(c.user_data for c in batch)
    assert got == list(range(50))
    assert not ring.engine.sq.flags() & IORING_SQ_CQ_OVERFLOW
    stats = ring.engine.stats
    assert stats.cq0_overflowed == 46
    assert stats.cq_dropped[0] == 0
    assert ring.cqs[0].overflow() == 0


def test_new_cqes_queue_behind_the_overflow_list(make_ring: Callable[..., Ring]) -> None:
    ring = make_ring(sq_entries=16, cq_entries=(2,))
    for i in range(4):
        ring.queue(prep_nop(user_data=i))
    ring.submit(4, timeout=5)
    assert ring.reap_cqe().user_data == 0     # one slot frees up (and overflow is flushed)
    ring.queue(prep_nop(user_data=99))
    ring.submit(1, timeout=5)
    assert [c.user_data for c in ring.reap_cqes()] + [c.user_data for c in ring.reap_cqes()] \
        == [1, 2, 3, 99]
