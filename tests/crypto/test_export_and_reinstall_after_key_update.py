"""After key updates in both directions, export() returns exactly the secrets the aioquic
peer holds for the other direction, with phases and generations; re-installing the
export (HP keys included) in a fresh table continues the conversation, while deriving
header protection from the updated secret would not."""

from shim_peer_link import ALL_SUITES, make_link

from quic_offload.crypto import CipherSuite, KeyTable, RxStatus


def exchange(link, our_pn: int, peer_pn: int) -> None:
    packet = link.table.seal_ping(0, link.dcid, our_pn, None)
    _, payload, pn = link.peer_open(packet, our_pn - 1)
    assert pn == our_pn
    received = link.table.open_datagram(
        0, link.peer_seal(b"\x01\x00\x00", peer_pn), dcid_len=len(link.dcid), largest_pn=peer_pn - 1
    )
    assert received.status is RxStatus.CONTROL_ONLY


@ALL_SUITES
def test_export_tracks_updates_and_reinstall_continues(suite: CipherSuite) -> None:
    link = make_link(suite)
    exchange(link, 0, 0)
    link.table.initiate_key_update(0)  # ours
    exchange(link, 1, 1)
    link.peer.update_key()  # theirs
    received = link.table.open_datagram(
        0, link.peer_seal(b"\x01\x00\x00", 2), dcid_len=len(link.dcid), largest_pn=1
    )
    assert received.key_updated

    exported = link.table.export(0)
    assert exported.send_secret == link.peer.recv.secret
    assert exported.recv_secret == link.peer.send.secret
    assert (exported.send_generation, exported.recv_generation) == (2, 2)
    assert exported.send_key_phase == exported.recv_key_phase == link.peer.key_phase == 0
    assert exported.next_packet_number == 2
    assert exported.suite is suite

    fresh = KeyTable(1)
    fresh.install(
        0,
        exported.suite,
        exported.send_secret,
        exported.recv_secret,
        exported.send_key_phase,
        send_hp_key=exported.send_hp_key,
        recv_hp_key=exported.recv_hp_key,
        generation=exported.send_generation,
        next_packet_number=exported.next_packet_number,
    )
    link.table = fresh
    exchange(link, 5, 5)
    assert fresh.export(0).send_generation == 2


@ALL_SUITES
def test_reinstall_without_hp_keys_breaks_after_an_update(suite: CipherSuite) -> None:
    link = make_link(suite)
    link.table.initiate_key_update(0)
    exchange(link, 0, 0)
    exported = link.table.export(0)
    wrong = KeyTable(1)
    wrong.install(0, suite, exported.send_secret, exported.recv_secret, exported.send_key_phase)
    received = wrong.open_datagram(
        0, link.peer_seal(b"\x01\x00\x00", 1), dcid_len=len(link.dcid), largest_pn=0
    )
    assert received.status is RxStatus.UNDECRYPTABLE
