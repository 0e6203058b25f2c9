"""Damaged datagrams never crash the receive path and are never taken as valid: every
truncation point and random bit flips of valid packets (all suites, after key updates
too) give a non-authenticated verdict from open_datagram and a PacketError subclass from
open; random bytes likewise."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shim_peer_link import secret_length

from quic_offload.crypto import CipherSuite, KeyTable, RxStatus
from quic_offload.packet.errors import PacketError

DCID = bytes(range(8))
NOT_VALID = {RxStatus.UNDECRYPTABLE, RxStatus.DROPPED, RxStatus.LONG_HEADER}


def make_table(suite: CipherSuite, updates: int) -> KeyTable:
    a, b = os.urandom(secret_length(suite)), os.urandom(secret_length(suite))
    table = KeyTable(2)
    table.install(0, suite, a, b)
    table.install(1, suite, b, a)
    for generation in range(updates):
        table.initiate_key_update(0)
        pn = 1000 + generation
        for sender, receiver in ((0, 1), (1, 0)):  # update, then the peer confirms it
            packet = table.seal_ping(sender, DCID, pn, None)
            assert table.open_datagram(receiver, packet, dcid_len=8, largest_pn=pn - 1).key_updated
    return table


def sample_packets(table: KeyTable) -> list[bytes]:
    pn = table.export(0).next_packet_number
    return [
        table.seal_ping(0, DCID, pn, pn - 1),
        table.seal_ack(0, DCID, pn + 1, pn, [(40, 50), (0, 30)], 1234, ping=True),
        table.seal_ack(0, DCID, pn + 70_000, pn, [(7, 7)], 0),
    ]


def check_damaged(table: KeyTable, damaged: bytes, largest: int) -> None:
    before = table.export(1)
    received = table.open_datagram(1, damaged, dcid_len=8, largest_pn=largest)
    assert received.status in NOT_VALID, received
    assert not received.authenticated and received.packet_number == -1
    with pytest.raises(PacketError):
        table.open(1, damaged, dcid_len=8, largest_pn=largest)
    after = table.export(1)
    assert after.recv_generation == before.recv_generation
    assert after.recv_secret == before.recv_secret


@pytest.mark.parametrize("suite", list(CipherSuite), ids=lambda s: s.name)
@pytest.mark.parametrize("updates", [0, 3])
def test_every_truncation_point(suite: CipherSuite, updates: int) -> None:
    table = make_table(suite, updates)
    largest = table.export(0).next_packet_number - 1
    for packet in sample_packets(table):
        for end in range(len(packet)):
            check_damaged(table, packet[:end], largest)
        assert table.open_datagram(1, packet, dcid_len=8, largest_pn=largest).authenticated


@pytest.mark.parametrize("suite", list(CipherSuite), ids=lambda s: s.name)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(min_value=0, max_value=2),
    flips=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=3, unique=True),
    updates=st.integers(min_value=0, max_value=2),
)
def test_random_bit_flips(suite: CipherSuite, which: int, flips: list[int], updates: int) -> None:
    table = make_table(suite, updates)
    largest = table.export(0).next_packet_number - 1
    packet = bytearray(sample_packets(table)[which])
    for bit in {flip % (8 * len(packet)) for flip in flips}:
        packet[bit // 8] ^= 1 << (bit % 8)
    check_damaged(table, bytes(packet), largest)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.integers(min_value=-1, max_value=2**40))
def test_random_datagrams(datagram: bytes, largest: int) -> None:
    table = make_table(CipherSuite.AES_128_GCM_SHA256, 0)
    received = table.open_datagram(1, datagram, dcid_len=8, largest_pn=largest)
    assert received.status in NOT_VALID
