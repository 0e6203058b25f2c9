"""Random sequences of install, wipe, seal and open on tables with a small warm set give
the same packets and verdicts as a table that keeps every slot warm, and the warm set's
bookkeeping holds after every step: never more warm slots than the limit, the count
equals the slots actually holding contexts, and every warm slot sits at its own ring
position."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quic_offload.crypto import CipherSuite, KeyTable

SLOTS = 6
DCID = bytes(8)
SECRET = os.urandom(32)  # both directions and every slot: any slot opens any packet

#: (action, slot, times): repeats make bursts, which is what gets a slot into a full set
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["seal", "seal", "open", "open", "wipe", "install"]),
        st.integers(min_value=0, max_value=SLOTS - 1),
        st.integers(min_value=1, max_value=3),
    ),
    max_size=40,
)


def check_bookkeeping(table: KeyTable, limit: int | None) -> None:
    entries = [entry for entry in table._slots if entry is not None]  # white-box
    holding = [entry for entry in entries if entry.tx is not None or entry.rx is not None]
    assert table.warm_slot_count() == len(holding)
    if limit is not None:
        assert len(holding) <= limit
        for entry in holding:
            assert table._ring[entry.ring_pos] is entry
        assert len(set(table._free)) == len(table._free)
        for position in table._free:
            assert table._ring[position] is None


def replay(steps: list[tuple[str, int, int]], limit: int | None) -> list[object]:
    table = KeyTable(SLOTS, warm_slots=limit)
    for slot in range(SLOTS):
        table.install(slot, CipherSuite.AES_128_GCM_SHA256, SECRET, SECRET)
    next_pn = [0] * SLOTS
    transcript: list[object] = []
    packet = None
    for action, slot in ((action, slot) for action, slot, times in steps for _ in range(times)):
        if action == "install":
            if slot not in table:
                table.install(slot, CipherSuite.AES_128_GCM_SHA256, SECRET, SECRET)
                next_pn[slot] = 0
        elif slot not in table:
            pass
        elif action == "wipe":
            transcript.append(table.wipe(slot))
        elif action == "seal":
            pn = next_pn[slot]
            packet = table.seal_ping(slot, DCID, pn, pn - 1 if pn else None)
            next_pn[slot] = pn + 1
            transcript.append(packet)
        elif packet is not None:
            transcript.append(table.open_datagram(slot, packet, 8, -1))
        check_bookkeeping(table, limit)
    return transcript


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, limit=st.sampled_from([0, 1, 2, 3]))
def test_small_warm_sets_behave_like_an_unbounded_one(
    steps: list[tuple[str, int, int]], limit: int
) -> None:
    assert replay(steps, limit) == replay(steps, None)
