"""What the engine asks of a backend: do I/O, keep timers, wait, and report back.

The engine owns request semantics (links, CQ routing, skip-success, BPF requests); a backend
only performs single operations and tells the engine how each ended, through three callbacks
on the object given to :meth:`Backend.bind`:

* ``on_io_done(req, res, cqe_flags)`` -- an operation's final result;
* ``on_io_more(req, res, cqe_flags)`` -- one result of a multishot operation that goes on
  (the backend sets ``IORING_CQE_F_MORE`` in ``cqe_flags``);
* ``on_timer(req)`` -- a timer armed with :meth:`Backend.timer_arm` expired.

Pointers handed to a backend are real addresses (see :mod:`uring.kernel_memory`).  Results are
what the kernel would post: a byte count, or a negative errno.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uring.buf_ring import BufRingConsumer
    from uring.kernel_memory import KernelArena, KernelMsg
    from uring.requests import Request
    from uring.user_memory import UserMemory


class BackendUnavailable(OSError):
    """The backend cannot run here (e.g. ``io_uring_setup`` refused); the message says why."""


class Backend(ABC):
    """One way of performing I/O for an engine."""

    name: str = "?"

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

    # -- timers -------------------------------------------------------------------------------

    @abstractmethod
    def timer_arm(self, req: Request, deadline_ns: int) -> None:
        """Call ``on_timer(req)`` once the monotonic clock reaches ``deadline_ns``."""

    @abstractmethod
    def timer_cancel(self, req: Request) -> bool:
        """Disarm ``req``'s timer; ``False`` if it already fired (or was never armed)."""

    # -- provided-buffer rings ----------------------------------------------------------------

    @abstractmethod
    def buf_ring_register(self, group: BufRingConsumer) -> None: ...

    @abstractmethod
    def buf_ring_unregister(self, group: BufRingConsumer) -> None: ...

    # -- driving ------------------------------------------------------------------------------

    @abstractmethod
    def add_wakeup_fd(self, fd: int, callback: Callable[[], None]) -> None:
        """Make :meth:`wait` return (after calling ``callback``) when ``fd`` is readable."""

    @abstractmethod
    def flush(self) -> None:
        """Start everything queued so far and deliver what already finished, without blocking."""

    @abstractmethod
    def wait(self, timeout_ns: int | None) -> None:
        """Block until at least one event was delivered or ``timeout_ns`` passed (``None``:
        no limit, 0: just poll)."""

    @abstractmethod
    def close(self) -> None: ...
