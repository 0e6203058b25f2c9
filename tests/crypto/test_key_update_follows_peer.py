"""Key update between two key tables (RFC 9001 §6): a peer-initiated update moves both
directions; our own update waits for confirmation; packets of the previous phase that
arrive late still open until the previous keys are discarded; the header-protection key
never changes; a forged packet with the other phase bit does not move the keys."""

import os

import pytest
from shim_peer_link import ALL_SUITES, secret_length

from quic_offload.crypto import CipherSuite, KeyTable, KeyUpdateError, RxStatus

DCID = bytes(range(8))


def pair(suite: CipherSuite) -> KeyTable:
    """Slot 0 is the client, slot 1 the server, of one connection."""
    a, b = os.urandom(secret_length(suite)), os.urandom(secret_length(suite))
    table = KeyTable(2)
    table.install(0, suite, a, b)
    table.install(1, suite, b, a)
    return table


def deliver(table: KeyTable, slot: int, packet: bytes, largest: int) -> RxStatus:
    return table.open_datagram(slot, packet, dcid_len=8, largest_pn=largest)


@ALL_SUITES
def test_peer_initiated_update_moves_both_directions(suite: CipherSuite) -> None:
    table = pair(suite)
    table.initiate_key_update(0)
    assert table.key_phase(0) == 1 and table.key_phase(1) == 0
    received = deliver(table, 1, table.seal_ping(0, DCID, 0, None), -1)
    assert received.status is RxStatus.CONTROL_ONLY
    assert received.key_updated and received.key_phase == 1
    # the server answers in the new phase without being told to
    assert table.key_phase(1) == 1
    exported = table.export(1)
    assert (exported.send_generation, exported.recv_generation) == (1, 1)
    answer = deliver(table, 0, table.seal_ping(1, DCID, 0, None), -1)
    assert answer.authenticated and answer.key_updated  # client's receive side catches up
    assert table.export(0).recv_generation == 1


@ALL_SUITES
def test_second_update_waits_for_confirmation(suite: CipherSuite) -> None:
    table = pair(suite)
    table.initiate_key_update(0)
    with pytest.raises(KeyUpdateError, match="not confirmed"):
        table.initiate_key_update(0)
    deliver(table, 1, table.seal_ping(0, DCID, 0, None), -1)
    deliver(table, 0, table.seal_ping(1, DCID, 0, None), -1)
    table.initiate_key_update(0)
    assert table.export(0).send_generation == 2


@ALL_SUITES
def test_reordered_packets_of_the_previous_phase(suite: CipherSuite) -> None:
    table = pair(suite)
    late = [table.seal_ping(0, DCID, pn, None) for pn in range(3)]  # phase 0, PNs 0..2
    table.initiate_key_update(0)
    first_new = table.seal_ping(0, DCID, 3, None)
    assert deliver(table, 1, late[0], -1).status is RxStatus.CONTROL_ONLY
    updated = deliver(table, 1, first_new, 0)
    assert updated.key_updated and updated.packet_number == 3
    # PN 1 and 2 arrive after the update: below the first new-phase PN -> previous keys
    for pn in (2, 1):
        received = deliver(table, 1, late[pn], 3)
        assert received.status is RxStatus.CONTROL_ONLY
        assert (received.packet_number, received.key_phase) == (pn, 0)
        assert not received.key_updated
    assert table.export(1).recv_generation == 1

    assert table.discard_previous_keys(1)
    assert not table.discard_previous_keys(1)
    assert deliver(table, 1, late[1], 3).status is RxStatus.UNDECRYPTABLE
    assert table.export(1).recv_generation == 1


@ALL_SUITES
def test_phase_flip_after_previous_keys_means_next_update(suite: CipherSuite) -> None:
    table = pair(suite)
    pn = {0: 0, 1: 0}

    def send(slot: int) -> bytes:
        packet = table.seal_ping(slot, DCID, pn[slot], None if pn[slot] < 100 else pn[slot] - 50)
        pn[slot] += 1
        return packet

    for generation in range(1, 5):
        table.initiate_key_update(0)
        assert deliver(table, 1, send(0), pn[0] - 2).key_updated
        assert deliver(table, 0, send(1), pn[1] - 2).key_updated
        assert table.export(1).recv_generation == generation
        assert table.key_phase(1) == generation % 2


@ALL_SUITES
def test_header_protection_key_is_kept_across_updates(suite: CipherSuite) -> None:
    table = pair(suite)
    before = table.export(0)
    table.initiate_key_update(0)
    deliver(table, 1, table.seal_ping(0, DCID, 0, None), -1)
    after = table.export(0)
    assert after.send_secret != before.send_secret
    assert (after.send_hp_key, after.recv_hp_key) == (before.send_hp_key, before.recv_hp_key)


@ALL_SUITES
def test_forged_other_phase_packet_does_not_update(suite: CipherSuite) -> None:
    table = pair(suite)
    packet = bytearray(table.seal_ping(0, DCID, 0, None, min_packet_size=64))
    packet[-1] ^= 0x01  # breaks the tag, outside the header-protection sample
    for phase_flip in (0, 0x04):
        forged = bytes([packet[0] ^ phase_flip]) + bytes(packet[1:])
        assert deliver(table, 1, forged, -1).status is RxStatus.UNDECRYPTABLE
    exported = table.export(1)
    assert (exported.send_generation, exported.recv_generation) == (0, 0)
    assert deliver(table, 1, table.seal_ping(0, DCID, 1, None), -1).authenticated
