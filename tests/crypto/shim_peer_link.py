"""Shared by the crypto-shim tests: an aioquic peer wired to a key-table slot."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from aioquic.quic.crypto import CryptoPair
from aioquic.tls import CipherSuite as AioquicSuite

from quic_offload.crypto import CipherSuite, KeyTable, QuicVersion


def secret_length(suite: CipherSuite) -> int:
    return 48 if suite == CipherSuite.AES_256_GCM_SHA384 else 32


@dataclass
class Link:
    """Slot 0 of ``table`` and aioquic's ``peer`` share one 1-RTT key schedule."""

    suite: CipherSuite
    version: QuicVersion
    table: KeyTable
    peer: CryptoPair
    dcid: bytes
    our_secret: bytes = field(repr=False)
    peer_secret: bytes = field(repr=False)

    def peer_header(self, pn: int, pn_length: int) -> bytes:
        """The unprotected short header aioquic's packet builder would write."""
        first = 0x40 | (self.peer.key_phase << 2) | (pn_length - 1)
        return (
            bytes((first,))
            + self.dcid
            + (pn & ((1 << (8 * pn_length)) - 1)).to_bytes(pn_length, "big")
        )

    def peer_seal(self, payload: bytes, pn: int, pn_length: int = 2) -> bytes:
        return self.peer.encrypt_packet(self.peer_header(pn, pn_length), payload, pn)

    def peer_open(self, packet: bytes, largest_pn: int) -> tuple[bytes, bytes, int]:
        return self.peer.decrypt_packet(packet, 1 + len(self.dcid), largest_pn + 1)


def make_link(
    suite: CipherSuite,
    version: QuicVersion = QuicVersion.VERSION_1,
    dcid_len: int = 8,
    warm_slots: int | None = 16,
) -> Link:
    ours, theirs = os.urandom(secret_length(suite)), os.urandom(secret_length(suite))
    table = KeyTable(4, warm_slots=warm_slots)
    table.install(0, suite, ours, theirs, version=version)
    peer = CryptoPair()
    peer.recv.setup(cipher_suite=AioquicSuite(int(suite)), secret=ours, version=int(version))
    peer.send.setup(cipher_suite=AioquicSuite(int(suite)), secret=theirs, version=int(version))
    return Link(suite, version, table, peer, os.urandom(dcid_len), ours, theirs)


ALL_SUITES = pytest.mark.parametrize("suite", list(CipherSuite), ids=lambda suite: suite.name)
