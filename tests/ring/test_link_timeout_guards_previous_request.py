"""LINK_TIMEOUT guards the request linked before it: firing cancels it (-ECANCELED, the
timeout -ETIME, the rest of the chain -ECANCELED); a guarded request that finishes first
cancels the timeout (-ECANCELED, the chain goes on); a link timeout with nothing to guard is
-EINVAL."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from uring.abi import (
    ECANCELED,
    EINVAL,
    ETIME,
    IOSQE_IO_LINK,
    prep_bpf,
    prep_link_timeout,
    prep_nop,
    prep_recvmsg,
)
from uring.program import BpfProgram
from uring.ring import Ring
from uring.user_structs import UserMsg


def test_link_timeout_fires_and_cancels_the_guarded_recv(
    ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    rx, _ = udp_pair
    msg = UserMsg(ring.alloc, 64)
    ring.queue(prep_recvmsg(rx.fileno(), msg.msghdr, user_data=1, flags=IOSQE_IO_LINK))
    ring.queue(prep_link_timeout(ring.timespec(0.02), user_data=2, flags=IOSQE_IO_LINK))
    ring.queue(prep_nop(user_data=3))
    ring.submit(3, timeout=5)
    got = {c.user_data: c.res for c in ring.reap_cqes()}
    assert got == {1: -ECANCELED, 2: -ETIME, 3: -ECANCELED}


def test_guarded_request_finishing_first_cancels_the_link_timeout(
    ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    rx, tx = udp_pair
    msg = UserMsg(ring.alloc, 64)
    tx.sendto(b"in time", rx.getsockname())
    ring.queue(prep_recvmsg(rx.fileno(), msg.msghdr, user_data=1, flags=IOSQE_IO_LINK))
    ring.queue(prep_link_timeout(ring.timespec(5), user_data=2, flags=IOSQE_IO_LINK))
    ring.queue(prep_nop(user_data=3))
    ring.submit(3, timeout=5)
    got = [(c.user_data, c.res) for c in ring.reap_cqes()]
    assert sorted(got) == [(1, 7), (2, -ECANCELED), (3, 0)]
    assert got[-1] == (3, 0)  # the chain goes on only after both


def test_link_timeout_without_a_linked_request_is_einval(ring: Ring) -> None:
    ring.queue(prep_link_timeout(ring.timespec(1), user_data=5))
    ring.queue(prep_nop(user_data=6))  # not linked: the link timeout below has no target
    ring.queue(prep_link_timeout(ring.timespec(1), user_data=7))
    ring.submit(3, timeout=5)
    assert sorted((c.user_data, c.res) for c in ring.reap_cqes()) == [
        (5, -EINVAL), (6, 0), (7, -EINVAL)]


def test_link_timeout_cancels_a_waiting_bpf_request(
    ring: Ring, load_program: Callable[[str], BpfProgram]
) -> None:
    ring.register_bpf(0, load_program("waiter"))
    args = ring.alloc.alloc(16)
    ring.user.write(args, struct.pack("<IIII", 1, 2, 0, 0))  # waits for a CQE on CQ 2
    ring.queue(prep_bpf(0, user_data=args, flags=IOSQE_IO_LINK))
    ring.queue(prep_link_timeout(ring.timespec(0.02), user_data=2))
    ring.submit(2, timeout=5)
    assert sorted((c.user_data, c.res) for c in ring.reap_cqes()) == [(2, -ETIME),
                                                                      (args, -ECANCELED)]
    assert struct.unpack("<IIII", ring.user.read(args, 16))[2] == 1  # ran once, then waited
