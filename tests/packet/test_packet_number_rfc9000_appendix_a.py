"""Packet-number length choice and recovery follow RFC 9000 Appendix A.2 / A.3: the RFC's
worked examples, agreement with aioquic's decoder, and round trips for every gap the
chosen length must cover."""

import pytest
from aioquic.quic.packet import decode_packet_number as aioquic_decode
from hypothesis import assume, given
from hypothesis import strategies as st

from quic_offload.packet.errors import PacketNumberError
from quic_offload.packet.packet_number import (
    PACKET_NUMBER_MAX,
    decode_packet_number,
    encode_packet_number,
    packet_number_length,
)


def test_appendix_a2_examples() -> None:
    # 0xac5c02 with 0xabe8b3 acknowledged: 29,519 outstanding -> 16 bits
    assert packet_number_length(0xAC5C02, 0xABE8B3) == 2
    # 0xace8fe with 0xabe8b3 acknowledged: 131,222 outstanding -> 18 bits -> 3 bytes
    assert packet_number_length(0xACE8FE, 0xABE8B3) == 3
    assert encode_packet_number(0xAC5C02, 0xABE8B3) == (0x5C02, 2)


def test_appendix_a3_example() -> None:
    assert decode_packet_number(0x9B32, 2, 0xA82F30EA) == 0xA82F9B32


def test_nothing_acknowledged_counts_from_zero() -> None:
    assert packet_number_length(0, None) == 1
    assert packet_number_length(127, None) == 1
    assert packet_number_length(128, None) == 2


def test_exact_power_of_two_gap_uses_the_shorter_length() -> None:
    # 128 unacknowledged: a 1-byte window of 256 covers twice the gap exactly
    assert packet_number_length(128, 0) == 1
    assert packet_number_length(129, 0) == 2


@pytest.mark.parametrize(
    ("pn", "largest_acked"),
    [(5, 5), (4, 5), (2**31 + 10, 0), (PACKET_NUMBER_MAX + 1, None)],
)
def test_unencodable_packet_numbers_raise(pn: int, largest_acked: int | None) -> None:
    with pytest.raises(PacketNumberError):
        packet_number_length(pn, largest_acked)


@given(
    largest_acked=st.integers(min_value=-1, max_value=2**40),
    gap=st.integers(min_value=1, max_value=2**31 - 1),
    data=st.data(),
)
def test_roundtrip_for_any_receiver_between_acked_and_sent(
    largest_acked: int, gap: int, data: st.DataObject
) -> None:
    pn = largest_acked + gap
    acked = None if largest_acked < 0 else largest_acked
    truncated, length = encode_packet_number(pn, acked)
    # the receiver has seen at least what was acknowledged, and less than pn
    largest_received = data.draw(st.integers(min_value=largest_acked, max_value=pn - 1))
    assert decode_packet_number(truncated, length, largest_received) == pn


@given(
    truncated_bits=st.integers(min_value=0, max_value=2**32 - 1),
    length=st.integers(min_value=1, max_value=4),
    largest=st.integers(min_value=-1, max_value=2**62 - 2),
)
def test_decoder_agrees_with_aioquic(truncated_bits: int, length: int, largest: int) -> None:
    truncated = truncated_bits & ((1 << (8 * length)) - 1)
    ours = decode_packet_number(truncated, length, largest)
    assume(ours <= PACKET_NUMBER_MAX)
    assert ours == aioquic_decode(truncated, 8 * length, largest + 1)
