"""QUIC variable-length integers (RFC 9000 §16).

The two high bits of the first byte give the length (1, 2, 4 or 8 bytes); the rest is a
big-endian value of 6, 14, 30 or 62 bits.  Decoding accepts non-minimal encodings, as the
RFC requires of everything except frame types (the frame classifier handles that case).
"""

from __future__ import annotations

from .errors import VarintError

#: Largest value a varint can carry.
VARINT_MAX = (1 << 62) - 1


def varint_size(value: int) -> int:
    """Bytes the minimal encoding of ``value`` takes."""
    if value < 0x40:
        if value < 0:
            raise VarintError(f"varint value {value} is negative")
        return 1
    if value < 0x4000:
        return 2
    if value < 0x4000_0000:
        return 4
    if value <= VARINT_MAX:
        return 8
    raise VarintError(f"varint value {value} exceeds 2**62 - 1")


def encode_varint(value: int) -> bytes:
    """Minimal encoding of ``value``."""
    if 0 <= value < 0x40:
        return _ONE_BYTE[value]
    if 0 < value < 0x4000:
        return (value | 0x4000).to_bytes(2)
    size = varint_size(value)
    prefix = {2: 0x4000, 4: 0x8000_0000, 8: 0xC000_0000_0000_0000}[size]
    return (prefix | value).to_bytes(size, "big")


def decode_varint(data: bytes | bytearray | memoryview, offset: int) -> tuple[int, int]:
    """Read one varint at ``offset``; return ``(value, offset just past it)``."""
    try:
        first = data[offset]
    except IndexError:
        raise VarintError(
            f"varint missing at offset {offset} (data is {len(data)} bytes)"
        ) from None
    if first < 0x40:
        return first, offset + 1
    size = 1 << (first >> 6)
    end = offset + size
    if end > len(data):
        raise VarintError(
            f"varint at offset {offset} needs {size} bytes, only {len(data) - offset} left"
        )
    value = int.from_bytes(data[offset:end], "big") & _VALUE_MASK[size]
    return value, end


_ONE_BYTE = tuple(bytes((value,)) for value in range(0x40))
_VALUE_MASK = {2: 0x3FFF, 4: 0x3FFF_FFFF, 8: VARINT_MAX}
