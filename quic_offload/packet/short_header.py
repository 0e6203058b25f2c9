"""The 1-RTT short header (RFC 9000 §17.3.1).

::

    first byte: 0 1 S R R K P P    form=0, fixed=1, Spin, Reserved(2), Key phase, PN length-1
    Destination Connection ID      (length known to the receiver, 0..20 bytes)
    Packet Number                  (1..4 bytes)
    Protected payload

Long-header packets (form bit set) belong to the handshake and version negotiation; the
offload never parses them and reports :class:`LongHeaderError` so the caller can hand the
datagram on untouched.  The header-protected bits (reserved, key phase, PN length, packet
number) are only meaningful after :mod:`.header_protection` removed the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import (
    DatagramTooShortError,
    FixedBitError,
    LongHeaderError,
    ReservedBitsError,
    SampleUnavailableError,
    TruncatedError,
)

FORM_BIT = 0x80
FIXED_BIT = 0x40
SPIN_BIT = 0x20
RESERVED_BITS = 0x18
KEY_PHASE_BIT = 0x04
PN_LENGTH_BITS = 0x03

#: Longest connection ID QUIC v1/v2 allows.
MAX_CID_LENGTH = 20
#: Smallest short-header datagram that can be valid with the AEADs of RFC 9001: first
#: byte + 4 bytes from the packet-number offset to the sample + 16-byte sample.  Anything
#: shorter is dropped (RFC 9000 §10.3), and it is also the least a stateless reset takes.
MIN_SHORT_PACKET_SIZE = 21


def is_long_header(first_byte: int) -> bool:
    """True for handshake / version-negotiation packets the offload hands on untouched."""
    return bool(first_byte & FORM_BIT)


def short_first_byte(pn_length: int, *, spin: bool = False, key_phase: int = 0) -> int:
    """The unprotected first byte for a packet number of ``pn_length`` bytes."""
    if not 1 <= pn_length <= 4:
        raise ValueError(f"packet number length {pn_length} is not 1..4")
    return (
        FIXED_BIT
        | (SPIN_BIT if spin else 0)
        | (KEY_PHASE_BIT if key_phase else 0)
        | (pn_length - 1)
    )


def build_short_header(
    dcid: bytes, truncated_pn: int, pn_length: int, *, spin: bool = False, key_phase: int = 0
) -> bytes:
    """Unprotected short header; the payload (and AEAD) follow it on the wire."""
    if len(dcid) > MAX_CID_LENGTH:
        raise ValueError(f"connection ID of {len(dcid)} bytes is longer than 20")
    first = short_first_byte(pn_length, spin=spin, key_phase=key_phase)
    return bytes((first,)) + dcid + truncated_pn.to_bytes(pn_length, "big")


def packet_number_offset(datagram: bytes | bytearray | memoryview, dcid_len: int) -> int:
    """Check the unprotected parts of a short header and return where the PN starts.

    Raises, before any key is touched: :class:`DatagramTooShortError` (under 21 bytes:
    drop, it cannot even be a stateless reset), :class:`LongHeaderError` (hand on
    untouched), :class:`FixedBitError` (drop) and :class:`SampleUnavailableError` (too
    short for the header-protection sample: undecryptable, so a stateless-reset
    candidate).
    """
    size = len(datagram)
    if size < MIN_SHORT_PACKET_SIZE:
        if size and datagram[0] & FORM_BIT:
            raise LongHeaderError("long-header packet: hand the datagram on untouched")
        raise DatagramTooShortError(
            f"datagram of {size} bytes is shorter than {MIN_SHORT_PACKET_SIZE}: drop it"
        )
    first = datagram[0]
    if first & FORM_BIT:
        raise LongHeaderError("long-header packet: hand the datagram on untouched")
    if not first & FIXED_BIT:
        raise FixedBitError("fixed bit is 0: not a QUIC v1/v2 packet")
    if size < MIN_SHORT_PACKET_SIZE + dcid_len:
        raise SampleUnavailableError(
            f"datagram of {size} bytes has no header-protection sample with a "
            f"{dcid_len}-byte connection ID (needs {MIN_SHORT_PACKET_SIZE + dcid_len})"
        )
    return 1 + dcid_len


@dataclass(frozen=True, slots=True)
class ShortHeader:
    """A short header after header protection was removed."""

    spin: bool
    key_phase: int
    pn_length: int
    dcid: bytes
    truncated_pn: int
    #: Offset of the first payload byte (= header length).
    payload_offset: int


def parse_short_header(
    packet: bytes | bytearray | memoryview, dcid_len: int, *, check_reserved: bool = True
) -> ShortHeader:
    """Parse an *unprotected* short header.

    With ``check_reserved`` (the default) non-zero reserved bits raise
    :class:`ReservedBitsError`; RFC 9000 makes that a connection error only once the
    packet has been authenticated, so callers that parse before AEAD-opening pass False.
    """
    if not packet:
        raise TruncatedError("empty packet")
    first = packet[0]
    if first & FORM_BIT:
        raise LongHeaderError("long-header packet: hand the datagram on untouched")
    if not first & FIXED_BIT:
        raise FixedBitError("fixed bit is 0: not a QUIC v1/v2 packet")
    if check_reserved and first & RESERVED_BITS:
        raise ReservedBitsError(f"reserved bits are {(first & RESERVED_BITS) >> 3:#04b}, not 0")
    pn_length = (first & PN_LENGTH_BITS) + 1
    pn_offset = 1 + dcid_len
    end = pn_offset + pn_length
    if len(packet) < end:
        raise TruncatedError(
            f"short header needs {end} bytes ({dcid_len}-byte connection ID, "
            f"{pn_length}-byte packet number), packet has {len(packet)}"
        )
    return ShortHeader(
        spin=bool(first & SPIN_BIT),
        key_phase=(first & KEY_PHASE_BIT) >> 2,
        pn_length=pn_length,
        dcid=bytes(packet[1:pn_offset]),
        truncated_pn=int.from_bytes(packet[pn_offset:end], "big"),
        payload_offset=end,
    )
