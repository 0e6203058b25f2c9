"""wipe() overwrites a slot's key bytes in place (current, previous and next-phase
material), forgets its cipher contexts, frees the slot for a new install, and is
idempotent."""

import os

import pytest

from quic_offload.crypto import CipherSuite, EmptySlotError, KeyTable

DCID = b"\x01" * 8


def test_wipe_zeroes_every_buffer_of_the_slot() -> None:
    table = KeyTable(2)
    a, b = os.urandom(32), os.urandom(32)
    table.install(0, CipherSuite.CHACHA20_POLY1305_SHA256, a, b)
    table.install(1, CipherSuite.CHACHA20_POLY1305_SHA256, b, a)
    # give slot 1 previous-phase material too, and next-phase material from a forged packet
    table.initiate_key_update(0)
    table.open_datagram(1, table.seal_ping(0, DCID, 0, None), dcid_len=8, largest_pn=-1)
    table.open_datagram(0, table.seal_ping(1, DCID, 0, None), dcid_len=8, largest_pn=-1)
    table.initiate_key_update(0)
    forged = bytearray(table.seal_ping(0, DCID, 1, None, min_packet_size=64))
    forged[-1] ^= 1  # outside the header-protection sample: the phase bit still reads 0
    table.open_datagram(1, bytes(forged), dcid_len=8, largest_pn=0)

    entry = table._slots[1]  # white-box: the buffers wipe must clear
    buffers = [entry.material, entry.previous, entry.next_recv]
    assert all(buffer is not None and any(buffer) for buffer in buffers)
    assert table.wipe(1)
    assert all(not any(buffer) for buffer in buffers)
    assert entry.tx is None and entry.rx is None
    assert 1 not in table and len(table) == 1
    assert table.warm_slot_count() == 1


def test_wiped_slot_is_empty_and_reusable() -> None:
    table = KeyTable(1)
    table.install(0, CipherSuite.AES_128_GCM_SHA256, bytes(32), bytes(32))
    assert table.wipe(0)
    assert not table.wipe(0)
    with pytest.raises(EmptySlotError):
        table.seal_ping(0, DCID, 0, None)
    with pytest.raises(EmptySlotError):
        table.export(0)
    table.install(0, CipherSuite.AES_128_GCM_SHA256, bytes(32), bytes(32))
    assert 0 in table
