"""Packet-number truncation and recovery (RFC 9000 §17.1, Appendix A.2 and A.3).

Short headers carry only the low 1–4 bytes of the packet number.  The sender picks the
length from the largest packet number the peer has acknowledged so that the receiver can
recover the full value from the largest one it has received.
"""

from __future__ import annotations

from .errors import PacketNumberError

#: Packet numbers are in 0 .. 2**62 - 1.
PACKET_NUMBER_MAX = (1 << 62) - 1


def packet_number_length(full_pn: int, largest_acked: int | None) -> int:
    """Bytes needed to send ``full_pn`` given the largest PN the peer acknowledged.

    The encoding must cover more than twice the number of unacknowledged packets
    (Appendix A.2); ``largest_acked=None`` means nothing was acknowledged yet.
    """
    unacked = full_pn + 1 if largest_acked is None else full_pn - largest_acked
    if unacked <= 0 or full_pn > PACKET_NUMBER_MAX:
        raise PacketNumberError(
            f"packet number {full_pn} is not above the largest acknowledged {largest_acked}"
            if unacked <= 0
            else f"packet number {full_pn} exceeds 2**62 - 1"
        )
    # smallest n with 2**(8n) >= 2 * unacked
    length = ((2 * unacked - 1).bit_length() + 7) >> 3
    if length > 4:
        raise PacketNumberError(
            f"packet number {full_pn} is {unacked} past the largest acknowledged "
            f"{largest_acked}: more than a 4-byte packet number can cover"
        )
    return length


def encode_packet_number(full_pn: int, largest_acked: int | None) -> tuple[int, int]:
    """Return ``(truncated value, length in bytes)`` for ``full_pn``."""
    length = packet_number_length(full_pn, largest_acked)
    return full_pn & ((1 << (8 * length)) - 1), length


def decode_packet_number(truncated: int, length: int, largest_pn: int) -> int:
    """Recover the full packet number closest to ``largest_pn + 1`` (Appendix A.3).

    ``largest_pn`` is the largest packet number received so far in this space, ``-1``
    when none was.
    """
    expected = largest_pn + 1
    window = 1 << (8 * length)
    half_window = window >> 1
    candidate = (expected & ~(window - 1)) | truncated
    if candidate <= expected - half_window and candidate < (1 << 62) - window:
        return candidate + window
    if candidate > expected + half_window and candidate >= window:
        return candidate - window
    return candidate
