"""The crypto-shim helpers as a program calls them: keys go in from a user-memory block that
is wiped right after, packets come out sealed into a send slot, datagrams are opened into a
verdict struct, keys come back out only through export; bad arguments are errnos, never
exceptions, and key bytes never show up in a repr."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from quic_offload.crypto import KeyTable
from quic_offload.offload_abi import (
    SEAL_ACK,
    SEAL_PING,
    QoCid,
    QoKeys,
    QoRange,
    QoRx,
    QoSendSlot,
    QoTx,
    RxVerdict,
    offset_of,
)
from quic_offload.shim_helpers import ShimEnv, offload_helpers
from uring.ring import Ring

SECRET_A, SECRET_B = os.urandom(32), os.urandom(32)


@pytest.fixture
def env():  # noqa: ANN201
    ring = Ring.create(cq_entries=(64, 16, 16, 16), user_memory=1 << 16, backend="portable",
                       env_factory=ShimEnv)
    yield ring.engine.env, ring
    ring.close()


def put(ring: Ring, data: bytes) -> int:
    addr = ring.alloc.alloc(max(len(data), 1), 64)
    off = ring.user.offset(addr, len(data))
    ring.user.view[off:off + len(data)] = data
    return addr


def key_block(suite: int = 0x1301, token: bytes = b"") -> QoKeys:
    keys = QoKeys(suite=suite, secret_len=32, version=1, next_pn=100)
    ctypes.memmove(keys.send_secret, SECRET_A, 32)
    ctypes.memmove(keys.recv_secret, SECRET_B, 32)
    if token:
        keys.n_reset_tokens = 1
        ctypes.memmove(keys.reset_tokens[0], token, 16)
    return keys


def test_install_wipes_the_block_and_refuses_misuse(env) -> None:  # noqa: ANN001
    shim, ring = env
    addr = put(ring, bytes(key_block()))
    assert shim.quic_key_install(0, addr, ctypes.sizeof(QoKeys)) == 0
    off = ring.user.offset(addr, ctypes.sizeof(QoKeys))
    assert bytes(ring.user.view[off:off + ctypes.sizeof(QoKeys)]) == bytes(ctypes.sizeof(QoKeys))
    again = put(ring, bytes(key_block()))
    assert shim.quic_key_install(0, again, ctypes.sizeof(QoKeys)) == -errno.EBUSY
    bad = put(ring, bytes(key_block(suite=0x1304)))
    assert shim.quic_key_install(1, bad, ctypes.sizeof(QoKeys)) == -errno.EINVAL
    assert shim.quic_key_install(2, 0x10, ctypes.sizeof(QoKeys)) == -errno.EFAULT
    assert shim.quic_key_install(3, addr, 5) == -errno.EINVAL
    assert SECRET_A.hex() not in repr(shim.keys) and "send_secret=<" in repr(key_block())


def test_seal_fills_a_send_slot_the_peer_can_open(env) -> None:  # noqa: ANN001
    shim, ring = env
    assert shim.quic_key_install(0, put(ring, bytes(key_block())), ctypes.sizeof(QoKeys)) == 0
    peer = KeyTable(1)
    peer.install(0, 0x1301, SECRET_B, SECRET_A)
    dcid = os.urandom(8)
    tx = QoTx(pn=100, largest_acked=99, n_ranges=2, ack_delay_exponent=3, ack_delay_us=800,
              dcid=QoCid.of(dcid), peer_addr_len=16)
    tx.ranges[0], tx.ranges[1] = QoRange(7, 9), QoRange(2, 4)
    ctypes.memmove(tx.peer_addr, b"\x02\x00\x11\x5c\x7f\x00\x00\x01", 8)
    slot_addr = put(ring, bytes(QoSendSlot()))
    length = shim.quic_seal(0, bytes(tx), slot_addr, SEAL_ACK)
    assert length > 0
    slot = QoSendSlot.from_bytes(ring.user.view[ring.user.offset(slot_addr, 232):][:232])
    assert slot.iov_len == length and slot.msg_namelen == 16
    assert bytes(slot.name)[:8] == b"\x02\x00\x11\x5c\x7f\x00\x00\x01"
    opened = peer.open_datagram(0, bytes(slot.packet)[:length], dcid_len=8, largest_pn=-1)
    assert opened.packet_number == 100 and not opened.ack_eliciting
    assert list(opened.ack.ranges) == [(7, 9), (2, 4)]

    tx.pn = 101
    assert shim.quic_seal(0, bytes(tx), slot_addr, SEAL_PING) > 0
    tx.pn = 100  # reuse: refused, the nonce guard
    assert shim.quic_seal(0, bytes(tx), slot_addr, SEAL_PING) == -errno.EEXIST
    assert shim.quic_seal(5, bytes(tx), slot_addr, SEAL_PING) == -errno.ENOENT
    assert shim.quic_seal(0, bytes(tx), 0, SEAL_PING) == -errno.EFAULT
    assert shim.quic_seal(0, bytes(tx), slot_addr, 99) == -errno.EINVAL


def test_open_reports_verdicts_and_resets(env) -> None:  # noqa: ANN001
    shim, ring = env
    token = os.urandom(16)
    assert shim.quic_key_install(0, put(ring, bytes(key_block(token=token))),
                                 ctypes.sizeof(QoKeys)) == 0
    peer = KeyTable(1)
    peer.install(0, 0x1301, SECRET_B, SECRET_A)
    our_cid = os.urandom(8)
    ping_ack = peer.seal_ack(0, our_cid, 5, None, [(100, 101)], 2000, ping=True)
    rx = QoRx(largest_received=4, dcid_len=8, peer_ack_delay_exponent=3)
    buf = (ctypes.c_char * ctypes.sizeof(QoRx)).from_buffer(rx)
    view = memoryview(buf).cast("B")
    addr = put(ring, ping_ack)
    assert shim.quic_open(0, addr, len(ping_ack), view) == 0
    assert rx.status == RxVerdict.CONTROL_ONLY and rx.pn == 5 and rx.ack_eliciting
    assert rx.has_ack and rx.ack_largest == 101 and rx.ack_delay_us == 2000
    assert (rx.ack_ranges[0].smallest, rx.ack_ranges[0].largest) == (100, 101)

    reset = bytes([0x45]) + os.urandom(20) + token
    addr = put(ring, reset)
    assert shim.quic_open(0, addr, len(reset), view) == 0
    assert rx.status == RxVerdict.UNDECRYPTABLE
    assert shim.quic_check_reset(0, addr, len(reset)) == 1
    assert shim.quic_match_reset(addr, len(reset)) == 1  # slot 0 + 1
    assert shim.quic_check_reset(0, put(ring, os.urandom(40)), 40) == 0
    assert shim.quic_open(0, 0, 10, view) == -errno.EFAULT


def test_export_returns_current_keys_and_wipe_forgets_them(env) -> None:  # noqa: ANN001
    shim, ring = env
    token = os.urandom(16)
    assert shim.quic_key_install(0, put(ring, bytes(key_block(token=token))),
                                 ctypes.sizeof(QoKeys)) == 0
    out = put(ring, bytes(ctypes.sizeof(QoKeys)))
    assert shim.quic_key_export(0, out, ctypes.sizeof(QoKeys)) == 0
    off = ring.user.offset(out, ctypes.sizeof(QoKeys))
    exported = QoKeys.from_bytes(ring.user.view[off:off + ctypes.sizeof(QoKeys)])
    assert bytes(exported.send_secret)[:32] == SECRET_A and exported.suite == 0x1301
    assert shim.quic_key_wipe(0) == 0
    assert shim.quic_key_wipe(0) == -errno.ENOENT
    assert shim.quic_key_export(0, out, ctypes.sizeof(QoKeys)) == -errno.ENOENT
    reset = bytes([0x45]) + os.urandom(20) + token
    assert shim.quic_match_reset(put(ring, reset), len(reset)) == 0


def test_registry_offers_ring_and_shim_helpers() -> None:
    registry = offload_helpers()
    assert registry.program_type == "quic_offload"
    for helper_id in (164, 165, 166, 167, 1, 2, 3, 5, 7, 148, 181, *range(1000, 1008)):
        assert helper_id in registry, helper_id
    assert offset_of(QoTx, "ranges") == 88
