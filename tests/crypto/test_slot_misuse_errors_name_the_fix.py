"""Misusing the key table raises specific errors whose messages name the slot and the
fix: out-of-range and empty slots, double install, wrong secret lengths, unknown suites
and versions, and sealing a packet number twice (AEAD nonce reuse)."""

import pytest

from quic_offload.crypto import (
    CipherSuite,
    EmptySlotError,
    KeyTable,
    PacketNumberReuseError,
    SlotInUseError,
    SlotRangeError,
    UnsupportedSuiteError,
    UnsupportedVersionError,
)
from quic_offload.packet.errors import PacketNumberError

AES = CipherSuite.AES_128_GCM_SHA256


@pytest.fixture
def table() -> KeyTable:
    table = KeyTable(4)
    table.install(1, AES, bytes(32), bytes(32))
    return table


@pytest.mark.parametrize("slot", [-1, 4, 1000, "1"])
def test_out_of_range(table: KeyTable, slot: object) -> None:
    with pytest.raises(SlotRangeError, match="out of range .table has 4"):
        table.seal_ping(slot, b"", 0, None)  # type: ignore[arg-type]
    with pytest.raises(SlotRangeError):
        table.open_datagram(slot, bytes(30), dcid_len=0, largest_pn=-1)  # type: ignore[arg-type]


def test_empty_slot(table: KeyTable) -> None:
    with pytest.raises(EmptySlotError, match=r"slot 2 holds no keys; install\(\) them first"):
        table.open_datagram(2, bytes(30), dcid_len=0, largest_pn=-1)
    with pytest.raises(EmptySlotError):
        table.initiate_key_update(2)


def test_install_twice(table: KeyTable) -> None:
    with pytest.raises(SlotInUseError, match=r"wipe\(1\) first"):
        table.install(1, AES, bytes(32), bytes(32))


def test_bad_lengths_and_parameters(table: KeyTable) -> None:
    with pytest.raises(ValueError, match="recv_secret is 32 bytes; AES_256_GCM_SHA384 needs 48"):
        table.install(0, CipherSuite.AES_256_GCM_SHA384, bytes(48), bytes(32))
    with pytest.raises(ValueError, match="send_hp_key is 32 bytes"):
        table.install(0, AES, bytes(32), bytes(32), send_hp_key=bytes(32))
    with pytest.raises(ValueError, match="key_phase"):
        table.install(0, AES, bytes(32), bytes(32), 2)
    with pytest.raises(UnsupportedSuiteError, match="0x1304"):
        table.install(0, 0x1304, bytes(32), bytes(32))
    with pytest.raises(UnsupportedSuiteError, match="'AES_128_CCM_SHA256' is not supported"):
        table.install(0, "AES_128_CCM_SHA256", bytes(32), bytes(32))
    with pytest.raises(UnsupportedVersionError, match="0xff00001d"):
        table.install(0, AES, bytes(32), bytes(32), version=0xFF00001D)
    assert 0 not in table


def test_packet_number_reuse_is_refused(table: KeyTable) -> None:
    table.seal_ping(1, b"", 7, None)
    with pytest.raises(PacketNumberReuseError, match="packet number 7 is below 8"):
        table.seal_ack(1, b"", 7, None, [(0, 0)], 0)
    with pytest.raises(PacketNumberReuseError):
        table.seal_ping(1, b"", 3, None)
    table.seal_ping(1, b"", 8, 7)


def test_next_packet_number_from_install() -> None:
    table = KeyTable(1)
    table.install(0, AES, bytes(32), bytes(32), next_packet_number=100)
    with pytest.raises(PacketNumberReuseError):
        table.seal_ping(0, b"", 99, None)
    assert table.export(0).next_packet_number == 100


def test_unencodable_packet_number_gap(table: KeyTable) -> None:
    with pytest.raises(PacketNumberError):
        table.seal_ping(1, b"", 2**33, 0)


def test_seal_checks_its_header(table: KeyTable) -> None:
    with pytest.raises(ValueError, match="short header"):
        table.seal(1, b"\xc0\x00", b"\x01\x00\x00", 0)
    with pytest.raises(ValueError, match="not the low 1 bytes of packet number 300"):
        table.seal(1, b"\x40\x01", b"\x01\x00\x00", 300)
    with pytest.raises(ValueError, match="pad the payload"):
        table.seal(1, b"\x40\x01", b"\x01", 1)
    with pytest.raises(ValueError, match="longer than 20"):
        table.seal_ping(1, bytes(21), 0, None)


def test_a_suite_can_be_named() -> None:
    table = KeyTable(2)
    table.install(0, "AES_128_GCM_SHA256", bytes(32), bytes(32))
    table.install(1, AES, bytes(32), bytes(32))
    assert table.seal_ping(0, b"c" * 8, 5, 4) == table.seal_ping(1, b"c" * 8, 5, 4)
