"""IOSQE_CQE_SKIP_SUCCESS suppresses the CQE of a request that succeeds and keeps it for one
that fails; cancelled chain members always post theirs."""

from __future__ import annotations

from uring.abi import (
    ECANCELED,
    EFAULT,
    IOSQE_CQE_SKIP_SUCCESS,
    IOSQE_IO_LINK,
    prep_nop,
    prep_read,
)
from uring.ring import Ring


def test_success_is_skipped_failure_is_posted(ring: Ring) -> None:
    ring.queue(prep_nop(user_data=1, flags=IOSQE_CQE_SKIP_SUCCESS))
    ring.queue(prep_read(0, 8, 16, 0, user_data=2, flags=IOSQE_CQE_SKIP_SUCCESS))
    ring.queue(prep_nop(user_data=3))
    ring.submit(2, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(2, -EFAULT), (3, 0)]
    assert ring.engine.stats.cqes_posted[0] == 2


def test_only_the_tail_of_a_skipping_chain_reports(ring: Ring) -> None:
    ring.queue(prep_nop(user_data=1, flags=IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS))
    ring.queue(prep_nop(user_data=2, flags=IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS))
    ring.queue(prep_nop(user_data=3))
    ring.queue(prep_read(0, 8, 16, 0, user_data=4,
                         flags=IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS))
    ring.queue(prep_nop(user_data=5, flags=IOSQE_CQE_SKIP_SUCCESS))
    ring.submit(3, timeout=5)
    # two independent chains: their CQEs may interleave
    assert sorted((c.user_data, c.res) for c in ring.reap_cqes()) == [
        (3, 0), (4, -EFAULT), (5, -ECANCELED)]
