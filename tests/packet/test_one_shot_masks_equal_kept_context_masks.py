"""Header-protection masks computed without a kept cipher context (what a cold key-table
slot uses) equal the masks of the kept contexts: AES through one-block AES-CMAC with the
subkey K1 (checked against RFC 4493's example key), ChaCha20 through a context built per
sample."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from quic_offload.packet.header_protection import (
    aes_cmac_subkey,
    aes_mask_function,
    aes_mask_once,
    chacha20_mask_function,
    chacha20_mask_once,
)


def test_cmac_subkey_matches_rfc4493_example() -> None:
    # RFC 4493 §4: K = 2b7e1516 28aed2a6 abf71588 09cf4f3c, K1 = fbeed618 35713366 7c85e08f 7236a8de
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    assert aes_cmac_subkey(key) == 0xFBEED618357133667C85E08F7236A8DE


@settings(max_examples=200)
@given(
    key=st.binary(min_size=16, max_size=16) | st.binary(min_size=32, max_size=32),
    sample=st.binary(min_size=16, max_size=16),
)
def test_aes_one_shot_mask_equals_ecb_mask(key: bytes, sample: bytes) -> None:
    assert aes_mask_once(key, aes_cmac_subkey(key), sample) == aes_mask_function(key)(sample)


def test_aes_subkey_with_the_top_bit_set_and_clear() -> None:
    """K1 is L << 1, reduced by 0x87 when L's top bit was set: both branches occur."""
    seen = set()
    while len(seen) < 2:
        key = os.urandom(16)
        zero_mask = aes_mask_function(key)(bytes(16))
        seen.add(zero_mask[0] >> 7)
        sample = os.urandom(16)
        assert aes_mask_once(key, aes_cmac_subkey(key), sample) == aes_mask_function(key)(sample)


@settings(max_examples=100)
@given(key=st.binary(min_size=32, max_size=32), sample=st.binary(min_size=16, max_size=16))
def test_chacha20_one_shot_mask_equals_kept_context_mask(key: bytes, sample: bytes) -> None:
    assert chacha20_mask_once(key, sample) == chacha20_mask_function(key)(sample)[:5]
