"""MSG_RING posts (off -> user_data, len -> res) on the target ring's CQ 0, also when the
target runs its engine on another thread; CQE_SKIP and FLAGS_PASS work; an fd that is not a
live ring of this process is -EBADFD."""

from __future__ import annotations

from collections.abc import Callable

from uring.abi import (
    EBADFD,
    EOPNOTSUPP,
    IORING_MSG_RING_CQE_SKIP,
    IORING_MSG_RING_FLAGS_PASS,
    IORING_MSG_SEND_FD,
    prep_msg_ring,
)
from uring.ring import Ring


def test_message_lands_on_target_cq0(make_ring: Callable[..., Ring]) -> None:
    a, b = make_ring(), make_ring()
    a.queue(prep_msg_ring(b.engine.ring_fd, -5, 0xABCDEF, user_data=1))
    a.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in a.reap_cqes()] == [(1, 0)]
    b.submit(0)
    assert [(c.user_data, c.res, c.flags) for c in b.reap_cqes()] == [(0xABCDEF, -5, 0)]


def test_message_to_a_threaded_target(make_ring: Callable[..., Ring]) -> None:
    a, b = make_ring(), make_ring(threaded=True)
    for i in range(20):
        a.queue(prep_msg_ring(b.engine.ring_fd, i, 1000 + i, user_data=i))
    a.submit(20, timeout=5)
    assert all(c.res == 0 for c in a.reap_cqes())
    got = b.wait_cqes(20, timeout=5)
    assert [(c.user_data, c.res) for c in got] == [(1000 + i, i) for i in range(20)]


def test_cqe_skip_and_flags_pass(make_ring: Callable[..., Ring]) -> None:
    a, b = make_ring(), make_ring()
    a.queue(prep_msg_ring(b.engine.ring_fd, 1, 10, IORING_MSG_RING_CQE_SKIP, user_data=1))
    passing = prep_msg_ring(b.engine.ring_fd, 2, 20, IORING_MSG_RING_FLAGS_PASS, user_data=2)
    passing.file_index = 0x0700
    a.queue(passing)
    a.submit(2, timeout=5)
    assert [c.res for c in a.reap_cqes()] == [0, 0]
    b.submit(0)
    assert [(c.user_data, c.res, c.flags) for c in b.reap_cqes()] == [(20, 2, 0x0700)]


def test_message_to_itself(make_ring: Callable[..., Ring]) -> None:
    a = make_ring()
    a.queue(prep_msg_ring(a.engine.ring_fd, 3, 33, user_data=1))
    a.submit(2, timeout=5)
    assert sorted((c.user_data, c.res) for c in a.reap_cqes()) == [(1, 0), (33, 3)]


def test_not_a_ring_is_ebadfd_and_send_fd_unsupported(make_ring: Callable[..., Ring]) -> None:
    a = make_ring()
    a.queue(prep_msg_ring(0, 1, 1, user_data=1))
    closed = make_ring()
    closed_fd = closed.engine.ring_fd
    closed.close()
    a.queue(prep_msg_ring(closed_fd, 1, 1, user_data=2))
    send_fd = prep_msg_ring(a.engine.ring_fd, 1, 1, user_data=3)
    send_fd.addr = IORING_MSG_SEND_FD
    a.queue(send_fd)
    a.submit(3, timeout=5)
    assert [(c.user_data, c.res) for c in a.reap_cqes()] == [(1, -EBADFD), (2, -EBADFD),
                                                             (3, -EOPNOTSUPP)]
