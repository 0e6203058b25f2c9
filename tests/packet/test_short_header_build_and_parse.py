"""Short headers carry spin, key phase, PN length and DCID as RFC 9000 §17.3.1 lays
them out; aioquic reads our headers; unusable datagrams are refused with the specific
error that tells the caller what to do (drop, hand on, or test stateless-reset tokens)."""

import pytest
from aioquic.buffer import Buffer
from aioquic.quic.packet import QuicPacketType, pull_quic_header
from hypothesis import given
from hypothesis import strategies as st

from quic_offload.packet.errors import (
    DatagramTooShortError,
    FixedBitError,
    LongHeaderError,
    ReservedBitsError,
    SampleUnavailableError,
    TruncatedError,
)
from quic_offload.packet.short_header import (
    build_short_header,
    is_long_header,
    packet_number_offset,
    parse_short_header,
)


@given(
    dcid=st.binary(max_size=20),
    pn_length=st.integers(min_value=1, max_value=4),
    pn_bits=st.integers(min_value=0, max_value=2**32 - 1),
    spin=st.booleans(),
    key_phase=st.integers(min_value=0, max_value=1),
)
def test_build_then_parse_roundtrip(
    dcid: bytes, pn_length: int, pn_bits: int, spin: bool, key_phase: int
) -> None:
    truncated = pn_bits & ((1 << (8 * pn_length)) - 1)
    header = build_short_header(dcid, truncated, pn_length, spin=spin, key_phase=key_phase)
    assert len(header) == 1 + len(dcid) + pn_length
    parsed = parse_short_header(header + b"payload", len(dcid))
    assert (parsed.spin, parsed.key_phase, parsed.pn_length) == (spin, key_phase, pn_length)
    assert (parsed.dcid, parsed.truncated_pn) == (dcid, truncated)
    assert parsed.payload_offset == len(header)


def test_aioquic_reads_our_header() -> None:
    dcid = bytes(range(8))
    datagram = build_short_header(dcid, 0x1234, 2, spin=True, key_phase=1) + bytes(20)
    header = pull_quic_header(Buffer(data=datagram), host_cid_length=8)
    assert header.packet_type == QuicPacketType.ONE_RTT
    assert header.destination_cid == dcid
    assert datagram[0] == 0x40 | 0x20 | 0x04 | 0x01


def test_long_header_is_recognised_and_refused() -> None:
    initial = bytes.fromhex("c300000001088394c8f03e5157080000449e00000002") + bytes(30)
    assert is_long_header(initial[0])
    with pytest.raises(LongHeaderError):
        packet_number_offset(initial, 8)
    with pytest.raises(LongHeaderError):
        parse_short_header(initial, 8)
    # even a tiny long-header datagram is handed on, not dropped as short
    with pytest.raises(LongHeaderError):
        packet_number_offset(initial[:10], 8)


def test_datagram_under_21_bytes_is_dropped() -> None:
    with pytest.raises(DatagramTooShortError):
        packet_number_offset(b"\x40" + bytes(19), 0)
    with pytest.raises(DatagramTooShortError):
        packet_number_offset(b"", 0)


def test_fixed_bit_clear_is_refused() -> None:
    with pytest.raises(FixedBitError):
        packet_number_offset(b"\x00" + bytes(40), 8)


def test_no_room_for_sample_with_this_cid_length() -> None:
    # 25 bytes: fine as a datagram, but an 8-byte DCID leaves no 16-byte sample
    with pytest.raises(SampleUnavailableError):
        packet_number_offset(b"\x40" + bytes(24), 8)
    assert packet_number_offset(b"\x40" + bytes(28), 8) == 9


def test_reserved_bits_checked_only_when_asked() -> None:
    header = bytes((0x40 | 0x08,)) + b"\x07"
    with pytest.raises(ReservedBitsError) as info:
        parse_short_header(header, 0)
    assert info.value.error_code == 0x0A
    assert parse_short_header(header, 0, check_reserved=False).truncated_pn == 7


def test_truncated_header_is_refused() -> None:
    with pytest.raises(TruncatedError):
        parse_short_header(b"\x43" + bytes(8 + 3), 8)  # 4-byte PN, only 3 present
