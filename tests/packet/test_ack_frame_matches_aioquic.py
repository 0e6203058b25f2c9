"""ACK frames we encode are read identically by aioquic's parser, and frames aioquic
encodes are read identically by ours, for arbitrary sets of acknowledged packet
numbers; ACK_ECN counts and the max_ranges trimming (RFC 9000 §13.2.3) are kept."""

from aioquic.buffer import Buffer
from aioquic.quic.packet import pull_ack_frame, push_ack_frame
from aioquic.quic.rangeset import RangeSet
from hypothesis import given
from hypothesis import strategies as st

from quic_offload.packet.frames import (
    ACK,
    ACK_ECN,
    decode_ack_delay,
    encode_ack_delay,
    encode_ack_frame,
    parse_ack_frame,
)


def ranges_from_rangeset(rangeset: RangeSet) -> list[tuple[int, int]]:
    """aioquic keeps ascending half-open ranges; frames list inclusive ones, newest first."""
    return [(r.start, r.stop - 1) for r in reversed(list(rangeset))]


@st.composite
def rangesets(draw: st.DrawFn) -> RangeSet:
    rangeset = RangeSet()
    start = draw(st.integers(min_value=0, max_value=2**40))
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        length = draw(st.integers(min_value=1, max_value=2**20))
        rangeset.add(start, start + length)
        start += length + draw(st.integers(min_value=1, max_value=2**20))
    return rangeset


@given(rangeset=rangesets(), delay=st.integers(min_value=0, max_value=2**30))
def test_aioquic_parses_what_we_encode(rangeset: RangeSet, delay: int) -> None:
    frame = encode_ack_frame(ranges_from_rangeset(rangeset), delay)
    assert frame[0] == ACK
    buf = Buffer(data=frame[1:])
    parsed, parsed_delay = pull_ack_frame(buf)
    assert list(parsed) == list(rangeset)
    assert parsed_delay == delay
    assert buf.eof()


@given(rangeset=rangesets(), delay=st.integers(min_value=0, max_value=2**30))
def test_we_parse_what_aioquic_encodes(rangeset: RangeSet, delay: int) -> None:
    buf = Buffer(capacity=4096)
    buf.push_uint_var(ACK)
    push_ack_frame(buf, rangeset, delay, 4000)
    frame = buf.data
    parsed, end = parse_ack_frame(frame, 1, ACK)
    assert end == len(frame)
    assert list(parsed.ranges) == ranges_from_rangeset(rangeset)
    assert parsed.delay == delay
    assert parsed.largest == rangeset.bounds().stop - 1
    assert parsed.ecn_counts is None


@given(
    rangeset=rangesets(),
    ecn=st.tuples(*[st.integers(min_value=0, max_value=2**62 - 1)] * 3),
)
def test_ack_ecn_counts_roundtrip(rangeset: RangeSet, ecn: tuple[int, int, int]) -> None:
    frame = encode_ack_frame(ranges_from_rangeset(rangeset), 0, ecn_counts=ecn)
    assert frame[0] == ACK_ECN
    parsed, end = parse_ack_frame(frame, 1, ACK_ECN)
    assert (parsed.ecn_counts, end) == (ecn, len(frame))


def test_max_ranges_keeps_the_newest() -> None:
    ranges = [(100, 110), (50, 60), (10, 20), (0, 5)]
    parsed, _ = parse_ack_frame(encode_ack_frame(ranges, 0, max_ranges=2), 1, ACK)
    assert parsed.ranges == ((100, 110), (50, 60))


def test_ack_delay_uses_the_senders_exponent() -> None:
    assert encode_ack_delay(25_000, 3) == 3125
    assert decode_ack_delay(3125, 3) == 25_000
    assert encode_ack_delay(1_000, 0) == 1_000
