"""Malformed ACK frames raise FrameEncodingError — at every truncation point, for ranges
below packet number 0 and for absurd range counts — and the encoder refuses ranges that
are not ordered, disjoint and separated by a gap."""

import pytest

from quic_offload.packet.errors import FrameEncodingError
from quic_offload.packet.frames import (
    ACK,
    ACK_ECN,
    AckRangesError,
    encode_ack_frame,
    parse_ack_frame,
)
from quic_offload.packet.varint import encode_varint


@pytest.mark.parametrize(
    "frame",
    [
        encode_ack_frame([(70_000, 70_100), (1_000, 2_000), (0, 10)], 5_000),
        encode_ack_frame([(2**40, 2**40 + 3)], 2**31, ecn_counts=(1, 2**20, 3)),
        encode_ack_frame([(0, 0)], 0),
    ],
)
def test_every_truncation_is_a_frame_encoding_error(frame: bytes) -> None:
    frame_type = frame[0]
    for end in range(1, len(frame)):
        with pytest.raises(FrameEncodingError) as info:
            parse_ack_frame(frame[:end], 1, frame_type)
        assert info.value.error_code == 0x07
    parsed, offset = parse_ack_frame(frame, 1, frame_type)
    assert offset == len(frame)


def test_first_range_larger_than_largest() -> None:
    frame = encode_varint(5) + encode_varint(0) + encode_varint(0) + encode_varint(6)
    with pytest.raises(FrameEncodingError, match="exceeds largest"):
        parse_ack_frame(frame, 0, ACK)


def test_later_range_below_zero() -> None:
    # largest 10, first range 2 -> [8, 10]; gap 5 -> next largest 1; length 3 -> -2
    frame = bytes([10, 0, 1, 2, 5, 3])
    with pytest.raises(FrameEncodingError, match="below packet number 0"):
        parse_ack_frame(frame, 0, ACK)


def test_absurd_range_count_is_refused_without_looping() -> None:
    frame = encode_varint(100) + encode_varint(0) + encode_varint(2**62 - 1) + encode_varint(0)
    with pytest.raises(FrameEncodingError, match="announces"):
        parse_ack_frame(frame + bytes(16), 0, ACK_ECN)


@pytest.mark.parametrize(
    "ranges",
    [
        [],
        [(5, 4)],
        [(-1, 3)],
        [(10, 20), (21, 30)],  # ascending
        [(10, 20), (5, 9)],  # adjacent: no gap
        [(10, 20), (15, 30)],  # overlapping
    ],
)
def test_encoder_refuses_bad_ranges(ranges: list[tuple[int, int]]) -> None:
    with pytest.raises(AckRangesError):
        encode_ack_frame(ranges, 0)
