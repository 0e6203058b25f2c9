"""ASYNC_CANCEL finds in-flight requests by user_data (or fd, or any): the target completes
-ECANCELED and the cancel 0; nothing in flight is -ENOENT; a BPF request whose program is
running is -EALREADY; CANCEL_ALL reports how many it found."""

from __future__ import annotations

import socket
from collections.abc import Callable

from uring.abi import (
    EALREADY,
    ECANCELED,
    EINVAL,
    ENOENT,
    IORING_ASYNC_CANCEL_ALL,
    IORING_ASYNC_CANCEL_ANY,
    IORING_ASYNC_CANCEL_FD,
    Sqe,
    prep_bpf,
    prep_cancel,
    prep_recvmsg,
    prep_timeout,
)
from uring.program import BpfProgram
from uring.ring import Ring
from uring.user_structs import UserMsg

LoadProgram = Callable[[str], BpfProgram]


def _results(ring: Ring, n: int) -> dict[int, int]:
    ring.submit(n, timeout=5)
    return {c.user_data: c.res for c in ring.reap_cqes()}


def test_cancel_a_pending_recv(ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
                               ) -> None:
    rx, _ = udp_pair
    msg = UserMsg(ring.alloc, 64)
    ring.queue(prep_recvmsg(rx.fileno(), msg.msghdr, user_data=7))
    ring.submit()
    ring.queue(prep_cancel(7, user_data=8))
    assert _results(ring, 2) == {7: -ECANCELED, 8: 0}


def test_cancel_a_timeout_and_a_waiting_bpf_request(load_program: LoadProgram, ring: Ring) -> None:
    ring.register_bpf(0, load_program("waiter"))
    args = ring.alloc.alloc(16)
    ring.user.write(args, (1).to_bytes(4, "little") + (1).to_bytes(4, "little"))  # wait CQ 1
    ring.queue(prep_timeout(ring.timespec(30), user_data=1))
    ring.queue(prep_bpf(0, user_data=args))
    ring.submit()
    ring.queue(prep_cancel(1, user_data=2))
    ring.queue(prep_cancel(args, user_data=3))
    assert _results(ring, 4) == {1: -ECANCELED, 2: 0, args: -ECANCELED, 3: 0}


def test_nothing_in_flight_is_enoent(ring: Ring) -> None:
    ring.queue(prep_cancel(12345, user_data=1))
    assert _results(ring, 1) == {1: -ENOENT}


def test_bpf_request_cancelling_itself_while_running_is_ealready(
    load_program: LoadProgram, ring: Ring,
) -> None:
    ring.register_bpf(4, load_program("cancel_self"))
    args = ring.alloc.alloc(8)
    ring.user.write(args, (99).to_bytes(8, "little"))
    ring.queue(prep_bpf(4, user_data=args))
    assert _results(ring, 2) == {99: -EALREADY, args: 0}


def test_cancel_all_fd_and_any(ring: Ring, udp_pair: tuple[socket.socket, socket.socket]
                               ) -> None:
    rx, tx = udp_pair
    msgs = [UserMsg(ring.alloc, 16) for _ in range(5)]
    for i in range(3):
        ring.queue(prep_recvmsg(rx.fileno(), msgs[i].msghdr, user_data=50))
    ring.queue(prep_recvmsg(tx.fileno(), msgs[3].msghdr, user_data=60))
    ring.queue(prep_recvmsg(tx.fileno(), msgs[4].msghdr, user_data=61))
    ring.queue(prep_timeout(ring.timespec(30), user_data=70))
    ring.submit()
    ring.queue(prep_cancel(50, IORING_ASYNC_CANCEL_ALL, user_data=1))
    got = _results(ring, 4)
    assert got == {50: -ECANCELED, 1: 3}
    by_fd = Sqe(14, fd=tx.fileno(), op_flags=IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL,
                user_data=2)
    ring.queue(by_fd)
    assert _results(ring, 3) == {60: -ECANCELED, 61: -ECANCELED, 2: 2}
    ring.queue(prep_cancel(0, IORING_ASYNC_CANCEL_ANY, user_data=3))
    assert _results(ring, 2) == {70: -ECANCELED, 3: 1}


def test_any_combined_with_fd_is_einval(ring: Ring) -> None:
    ring.queue(prep_cancel(0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_FD, user_data=1))
    assert _results(ring, 1) == {1: -EINVAL}
