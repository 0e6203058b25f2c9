"""Property test against aioquic's CryptoPair, for all three suites and both QUIC
versions: every packet the key table seals (padded PING, ACK-only, PING+ACK, generic
seal) is opened by aioquic, every packet aioquic seals is opened by the table, while
either side initiates key updates in any interleaving.  After each delivery both ends
hold the same secrets."""

from __future__ import annotations

import os

import pytest
from aioquic.buffer import Buffer
from aioquic.quic.packet import pull_ack_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shim_peer_link import ALL_SUITES, Link, make_link

from quic_offload.crypto import CipherSuite, KeyUpdateError, QuicVersion, RxStatus
from quic_offload.packet.frame_classifier import PayloadKind, classify_payload
from quic_offload.packet.packet_number import encode_packet_number
from quic_offload.packet.short_header import build_short_header

ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("we_send"), st.sampled_from(["ping", "ack", "ping_ack", "seal"])),
        st.tuples(st.just("peer_send"), st.sampled_from(["ping", "ack", "random"])),
        st.tuples(st.just("we_update")),
        st.tuples(st.just("peer_update")),
        st.tuples(st.just("pn_jump"), st.integers(min_value=1, max_value=5000)),
    ),
    max_size=30,
)


class Conversation:
    def __init__(self, link: Link) -> None:
        self.link = link
        self.our_pn = 0
        self.peer_pn = 0
        self.our_largest_received = -1
        self.peer_largest_received = -1
        self.received_by_us: list[int] = []

        # RFC 9001 §6.1: no new key update before a packet of the current phase got
        # through; aioquic does not enforce that on itself, so the conversation does
        self.peer_secret_seen_by_us = link.peer.send.secret

    def our_ranges(self) -> list[tuple[int, int]]:
        """Received packet numbers as ACK ranges, newest first (at most 5)."""
        ranges: list[tuple[int, int]] = []
        for pn in sorted(self.received_by_us, reverse=True):
            if ranges and ranges[-1][0] == pn + 1:
                ranges[-1] = (pn, ranges[-1][1])
            else:
                ranges.append((pn, pn))
        return ranges[:5] or [(0, 0)]

    def peer_update(self) -> None:
        if self.link.peer.send.secret == self.peer_secret_seen_by_us:
            self.link.peer.update_key()

    def we_send(self, kind: str) -> None:
        link, table = self.link, self.link.table
        pn = self.our_pn
        acked = None if self.peer_largest_received < 0 else self.peer_largest_received
        if kind == "ping":
            packet = table.seal_ping(0, link.dcid, pn, acked)
        elif kind in ("ack", "ping_ack"):
            packet = table.seal_ack(
                0, link.dcid, pn, acked, self.our_ranges(), 4000, ping=kind == "ping_ack"
            )
        else:
            truncated, length = encode_packet_number(pn, acked)
            payload = b"\x01" + os.urandom(30)
            packet = table.seal(0, build_short_header(link.dcid, truncated, length), payload, pn)
        self.our_pn += 1

        header, payload, opened_pn = link.peer_open(packet, self.peer_largest_received)
        assert opened_pn == pn
        assert (header[0] >> 2) & 1 == table.key_phase(0)
        self.peer_largest_received = max(self.peer_largest_received, pn)
        assert link.peer.recv.secret == table.export(0).send_secret
        if kind != "seal":
            summary = classify_payload(payload)
            assert summary.kind is PayloadKind.CONTROL_ONLY
            assert summary.ack_eliciting == (kind != "ack")
        if kind in ("ack", "ping_ack"):
            buf = Buffer(data=payload[1:])
            rangeset, delay = pull_ack_frame(buf)
            assert [(r.start, r.stop - 1) for r in reversed(list(rangeset))] == self.our_ranges()
            assert delay == 4000 >> 3

    def peer_send(self, kind: str, via_datagram: bool) -> None:
        link, table = self.link, self.link.table
        pn = self.peer_pn
        if kind == "ping":
            payload = b"\x01\x00\x00\x00"
        elif kind == "ack":
            payload = bytes.fromhex("02") + bytes((min(self.our_pn, 63), 0, 0, 0))
        else:
            payload = os.urandom(24)
        packet = link.peer_seal(payload, pn)
        self.peer_pn += 1
        if via_datagram:
            received = table.open_datagram(
                0, packet, dcid_len=len(link.dcid), largest_pn=self.our_largest_received
            )
            assert received.authenticated, received
            assert received.packet_number == pn
            if kind == "ping":
                assert received.status is RxStatus.CONTROL_ONLY and received.ack_eliciting
        else:
            opened = table.open(
                0, packet, dcid_len=len(link.dcid), largest_pn=self.our_largest_received
            )
            assert (opened.packet_number, opened.payload) == (pn, payload)
        self.our_largest_received = max(self.our_largest_received, pn)
        self.received_by_us.append(pn)
        self.peer_secret_seen_by_us = link.peer.send.secret
        assert table.export(0).recv_secret == link.peer.send.secret

    def we_update(self) -> None:
        table = self.link.table
        exported = table.export(0)
        if exported.send_generation != exported.recv_generation:
            with pytest.raises(KeyUpdateError):
                table.initiate_key_update(0)
        else:
            table.initiate_key_update(0)
            assert table.export(0).send_generation == exported.send_generation + 1


@ALL_SUITES
@pytest.mark.parametrize("version", list(QuicVersion), ids=lambda v: v.name)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS, dcid_len=st.integers(min_value=0, max_value=20), data=st.data())
def test_conversation_with_key_updates(
    suite: CipherSuite,
    version: QuicVersion,
    actions: list[tuple],
    dcid_len: int,
    data: st.DataObject,
) -> None:
    conversation = Conversation(make_link(suite, version, dcid_len))
    for action in actions:
        if action[0] == "we_send":
            conversation.we_send(action[1])
        elif action[0] == "peer_send":
            conversation.peer_send(action[1], data.draw(st.booleans()))
        elif action[0] == "we_update":
            conversation.we_update()
        elif action[0] == "peer_update":
            conversation.peer_update()
        else:
            conversation.our_pn += action[1]
            conversation.peer_pn += action[1]
    # whatever happened, one more exchange in each direction still works
    conversation.we_send("ping_ack")
    conversation.peer_send("ping", True)
    conversation.we_send("ping")


@ALL_SUITES
def test_many_updates_each_side(suite: CipherSuite) -> None:
    conversation = Conversation(make_link(suite))
    for _ in range(5):
        conversation.we_update()
        conversation.we_send("ping")
        conversation.peer_send("ack", False)
        conversation.peer_update()
        conversation.peer_send("ping", True)
        conversation.we_send("ack")
    exported = conversation.link.table.export(0)
    assert exported.send_generation == exported.recv_generation == 10
    assert exported.send_key_phase == exported.recv_key_phase == 0
