"""The engine's calls that cannot block (MSG_DONTWAIT sends and receives, an io_uring_enter
that does not wait, eventfd signals and drains) keep the interpreter lock; only waits give it
away.  A call that released it would wait, beside any busy Python thread of the process, for
that thread's whole switch interval before going on (``bench/bench_gil_handover.py``)."""

from __future__ import annotations

import ctypes
import errno
import os

from uring import libc
from uring.backends import base, kernel_ring

_KEEPS_LOCK = ctypes._FUNCFLAG_PYTHONAPI  # noqa: SLF001 - how ctypes marks PyDLL functions


def keeps_lock(fn: object) -> bool:
    return bool(fn._flags_ & _KEEPS_LOCK)  # type: ignore[attr-defined]


def test_calls_that_cannot_block_keep_the_lock() -> None:
    assert keeps_lock(base._sendmsg)  # the engine's inline sends
    assert keeps_lock(libc.raw_sendmsg)
    assert keeps_lock(libc._recvmsg)  # the portable backend's receives
    assert keeps_lock(kernel_ring._syscall_nowait)  # io_uring_enter without a wait
    assert keeps_lock(libc._write_held) and keeps_lock(libc._read_held)  # eventfds


def test_waits_give_the_lock_away() -> None:
    assert not keeps_lock(kernel_ring._syscall)  # io_uring_enter waiting for completions
    assert not keeps_lock(libc._read) and not keeps_lock(libc._write)  # file I/O may block


def test_eventfd_signal_and_drain() -> None:
    fd = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        assert libc.eventfd_drain(fd) == -errno.EAGAIN  # nothing signalled: EAGAIN
        assert libc.eventfd_signal(fd) == 0
        assert libc.eventfd_signal(fd) == 0
        assert libc.eventfd_drain(fd) == 2
        assert libc.eventfd_drain(fd) == -errno.EAGAIN
    finally:
        os.close(fd)
    assert libc.eventfd_signal(fd) == -errno.EBADF  # closed: EBADF, not an exception
