"""A SENDMSG to a socket that cannot take a datagram now does not fail: it waits and goes out
once there is room (with or without CQE_SKIP_SUCCESS), while a caller that passed
MSG_DONTWAIT gets -EAGAIN at once, as from the kernel.  The socket is one end of a Unix
datagram pair whose other end's queue is full."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from uring.abi import EAGAIN, ETIME, IOSQE_CQE_SKIP_SUCCESS, prep_sendmsg
from uring.ring import Ring
from uring.user_structs import UserMsg


@pytest.fixture
def full_pair() -> Iterator[tuple[socket.socket, socket.socket, int]]:
    """``(sender, receiver, datagrams queued)`` with the receiver's queue full."""
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    queued = 0
    while queued < 100_000:
        try:
            sender.send(b"filler")
        except BlockingIOError:
            break
        queued += 1
    assert queued < 100_000, "the receiver's queue never filled"
    receiver.settimeout(5)
    yield sender, receiver, queued
    sender.close()
    receiver.close()


def _drain(receiver: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` datagrams (a Unix datagram sender counts as writable again only once
    most of what it queued was read)."""
    return [receiver.recv(100) for _ in range(count)]


@pytest.mark.parametrize("skip", [False, True])
def test_send_waits_for_room_then_goes_out(
        ring: Ring, full_pair: tuple[socket.socket, socket.socket, int], skip: bool) -> None:
    sender, receiver, queued = full_pair
    msg = UserMsg(ring.alloc, 64)
    msg.set_datagram(b"after the wait", None)
    ring.queue(prep_sendmsg(sender.fileno(), msg.msghdr, user_data=1,
                            flags=IOSQE_CQE_SKIP_SUCCESS if skip else 0))
    assert ring.submit(1, timeout=0.1) == 1
    assert ring.reap_cqes() == []          # still waiting for room: no failure posted
    assert ring.submit(1, timeout=0.05) == -ETIME
    assert _drain(receiver, queued) == [b"filler"] * queued
    if skip:
        assert ring.submit(1, timeout=0.3) == -ETIME  # the engine sends; no CQE to wait for
        assert ring.reap_cqes() == []
    else:
        ring.submit(1, timeout=5)
        assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, 14)]
    assert receiver.recv(100) == b"after the wait"


def test_msg_dontwait_fails_with_eagain_at_once(
        ring: Ring, full_pair: tuple[socket.socket, socket.socket, int]) -> None:
    sender, _receiver, _queued = full_pair
    msg = UserMsg(ring.alloc, 64)
    msg.set_datagram(b"no room", None)
    ring.queue(prep_sendmsg(sender.fileno(), msg.msghdr, socket.MSG_DONTWAIT, user_data=2,
                            flags=IOSQE_CQE_SKIP_SUCCESS))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(2, -EAGAIN)]
