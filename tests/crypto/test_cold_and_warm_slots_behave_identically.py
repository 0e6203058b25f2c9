"""Whether a slot keeps its cipher contexts (warm) or rebuilds them on every use (cold)
changes nothing on the wire: the same keys give byte-identical packets and verdicts, key
updates included, and the warm set never exceeds its limit.  Which slots are warm: every
slot used while the set has room; once full, a slot whose direction is used a second time
among the recent cold uses, displacing the slot a CLOCK hand finds unused."""

import os

import pytest
from shim_peer_link import ALL_SUITES, secret_length

from quic_offload.crypto import CipherSuite, KeyTable, RxStatus

DCID = bytes(8)


def run(suite: CipherSuite, warm_slots: int | None, secrets: list[bytes]) -> list[object]:
    table = KeyTable(8, warm_slots=warm_slots)
    for slot in range(4):
        table.install(slot, suite, secrets[slot], secrets[slot ^ 1])
    transcript: list[object] = []
    for pn in range(3):
        for slot in range(4):
            if pn == 1 and slot in (0, 2):
                table.initiate_key_update(slot)
            packet = table.seal_ack(slot, DCID, pn, None, [(0, pn)], 100, ping=True)
            transcript.append(packet)
            transcript.append(table.open_datagram(slot ^ 1, packet, dcid_len=8, largest_pn=pn - 1))
        assert table.warm_slot_count() <= (4 if warm_slots is None else warm_slots)
    transcript += [table.export(slot) for slot in range(4)]
    return transcript


@ALL_SUITES
def test_warm_cold_and_unbounded_agree(suite: CipherSuite) -> None:
    secrets = [os.urandom(secret_length(suite)) for _ in range(4)]
    reference = run(suite, None, secrets)
    for warm_slots in (0, 1, 3):
        assert run(suite, warm_slots, secrets) == reference


def is_warm(table: KeyTable, slot: int) -> bool:
    entry = table._slots[slot]  # white-box: which slots hold contexts
    return entry.tx is not None or entry.rx is not None


def test_slots_join_the_warm_set_while_it_has_room() -> None:
    table = KeyTable(4, warm_slots=2)
    for slot in range(3):
        table.install(slot, CipherSuite.AES_128_GCM_SHA256, bytes(32), bytes(32))
    table.seal_ping(0, DCID, 0, None)
    table.seal_ping(1, DCID, 0, None)
    assert is_warm(table, 0) and is_warm(table, 1) and table.warm_slot_count() == 2


def test_full_warm_set_admits_a_slot_on_its_second_use_and_evicts_by_clock() -> None:
    table = KeyTable(4, warm_slots=2)
    for slot in range(3):
        table.install(slot, CipherSuite.AES_128_GCM_SHA256, bytes(32), bytes(32))
    table.seal_ping(0, DCID, 0, None)
    table.seal_ping(1, DCID, 0, None)
    table.seal_ping(2, DCID, 0, None)  # first use while full: one-shot contexts only
    assert not is_warm(table, 2) and table.warm_slot_count() == 2
    # both warm slots were used since the hand last passed: it clears 0 and 1, then
    # evicts 0, the first one it finds unused on its second pass
    table.seal_ping(2, DCID, 1, None)
    assert is_warm(table, 2) and not is_warm(table, 0) and is_warm(table, 1)
    # slot 1 is now unused since the hand cleared it, slot 2 was just used: 1 goes next
    table.seal_ping(0, DCID, 1, None)
    table.seal_ping(0, DCID, 2, None)
    assert is_warm(table, 0) and not is_warm(table, 1) and is_warm(table, 2)
    assert table.warm_slot_count() == 2


def test_keepalive_traffic_never_displaces_busy_slots() -> None:
    """A PING out and its ACK back are one use of each direction: connections that only
    keep alive are served with one-shot contexts and leave the warm set alone."""
    table = KeyTable(10, warm_slots=2)
    for slot in range(10):  # same secret both ways: a slot opens its own packets
        table.install(slot, CipherSuite.AES_128_GCM_SHA256, bytes(32), bytes(32))
    table.seal_ping(0, DCID, 0, None)
    table.seal_ping(1, DCID, 0, None)
    for pn in range(3):
        for slot in range(2, 10):
            packet = table.seal_ping(slot, DCID, pn, None)
            assert table.open_datagram(slot, packet, 8, pn - 1).status is RxStatus.CONTROL_ONLY
    assert [slot for slot in range(10) if is_warm(table, slot)] == [0, 1]
    table.seal_ping(5, DCID, 3, None)  # a burst: the second send is admitted
    assert not is_warm(table, 5)
    table.seal_ping(5, DCID, 4, None)
    assert is_warm(table, 5) and table.warm_slot_count() == 2


def test_wiped_warm_slot_frees_its_place() -> None:
    table = KeyTable(4, warm_slots=2)
    for slot in range(3):
        table.install(slot, CipherSuite.AES_128_GCM_SHA256, bytes(32), bytes(32))
    table.seal_ping(0, DCID, 0, None)
    table.seal_ping(1, DCID, 0, None)
    table.wipe(0)
    assert table.warm_slot_count() == 1
    table.seal_ping(2, DCID, 0, None)  # takes the free place at once
    assert is_warm(table, 2) and is_warm(table, 1) and table.warm_slot_count() == 2


def test_negative_warm_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="warm_slots"):
        KeyTable(4, warm_slots=-1)
