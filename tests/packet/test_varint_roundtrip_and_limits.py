"""Varints round-trip at every length boundary, accept non-minimal encodings, and reject
truncated input or values past 2**62 - 1 with VarintError."""

import pytest
from aioquic.buffer import Buffer
from hypothesis import given
from hypothesis import strategies as st

from quic_offload.packet.errors import PacketError, VarintError
from quic_offload.packet.varint import VARINT_MAX, decode_varint, encode_varint, varint_size


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 1),
        (63, 1),
        (64, 2),
        (16383, 2),
        (16384, 4),
        (2**30 - 1, 4),
        (2**30, 8),
        (VARINT_MAX, 8),
    ],
)
def test_boundaries_take_the_minimal_size(value: int, size: int) -> None:
    encoded = encode_varint(value)
    assert len(encoded) == size == varint_size(value)
    assert decode_varint(encoded, 0) == (value, size)


@given(st.integers(min_value=0, max_value=VARINT_MAX), st.binary(max_size=4))
def test_roundtrip_matches_aioquic(value: int, prefix: bytes) -> None:
    encoded = encode_varint(value)
    buf = Buffer(capacity=8)
    buf.push_uint_var(value)
    assert encoded == buf.data
    assert decode_varint(prefix + encoded + b"\xff", len(prefix)) == (
        value,
        len(prefix) + len(encoded),
    )


def test_non_minimal_encoding_is_accepted() -> None:
    # RFC 9000 §16: 37 may be sent in two bytes (0x4025), RFC's own example.
    assert decode_varint(bytes.fromhex("4025"), 0) == (37, 2)
    assert decode_varint(bytes.fromhex("c2197c5eff14e88c"), 0) == (151288809941952652, 8)
    assert decode_varint(bytes.fromhex("9d7f3e7d"), 0) == (494878333, 4)


@pytest.mark.parametrize("encoded", ["40", "80", "800000", "c0", "c000000000000000"[:-2], ""])
def test_truncated_varint_raises(encoded: str) -> None:
    with pytest.raises(VarintError) as info:
        decode_varint(bytes.fromhex(encoded), 0)
    assert isinstance(info.value, PacketError)


@pytest.mark.parametrize("value", [-1, VARINT_MAX + 1])
def test_out_of_range_value_cannot_be_encoded(value: int) -> None:
    with pytest.raises(VarintError):
        encode_varint(value)
