"""IOSQE_IO_LINK runs a chain in order and a failure cancels every later member with
-ECANCELED; IOSQE_IO_HARDLINK keeps going after a failure; a chain left open at the end of a
submission batch is closed and still runs."""

from __future__ import annotations

from uring.abi import (
    ECANCELED,
    EFAULT,
    ETIME,
    IOSQE_IO_HARDLINK,
    IOSQE_IO_LINK,
    prep_nop,
    prep_read,
    prep_timeout,
)
from uring.ring import Ring


def test_failure_cancels_the_rest_of_the_chain(ring: Ring) -> None:
    ring.queue(prep_nop(user_data=1, flags=IOSQE_IO_LINK))
    ring.queue(prep_read(0, 8, 16, 0, user_data=2, flags=IOSQE_IO_LINK))  # bad pointer
    ring.queue(prep_nop(user_data=3, flags=IOSQE_IO_LINK))
    ring.queue(prep_nop(user_data=4, cq_idx=1))
    ring.queue(prep_nop(user_data=5))  # not part of the chain
    ring.submit(4, timeout=5)
    ring.submit(1, cq_idx=1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes(0)] == [
        (1, 0), (2, -EFAULT), (3, -ECANCELED), (5, 0)]
    assert [(c.user_data, c.res) for c in ring.reap_cqes(1)] == [(4, -ECANCELED)]


def test_chain_members_start_only_after_their_predecessor(ring: Ring) -> None:
    ts = ring.timespec(0.02)
    ring.queue(prep_timeout(ts, user_data=1, flags=IOSQE_IO_HARDLINK))
    ring.queue(prep_nop(user_data=2))
    ring.queue(prep_nop(user_data=3))  # independent: completes before the chain's NOP
    ring.submit(3, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(3, 0), (1, -ETIME), (2, 0)]


def test_hardlink_continues_after_a_failure(ring: Ring) -> None:
    ring.queue(prep_read(0, 8, 16, 0, user_data=1, flags=IOSQE_IO_HARDLINK))
    ring.queue(prep_nop(user_data=2, flags=IOSQE_IO_LINK))
    ring.queue(prep_nop(user_data=3))
    ring.submit(3, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, -EFAULT), (2, 0), (3, 0)]


def test_chain_open_at_the_end_of_a_batch_is_closed(ring: Ring) -> None:
    ring.queue(prep_nop(user_data=1, flags=IOSQE_IO_LINK))
    ring.queue(prep_nop(user_data=2, flags=IOSQE_IO_LINK))
    ring.submit(2, timeout=5)
    ring.queue(prep_nop(user_data=3))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, 0), (2, 0), (3, 0)]


def test_long_chain_does_not_exhaust_the_stack(make_ring) -> None:  # type: ignore[no-untyped-def]
    ring = make_ring(sq_entries=4096, cq_entries=(4096,))
    for i in range(3000):
        ring.queue(prep_nop(user_data=i, flags=IOSQE_IO_LINK if i < 2999 else 0))
    ring.submit(3000, timeout=10)
    assert [c.user_data for c in ring.reap_cqes()] == list(range(3000))
