"""A multishot TIMEOUT is re-armed one interval after each shot, as the kernel does: even a
zero interval fires once per engine pass instead of looping inside one, so the engine stays
responsive and an ASYNC_CANCEL still reaches it; a slow consumer sees no burst of shots."""

from __future__ import annotations

import time

from uring.abi import (
    ECANCELED,
    ETIME,
    IORING_CQE_F_MORE,
    IORING_TIMEOUT_MULTISHOT,
    prep_cancel,
    prep_timeout,
)
from uring.ring import Ring


def test_zero_interval_multishot_timeout_can_still_be_cancelled(ring: Ring) -> None:
    ring.queue(prep_timeout(ring.timespec(0), op_flags=IORING_TIMEOUT_MULTISHOT, user_data=5,
                            cq_idx=1))
    ring.submit(4, cq_idx=1, timeout=5)
    shots = ring.reap_cqes(1)
    assert len(shots) >= 4
    assert all((c.user_data, c.res, c.flags & IORING_CQE_F_MORE) == (5, -ETIME,
                                                                      IORING_CQE_F_MORE)
               for c in shots)
    ring.queue(prep_cancel(5, user_data=6))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(6, 0)]
    final = ring.reap_cqes(1)[-1]
    assert (final.user_data, final.res, final.flags & IORING_CQE_F_MORE) == (5, -ECANCELED, 0)


def test_shots_missed_while_nobody_drove_the_engine_do_not_burst(ring: Ring) -> None:
    ring.queue(prep_timeout(ring.timespec(0.01), op_flags=IORING_TIMEOUT_MULTISHOT,
                            user_data=7, cq_idx=1))
    ring.submit(1, cq_idx=1, timeout=5)
    assert len(ring.reap_cqes(1)) == 1
    time.sleep(0.1)  # ten intervals pass with the (synchronous) engine idle
    ring.submit(1, cq_idx=1, timeout=5)
    assert len(ring.reap_cqes(1)) == 1  # one late shot, not ten
    ring.queue(prep_cancel(7, user_data=8))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(8, 0)]
