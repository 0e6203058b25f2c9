"""A region's header describes it completely: a second party recovers the same layout, and
bad sizes or foreign buffers are refused with a message that names the problem."""

from __future__ import annotations

import pytest

from uring.ring_memory import MAX_CQS, RegionLayout, RegionLayoutError
from uring.rings import RingRegion


def test_attach_recovers_the_layout_written_by_create() -> None:
    region = RingRegion.create(sq_entries=64, cq_entries=(128, 8, 32), user_memory_size=10_000)
    other = RingRegion.attach(bytearray(region.buffer))
    assert other.layout == region.layout
    assert other.sq().entries == 64
    assert [other.cq(i).entries for i in range(3)] == [128, 8, 32]
    assert other.user_memory().size == 10_000


def test_parts_do_not_overlap_and_user_memory_is_page_aligned() -> None:
    layout = RegionLayout.compute(256, (512, 64, 64), 1 << 16)
    spans = [(layout.sq_off, layout.sqes_off), (layout.sqes_off, layout.sqes_off + 256 * 64)]
    for off, entries in zip(layout.cq_offs, layout.cq_entries, strict=True):
        spans.append((off, off + 64 + entries * 16))
    spans.append((layout.user_off, layout.user_off + (1 << 16)))
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start
    assert layout.user_off % 4096 == 0
    assert layout.total_size >= spans[-1][1]


@pytest.mark.parametrize(
    ("sq", "cqs", "message"),
    [
        (100, (128,), "power of two"),
        (64, (), "1 to"),
        (64, (8,) * (MAX_CQS + 1), "1 to"),
        (64, (0,), "CQ 0"),
        (64, (8, 12), "CQ 1"),
    ],
)
def test_unusable_sizes_are_refused_with_the_reason(sq: int, cqs: tuple, message: str) -> None:
    with pytest.raises(RegionLayoutError, match=message):
        RegionLayout.compute(sq, cqs, 4096)


def test_attach_refuses_a_buffer_that_is_not_a_region() -> None:
    with pytest.raises(RegionLayoutError, match="magic"):
        RingRegion.attach(bytearray(8192))
    region = RingRegion.create(16, (16,), 4096)
    truncated = bytearray(region.buffer)[: region.layout.total_size - 4096]
    with pytest.raises(RegionLayoutError, match="buffer has"):
        RingRegion.attach(truncated)
