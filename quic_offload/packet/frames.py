"""The frames the offload understands: PADDING, PING, ACK / ACK_ECN, CONNECTION_CLOSE.

Everything else belongs to the application and is never parsed here (see
:mod:`.frame_classifier`).  ACK ranges are represented as ``(smallest, largest)`` pairs of
packet numbers, both inclusive, newest range first, which is the order the frame carries
them in (RFC 9000 §19.3.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .errors import FrameEncodingError, VarintError
from .varint import VARINT_MAX, decode_varint, encode_varint

PADDING = 0x00
PING = 0x01
ACK = 0x02
ACK_ECN = 0x03
CONNECTION_CLOSE = 0x1C
APPLICATION_CLOSE = 0x1D

#: RFC 9000 §18.2: values above 20 are invalid.
MAX_ACK_DELAY_EXPONENT = 20
DEFAULT_ACK_DELAY_EXPONENT = 3

AckRange = tuple[int, int]


_ACK_TYPE = bytes((ACK,))
_ACK_ECN_TYPE = bytes((ACK_ECN,))
#: Builds a NamedTuple without its keyword-handling ``__new__`` (hot receive path).
_new_tuple = tuple.__new__


class AckRangesError(ValueError):
    """ACK ranges handed to the encoder are not ordered, disjoint, non-adjacent ranges."""


def encode_ack_delay(delay_us: int, exponent: int) -> int:
    """ACK Delay field value for ``delay_us`` microseconds.

    ``exponent`` is the ack_delay_exponent *this endpoint* advertised: RFC 9000 §19.3
    decodes the field with the transport parameter of the ACK frame's sender.
    """
    if not 0 <= exponent <= MAX_ACK_DELAY_EXPONENT:
        raise ValueError(f"ack_delay_exponent {exponent} is not 0..{MAX_ACK_DELAY_EXPONENT}")
    return max(delay_us, 0) >> exponent


def decode_ack_delay(field: int, exponent: int) -> int:
    """Microseconds an ACK Delay field means, given its sender's ack_delay_exponent."""
    return field << exponent


class AckFrame(NamedTuple):
    """A decoded ACK or ACK_ECN frame (a tuple: cheap to build on the receive path)."""

    #: Ranges acknowledged, ``(smallest, largest)`` inclusive, newest first.
    ranges: tuple[AckRange, ...]
    #: The raw ACK Delay field; see :func:`decode_ack_delay`.
    delay: int
    #: ``(ECT0, ECT1, ECN-CE)`` counts of an ACK_ECN frame, else ``None``.
    ecn_counts: tuple[int, int, int] | None = None

    @property
    def largest(self) -> int:
        return self.ranges[0][1]

    def delay_us(self, exponent: int) -> int:
        return self.delay << exponent


class ConnectionCloseFrame(NamedTuple):
    """A decoded CONNECTION_CLOSE (0x1c, transport) or APPLICATION_CLOSE (0x1d) frame."""

    error_code: int
    #: Frame type that triggered a transport close; ``None`` for an application close.
    frame_type: int | None
    reason: bytes

    @property
    def is_application(self) -> bool:
        return self.frame_type is None


def encode_ack_frame(
    ranges: Sequence[AckRange],
    delay: int,
    *,
    ecn_counts: tuple[int, int, int] | None = None,
    max_ranges: int | None = None,
) -> bytes:
    """Encode an ACK (or, with ``ecn_counts``, ACK_ECN) frame.

    ``delay`` is the already-scaled ACK Delay field (:func:`encode_ack_delay`).  With
    ``max_ranges`` only the newest ranges are kept: RFC 9000 §13.2.3 lets a receiver omit
    old ranges rather than grow the frame without bound.
    """
    if not ranges:
        raise AckRangesError("an ACK frame needs at least one range")
    if max_ranges is not None and len(ranges) > max_ranges:
        if max_ranges < 1:
            raise AckRangesError(f"max_ranges {max_ranges} must be at least 1")
        ranges = ranges[:max_ranges]
    smallest, largest = ranges[0]
    if not 0 <= smallest <= largest <= VARINT_MAX:
        raise AckRangesError(f"ACK range ({smallest}, {largest}) is not 0 <= smallest <= largest")
    count = len(ranges)
    if ecn_counts is None and largest < 0x4000 and 0 <= delay < 0x4000 and count <= 0x40:
        return _encode_small_ack(ranges, largest, smallest, delay, count)
    parts = [
        _ACK_ECN_TYPE if ecn_counts is not None else _ACK_TYPE,
        encode_varint(largest),
        encode_varint(delay),
        encode_varint(count - 1),
        encode_varint(largest - smallest),
    ]
    previous_smallest = smallest
    for smallest, largest in ranges[1:]:
        if not 0 <= smallest <= largest or largest >= previous_smallest - 1:
            raise _unordered_range(smallest, largest, previous_smallest)
        parts.append(encode_varint(previous_smallest - largest - 2))
        parts.append(encode_varint(largest - smallest))
        previous_smallest = smallest
    if ecn_counts is not None:
        parts.extend(encode_varint(count) for count in ecn_counts)
    return b"".join(parts)


