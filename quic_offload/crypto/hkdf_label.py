"""HKDF-Expand-Label (RFC 8446 §7.1), the derivation every QUIC key comes from.

``HkdfLabel = uint16 length ‖ opaque label<7..255> ("tls13 " + label) ‖ opaque
context<0..255>``, expanded from the secret with HKDF-Expand (``cryptography``).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand


def hkdf_label(label: bytes, context: bytes, length: int) -> bytes:
    """The HkdfLabel structure used as HKDF ``info``."""
    full_label = b"tls13 " + label
    if not 7 <= len(full_label) <= 255 or len(context) > 255 or not 0 < length < 1 << 16:
        raise ValueError(
            f"HkdfLabel out of range (label {len(full_label)} bytes, context "
            f"{len(context)} bytes, length {length})"
        )
    return (
        length.to_bytes(2, "big")
        + bytes((len(full_label),))
        + full_label
        + bytes((len(context),))
        + context
    )


def hkdf_expand_label(
    algorithm: hashes.HashAlgorithm,
    secret: bytes | bytearray | memoryview,
    label: bytes,
    context: bytes,
    length: int,
) -> bytes:
    """HKDF-Expand-Label(secret, label, context, length)."""
    return HKDFExpand(algorithm, length, hkdf_label(label, context, length)).derive(secret)


def hkdf_expand_label_into(
    algorithm: hashes.HashAlgorithm,
    secret: bytes | bytearray | memoryview,
    label: bytes,
    out: bytearray | memoryview,
) -> None:
    """Expand with an empty context straight into ``out`` (its length is the output
    length), so derived keys never exist as immutable, unerasable ``bytes``."""
    HKDFExpand(algorithm, len(out), hkdf_label(label, b"", len(out))).derive_into(secret, out)
