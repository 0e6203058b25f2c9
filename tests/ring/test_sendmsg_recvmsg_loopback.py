"""SENDMSG and RECVMSG over loopback UDP: data moves between the socket and user memory,
RECVMSG waits for a datagram, writes msg_namelen/msg_flags back into the user's msghdr (as
recvmsg(2) does) and reports truncation; scatter/gather iovecs work."""

from __future__ import annotations

import socket
import time

from uring.abi import IOVEC_SIZE, prep_recvmsg, prep_sendmsg
from uring.ring import Ring
from uring.user_structs import (
    SOCKADDR_IN_SIZE,
    UserMsg,
    encode_sockaddr,
    write_iovecs,
    write_msghdr,
)


def test_sendmsg_reaches_the_peer(ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
                                  ) -> None:
    rx, tx = udp_pair
    msg = UserMsg(ring.alloc, 64)
    msg.set_datagram(b"ping from the ring", rx.getsockname())
    ring.queue(prep_sendmsg(tx.fileno(), msg.msghdr, user_data=1))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, 18)]
    data, peer = rx.recvfrom(100)
    assert data == b"ping from the ring"
    assert peer == tx.getsockname()


def test_recvmsg_waits_then_fills_user_memory_and_msghdr(
    ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    rx, tx = udp_pair
    msg = UserMsg(ring.alloc, 64)
    ring.queue(prep_recvmsg(rx.fileno(), msg.msghdr, user_data=2))
    ring.submit()
    ring.submit(1, timeout=0.05)
    assert ring.cq_ready() == 0  # nothing sent yet: still waiting
    tx.sendto(b"hello ring", rx.getsockname())
    cqe = ring.wait_cqe(timeout=5)
    assert cqe is not None and (cqe.user_data, cqe.res) == (2, 10)
    payload, peer, flags = msg.received(cqe.res)
    assert payload == b"hello ring"
    assert peer == tx.getsockname()
    assert flags == 0
    assert msg.msg_field("namelen") == SOCKADDR_IN_SIZE


def test_recvmsg_reports_truncation(ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
                                    ) -> None:
    rx, tx = udp_pair
    msg = UserMsg(ring.alloc, 8)
    tx.sendto(b"0123456789abcdef", rx.getsockname())
    ring.queue(prep_recvmsg(rx.fileno(), msg.msghdr, user_data=3))
    ring.submit(1, timeout=5)
    cqe = ring.reap_cqe()
    assert cqe is not None and cqe.res == 8
    assert msg.received(8)[0] == b"01234567"
    assert msg.msg_field("flags") & socket.MSG_TRUNC


def test_sendmsg_gathers_several_iovecs(ring: Ring,
                                        udp_pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = udp_pair
    parts = [b"first-", b"second-", b"third"]
    bufs = []
    for part in parts:
        addr = ring.alloc.alloc(len(part))
        ring.user.write(addr, part)
        bufs.append((addr, len(part)))
    iov = ring.alloc.alloc(IOVEC_SIZE * 3)
    write_iovecs(ring.user, iov, bufs)
    name = ring.alloc.alloc(16)
    ring.user.write(name, encode_sockaddr(rx.getsockname()))
    hdr = ring.alloc.alloc(56)
    write_msghdr(ring.user, hdr, name=name, namelen=16, iov=iov, iovlen=3)
    ring.queue(prep_sendmsg(tx.fileno(), hdr, user_data=4))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().res == 18
    assert rx.recv(100) == b"first-second-third"


def test_many_sends_each_complete(ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
                                  ) -> None:
    rx, tx = udp_pair
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    msg = UserMsg(ring.alloc, 64)
    msg.set_datagram(b"x" * 40, rx.getsockname())
    for i in range(40):
        ring.queue(prep_sendmsg(tx.fileno(), msg.msghdr, user_data=i))
    ring.submit(40, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(i, 40) for i in range(40)]
    rx.settimeout(2)
    deadline = time.monotonic() + 5
    got = 0
    while got < 40 and time.monotonic() < deadline:
        rx.recv(100)
        got += 1
    assert got == 40


def test_send_to_a_closed_fd_fails_ebadf(ring: Ring) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = sock.fileno()
    sock.close()
    msg = UserMsg(ring.alloc, 8)
    msg.set_datagram(b"x", ("127.0.0.1", 9))
    ring.queue(prep_sendmsg(fd, msg.msghdr, user_data=5))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().res == -9
