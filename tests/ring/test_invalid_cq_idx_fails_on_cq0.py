"""A request naming a CQ that does not exist fails with -EINVAL, posted on CQ 0, and is
counted; a later valid request is unaffected."""

from __future__ import annotations

from uring.abi import EINVAL, prep_nop
from uring.ring import Ring


def test_invalid_cq_idx_posts_einval_on_cq0(ring: Ring) -> None:
    ring.queue(prep_nop(user_data=1, cq_idx=3))   # ring has CQs 0..2
    ring.queue(prep_nop(user_data=2, cq_idx=0xFFFF))
    ring.queue(prep_nop(user_data=3, cq_idx=2))
    ring.submit(2, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes(0)] == [(1, -EINVAL), (2, -EINVAL)]
    ring.submit(1, cq_idx=2, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes(2)] == [(3, 0)]
    assert ring.engine.stats.invalid_cq_idx == 2
