"""Each request's CQE lands on the CQ its SQE names (cq_idx at byte 48), in submission
order, and a batch of 256 NOPs round-trips completely."""

from __future__ import annotations

from uring.abi import SQE_OFF_CQ_IDX, prep_nop
from uring.ring import Ring


def test_cqes_are_routed_to_the_cq_named_by_each_sqe(ring: Ring) -> None:
    for i in range(9):
        ring.queue(prep_nop(user_data=100 + i, cq_idx=i % 3))
    ring.submit()
    ring.submit(3, cq_idx=0, timeout=5)
    ring.submit(3, cq_idx=2, timeout=5)
    assert [c.user_data for c in ring.reap_cqes(0)] == [100, 103, 106]
    assert [c.user_data for c in ring.reap_cqes(1)] == [101, 104, 107]
    assert [c.user_data for c in ring.reap_cqes(2)] == [102, 105, 108]
    assert all(c.res == 0 for c in ring.reap_cqes(0))


def test_cq_idx_is_a_u16_at_byte_48() -> None:
    raw = prep_nop(7, cq_idx=0x1234).pack()
    assert raw[SQE_OFF_CQ_IDX:SQE_OFF_CQ_IDX + 2] == b"\x34\x12"


def test_batch_of_256_nops(make_ring) -> None:  # type: ignore[no-untyped-def]
    ring = make_ring(sq_entries=256, cq_entries=(256,))
    for i in range(256):
        ring.queue(prep_nop(i))
    assert ring.submit(256, timeout=5) == 256
    assert [c.user_data for c in ring.reap_cqes()] == list(range(256))
    assert ring.engine.stats.sqes_consumed == 256
