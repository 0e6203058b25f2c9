"""Decide whether a decrypted 1-RTT payload is one the offload may answer by itself.

The offload answers a payload holding **only** PADDING, PING and ACK frames.  Anything
else — a CONNECTION_CLOSE, or any other frame type, including frame types the offload
does not know and non-minimal encodings of the ones it does — means the application
must see the datagram.  Parsing stops at the first such frame: the offload never needs
to understand what follows, and never skips over what it cannot parse.

A second ACK frame in one packet is legal but unusual; it is reported as ``OTHER`` so
that the application's full stack handles it rather than the offload merging ranges.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from .errors import EmptyPayloadError
from .frames import (
    ACK,
    ACK_ECN,
    APPLICATION_CLOSE,
    CONNECTION_CLOSE,
    PADDING,
    PING,
    AckFrame,
    ConnectionCloseFrame,
    parse_ack_frame,
    parse_connection_close,
)

_new_tuple = tuple.__new__
_ACK_TYPES = frozenset((ACK, ACK_ECN))
_CLOSE_TYPES = frozenset((CONNECTION_CLOSE, APPLICATION_CLOSE))


class PayloadKind(IntEnum):
    #: Only PADDING / PING / ACK: the engine may answer without the application.
    CONTROL_ONLY = 0
    #: A CONNECTION_CLOSE (either type) follows zero or more control frames.
    CONNECTION_CLOSE = 1
    #: Some other frame: the application must see the datagram untouched.
    OTHER = 2


# enum members as plain module globals: class attribute access on an Enum is slow
_CONTROL_ONLY = PayloadKind.CONTROL_ONLY
_CONNECTION_CLOSE = PayloadKind.CONNECTION_CLOSE
_OTHER = PayloadKind.OTHER


class PayloadSummary(NamedTuple):
    kind: PayloadKind
    #: A PING, or any frame other than PADDING / ACK / CONNECTION_CLOSE, was seen
    #: (RFC 9000 §13.2.1); always True for ``OTHER``.
    ack_eliciting: bool
    ack: AckFrame | None = None
    close: ConnectionCloseFrame | None = None


def classify_payload(payload: bytes) -> PayloadSummary:
    """Classify a decrypted payload.

    Raises :class:`~.errors.EmptyPayloadError` for a packet without frames and
    :class:`~.errors.FrameEncodingError` for a malformed ACK or CONNECTION_CLOSE.
    """
    if not payload:
        raise EmptyPayloadError("packet carries no frames")
    end = len(payload)
    offset = 0
    ack_eliciting = False
    ack: AckFrame | None = None
    padding_from = -1  # where the trailing run of PADDING starts, found on first use
    while offset < end:
        frame_type = payload[offset]
        offset += 1
        if frame_type == PADDING:
            if padding_from < 0:
                padding_from = len(payload.rstrip(b"\x00"))
            if offset >= padding_from:
                break  # only PADDING remains: skip it in one step
        elif frame_type == PING:
            ack_eliciting = True
        elif frame_type in _ACK_TYPES:
            if ack is not None:
                return _new_tuple(PayloadSummary, (_OTHER, True, ack, None))
            ack, offset = parse_ack_frame(payload, offset, frame_type)
        elif frame_type in _CLOSE_TYPES:
            close, offset = parse_connection_close(payload, offset, frame_type)
            return _new_tuple(PayloadSummary, (_CONNECTION_CLOSE, ack_eliciting, ack, close))
        else:
            return _new_tuple(PayloadSummary, (_OTHER, True, ack, None))
    return _new_tuple(PayloadSummary, (_CONTROL_ONLY, ack_eliciting, ack, None))


def classify_common_payload(payload: bytes) -> tuple[bool, AckFrame | None] | None:
    """``(ack_eliciting, ack)`` of a CONTROL_ONLY payload of the shapes an idle
    connection exchanges, or None for any other payload (ask :func:`classify_payload`).

    The shapes: ``[PING] [ACK] [PING] PADDING*`` where the ACK has a single range and
    fields below 2**14 (one- or two-byte varints).  They are decoded in straight-line
    code, without the general parser's per-frame loop and calls; every verdict equals
    :func:`classify_payload`'s.
    """
    try:
        at = 0
        ack_eliciting = False
        if payload[0] == PING:
            ack_eliciting = True
            at = 1
        if payload[at] == ACK:
            byte = payload[at + 1]
            if byte < 0x40:
                largest = byte
                at += 2
            elif byte < 0x80:
                largest = (byte & 0x3F) << 8 | payload[at + 2]
                at += 3
            else:
                return None
            byte = payload[at]
            if byte < 0x40:
                delay = byte
                at += 1
            elif byte < 0x80:
                delay = (byte & 0x3F) << 8 | payload[at + 1]
                at += 2
            else:
                return None
            if payload[at]:  # further ranges
                return None
            byte = payload[at + 1]
            if byte < 0x40:
                smallest = largest - byte
                at += 2
            elif byte < 0x80:
                smallest = largest - ((byte & 0x3F) << 8 | payload[at + 2])
                at += 3
            else:
                return None
            if smallest < 0:
                return None
            end = len(payload)
            if at < end:
                if payload[at] == PING:
                    ack_eliciting = True
                    at += 1
                if payload.count(0, at) != end - at:
                    return None
            return ack_eliciting, _new_tuple(AckFrame, (((smallest, largest),), delay, None))
        if payload.count(0, at) == len(payload) - at:
            return ack_eliciting, None
    except IndexError:
        pass
    return None
