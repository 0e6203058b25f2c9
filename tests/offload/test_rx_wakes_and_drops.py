"""The rx program's verdicts on a parked connection's datagrams, one by one, against a
synthetic peer: other frames wake DATA with the datagram handed over byte for byte; a
CONNECTION_CLOSE wakes CLOSED; a packet from a new address wakes PATH_CHANGE; forged,
truncated and too-short datagrams are counted and dropped without waking anyone.
"""

from __future__ import annotations

import socket

from quic_offload.offload_abi import WakeReason
from quic_offload.synthetic_peer import SyntheticHarness

STREAM_FRAME = bytes([0x0A, 0x00, 0x05]) + b"hello" + bytes(10)  # STREAM(len) id 0 + padding
CLOSE_FRAME = bytes([0x1C, 0x00, 0x00, 0x04]) + b"done" + bytes(8)


def wait_wake(harness: SyntheticHarness, conn, seconds: float = 1.0) -> None:  # noqa: ANN001
    harness.poll(0.0)
    for _ in range(int(seconds / 0.02)):
        if conn.wakes:
            return
        harness.poll(0.02)


def test_other_frames_wake_data_with_the_datagram_untouched(harness: SyntheticHarness) -> None:
    conn = harness.park(interval=30.0)
    harness.poll(0.05)
    packet = harness.send(conn, raw_payload=STREAM_FRAME)
    wait_wake(harness, conn)
    assert conn.wakes == [(WakeReason.DATA, packet)]
    assert harness.engine_conn(conn).state == 2  # waking: no longer kept
    # later datagrams of a woken connection go to the application as they are
    later = harness.send(conn)
    harness.poll(0.1)
    assert [d for d, _ in harness.handed_over] == [later]


def test_connection_close_wakes_closed(harness: SyntheticHarness) -> None:
    conn = harness.park(interval=30.0)
    harness.poll(0.05)
    packet = harness.send(conn, raw_payload=CLOSE_FRAME)
    wait_wake(harness, conn)
    assert conn.wakes == [(WakeReason.CLOSED, packet)]


def test_new_peer_address_wakes_path_change(harness: SyntheticHarness) -> None:
    conn = harness.park(interval=30.0)
    harness.poll(0.05)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    try:
        packet = harness.send(conn, from_sock=other)
        wait_wake(harness, conn)
    finally:
        other.close()
    assert conn.wakes == [(WakeReason.PATH_CHANGE, packet)]
    assert harness.stats()["acks_sent"] == 0  # not answered from the old path


def test_forged_short_and_truncated_datagrams_are_dropped(harness: SyntheticHarness) -> None:
    conn = harness.park(interval=30.0)
    harness.poll(0.05)
    packet = bytearray(harness.seal(conn))
    packet[-1] ^= 0x01                                   # AEAD tag broken
    harness.deliver(conn, bytes(packet))
    harness.deliver(conn, bytes(packet[:15]))            # under 21 bytes: not even QUIC
    harness.deliver(conn, bytes(packet[:22]))            # cut short: fails to open
    harness.poll(0.2)
    stats = harness.stats()
    assert stats["dropped_undecryptable"] == 2
    assert stats["dropped_malformed"] == 1
    assert conn.wakes == [] and harness.handed_over == []
    assert harness.engine_conn(conn).state == 1  # still parked
    assert harness.receive(conn, block=False) == []


def test_silent_peer_wakes_unresponsive_after_k_pings(harness: SyntheticHarness) -> None:
    conn = harness.park(interval=0.05, unresponsive_after=3)
    for _ in range(50):
        harness.poll(0.02)
        if conn.wakes:
            break
    assert [r for r, _ in conn.wakes] == [WakeReason.UNRESPONSIVE]
    pings = [p for p in conn.received if p.ack_eliciting]
    assert len(pings) == 3


def test_pings_keep_clear_of_the_idle_deadline(harness: SyntheticHarness) -> None:
    """An interval longer than the idle timeout is shortened to idle timeout - PTO."""
    conn = harness.park(interval=10.0, idle_timeout=0.4)
    harness.poll(1.2, answer=True)  # three idle timeouts
    assert len([p for p in conn.received if p.ack_eliciting]) >= 3
    assert conn.wakes == []


def test_timer_wheel_visits_only_due_connections(harness: SyntheticHarness) -> None:
    idle = [harness.park(interval=60.0, idle_timeout=300.0) for _ in range(100)]
    busy = [harness.park(interval=0.1) for _ in range(3)]
    harness.poll(0.1, answer=True)
    base = harness.stats()
    harness.poll(1.0, answer=True)
    stats = harness.stats()
    pings = stats["pings_sent"] - base["pings_sent"]
    visited = stats["wheel_visited"] - base["wheel_visited"]
    assert pings >= 15                      # the 3 busy ones, ~10 rounds each
    assert visited <= pings + len(busy)     # the 100 idle ones were never looked at
    assert all(not c.received for c in idle)
