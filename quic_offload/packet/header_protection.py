"""Header protection (RFC 9001 §5.4).

A 16-byte sample of the protected payload, taken 4 bytes after the start of the packet
number (as if the packet number were always 4 bytes long), is turned into a 5-byte mask:
AES-ECB of the sample for the AES suites, the first 5 bytes of ChaCha20 keystream with
the sample as counter‖nonce for ChaCha20-Poly1305.  The mask hides the low 5 bits of the
short-header first byte (reserved, key phase, PN length) and the packet-number bytes.

A *mask function* maps a sample to at least 5 mask bytes.  Both kinds keep one cipher
context alive and reuse it for every packet, which is what makes the mask cheap: building
a context costs more than ten masks.

Slots whose contexts are not kept need one mask from a bare key instead.  For AES the
cheapest way ``cryptography`` offers to encrypt a single block is AES-CMAC: for a
one-block message ``M``, CMAC(K, M) = AES-K(M xor K1), where the subkey K1 is derived from
AES-K(0^128) (RFC 4493 §2.3).  So AES-K(sample) = CMAC(K, sample xor K1), which costs
about half of building an ECB context.  K1 needs one ECB block per key, computed once
(:func:`aes_cmac_subkey`) and kept by the caller.  ChaCha20 has no such shortcut: its
one-shot mask builds a context with the sample as counter and nonce.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from .errors import SampleUnavailableError, TruncatedError
from .short_header import FORM_BIT

SAMPLE_LENGTH = 16
#: The sample starts this many bytes after the packet-number offset.
SAMPLE_OFFSET = 4
#: Header protection needs pn_length + payload + AEAD tag >= SAMPLE_OFFSET + SAMPLE_LENGTH;
#: with the 16-byte tag of every RFC 9001 AEAD that is pn_length + payload >= 4.
MIN_PN_AND_PAYLOAD = 4

MaskFunction = Callable[[bytes], bytes]

_FIVE_ZEROS = bytes(5)
_ZERO_BLOCK = bytes(16)
_BLOCK_MASK = (1 << 128) - 1


def aes_mask_function(hp_key: bytes | bytearray | memoryview) -> MaskFunction:
    """Mask function for AES-128/256 header protection (one reusable ECB context)."""
    return Cipher(algorithms.AES(hp_key), modes.ECB()).encryptor().update


def chacha20_mask_function(hp_key: bytes | bytearray | memoryview) -> MaskFunction:
    """Mask function for ChaCha20 header protection (one context, nonce reset per sample)."""
    context = Cipher(algorithms.ChaCha20(hp_key, bytes(16)), mode=None).encryptor()
    reset_nonce = context.reset_nonce
    update = context.update

    def mask(sample: bytes) -> bytes:
        reset_nonce(sample)
        return update(_FIVE_ZEROS)

    return mask


def aes_cmac_subkey(hp_key: bytes | bytearray | memoryview) -> int:
    """The AES-CMAC subkey K1 of ``hp_key`` (RFC 4493 §2.3), for :func:`aes_mask_once`."""
    zero_block = Cipher(algorithms.AES(hp_key), modes.ECB()).encryptor().update(_ZERO_BLOCK)
    value = int.from_bytes(zero_block, "big") << 1
    if value >> 128:
        value = (value & _BLOCK_MASK) ^ 0x87
    return value


def aes_mask_once(hp_key: bytes | bytearray | memoryview, subkey: int, sample: bytes) -> bytes:
    """AES header-protection mask of ``sample`` without a kept context (via AES-CMAC).

    ``subkey`` is K1 from :func:`aes_cmac_subkey`.
    """
    mac = CMAC(algorithms.AES(hp_key))
    mac.update((int.from_bytes(sample, "big") ^ subkey).to_bytes(16, "big"))
    return mac.finalize()


def chacha20_mask_once(hp_key: bytes | bytearray | memoryview, sample: bytes) -> bytes:
    """ChaCha20 header-protection mask of ``sample`` without a kept context."""
    context = Cipher(algorithms.ChaCha20(hp_key, bytes(sample)), mode=None).encryptor()
    return context.update(_FIVE_ZEROS)


def first_byte_mask(first_byte: int) -> int:
    """Bits of the first byte under protection: 4 for long headers, 5 for short ones."""
    return 0x0F if first_byte & FORM_BIT else 0x1F


def apply_header_protection(
    plain_header: bytes, protected_payload: bytes, mask_function: MaskFunction
) -> bytes:
    """Return the packet ``plain_header + protected_payload`` with its header masked.

    ``plain_header`` ends with the packet number, whose length its first byte gives.
    """
    pn_length = (plain_header[0] & 0x03) + 1
    sample_start = SAMPLE_OFFSET - pn_length
    if len(protected_payload) < sample_start + SAMPLE_LENGTH:
        raise SampleUnavailableError(
            f"{pn_length}-byte packet number and {len(protected_payload)} bytes of protected "
            f"payload leave no {SAMPLE_LENGTH}-byte sample: pad the payload"
        )
    mask = mask_function(protected_payload[sample_start : sample_start + SAMPLE_LENGTH])
    pn_offset = len(plain_header) - pn_length
    first = plain_header[0] ^ (mask[0] & first_byte_mask(plain_header[0]))
    pn = int.from_bytes(plain_header[pn_offset:], "big") ^ int.from_bytes(
        mask[1 : 1 + pn_length], "big"
    )
    return (
        bytes((first,))
        + plain_header[1:pn_offset]
        + pn.to_bytes(pn_length, "big")
        + protected_payload
    )


def remove_header_protection(
    packet: bytes | bytearray | memoryview, pn_offset: int, mask_function: MaskFunction
) -> tuple[bytes, int]:
    """Unmask the header of ``packet``; return ``(plain header, truncated packet number)``.

    The plain header runs from the first byte through the packet number and is the
    associated data for AEAD-opening the rest of the packet.
    """
    sample_start = pn_offset + SAMPLE_OFFSET
    if len(packet) < sample_start + SAMPLE_LENGTH:
        if len(packet) <= pn_offset:
            raise TruncatedError(f"packet of {len(packet)} bytes ends before its packet number")
        raise SampleUnavailableError(
            f"packet of {len(packet)} bytes has no header-protection sample "
            f"(needs {sample_start + SAMPLE_LENGTH})"
        )
    mask = mask_function(bytes(packet[sample_start : sample_start + SAMPLE_LENGTH]))
    first = packet[0] ^ (mask[0] & first_byte_mask(packet[0]))
    pn_length = (first & 0x03) + 1
    end = pn_offset + pn_length
    truncated = int.from_bytes(packet[pn_offset:end], "big") ^ int.from_bytes(
        mask[1 : 1 + pn_length], "big"
    )
    header = bytes((first,)) + bytes(packet[1:pn_offset]) + truncated.to_bytes(pn_length, "big")
    return header, truncated
