"""Plaintext payloads for the packets the offload sends: padded PING, ACK-only, PING+ACK.

Sealing (AEAD and header protection) is the key table's job; this module only decides
the frames and the padding.  Every payload is padded so that the header-protection
sample exists (packet-number length + payload >= 4) — which also makes every datagram
at least 21 bytes — and, if asked, so that the whole packet reaches ``min_packet_size``
(RFC 9000 §10.3 recommends 22 bytes more than the shortest connection ID this endpoint
asks its peer to use, so that the peer's stateless resets look like ordinary packets).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from .frames import PING, AckRange, encode_ack_frame
from .header_protection import MIN_PN_AND_PAYLOAD

#: Every RFC 9001 AEAD appends a 16-byte tag.
AEAD_TAG_LENGTH = 16


def min_payload_length(pn_length: int, dcid_len: int, min_packet_size: int = 0) -> int:
    """Smallest plaintext payload a short-header packet with these lengths may carry."""
    overhead = 1 + dcid_len + pn_length + AEAD_TAG_LENGTH
    return max(MIN_PN_AND_PAYLOAD - pn_length, min_packet_size - overhead, 1)


def pad_payload(payload: bytes, min_length: int) -> bytes:
    """Append PADDING frames (zero bytes) up to ``min_length``."""
    short = min_length - len(payload)
    return payload + bytes(short) if short > 0 else payload


@lru_cache(maxsize=512)
def ping_payload(pn_length: int, dcid_len: int = 0, min_packet_size: int = 0) -> bytes:
    """A PING frame padded for a packet with these header lengths (cached: it is constant)."""
    return pad_payload(bytes((PING,)), min_payload_length(pn_length, dcid_len, min_packet_size))


def ack_payload(
    ranges: Sequence[AckRange],
    ack_delay: int,
    *,
    pn_length: int,
    dcid_len: int = 0,
    ping: bool = False,
    ecn_counts: tuple[int, int, int] | None = None,
    max_ranges: int | None = None,
    min_packet_size: int = 0,
) -> bytes:
    """An ACK frame (plus a PING when ``ping``), padded as needed.

    ``ack_delay`` is the encoded ACK Delay field (see ``frames.encode_ack_delay``).
    The PING goes after the ACK, as aioquic orders them.
    """
    payload = encode_ack_frame(ranges, ack_delay, ecn_counts=ecn_counts, max_ranges=max_ranges)
    if ping:
        payload += b"\x01"
    return pad_payload(payload, min_payload_length(pn_length, dcid_len, min_packet_size))
