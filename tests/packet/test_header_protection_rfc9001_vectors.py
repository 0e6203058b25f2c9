"""Header protection reproduces the masks of RFC 9001 Appendix A (AES for the A.2 / A.3
Initial packets, ChaCha20 for A.5) and round-trips through apply/remove for every
packet-number length, agreeing with aioquic's implementation."""

import pytest
from aioquic._crypto import HeaderProtection as AioquicHeaderProtection
from hypothesis import given
from hypothesis import strategies as st

from quic_offload.packet.errors import SampleUnavailableError, TruncatedError
from quic_offload.packet.header_protection import (
    aes_mask_function,
    apply_header_protection,
    chacha20_mask_function,
    remove_header_protection,
)
from quic_offload.packet.short_header import build_short_header

CLIENT_INITIAL_HP = bytes.fromhex("9f50449e04a0e810283a1e9933adedd2")
SERVER_INITIAL_HP = bytes.fromhex("c206b8d9b9f0f37644430b490eeaa314")
CHACHA_HP = bytes.fromhex("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4")


def test_a2_client_initial_mask() -> None:
    mask = aes_mask_function(CLIENT_INITIAL_HP)(bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b"))
    assert mask[:5] == bytes.fromhex("437b9aec36")


def test_a3_server_initial_mask() -> None:
    mask = aes_mask_function(SERVER_INITIAL_HP)(bytes.fromhex("2cd0991cd25b0aac406a5816b6394100"))
    assert mask[:5] == bytes.fromhex("2ec0d8356a")


def test_a5_chacha20_mask_and_protected_header() -> None:
    mask_function = chacha20_mask_function(CHACHA_HP)
    sample = bytes.fromhex("5e5cd55c41f69080575d7999c25a5bfb")
    assert mask_function(sample)[:5] == bytes.fromhex("aefefe7d03")
    protected_payload = bytes.fromhex("655e5cd55c41f69080575d7999c25a5bfb")
    packet = apply_header_protection(bytes.fromhex("4200bff4"), protected_payload, mask_function)
    assert packet == bytes.fromhex("4cfe4189655e5cd55c41f69080575d7999c25a5bfb")
    assert remove_header_protection(packet, 1, mask_function) == (
        bytes.fromhex("4200bff4"),
        0x00BFF4,
    )


def test_a2_long_header_first_byte_uses_four_bits() -> None:
    header = bytes.fromhex("c300000001088394c8f03e5157080000449e00000002")
    # 4-byte packet number: the sample is the first 16 bytes of the protected payload
    payload = bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b")
    protected = apply_header_protection(header, payload, aes_mask_function(CLIENT_INITIAL_HP))
    assert protected[:1] == b"\xc0"
    assert protected[18:22] == bytes.fromhex("7b9aec34")


@pytest.mark.parametrize(
    ("cipher_name", "key", "factory"),
    [
        (b"aes-128-ecb", CLIENT_INITIAL_HP, aes_mask_function),
        (b"aes-256-ecb", CHACHA_HP, aes_mask_function),
        (b"chacha20", CHACHA_HP, chacha20_mask_function),
    ],
)
@given(
    dcid=st.binary(max_size=20),
    pn_length=st.integers(min_value=1, max_value=4),
    pn_bits=st.integers(min_value=0, max_value=2**32 - 1),
    body=st.binary(min_size=20, max_size=64),
    key_phase=st.integers(min_value=0, max_value=1),
)
def test_roundtrip_and_agreement_with_aioquic(
    cipher_name: bytes,
    key: bytes,
    factory,
    dcid: bytes,
    pn_length: int,
    pn_bits: int,
    body: bytes,
    key_phase: int,
) -> None:
    truncated = pn_bits & ((1 << (8 * pn_length)) - 1)
    header = build_short_header(dcid, truncated, pn_length, key_phase=key_phase)
    mask_function = factory(key)
    packet = apply_header_protection(header, body, mask_function)
    assert packet == AioquicHeaderProtection(cipher_name, key).apply(header, body)
    assert remove_header_protection(packet, 1 + len(dcid), mask_function) == (header, truncated)


def test_missing_sample_is_a_specific_error() -> None:
    mask_function = aes_mask_function(CLIENT_INITIAL_HP)
    with pytest.raises(SampleUnavailableError):
        apply_header_protection(b"\x40\x01", bytes(18), mask_function)  # needs 19 bytes
    with pytest.raises(SampleUnavailableError):
        remove_header_protection(b"\x40" + bytes(10), 1, mask_function)
    with pytest.raises(TruncatedError):
        remove_header_protection(b"\x40", 1, mask_function)
