"""Stateless-reset detection (RFC 9000 §10.3.1).

A datagram whose first packet cannot be decrypted may be a stateless reset: its last 16
bytes are then compared with every stateless-reset token the peer issued for connection
IDs in use.  Each comparison is constant-time and all tokens are always compared, so the
time taken reveals neither how much of a token matched nor which one did.  The header
bits are not checked: a peer that negotiated QUIC-bit greasing may clear the fixed bit.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

STATELESS_RESET_TOKEN_LENGTH = 16
#: RFC 9000 §10.3: 5 unpredictable bytes (38 bits after the two fixed ones) + the token.
MIN_STATELESS_RESET_SIZE = 21


def is_stateless_reset(datagram: bytes | bytearray | memoryview, tokens: Iterable[bytes]) -> bool:
    """True when ``datagram`` ends in one of ``tokens`` (only ask for undecryptable ones)."""
    if len(datagram) < MIN_STATELESS_RESET_SIZE:
        return False
    tail = bytes(datagram[-STATELESS_RESET_TOKEN_LENGTH:])
    matched = False
    for token in tokens:
        if len(token) != STATELESS_RESET_TOKEN_LENGTH:
            raise ValueError(f"stateless-reset token of {len(token)} bytes, expected 16")
        matched |= hmac.compare_digest(tail, token)
    return matched
