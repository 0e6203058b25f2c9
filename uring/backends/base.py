"""What the engine asks of a backend: do I/O, wait, and report back.

The engine owns request semantics (links, CQ routing, skip-success, BPF requests) and its
timers (:mod:`uring.timer_heap`); a backend only performs single operations and tells the
engine how each ended, through two callbacks on the object given to :meth:`Backend.bind`:

* ``on_io_done(req, res, cqe_flags)`` -- an operation's final result;
* ``on_io_more(req, res, cqe_flags)`` -- one result of a multishot operation that goes on
  (the backend sets ``IORING_CQE_F_MORE`` in ``cqe_flags``).

Pointers handed to a backend are real addresses (see :mod:`uring.kernel_memory`).  Results are
what the kernel would post: a byte count, or a negative errno.
"""

from __future__ import annotations

import ctypes
import errno
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from uring import libc

if TYPE_CHECKING:
    from uring.buf_ring import BufRingConsumer
    from uring.kernel_memory import KernelArena, KernelMsg
    from uring.requests import Request
    from uring.user_memory import UserMemory


_MSG_DONTWAIT = int(socket.MSG_DONTWAIT)
_sendmsg = libc.raw_sendmsg
_get_errno = ctypes.get_errno
_NEG_EAGAIN = -errno.EAGAIN


class BackendUnavailable(OSError):
    """The backend cannot run here (e.g. ``io_uring_setup`` refused); the message says why."""


class Backend(ABC):
    """One way of performing I/O for an engine."""

    name: str = "?"
    #: whether :meth:`flush` has anything to do (a backend that starts every operation the
    #: moment it is issued and reports results from :meth:`wait` only says ``False``)
    defers_work: bool = True

    @abstractmethod
    def bind(self, engine: object, mem: UserMemory, arena: KernelArena) -> None:
        """Attach to the engine whose callbacks receive results."""

    # -- operations ---------------------------------------------------------------------------

    @abstractmethod
    def nop(self, req: Request) -> None: ...

    @abstractmethod
    def sendmsg(self, req: Request, kmsg: KernelMsg, msg_flags: int) -> None: ...

    @abstractmethod
    def recvmsg(self, req: Request, kmsg: KernelMsg, msg_flags: int) -> None: ...

    @abstractmethod
    def recvmsg_multishot(self, req: Request, kmsg: KernelMsg, msg_flags: int,
                          group: BufRingConsumer) -> None:
        """Receive datagrams into buffers taken from ``group`` until cancelled or dry."""

    @abstractmethod
    def read(self, req: Request, fd: int, buf: int, nbytes: int, offset: int) -> None: ...

    @abstractmethod
    def write(self, req: Request, fd: int, buf: int, nbytes: int, offset: int) -> None: ...

    @abstractmethod
    def cancel(self, req: Request, done: Callable[[int], None]) -> None:
        """Cancel an operation started here: it completes with ``-ECANCELED`` (through
        ``on_io_done``) and ``done`` receives 0, ``-ENOENT`` or ``-EALREADY``."""

    def try_sendmsg(self, fd: int, msghdr: int, msg_flags: int) -> int | None:
        """Send at once without blocking, as io_uring first tries every send inline: the
        result (bytes sent or ``-errno``), or ``None`` when the socket is not ready and the
        caller must issue the operation normally.  A caller that asked for ``MSG_DONTWAIT``
        gets ``-EAGAIN`` instead of ``None``.  ``msghdr`` is a real address."""
        res = _sendmsg(fd, msghdr, msg_flags | _MSG_DONTWAIT)
        if res >= 0:
            return res
        res = -_get_errno()
        if res == _NEG_EAGAIN and not msg_flags & _MSG_DONTWAIT:
            return None
        return res

    # -- provided-buffer rings ----------------------------------------------------------------

    @abstractmethod
    def buf_ring_register(self, group: BufRingConsumer) -> None: ...

    @abstractmethod
    def buf_ring_unregister(self, group: BufRingConsumer) -> None: ...

    # -- driving ------------------------------------------------------------------------------

    @abstractmethod
    def add_wakeup_fd(self, fd: int, callback: Callable[[], None]) -> None:
        """Make :meth:`wait` return (after calling ``callback``) when ``fd`` is readable."""

    def bind_to_thread(self, batch_us: int) -> bool:
        """Let only the calling thread drive this backend from now on, gathering completions
        for up to ``batch_us`` per wait instead of waking for each; ``True`` if it did.  The
        thread must then also :meth:`close` it.  Backends without such a mode say ``False``."""
        return False

    @abstractmethod
    def flush(self) -> None:
        """Start everything queued so far and deliver what already finished, without blocking."""

    @abstractmethod
    def wait(self, timeout_ns: int | None) -> None:
        """Block until at least one event was delivered or ``timeout_ns`` passed (``None``:
        no limit, 0: just poll).  The engine passes its earliest timer deadline here."""

    @abstractmethod
    def close(self) -> None: ...
