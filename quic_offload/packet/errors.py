"""Exceptions for malformed or unusable packets.

Everything here describes bad input from the network (or a local encoding request that
cannot be satisfied) and derives from :class:`PacketError`, a :class:`ValueError`, so a
receive loop can count and drop with one ``except``.  Where RFC 9000 names a transport
error for the condition, ``error_code`` carries it, so that whoever closes the connection
can use the right code.  Messages never contain key material or payload bytes.
"""

from __future__ import annotations

#: RFC 9000 §20.1 transport error codes used below.
FRAME_ENCODING_ERROR = 0x07
PROTOCOL_VIOLATION = 0x0A


class PacketError(ValueError):
    """Base class: the bytes are not a packet this codec can use."""

    #: RFC 9000 transport error code for the condition, or ``None`` when the packet is
    #: simply dropped (no connection error).
    error_code: int | None = None


class TruncatedError(PacketError):
    """The data ends before the structure being read is complete."""


class VarintError(PacketError):
    """A variable-length integer is truncated, or a value does not fit in 62 bits."""

    error_code = FRAME_ENCODING_ERROR


class LongHeaderError(PacketError):
    """The packet has a long header; it is handed on untouched, never parsed here."""


class FixedBitError(PacketError):
    """The fixed bit (0x40) of the first byte is zero: not a QUIC v1/v2 packet."""


class DatagramTooShortError(PacketError):
    """Shorter than the 21 bytes RFC 9000 §10.3 requires of any datagram we accept."""


class SampleUnavailableError(PacketError):
    """Too few bytes after the packet number for the 16-byte header-protection sample."""


class ReservedBitsError(PacketError):
    """Reserved header bits are non-zero after protection was removed (RFC 9000 §17.3.1)."""

    error_code = PROTOCOL_VIOLATION


class FrameEncodingError(PacketError):
    """A frame the codec understands is malformed (RFC 9000 §12.4: FRAME_ENCODING_ERROR)."""

    error_code = FRAME_ENCODING_ERROR


class EmptyPayloadError(PacketError):
    """A packet without frames (RFC 9000 §12.4: PROTOCOL_VIOLATION)."""

    error_code = PROTOCOL_VIOLATION


class PacketNumberError(ValueError):
    """A packet number cannot be encoded (a local error, not network input)."""
