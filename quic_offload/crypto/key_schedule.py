"""The QUIC packet-protection key schedule (RFC 9001 §5.1, §6; RFC 9369 §3.3.2).

From a traffic secret: ``key = HKDF-Expand-Label(secret, "quic key", "", key_length)``,
``iv = …("quic iv", 12)``, ``hp = …("quic hp", key_length)``; the secret of the next key
phase is ``…(secret, "quic ku", "", hash_length)``.  The header-protection key is derived
once, from the first 1-RTT secret, and never changes on key update.

The ``*_into`` forms write into caller-owned buffers (the key table's erasable
``bytearray``); the plain forms return ``bytes`` and exist for tests and tools.
"""

from __future__ import annotations

from .hkdf_label import hkdf_expand_label, hkdf_expand_label_into
from .suites import IV_LENGTH, QuicVersion, SuiteSpec, VersionLabels, suite_spec, version_labels

Buffer = bytes | bytearray | memoryview


def derive_key_iv_into(
    spec: SuiteSpec, labels: VersionLabels, secret: Buffer, key_out: memoryview, iv_out: memoryview
) -> None:
    """AEAD key and IV of ``secret`` into ``key_out`` / ``iv_out``."""
    hkdf_expand_label_into(spec.hash_algorithm, secret, labels.key, key_out)
    hkdf_expand_label_into(spec.hash_algorithm, secret, labels.iv, iv_out)


def derive_hp_into(
    spec: SuiteSpec, labels: VersionLabels, secret: Buffer, hp_out: memoryview
) -> None:
    """Header-protection key of ``secret`` into ``hp_out``."""
    hkdf_expand_label_into(spec.hash_algorithm, secret, labels.hp, hp_out)


def derive_next_secret_into(
    spec: SuiteSpec, labels: VersionLabels, secret: Buffer, out: memoryview
) -> None:
    """Secret of the next key phase into ``out`` (which must not overlap ``secret``)."""
    hkdf_expand_label_into(spec.hash_algorithm, secret, labels.ku, out)


def derive_packet_keys(
    suite: int, secret: Buffer, version: int = QuicVersion.VERSION_1
) -> tuple[bytes, bytes, bytes]:
    """``(key, iv, hp)`` for ``secret``."""
    spec, labels = suite_spec(suite), version_labels(version)
    algorithm, length = spec.hash_algorithm, spec.key_length
    return (
        hkdf_expand_label(algorithm, secret, labels.key, b"", length),
        hkdf_expand_label(algorithm, secret, labels.iv, b"", IV_LENGTH),
        hkdf_expand_label(algorithm, secret, labels.hp, b"", length),
    )


def next_traffic_secret(suite: int, secret: Buffer, version: int = QuicVersion.VERSION_1) -> bytes:
    """The secret after one key update."""
    spec, labels = suite_spec(suite), version_labels(version)
    return hkdf_expand_label(spec.hash_algorithm, secret, labels.ku, b"", spec.secret_length)
