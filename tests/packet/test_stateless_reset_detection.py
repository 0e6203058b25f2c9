"""A datagram is a stateless reset when its last 16 bytes equal one of the peer's tokens
(RFC 9000 §10.3.1); shorter-than-21-byte datagrams never are, and the header bits are
not consulted (a peer may grease the fixed bit)."""

import os

import pytest

from quic_offload.packet.stateless_reset import is_stateless_reset

TOKENS = [os.urandom(16) for _ in range(3)]


@pytest.mark.parametrize("index", range(3))
def test_matching_tail_is_detected(index: int) -> None:
    datagram = b"\x41" + os.urandom(30) + TOKENS[index]
    assert is_stateless_reset(datagram, TOKENS)
    assert is_stateless_reset(memoryview(datagram), TOKENS)


def test_minimal_21_byte_reset_with_fixed_bit_clear() -> None:
    assert is_stateless_reset(b"\x01" + os.urandom(4) + TOKENS[0], TOKENS)


def test_other_tails_are_not_resets() -> None:
    datagram = b"\x41" + os.urandom(30) + TOKENS[0]
    flipped = datagram[:-1] + bytes((datagram[-1] ^ 1,))
    assert not is_stateless_reset(flipped, TOKENS)
    assert not is_stateless_reset(datagram, [])


def test_too_short_is_never_a_reset() -> None:
    assert not is_stateless_reset(b"\x41" + os.urandom(3) + TOKENS[0], TOKENS)


def test_bad_token_length_is_refused() -> None:
    with pytest.raises(ValueError, match="16"):
        is_stateless_reset(bytes(40), [b"short"])
