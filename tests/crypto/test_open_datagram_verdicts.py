"""open_datagram() gives one verdict per datagram without raising: control-only payloads
(with ACK details decoded using the peer's exponent), CONNECTION_CLOSE, other frames,
protocol errors in authentic packets, undecryptable datagrams (which may be stateless
resets), long headers handed on, and datagrams dropped as too short or not QUIC; the
general open() raises the matching specific exceptions."""

import os

import pytest

from quic_offload.crypto import CipherSuite, DecryptionError, KeyTable, RxStatus
from quic_offload.packet.errors import (
    DatagramTooShortError,
    FixedBitError,
    LongHeaderError,
    ReservedBitsError,
    SampleUnavailableError,
)
from quic_offload.packet.frames import encode_ack_frame, encode_connection_close
from quic_offload.packet.short_header import build_short_header
from quic_offload.packet.stateless_reset import is_stateless_reset

DCID = bytes(range(4))
AES = CipherSuite.AES_128_GCM_SHA256


@pytest.fixture
def table() -> KeyTable:
    a, b = os.urandom(32), os.urandom(32)
    table = KeyTable(2)
    table.install(0, AES, a, b)
    table.install(1, AES, b, a)
    return table


def send(table: KeyTable, payload: bytes, pn: int = 10, first_extra: int = 0) -> bytes:
    header = bytearray(build_short_header(DCID, pn & 0xFF, 1))
    header[0] |= first_extra
    return table.seal(0, bytes(header), payload, pn)


def receive(table: KeyTable, datagram: bytes, exponent: int = 3):
    return table.open_datagram(
        1, datagram, dcid_len=len(DCID), largest_pn=9, peer_ack_delay_exponent=exponent
    )


def test_ack_details(table: KeyTable) -> None:
    payload = encode_ack_frame([(20, 30), (5, 10)], 1000, ecn_counts=(1, 2, 3)) + bytes(3)
    received = receive(table, send(table, payload, first_extra=0x20), exponent=4)
    assert received.status is RxStatus.CONTROL_ONLY and received.authenticated
    assert (received.packet_number, received.key_phase, received.spin) == (10, 0, True)
    assert not received.ack_eliciting
    assert received.ack.largest == 30 and received.ack.ranges == ((20, 30), (5, 10))
    assert received.ack.ecn_counts == (1, 2, 3)
    assert received.ack_delay_us == 16_000


def test_connection_close(table: KeyTable) -> None:
    received = receive(table, send(table, b"\x01" + encode_connection_close(0x0A, b"no")))
    assert received.status is RxStatus.CONNECTION_CLOSE
    assert received.close.error_code == 0x0A and received.ack_eliciting


def test_other_frames(table: KeyTable) -> None:
    received = receive(table, send(table, bytes.fromhex("0a0004") + b"data"))
    assert received.status is RxStatus.OTHER_FRAMES and received.ack_eliciting


@pytest.mark.parametrize(
    ("payload", "extra", "error_code"),
    [
        (b"\x01\x00\x00", 0x08, 0x0A),  # reserved bit set
        (b"\x02\x05\x00", 0, 0x07),  # truncated ACK
        (b"", 0, 0x0A),  # no frames (4-byte PN keeps the sample)
    ],
)
def test_protocol_errors_in_authentic_packets(
    table: KeyTable, payload: bytes, extra: int, error_code: int
) -> None:
    if payload:
        datagram = send(table, payload, first_extra=extra)
    else:
        header = build_short_header(DCID, 10, 4)
        datagram = table.seal(0, header, payload, 10)
    received = receive(table, datagram)
    assert received.status is RxStatus.PROTOCOL_ERROR and received.authenticated
    assert received.error_code == error_code and received.packet_number == 10
    if extra:
        with pytest.raises(ReservedBitsError):
            table.open(1, datagram, dcid_len=len(DCID), largest_pn=9)


def test_undecryptable_may_be_a_stateless_reset(table: KeyTable) -> None:
    token = os.urandom(16)
    reset = b"\x45" + os.urandom(20) + token
    received = receive(table, reset)
    assert received.status is RxStatus.UNDECRYPTABLE and not received.authenticated
    assert is_stateless_reset(reset, [token])
    with pytest.raises(DecryptionError):
        table.open(1, reset, dcid_len=len(DCID), largest_pn=9)
    # 21 bytes is a valid reset size but leaves no sample with a 4-byte DCID
    short_reset = b"\x45" + os.urandom(4) + token
    assert receive(table, short_reset).status is RxStatus.UNDECRYPTABLE
    with pytest.raises(SampleUnavailableError):
        table.open(1, short_reset, dcid_len=len(DCID), largest_pn=9)


@pytest.mark.parametrize(
    ("datagram", "status", "error"),
    [
        (b"\xc0\x00\x00\x00\x01" + bytes(40), RxStatus.LONG_HEADER, LongHeaderError),
        (b"\x40" + bytes(19), RxStatus.DROPPED, DatagramTooShortError),
        (b"\x00" + bytes(40), RxStatus.DROPPED, FixedBitError),
    ],
)
def test_datagrams_not_for_the_engine(
    table: KeyTable, datagram: bytes, status: RxStatus, error: type
) -> None:
    assert receive(table, datagram).status is status
    with pytest.raises(error):
        table.open(1, datagram, dcid_len=len(DCID), largest_pn=9)


def test_memoryview_and_bytearray_input(table: KeyTable) -> None:
    datagram = send(table, b"\x01\x00\x00")
    for variant in (bytearray(datagram), memoryview(datagram)):
        assert receive(table, variant).status is RxStatus.CONTROL_ONLY


def test_sealed_packet_written_into_caller_buffer(table: KeyTable) -> None:
    buffer = bytearray(100)
    length = table.seal_ping(0, DCID, 0, None, out=buffer, offset=7)
    received = receive(table, bytes(buffer[7 : 7 + length]))
    assert received.status is RxStatus.CONTROL_ONLY and received.packet_number == 0
    view = memoryview(bytearray(64))
    length = table.seal_ack(0, DCID, 1, 0, [(3, 4)], 0, out=view)
    assert receive(table, bytes(view[:length])).ack.ranges == ((3, 4),)
    with pytest.raises(ValueError, match="does not fit"):
        table.seal_ping(0, DCID, 2, 1, out=bytearray(10))
