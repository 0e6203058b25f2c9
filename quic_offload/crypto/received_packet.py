"""What the receive fast path reports for one datagram.

The receive path never raises for bad network input: it returns a
:class:`ReceivedPacket` whose :class:`RxStatus` says what the engine should do.  The
exception-raising :meth:`KeyTable.open <quic_offload.crypto.key_table.KeyTable.open>`
exists for callers that prefer exceptions.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from ..packet.frames import AckFrame, ConnectionCloseFrame


class RxStatus(IntEnum):
    """Outcome of opening a datagram; values 0–3 mean the packet was authenticated."""

    #: Only PADDING / PING / ACK frames: the engine may answer it without the app.
    CONTROL_ONLY = 0
    #: A CONNECTION_CLOSE frame (after zero or more control frames): wake the app.
    CONNECTION_CLOSE = 1
    #: Another frame type: the application must see the datagram untouched.
    OTHER_FRAMES = 2
    #: Authentic but breaks the protocol (reserved bits set, no frames, malformed ACK /
    #: CONNECTION_CLOSE); ``error_code`` is the RFC 9000 transport error.  Hand the
    #: datagram to the application, whose stack closes the connection.
    PROTOCOL_ERROR = 3
    #: Short header, but no sample or AEAD failure: compare the last 16 bytes with the
    #: peer's stateless-reset tokens (RFC 9000 §10.3.1), otherwise drop.
    UNDECRYPTABLE = 4
    #: Long header: a handshake-era or version-negotiation packet, handed on untouched.
    LONG_HEADER = 5
    #: Under 21 bytes or fixed bit clear: count and drop (cannot be a stateless reset).
    DROPPED = 6


class ReceivedPacket(NamedTuple):
    status: RxStatus
    #: Full packet number; -1 unless authenticated.
    packet_number: int = -1
    #: Key phase bit of the packet; -1 unless authenticated.
    key_phase: int = -1
    spin: bool = False
    #: This packet moved the receive keys to the next generation (the peer initiated a
    #: key update or confirmed ours).
    key_updated: bool = False
    ack_eliciting: bool = False
    #: The packet's ACK frame, if any (CONTROL_ONLY, CONNECTION_CLOSE or OTHER_FRAMES
    #: when the ACK came before the first other frame).
    ack: AckFrame | None = None
    #: ``ack.delay`` decoded with the peer's ack_delay_exponent, in microseconds.
    ack_delay_us: int = 0
    close: ConnectionCloseFrame | None = None
    #: RFC 9000 transport error code for PROTOCOL_ERROR.
    error_code: int | None = None

    @property
    def authenticated(self) -> bool:
        return self.status <= RxStatus.PROTOCOL_ERROR
