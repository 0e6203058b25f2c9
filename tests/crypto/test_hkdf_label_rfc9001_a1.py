"""HKDF-Expand-Label and the QUIC key schedule reproduce RFC 9001 Appendix A.1 (Initial
secrets and the client / server key, IV and header-protection key) and agree with
aioquic's derivation for every suite and both QUIC versions."""

import hashlib
import hmac
import os

import pytest
from aioquic.quic.crypto import derive_key_iv_hp
from aioquic.tls import CipherSuite as AioquicSuite
from cryptography.hazmat.primitives import hashes

from quic_offload.crypto.hkdf_label import hkdf_expand_label, hkdf_label
from quic_offload.crypto.key_schedule import derive_packet_keys, next_traffic_secret
from quic_offload.crypto.suites import CipherSuite, QuicVersion

INITIAL_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
DCID = bytes.fromhex("8394c8f03e515708")


def initial_secret() -> bytes:
    # HKDF-Extract is HMAC(salt, ikm); only this test needs it
    return hmac.new(INITIAL_SALT_V1, DCID, hashlib.sha256).digest()


def test_hkdf_label_structure() -> None:
    assert hkdf_label(b"client in", b"", 32) == bytes.fromhex(
        "00200f746c73313320636c69656e7420696e00"
    )
    assert hkdf_label(b"quic hp", b"", 16) == bytes.fromhex("00100d746c733133207175696320687000")


def test_a1_initial_secrets() -> None:
    secret = initial_secret()
    assert secret == bytes.fromhex(
        "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"
    )
    sha256 = hashes.SHA256()
    assert hkdf_expand_label(sha256, secret, b"client in", b"", 32) == bytes.fromhex(
        "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"
    )
    assert hkdf_expand_label(sha256, secret, b"server in", b"", 32) == bytes.fromhex(
        "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b"
    )


@pytest.mark.parametrize(
    ("label", "key", "iv", "hp"),
    [
        (
            b"client in",
            "1f369613dd76d5467730efcbe3b1a22d",
            "fa044b2f42a3fd3b46fb255c",
            "9f50449e04a0e810283a1e9933adedd2",
        ),
        (
            b"server in",
            "cf3a5331653c364c88f0f379b6067e37",
            "0ac1493ca1905853b0bba03e",
            "c206b8d9b9f0f37644430b490eeaa314",
        ),
    ],
)
def test_a1_packet_keys(label: bytes, key: str, iv: str, hp: str) -> None:
    secret = hkdf_expand_label(hashes.SHA256(), initial_secret(), label, b"", 32)
    assert derive_packet_keys(CipherSuite.AES_128_GCM_SHA256, secret) == (
        bytes.fromhex(key),
        bytes.fromhex(iv),
        bytes.fromhex(hp),
    )


@pytest.mark.parametrize("suite", list(CipherSuite))
@pytest.mark.parametrize("version", list(QuicVersion))
def test_agrees_with_aioquic(suite: CipherSuite, version: QuicVersion) -> None:
    secret = os.urandom(48 if suite == CipherSuite.AES_256_GCM_SHA384 else 32)
    assert derive_packet_keys(suite, secret, version) == derive_key_iv_hp(
        cipher_suite=AioquicSuite(int(suite)), secret=secret, version=int(version)
    )
    assert len(next_traffic_secret(suite, secret, version)) == len(secret)
