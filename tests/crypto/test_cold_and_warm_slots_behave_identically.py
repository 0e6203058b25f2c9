"""Whether a slot keeps its cipher contexts (warm) or rebuilds them on every use (cold)
changes nothing on the wire: the same keys give byte-identical packets and verdicts, key
updates included, and the warm set never exceeds its limit."""

import os

import pytest
from shim_peer_link import ALL_SUITES, secret_length

from quic_offload.crypto import CipherSuite, KeyTable

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


def test_least_recently_used_slot_is_evicted() -> None:
    table = KeyTable(4, warm_slots=2)
    for slot in range(3):
        table.install(slot, CipherSuite.AES_128_GCM_SHA256, bytes(32), bytes(32))
    table.seal_ping(0, DCID, 0, None)
    table.seal_ping(1, DCID, 0, None)
    table.seal_ping(0, DCID, 1, None)  # 0 is now the most recent
    table.seal_ping(2, DCID, 0, None)  # evicts 1
    assert table._slots[1].contexts is None
    assert table._slots[0].contexts is not None and table._slots[2].contexts is not None
    assert table.warm_slot_count() == 2


def test_negative_warm_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="warm_slots"):
        KeyTable(4, warm_slots=-1)
