"""Packets delivered in any order across key updates open exactly when the receiver
can still hold their keys: a packet one generation behind the receiver (previous keys),
at its generation, or one ahead (next keys, which commits the update) always opens with
the right packet number; two or more generations behind never does and changes nothing.
The sender initiates updates whenever RFC 9001 lets it (the receiver answers every
packet at once, in order, which is what confirms an update)."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from shim_peer_link import secret_length

from quic_offload.crypto import CipherSuite, KeyTable, RxStatus

DCID = bytes(4)

ACTIONS = st.lists(
    st.one_of(
        st.just(("send",)),
        st.just(("update",)),
        # mostly the newest packet, so that old ones linger across updates
        st.tuples(st.just("deliver"), st.integers(min_value=0, max_value=2)),
        st.tuples(st.just("deliver"), st.integers(min_value=0, max_value=1000)),
    ),
    min_size=20,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(suite=st.sampled_from(list(CipherSuite)), actions=ACTIONS)
def test_reordered_delivery(suite: CipherSuite, actions: list[tuple]) -> None:
    a, b = os.urandom(secret_length(suite)), os.urandom(secret_length(suite))
    table = KeyTable(2)
    table.install(0, suite, a, b)  # sender
    table.install(1, suite, b, a)  # receiver
    in_flight: list[tuple[int, int, bytes]] = []  # (pn, generation, packet)
    sender_pn = receiver_pn = 0
    largest = -1

    for action in actions:
        if action[0] == "send":
            generation = table.export(0).send_generation
            in_flight.append((sender_pn, generation, table.seal_ping(0, DCID, sender_pn, None)))
            sender_pn += 1
        elif action[0] == "update":
            exported = table.export(0)
            if exported.send_generation == exported.recv_generation:
                table.initiate_key_update(0)
        elif in_flight:
            pn, generation, packet = in_flight.pop(-1 - action[1] % len(in_flight))
            receiver_generation = table.export(1).recv_generation
            received = table.open_datagram(1, packet, dcid_len=4, largest_pn=largest)
            if generation >= receiver_generation - 1:
                assert received.status is RxStatus.CONTROL_ONLY, (generation, receiver_generation)
                assert received.packet_number == pn
                assert received.key_updated == (generation == receiver_generation + 1)
                largest = max(largest, pn)
                # the receiver answers at once; its packets arrive in order
                answer = table.seal_ping(1, DCID, receiver_pn, None)
                receiver_pn += 1
                assert table.open_datagram(
                    0, answer, dcid_len=4, largest_pn=receiver_pn - 2
                ).authenticated
            else:
                assert received.status is RxStatus.UNDECRYPTABLE
                assert table.export(1).recv_generation == receiver_generation
        exported = table.export(1)
        assert exported.send_generation == exported.recv_generation