def _encode_small_ack(
    ranges: Sequence[AckRange], largest: int, smallest: int, delay: int, count: int
) -> bytes:
    """:func:`encode_ack_frame` when every field is below 2**14 (one or two bytes each),
    the usual case for an offloaded connection: the varints are shifted into one int
    and converted once, instead of joining a bytes object per field."""
    # every packet number here is below largest < 2**14, so gaps and lengths are too
    if largest < 0x40:
        value = ACK << 8 | largest
        size = 2
    else:
        value = ACK << 16 | 0x4000 | largest
        size = 3
    if delay < 0x40:
        value = value << 8 | delay
        size += 1
    else:
        value = value << 16 | 0x4000 | delay
        size += 2
    value = value << 8 | (count - 1)  # count <= 64: one byte
    field = largest - smallest
    if field < 0x40:
        value = value << 8 | field
        size += 2
    else:
        value = value << 16 | 0x4000 | field
        size += 3
    previous_smallest = smallest
    for index in range(1, count):
        smallest, largest = ranges[index]
        if not 0 <= smallest <= largest < previous_smallest - 1:
            raise _unordered_range(smallest, largest, previous_smallest)
        field = previous_smallest - largest - 2
        if field < 0x40:
            value = value << 8 | field
            size += 1
        else:
            value = value << 16 | 0x4000 | field
            size += 2
        field = largest - smallest
        if field < 0x40:
            value = value << 8 | field
            size += 1
        else:
            value = value << 16 | 0x4000 | field
            size += 2
        previous_smallest = smallest
    return value.to_bytes(size, "big")


def _unordered_range(smallest: int, largest: int, previous_smallest: int) -> AckRangesError:
    return AckRangesError(
        f"ACK range ({smallest}, {largest}) must lie below the previous range "
        f"starting at {previous_smallest} with a gap of at least one packet"
    )


def parse_ack_frame(
    data: bytes | bytearray | memoryview, offset: int, frame_type: int
) -> tuple[AckFrame, int]:
    """Decode an ACK frame whose type byte ends at ``offset``; return it and the new offset.

    This runs for every ACK the offload receives, so the 1- and 2-byte varints of the
    four leading fields are decoded inline.
    """
    try:
        byte = data[offset]
        if byte < 0x40:
            largest = byte
            offset += 1
        elif byte < 0x80:
            largest = ((byte & 0x3F) << 8) | data[offset + 1]
            offset += 2
        else:
            largest, offset = decode_varint(data, offset)
        byte = data[offset]
        if byte < 0x40:
            delay = byte
            offset += 1
        elif byte < 0x80:
            delay = ((byte & 0x3F) << 8) | data[offset + 1]
            offset += 2
        else:
            delay, offset = decode_varint(data, offset)
        byte = data[offset]
        if byte < 0x40:
            range_count = byte
            offset += 1
        else:
            range_count, offset = decode_varint(data, offset)
        byte = data[offset]
        if byte < 0x40:
            first_range = byte
            offset += 1
        elif byte < 0x80:
            first_range = ((byte & 0x3F) << 8) | data[offset + 1]
            offset += 2
        else:
            first_range, offset = decode_varint(data, offset)
        smallest = largest - first_range
        if smallest < 0:
            raise FrameEncodingError(
                f"ACK first range {first_range} exceeds largest acknowledged {largest}"
            )
        if range_count == 0:
            ranges: tuple[AckRange, ...] = ((smallest, largest),)
        else:
            # every further range takes at least two bytes: refuse absurd counts up front
            if range_count > (len(data) - offset) // 2:
                raise FrameEncodingError(
                    f"ACK frame announces {range_count} more ranges, only "
                    f"{len(data) - offset} bytes remain"
                )
            collected = [(smallest, largest)]
            for _ in range(range_count):
                gap, offset = decode_varint(data, offset)
                length, offset = decode_varint(data, offset)
                largest = smallest - gap - 2
                smallest = largest - length
                if smallest < 0:
                    raise FrameEncodingError("ACK range reaches below packet number 0")
                collected.append((smallest, largest))
            ranges = tuple(collected)
        ecn_counts = None
        if frame_type == ACK_ECN:
            ect0, offset = decode_varint(data, offset)
            ect1, offset = decode_varint(data, offset)
            ce, offset = decode_varint(data, offset)
            ecn_counts = (ect0, ect1, ce)
    except (IndexError, VarintError) as exc:
        raise FrameEncodingError(f"truncated ACK frame: {exc}") from None
    return _new_tuple(AckFrame, (ranges, delay, ecn_counts)), offset


def encode_connection_close(
    error_code: int, reason: bytes = b"", *, frame_type: int | None = 0
) -> bytes:
    """Encode CONNECTION_CLOSE (``frame_type`` an int) or APPLICATION_CLOSE (``None``)."""
    if frame_type is None:
        out = bytes((APPLICATION_CLOSE,)) + encode_varint(error_code)
    else:
        out = bytes((CONNECTION_CLOSE,)) + encode_varint(error_code) + encode_varint(frame_type)
    return out + encode_varint(len(reason)) + reason


def parse_connection_close(
    data: bytes | bytearray | memoryview, offset: int, frame_type: int
) -> tuple[ConnectionCloseFrame, int]:
    """Decode a CONNECTION_CLOSE frame whose type byte ends at ``offset``."""
    try:
        error_code, offset = decode_varint(data, offset)
        trigger = None
        if frame_type == CONNECTION_CLOSE:
            trigger, offset = decode_varint(data, offset)
        reason_length, offset = decode_varint(data, offset)
    except VarintError as exc:
        raise FrameEncodingError(f"truncated CONNECTION_CLOSE frame: {exc}") from None
    end = offset + reason_length
    if end > len(data):
        raise FrameEncodingError(
            f"CONNECTION_CLOSE reason of {reason_length} bytes overruns the packet "
            f"({len(data) - offset} bytes left)"
        )
    return ConnectionCloseFrame(error_code, trigger, bytes(data[offset:end])), end
