"""Multishot RECVMSG with a provided-buffer ring: one CQE per datagram with F_MORE and the
buffer ID, the kernel's io_uring_recvmsg_out layout in each buffer, a final -ENOBUFS (no
F_MORE) when the ring runs dry, and a re-armed request picks up after the application
re-adds buffers."""

from __future__ import annotations

import socket
import time

from uring.abi import (
    ECANCELED,
    EINVAL,
    ENOBUFS,
    IORING_CQE_F_BUFFER,
    IORING_CQE_F_MORE,
    IORING_RECV_MULTISHOT,
    RECVMSG_OUT_SIZE,
    prep_cancel,
    prep_recvmsg,
    prep_recvmsg_multishot,
)
from uring.ring import Ring
from uring.user_structs import SOCKADDR_IN_SIZE, UserMsg, parse_recvmsg_out


def _send_all(tx: socket.socket, dest: tuple, payloads: list[bytes]) -> None:
    for p in payloads:
        tx.sendto(p, dest)


def _collect(ring: Ring, n: int, timeout: float = 5) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        ring.submit(1, timeout=0.1)
        got.extend(ring.reap_cqes())
    return got


def test_buffers_run_dry_then_rearm_after_readding(
    ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    rx, tx = udp_pair
    bufs = ring.setup_buf_ring(bgid=3, entries=4, buf_size=128)
    msg = UserMsg(ring.alloc, capacity=0)
    msg.reset(namelen=SOCKADDR_IN_SIZE)
    ring.queue(prep_recvmsg_multishot(rx.fileno(), msg.msghdr, 3, user_data=11))
    ring.submit()
    payloads = [f"datagram-{i}".encode() for i in range(6)]
    _send_all(tx, rx.getsockname(), payloads)
    cqes = _collect(ring, 5)
    assert len(cqes) == 5
    for i, cqe in enumerate(cqes[:4]):
        assert cqe.user_data == 11
        assert cqe.flags & IORING_CQE_F_BUFFER and cqe.flags & IORING_CQE_F_MORE
        assert cqe.buffer_id == i
        data = bufs.read(cqe.buffer_id, cqe.res)
        peer, _control, payload, payloadlen, flags = parse_recvmsg_out(data,
                                                                       SOCKADDR_IN_SIZE, 0)
        assert payload == payloads[i] and payloadlen == len(payloads[i]) and flags == 0
        assert peer == tx.getsockname()
        assert cqe.res == RECVMSG_OUT_SIZE + SOCKADDR_IN_SIZE + len(payloads[i])
    last = cqes[4]
    assert (last.user_data, last.res, last.flags & IORING_CQE_F_MORE) == (11, -ENOBUFS, 0)

    # hand two buffers back and re-arm: the datagrams still queued arrive, in order, and
    # taking the last buffer ends the request again at once
    bufs.recycle(1)
    bufs.recycle(0)
    ring.queue(prep_recvmsg_multishot(rx.fileno(), msg.msghdr, 3, user_data=12))
    ring.submit()
    cqes = _collect(ring, 3)
    assert [c.buffer_id for c in cqes[:2]] == [1, 0]
    assert [parse_recvmsg_out(bufs.read(c.buffer_id, c.res), SOCKADDR_IN_SIZE, 0)[2]
            for c in cqes[:2]] == payloads[4:6]
    assert (cqes[2].user_data, cqes[2].res, cqes[2].flags) == (12, -ENOBUFS, 0)


def test_multishot_waits_for_data_and_is_cancelled_with_a_final_cqe(
    ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    rx, tx = udp_pair
    ring.setup_buf_ring(bgid=2, entries=8, buf_size=128)
    msg = UserMsg(ring.alloc, capacity=0)
    msg.reset(namelen=SOCKADDR_IN_SIZE)
    ring.queue(prep_recvmsg_multishot(rx.fileno(), msg.msghdr, 2, user_data=21))
    ring.submit()
    ring.submit(1, timeout=0.05)
    assert ring.cq_ready() == 0
    tx.sendto(b"one", rx.getsockname())
    first = _collect(ring, 1)
    assert [(c.user_data, c.flags & IORING_CQE_F_MORE) for c in first] == [
        (21, IORING_CQE_F_MORE)]
    ring.queue(prep_cancel(21, user_data=22))
    ring.submit()
    rest = _collect(ring, 2)
    assert sorted((c.user_data, c.res, c.flags & IORING_CQE_F_MORE) for c in rest) == [
        (21, -ECANCELED, 0), (22, 0, 0)]


def test_truncated_datagram_sets_msg_trunc_in_the_header(
    ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    rx, tx = udp_pair
    bufs = ring.setup_buf_ring(bgid=1, entries=2, buf_size=64)
    msg = UserMsg(ring.alloc, capacity=0)
    msg.reset(namelen=SOCKADDR_IN_SIZE)
    tx.sendto(b"A" * 100, rx.getsockname())
    ring.queue(prep_recvmsg_multishot(rx.fileno(), msg.msghdr, 1, user_data=1))
    ring.submit()
    cqe = _collect(ring, 1)[0]
    assert cqe.res == 64
    _peer, _c, payload, payloadlen, flags = parse_recvmsg_out(bufs.read(cqe.buffer_id, 64),
                                                              SOCKADDR_IN_SIZE, 0)
    assert payloadlen == 64 - RECVMSG_OUT_SIZE - SOCKADDR_IN_SIZE
    assert payload == b"A" * payloadlen
    assert flags & socket.MSG_TRUNC
    ring.queue(prep_cancel(1, user_data=2))
    ring.submit()
    _collect(ring, 2)


def test_unknown_buffer_group_is_enobufs_and_missing_buffer_select_is_einval(
    ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    rx, _ = udp_pair
    msg = UserMsg(ring.alloc, capacity=0)
    ring.queue(prep_recvmsg_multishot(rx.fileno(), msg.msghdr, 42, user_data=1))
    plain = prep_recvmsg(rx.fileno(), msg.msghdr, user_data=2)
    plain.ioprio = IORING_RECV_MULTISHOT  # multishot without IOSQE_BUFFER_SELECT
    ring.queue(plain)
    ring.submit(2, timeout=5)
    assert sorted((c.user_data, c.res) for c in ring.reap_cqes()) == [(1, -ENOBUFS),
                                                                      (2, -EINVAL)]
