"""Park and resume against aioquic itself, without an engine in between: the exported
snapshot and keys are what the peer expects (a PING sealed from them is accepted, also after
a key update that happened before parking -- the header-protection key comes from the first
secrets), and a hand-made write-back folded in makes aioquic continue with the engine's
packet numbers, received ranges, keys and idle deadline.  All three cipher suites.
"""

from __future__ import annotations

import socket

import pytest
from aioquic.tls import Epoch
from offload_scenario import POLICY, SUITES, SansIoPair

from quic_offload.aioquic.engine_clock import EngineClock
from quic_offload.aioquic.state_export import export_snapshot
from quic_offload.aioquic.state_import import WritebackError, import_writeback
from quic_offload.crypto import KeyTable
from quic_offload.crypto.key_schedule import next_traffic_secret
from quic_offload.offload_abi import WRITEBACK_MAGIC, QoRange, QoWriteback


class FixedClockLoop:
    """Just enough of an event loop for EngineClock: a settable time()."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def export(pair: SansIoPair):  # noqa: ANN201
    clock = EngineClock(FixedClockLoop(pair.now))  # type: ignore[arg-type]
    snap, keys = export_snapshot(pair.client, sock_family=socket.AF_INET, sock_fd=3,
                                 policy=POLICY, clock=clock,
                                 first_secrets=pair.client_secrets)
    return snap, keys, clock


def key_table_from(keys) -> KeyTable:  # noqa: ANN001
    n, h = keys.secret_len, keys.hp_len
    table = KeyTable(1)
    table.install(0, keys.suite, bytes(keys.send_secret)[:n], bytes(keys.recv_secret)[:n],
                  keys.key_phase, version=keys.version, send_hp_key=bytes(keys.send_hp)[:h],
                  recv_hp_key=bytes(keys.recv_hp)[:h], next_packet_number=keys.next_pn)
    return table


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("updates_before_park", [0, 1])
def test_exported_keys_seal_packets_the_peer_accepts(certs, suite: str,
                                                     updates_before_park: int) -> None:
    pair = SansIoPair(certs, suite=suite)
    for _ in range(updates_before_park):
        pair.client.request_key_update()
        pair.client.send_ping(1)
        pair.settle()
    pair.drain_events()
    snap, keys, _ = export(pair)
    crypto = pair.client._cryptos[Epoch.ONE_RTT]
    assert keys.key_phase == crypto.recv.key_phase == updates_before_park % 2
    assert snap.next_pn == pair.client._packet_number
    assert snap.dcid.value() == pair.client._peer_cid.cid
    assert snap.host_cid.value() == pair.client.host_cid
    ranges = [(snap.ranges[i].smallest, snap.ranges[i].largest) for i in range(snap.n_ranges)]
    assert ranges == sorted(ranges, reverse=True)
    assert ranges[0][1] == pair.client._spaces[Epoch.ONE_RTT].largest_received_packet

    table = key_table_from(keys)
    pn = snap.next_pn
    packet = table.seal_ping(0, snap.dcid.value(), pn, snap.largest_acked)
    server_space = pair.server._spaces[Epoch.ONE_RTT]
    pair.server.receive_datagram(packet, ("127.0.0.1", 40001), now=pair.now)
    assert pn in server_space.received_packets  # authenticated and recorded by aioquic


def test_writeback_is_folded_into_aioquic(certs) -> None:
    pair = SansIoPair(certs)
    pair.drain_events()
    snap, keys, clock = export(pair)
    space = pair.client._spaces[Epoch.ONE_RTT]
    largest = space.largest_received_packet

    # what an engine would write back after 4 PINGs and 3 packets from the peer, and one
    # peer key update
    wb = QoWriteback(magic=WRITEBACK_MAGIC, next_pn=snap.next_pn + 4,
                     largest_received=largest + 3, largest_received_ns=clock.now_ns(),
                     last_receive_ns=clock.now_ns(), largest_acked=snap.next_pn + 3,
                     n_ranges=1, spin=1)
    wb.ranges[0] = QoRange(largest - 1 if largest else 0, largest + 3)
    n = keys.secret_len
    for side in ("send_secret", "recv_secret"):
        updated = next_traffic_secret(keys.suite, bytes(getattr(keys, side))[:n])
        getattr(keys, side)[:n] = list(updated)
    keys.key_phase ^= 1
    old_hp = pair.client._cryptos[Epoch.ONE_RTT].recv.hp

    import_writeback(pair.client, wb, keys, clock)

    crypto = pair.client._cryptos[Epoch.ONE_RTT]
    assert pair.client._packet_number == snap.next_pn + 4
    assert space.largest_received_packet == largest + 3
    assert space.expected_packet_number == largest + 4
    assert all(pn in space.received_packets for pn in range(largest + 1, largest + 4))
    assert list(space.ack_queue)[-1] == range(wb.ranges[0].smallest, largest + 4)
    assert space.ack_at is None
    assert crypto.recv.key_phase == crypto.send.key_phase == keys.key_phase
    assert crypto.recv.hp is old_hp  # header protection never changes
    assert pair.client._close_at == pytest.approx(pair.now + pair.client._idle_timeout(), abs=0.01)
    assert pair.client._spin_bit is True

    # and aioquic carries on: the server follows the key update and gets the data
    pair.server._cryptos[Epoch.ONE_RTT]._update_key("test")
    pair.client.send_stream_data(0, b"resumed", end_stream=True)
    pair.settle()
    received = []
    while (event := pair.server.next_event()) is not None:
        received.append(event)
    assert any(getattr(e, "data", None) == b"resumed" for e in received)


def test_writeback_without_reclaim_is_refused(certs) -> None:
    pair = SansIoPair(certs)
    _, keys, clock = export(pair)
    with pytest.raises(WritebackError, match="reclaim did not run"):
        import_writeback(pair.client, QoWriteback(), keys, clock)
