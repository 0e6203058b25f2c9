"""Extra CQs have no overflow list: CQEs arriving while one is full are dropped, counted in
the engine's stats and in the CQ ring's overflow field, and CQ 0 is unaffected."""

from __future__ import annotations

from collections.abc import Callable

from uring.abi import prep_nop
from uring.ring import Ring


def test_full_extra_cq_drops_and_counts(make_ring: Callable[..., Ring]) -> None:
    ring = make_ring(cq_entries=(16, 4))
    for i in range(10):
        ring.queue(prep_nop(user_data=i, cq_idx=1))
    ring.queue(prep_nop(user_data=100))
    ring.submit(1, timeout=5)
    assert [c.user_data for c in ring.reap_cqes(1)] == [0, 1, 2, 3]
    assert ring.engine.stats.cq_dropped[1] == 6
    assert ring.cqs[1].overflow() == 6
    assert [c.user_data for c in ring.reap_cqes(0)] == [100]
    # room again: new CQEs arrive normally
    ring.queue(prep_nop(user_data=50, cq_idx=1))
    ring.submit(1, cq_idx=1, timeout=5)
    assert [c.user_data for c in ring.reap_cqes(1)] == [50]
    assert ring.engine.stats.cq_dropped == [0, 6]
