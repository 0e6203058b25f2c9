"""A SENDMSG that completes inline reuses the engine's copy of the user's msghdr only while
that msghdr and its iovec are unchanged: a new length, a new destination or a broken pointer
between two sends of the same msghdr is honoured, a fault fails the send with -EFAULT on the
CQ it named (CQE_SKIP_SUCCESS or not), and msghdrs laid out another way work too."""

from __future__ import annotations

import socket
import struct

from uring.abi import EFAULT, IOSQE_CQE_SKIP_SUCCESS, prep_nop, prep_sendmsg
from uring.ring import Ring
from uring.user_structs import SOCKADDR_IN_SIZE, UserMsg, encode_sockaddr, write_msghdr


def _send(ring: Ring, fd: int, msghdr: int, user_data: int, *, skip: bool = True) -> list:
    """Submit one SENDMSG (failures on CQ 1) and a NOP behind it; the CQEs on CQ 1."""
    ring.queue(prep_sendmsg(fd, msghdr, user_data=user_data, cq_idx=1,
                            flags=IOSQE_CQE_SKIP_SUCCESS if skip else 0))
    ring.queue(prep_nop(user_data=99))
    ring.submit(1, timeout=5)  # the NOP's CQE on CQ 0; the send's, if any, is on CQ 1 by then
    assert [c.user_data for c in ring.reap_cqes()] == [99]
    return [(c.user_data, c.res) for c in ring.reap_cqes(1)]


def test_each_send_uses_the_msghdr_as_it_is_now(
        ring: Ring, udp_pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = udp_pair
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.settimeout(5)
    rx.settimeout(5)
    try:
        msg = UserMsg(ring.alloc, 64)
        msg.set_datagram(b"0123456789", rx.getsockname())
        assert _send(ring, tx.fileno(), msg.msghdr, 1) == []
        assert rx.recv(100) == b"0123456789"

        ring.user.write(msg.iov + 8, struct.pack("<Q", 4))  # shorter iov_len, same msghdr
        assert _send(ring, tx.fileno(), msg.msghdr, 2) == []
        assert rx.recv(100) == b"0123"

        ring.user.write(msg.name, encode_sockaddr(other.getsockname()))  # new destination
        assert _send(ring, tx.fileno(), msg.msghdr, 3, skip=False) == [(3, 4)]
        assert other.recv(100) == b"0123"

        good_base = ring.user.read(msg.iov, 8)
        ring.user.write(msg.iov, struct.pack("<Q", 8))  # iov_base outside user memory
        assert _send(ring, tx.fileno(), msg.msghdr, 4) == [(4, -EFAULT)]
        assert _send(ring, tx.fileno(), msg.msghdr, 5, skip=False) == [(5, -EFAULT)]

        ring.user.write(msg.iov, good_base)
        assert _send(ring, tx.fileno(), msg.msghdr, 6) == []
        assert other.recv(100) == b"0123"
    finally:
        other.close()


def test_a_msghdr_whose_iovec_lives_elsewhere(
        ring: Ring, udp_pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = udp_pair
    rx.settimeout(5)
    hdr = ring.alloc.alloc(56)
    name = ring.alloc.alloc(SOCKADDR_IN_SIZE)
    iovs = ring.alloc.alloc(32)
    bufs = ring.alloc.alloc(16)
    ring.user.write(name, encode_sockaddr(rx.getsockname()))
    ring.user.write(bufs, b"abcdefghijklmnop")
    ring.user.write(iovs, struct.pack("<QQQQ", bufs, 3, bufs + 8, 2))
    write_msghdr(ring.user, hdr, name=name, namelen=SOCKADDR_IN_SIZE, iov=iovs, iovlen=2)
    assert _send(ring, tx.fileno(), hdr, 1) == []
    assert rx.recv(100) == b"abcij"
    ring.user.write(iovs + 8, struct.pack("<Q", 1))  # the first iovec shrinks
    assert _send(ring, tx.fileno(), hdr, 2) == []
    assert rx.recv(100) == b"aij"
