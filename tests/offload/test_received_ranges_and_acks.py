"""What the rx program does with the peer's packet numbers: ranges kept newest first through
reordering, gaps and merges; duplicates dropped without an answer; one ACK-only packet per
ack-eliciting packet and none for an ACK-only one, whose packet number rides on the next
keepalive as PING+ACK instead.  Driven by a synthetic peer, on both backends and both
execution paths of the eBPF runtime.
"""

from __future__ import annotations

import pytest

from quic_offload.crypto import RxStatus
from quic_offload.synthetic_peer import SyntheticHarness, ranges_of


@pytest.fixture(params=["translator", "interpreter"])
def harness(request: pytest.FixtureRequest, backend: str):  # noqa: ANN201
    h = SyntheticHarness(backend, mode=request.param)
    yield h
    h.close()


def acks_in(packets) -> list:  # noqa: ANN001
    return [p.ack for p in packets if p.ack is not None and not p.ack_eliciting]


def test_ranges_follow_reordering_gaps_and_duplicates(harness: SyntheticHarness) -> None:
    conn = harness.park(interval=30.0)  # no keepalive during the test
    harness.poll(0.05)
    assert conn.statuses == [0]
    expected_ranges = {
        6: [(5, 6)], 7: [(5, 7)], 10: [(10, 10), (5, 7)], 9: [(9, 10), (5, 7)],
        8: [(5, 10)], 13: [(13, 13), (5, 10)],
    }
    packets = {pn: harness.seal(conn, pn=pn) for pn in sorted(expected_ranges)}
    for pn, ranges in expected_ranges.items():
        harness.deliver(conn, packets[pn])
        answers = harness.receive(conn)
        assert len(answers) == 1 and answers[0].status == RxStatus.CONTROL_ONLY
        assert not answers[0].ack_eliciting  # ACK-only
        assert list(answers[0].ack.ranges) == ranges
        assert ranges_of(harness.engine_conn(conn)) == ranges

    before = harness.stats()
    harness.deliver(conn, packets[7])  # a duplicate: dropped, not answered
    assert harness.receive(conn) == []
    assert harness.stats()["dropped_duplicate"] == before["dropped_duplicate"] + 1
    assert harness.stats()["acks_sent"] == before["acks_sent"]
    assert conn.wakes == [] and harness.handed_over == []


def test_oldest_range_goes_when_there_are_too_many(harness: SyntheticHarness) -> None:
    conn = harness.park(interval=30.0, largest_received=5)
    harness.poll(0.05)
    stale = harness.seal(conn, pn=5)  # sealed now, delivered last
    for pn in range(7, 7 + 2 * 9, 2):  # nine more isolated packet numbers
        harness.send(conn, pn=pn)
        harness.receive(conn)
    ranges = ranges_of(harness.engine_conn(conn))
    assert len(ranges) == 8
    assert ranges[0] == (23, 23) and ranges[-1] == (9, 9)  # (5,5) and (7,7) fell off
    harness.deliver(conn, stale)  # older than anything tracked: taken as a duplicate
    assert harness.receive(conn) == []


def test_ack_only_from_peer_is_not_answered_but_acknowledged_with_next_ping(
        harness: SyntheticHarness) -> None:
    conn = harness.park(interval=0.2)
    harness.poll(0.05)
    harness.send(conn, pn=6, ping=False, ack_of=[(9, 9)])  # ACK-only: not ack-eliciting
    harness.poll(0.3)
    assert not [p for p in conn.received if not p.ack_eliciting], "answered an ACK-only"
    keepalives = [p for p in conn.received if p.ack_eliciting]
    assert keepalives, "no keepalive arrived"
    assert keepalives[0].ack is not None and keepalives[0].ack.ranges[0] == (5, 6)
    assert harness.stats()["ping_acks_sent"] >= 1


def test_ack_of_a_packet_never_sent_is_ignored(harness: SyntheticHarness) -> None:
    conn = harness.park(interval=0.2)  # the engine's next packet number is 10
    harness.poll(0.05)
    harness.send(conn, pn=6, ping=False, ack_of=[(50, 60)])
    harness.poll(0.4)
    assert harness.stats()["dropped_bogus_ack"] == 1
    assert harness.engine_conn(conn).tx.largest_acked == 9
    assert [p for p in conn.received if p.ack_eliciting], "keepalives must go on"
