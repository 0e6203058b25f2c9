"""encode_ack_frame's path for frames whose fields are all below 2**14 (every varint one or
two bytes, what an offloaded connection sends) produces exactly the bytes of the
field-by-field reference encoding, which aioquic also parses back to the same ranges and
delay; at the 2**14 boundaries and with refused range lists it behaves like the general
path."""

import pytest
from aioquic.buffer import Buffer
from aioquic.quic.packet import pull_ack_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from quic_offload.packet.frames import ACK, AckRangesError, encode_ack_frame
from quic_offload.packet.varint import encode_varint


def reference_encoding(ranges: list[tuple[int, int]], delay: int) -> bytes:
    """RFC 9000 §19.3, one varint at a time."""
    smallest, largest = ranges[0]
    out = bytes((ACK,)) + encode_varint(largest) + encode_varint(delay)
    out += encode_varint(len(ranges) - 1) + encode_varint(largest - smallest)
    for next_smallest, next_largest in ranges[1:]:
        out += encode_varint(smallest - next_largest - 2)
        out += encode_varint(next_largest - next_smallest)
        smallest = next_smallest
    return out


@st.composite
def small_ranges(draw: st.DrawFn) -> list[tuple[int, int]]:
    """Newest-first disjoint, non-adjacent ranges below ``top`` (< 2**14 or just above)."""
    top = draw(st.sampled_from([63, 64, 200, 16383, 16384, 17000]))
    bounds = sorted(
        draw(st.sets(st.integers(min_value=0, max_value=top), min_size=2, max_size=16)),
        reverse=True,
    )
    ranges = []
    for index in range(0, len(bounds) - 1, 2):
        largest, smallest = bounds[index], bounds[index + 1]
        if ranges and largest >= ranges[-1][0] - 1:
            largest = ranges[-1][0] - 2
            if largest < smallest:
                break
        ranges.append((smallest, largest))
    return ranges or [(0, 0)]


@settings(max_examples=400)
@given(ranges=small_ranges(), delay=st.sampled_from([0, 1, 63, 64, 625, 16383, 16384, 99999]))
def test_small_frames_equal_reference_and_parse_back(
    ranges: list[tuple[int, int]], delay: int
) -> None:
    frame = encode_ack_frame(ranges, delay)
    assert frame == reference_encoding(ranges, delay)
    parsed, parsed_delay = pull_ack_frame(Buffer(data=frame[1:]))
    assert [(r.start, r.stop - 1) for r in reversed(list(parsed))] == ranges
    assert parsed_delay == delay


@pytest.mark.parametrize(
    "ranges",
    [
        [(10, 20), (5, 9)],  # adjacent: must be merged first
        [(10, 20), (15, 30)],  # overlapping / unordered
        [(10, 20), (7, 3)],  # smallest above largest
    ],
)
def test_bad_range_lists_are_refused_on_the_small_path(ranges: list[tuple[int, int]]) -> None:
    with pytest.raises(AckRangesError, match="must lie below the previous range"):
        encode_ack_frame(ranges, 0)
