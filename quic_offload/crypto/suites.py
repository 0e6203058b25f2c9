"""Cipher suites and QUIC versions the shim implements.

The suite numbers are the TLS 1.3 code points, as ``aioquic.tls.CipherSuite`` uses them,
so an adapter can pass its value straight through.  QUIC v2 (RFC 9369) differs from v1
only in the labels of the key schedule as far as 1-RTT packets are concerned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ..packet.header_protection import MaskFunction, aes_mask_function, chacha20_mask_function
from .errors import UnsupportedSuiteError, UnsupportedVersionError

#: AEAD nonce (and so IV) length of every RFC 9001 AEAD.
IV_LENGTH = 12


class CipherSuite(IntEnum):
    AES_128_GCM_SHA256 = 0x1301
    AES_256_GCM_SHA384 = 0x1302
    CHACHA20_POLY1305_SHA256 = 0x1303


class QuicVersion(IntEnum):
    VERSION_1 = 0x0000_0001
    VERSION_2 = 0x6B33_43CF


@dataclass(frozen=True, slots=True)
class SuiteSpec:
    suite: CipherSuite
    #: AEAD key and header-protection key length.
    key_length: int
    #: Traffic-secret length (the hash output length).
    secret_length: int
    hash_algorithm: hashes.HashAlgorithm
    aead_factory: Callable[[bytes | bytearray | memoryview], AESGCM | ChaCha20Poly1305]
    mask_factory: Callable[[bytes | bytearray | memoryview], MaskFunction]


@dataclass(frozen=True, slots=True)
class VersionLabels:
    key: bytes
    iv: bytes
    hp: bytes
    ku: bytes


SUITES: dict[CipherSuite, SuiteSpec] = {
    CipherSuite.AES_128_GCM_SHA256: SuiteSpec(
        CipherSuite.AES_128_GCM_SHA256, 16, 32, hashes.SHA256(), AESGCM, aes_mask_function
    ),
    CipherSuite.AES_256_GCM_SHA384: SuiteSpec(
        CipherSuite.AES_256_GCM_SHA384, 32, 48, hashes.SHA384(), AESGCM, aes_mask_function
    ),
    CipherSuite.CHACHA20_POLY1305_SHA256: SuiteSpec(
        CipherSuite.CHACHA20_POLY1305_SHA256,
        32,
        32,
        hashes.SHA256(),
        ChaCha20Poly1305,
        chacha20_mask_function,
    ),
}

LABELS: dict[QuicVersion, VersionLabels] = {
    QuicVersion.VERSION_1: VersionLabels(b"quic key", b"quic iv", b"quic hp", b"quic ku"),
    QuicVersion.VERSION_2: VersionLabels(b"quicv2 key", b"quicv2 iv", b"quicv2 hp", b"quicv2 ku"),
}


def suite_spec(suite: int | str) -> SuiteSpec:
    """The parameters of ``suite``: a TLS 1.3 code point, or its name
    (``"AES_128_GCM_SHA256"``, as :class:`CipherSuite` spells it)."""
    try:
        if isinstance(suite, str):
            return SUITES[CipherSuite[suite]]
        return SUITES[CipherSuite(suite)]
    except (ValueError, KeyError):
        shown = repr(suite) if isinstance(suite, str) else f"{suite:#06x}"
        raise UnsupportedSuiteError(
            f"cipher suite {shown} is not supported (use one of "
            + ", ".join(f"{s.name}={s.value:#06x}" for s in CipherSuite)
            + ")"
        ) from None


def version_labels(version: int) -> VersionLabels:
    try:
        return LABELS[QuicVersion(version)]
    except ValueError:
        raise UnsupportedVersionError(
            f"QUIC version {version:#010x} is not supported (use 0x00000001 or 0x6b3343cf)"
        ) from None
