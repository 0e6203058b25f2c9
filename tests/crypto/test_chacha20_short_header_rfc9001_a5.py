"""The key table produces, byte for byte, the ChaCha20-Poly1305 short-header packet of
RFC 9001 Appendix A.5 (and its QUIC v2 counterpart, RFC 9369 Appendix A.5), derives the
A.5 key-update secret, and opens the packet back."""

import pytest

from quic_offload.crypto import CipherSuite, KeyTable, QuicVersion, RxStatus
from quic_offload.crypto.key_schedule import derive_packet_keys, next_traffic_secret
from quic_offload.packet.short_header import build_short_header

SECRET = bytes.fromhex("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b")
PN = 654360564
CHACHA = CipherSuite.CHACHA20_POLY1305_SHA256


def test_a5_derivations() -> None:
    key, iv, hp = derive_packet_keys(CHACHA, SECRET)
    assert key == bytes.fromhex("c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8")
    assert iv == bytes.fromhex("e0459b3474bdd0e44a41c144")
    assert hp == bytes.fromhex("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4")
    assert next_traffic_secret(CHACHA, SECRET) == bytes.fromhex(
        "1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9"
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (QuicVersion.VERSION_1, "4cfe4189655e5cd55c41f69080575d7999c25a5bfb"),
        (QuicVersion.VERSION_2, "5558b1c60ae7b6b932bc27d786f4bc2bb20f2162ba"),
    ],
)
def test_a5_packet(version: QuicVersion, expected: str) -> None:
    table = KeyTable(2)
    # the vector protects with the server's secret; slot 1 is the client receiving it
    table.install(0, CHACHA, SECRET, bytes(32), version=version)
    table.install(1, CHACHA, bytes(32), SECRET, version=version)

    # the RFC encodes 3 bytes of packet number (49140 = 0x00bff4) and sends a bare PING
    header = build_short_header(b"", PN & 0xFFFFFF, 3)
    packet = table.seal(0, header, b"\x01", PN)
    assert packet == bytes.fromhex(expected)

    opened = table.open(1, packet, dcid_len=0, largest_pn=PN - 4)
    assert (opened.packet_number, opened.payload, opened.header) == (PN, b"\x01", header)

    received = table.open_datagram(1, packet, dcid_len=0, largest_pn=PN - 1)
    assert received.status is RxStatus.CONTROL_ONLY
    assert received.ack_eliciting and received.packet_number == PN
