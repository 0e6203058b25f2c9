"""Portable backend: non-blocking syscalls, epoll readiness and a timer heap.

For kernels or containers where ``io_uring_setup`` is refused (Docker's default seccomp
profile blocks it).  It reproduces what the kernel ring does for each op:

* socket operations are tried at once with ``MSG_DONTWAIT``; on ``EAGAIN`` the request waits
  for readiness (epoll, level triggered) and is retried, as io_uring's internal poll does.
  A caller that itself passed ``MSG_DONTWAIT`` gets ``-EAGAIN`` back instead, as from the
  kernel;
* multishot RECVMSG takes a buffer from the provided-buffer ring per datagram and writes the
  kernel's ``io_uring_recvmsg_out`` layout into it; a dry ring ends the request with
  ``-ENOBUFS``;
* READ/WRITE on regular files run synchronously (they never block on readiness); on other
  files they wait for readiness first;
* timers are a heap of deadlines on the monotonic clock.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import heapq
import itertools
import os
import select
import socket
import stat
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from uring import libc
from uring.abi import (
    EAGAIN,
    EALREADY,
    ECANCELED,
    EFAULT,
    ENOBUFS,
    ENOENT,
    IORING_CQE_BUFFER_SHIFT,
    IORING_CQE_F_BUFFER,
    IORING_CQE_F_MORE,
    MSGHDR_SIZE,
    MSGHDR_STRUCT,
    RECVMSG_OUT_SIZE,
    RECVMSG_OUT_STRUCT,
)
from uring.backends.base import Backend

if TYPE_CHECKING:
    from uring.buf_ring import BufRingConsumer
    from uring.kernel_memory import KernelArena, KernelMsg
    from uring.requests import Request
    from uring.user_memory import UserMemory

# plain ints: IntFlag arithmetic costs a Python-level call per operation
_EPOLLIN = int(select.EPOLLIN)
_EPOLLOUT = int(select.EPOLLOUT)
_EPOLLERRS = int(select.EPOLLERR | select.EPOLLHUP)
_MSG_DONTWAIT = int(socket.MSG_DONTWAIT)
_RECVMSG_OUT_PACK = RECVMSG_OUT_STRUCT.pack_into
#: Datagrams a multishot receive takes per readiness event before yielding to other work.
_MULTISHOT_BATCH = 32
_MULTI_FLAGS = IORING_CQE_F_BUFFER | IORING_CQE_F_MORE

# kinds of parked operations
_K_SEND = 0
_K_RECV = 1
_K_RECV_MULTI = 2
_K_READ = 3
_K_WRITE = 4


class _Parked:
    """An operation waiting for its fd to become ready."""

    __slots__ = ("req", "kind", "fd", "arg", "flags", "events", "alive")

    def __init__(self, req: Request, kind: int, fd: int, arg: object, flags: int,
                 events: int) -> None:
        self.req = req
        self.kind = kind
        self.fd = fd
        self.arg = arg
        self.flags = flags
        self.events = events
        self.alive = True


class _MultishotState:
    __slots__ = ("kmsg", "group", "scratch", "scratch_addr", "scratch_view", "scratch_off")

    def __init__(self, kmsg: KernelMsg, group: BufRingConsumer, scratch: int, scratch_addr: int,
                 scratch_view: memoryview, scratch_off: int) -> None:
        self.kmsg = kmsg
        self.group = group
        self.scratch = scratch
        self.scratch_addr = scratch_addr
        self.scratch_view = scratch_view
        self.scratch_off = scratch_off


class PortableBackend(Backend):
    """epoll + timer heap implementation of :class:`~uring.backends.base.Backend`."""

    name = "portable"

    def __init__(self) -> None:
        self._epoll = select.epoll()
        # fd -> (readers, writers, registered event mask)
        self._readers: dict[int, deque[_Parked]] = {}
        self._writers: dict[int, deque[_Parked]] = {}
        self._registered: dict[int, int] = {}
        self._wakeups: dict[int, Callable[[], None]] = {}
        self._timers: list[list] = []
        self._seq = itertools.count()
        # parked operations by id(request), for cancel
        self._parked_index: dict[int, _Parked] = {}
        self._closed = False

    def bind(self, engine: object, mem: UserMemory, arena: KernelArena) -> None:
        self._on_done = engine.on_io_done  # type: ignore[attr-defined]
        self._on_more = engine.on_io_more  # type: ignore[attr-defined]
        self._on_timer = engine.on_timer  # type: ignore[attr-defined]
        self._mem = mem
        self._arena = arena

    # -- readiness bookkeeping ----------------------------------------------------------------

    def _park(self, parked: _Parked) -> None:
        fd = parked.fd
        table = self._readers if parked.events == _EPOLLIN else self._writers
        queue = table.get(fd)
        if queue is None:
            queue = table[fd] = deque()
        queue.append(parked)
        self._parked_index[id(parked.req)] = parked
        self._update_interest(fd)

    def _update_interest(self, fd: int) -> None:
        want = 0
        if self._readers.get(fd):
            want |= _EPOLLIN
        if self._writers.get(fd):
            want |= _EPOLLOUT
        have = self._registered.get(fd, 0)
        if want == have:
            return
        try:
            if not want:
                del self._registered[fd]
                self._epoll.unregister(fd)
            elif not have:
                self._epoll.register(fd, want)
                self._registered[fd] = want
            else:
                self._epoll.modify(fd, want)
                self._registered[fd] = want
        except OSError as exc:
            # the fd was closed or is not pollable: fail everything waiting on it
            self._registered.pop(fd, None)
            self._fail_fd(fd, -(exc.errno or errno.EBADF))

    def _fail_fd(self, fd: int, res: int) -> None:
        for table in (self._readers, self._writers):
            queue = table.pop(fd, None)
            while queue:
                parked = queue.popleft()
                if parked.alive:
                    parked.alive = False
                    self._parked_index.pop(id(parked.req), None)
                    self._finish(parked, res)

    def _finish(self, parked: _Parked, res: int, cflags: int = 0) -> None:
        if parked.kind == _K_RECV_MULTI:
            state: _MultishotState = parked.arg  # type: ignore[assignment]
            self._arena.free(state.scratch)
        self._on_done(parked.req, res, cflags)

    # -- operations ---------------------------------------------------------------------------

    def nop(self, req: Request) -> None:
        self._on_done(req, 0, 0)

    def sendmsg(self, req: Request, kmsg: KernelMsg, msg_flags: int) -> None:
        res = libc.sendmsg(req.fd, kmsg.addr, msg_flags | _MSG_DONTWAIT)
        if res == -EAGAIN and not msg_flags & _MSG_DONTWAIT:
            self._park(_Parked(req, _K_SEND, req.fd, kmsg, msg_flags, _EPOLLOUT))
            return
        self._on_done(req, res, 0)

    def recvmsg(self, req: Request, kmsg: KernelMsg, msg_flags: int) -> None:
        res = libc.recvmsg(req.fd, kmsg.addr, msg_flags | _MSG_DONTWAIT)
        if res == -EAGAIN and not msg_flags & _MSG_DONTWAIT:
            self._park(_Parked(req, _K_RECV, req.fd, kmsg, msg_flags, _EPOLLIN))
            return
        self._on_done(req, res, 0)

    def recvmsg_multishot(self, req: Request, kmsg: KernelMsg, msg_flags: int,
                          group: BufRingConsumer) -> None:
        scratch = self._arena.alloc()
        view, off = self._arena.chunk_view(scratch)
        state = _MultishotState(kmsg, group, scratch, self._arena.address(scratch), view, off)
        parked = _Parked(req, _K_RECV_MULTI, req.fd, state, msg_flags, _EPOLLIN)
        if self._multishot_round(parked):
            self._park(parked)

    def _multishot_round(self, parked: _Parked) -> bool:
        """Receive what is queued; ``True`` if the request goes on waiting for more."""
        state: _MultishotState = parked.arg  # type: ignore[assignment]
        group = state.group
        kmsg = state.kmsg
        mem = self._mem
        fd = parked.fd
        flags = parked.flags | _MSG_DONTWAIT
        namelen = kmsg.namelen
        controllen = kmsg.controllen
        header = RECVMSG_OUT_SIZE + namelen + controllen
        for _ in range(_MULTISHOT_BATCH):
            entry = group.peek()
            if entry is None:
                self._finish(parked, -ENOBUFS)
                return False
            addr, blen, bid = entry
            if blen < header or not mem.contains(addr, blen):
                group.consume()
                self._finish(parked, -EFAULT)
                return False
            real = mem.real_address(addr, blen)
            payload_cap = blen - header
            MSGHDR_STRUCT.pack_into(
                state.scratch_view, state.scratch_off,
                real + RECVMSG_OUT_SIZE if namelen else 0, namelen,
                state.scratch_addr + MSGHDR_SIZE, 1,
                real + RECVMSG_OUT_SIZE + namelen if controllen else 0, controllen, 0)
            ctypes.c_uint64.from_address(state.scratch_addr + MSGHDR_SIZE).value = real + header
            ctypes.c_uint64.from_address(state.scratch_addr + MSGHDR_SIZE + 8).value = payload_cap
            res = libc.recvmsg(fd, state.scratch_addr, flags)
            if res == -EAGAIN:
                if parked.flags & _MSG_DONTWAIT:
                    self._finish(parked, res)
                    return False
                return True
            if res < 0:
                self._finish(parked, res)
                return False
            group.consume()
            out_namelen, out_controllen, out_flags = _scratch_results(state.scratch_addr)
            off = addr - mem.base
            _RECVMSG_OUT_PACK(mem.view, off, out_namelen, out_controllen, res, out_flags)
            used = header + min(res, payload_cap)
            self._on_more(parked.req, used, _MULTI_FLAGS | (bid << IORING_CQE_BUFFER_SHIFT))
            if not parked.alive:  # cancelled from inside the completion
                return False
        return True

    def _is_regular(self, fd: int) -> bool:
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return True  # let the syscall report EBADF
        return stat.S_ISREG(mode) or stat.S_ISBLK(mode)

    def read(self, req: Request, fd: int, buf: int, nbytes: int, offset: int) -> None:
        if self._is_regular(fd):
            self._on_done(req, libc.read(fd, buf, nbytes, offset), 0)
            return
        self._park(_Parked(req, _K_READ, fd, (buf, nbytes, offset), 0, _EPOLLIN))

    def write(self, req: Request, fd: int, buf: int, nbytes: int, offset: int) -> None:
        if self._is_regular(fd):
            self._on_done(req, libc.write(fd, buf, nbytes, offset), 0)
            return
        self._park(_Parked(req, _K_WRITE, fd, (buf, nbytes, offset), 0, _EPOLLOUT))

    def cancel(self, req: Request, done: Callable[[int], None]) -> None:
        parked = self._parked_index.pop(id(req), None)
        if parked is None or not parked.alive:
            done(-ENOENT if parked is None else -EALREADY)
            return
        parked.alive = False
        table = self._readers if parked.events == _EPOLLIN else self._writers
        queue = table.get(parked.fd)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(parked)
            if not queue:
                del table[parked.fd]
            self._update_interest(parked.fd)
        self._finish(parked, -ECANCELED)
        done(0)

    # -- readiness dispatch -------------------------------------------------------------------

    def _ready(self, fd: int, events: int) -> None:
        callback = self._wakeups.get(fd)
        if callback is not None:
            callback()
            return
        if events & (_EPOLLIN | _EPOLLERRS):
            self._serve(fd, self._readers)
        if events & (_EPOLLOUT | _EPOLLERRS):
            self._serve(fd, self._writers)
        self._update_interest(fd)

    def _serve(self, fd: int, table: dict[int, deque[_Parked]]) -> None:
        queue = table.get(fd)
        while queue:
            parked = queue[0]
            if parked.alive:
                if parked.kind == _K_RECV_MULTI:
                    if self._multishot_round(parked):
                        return  # still waiting: socket drained or batch used up
                else:
                    res = self._retry(parked)
                    if res == -EAGAIN:
                        return
                    parked.alive = False
                    self._parked_index.pop(id(parked.req), None)
                    self._on_done(parked.req, res, 0)
                parked.alive = False
                self._parked_index.pop(id(parked.req), None)
            # a completion callback may already have removed it (cancel)
            if queue and queue[0] is parked:
                queue.popleft()
        if queue is not None and not queue and table.get(fd) is queue:
            del table[fd]

    def _retry(self, parked: _Parked) -> int:
        kind = parked.kind
        if kind == _K_SEND:
            return libc.sendmsg(parked.fd, parked.arg.addr, parked.flags | _MSG_DONTWAIT)
        if kind == _K_RECV:
            return libc.recvmsg(parked.fd, parked.arg.addr, parked.flags | _MSG_DONTWAIT)
        buf, nbytes, offset = parked.arg  # type: ignore[misc]
        if kind == _K_READ:
            return _nonblocking(libc.read, parked.fd, buf, nbytes, offset)
        return _nonblocking(libc.write, parked.fd, buf, nbytes, offset)

    # -- timers -------------------------------------------------------------------------------

    def timer_arm(self, req: Request, deadline_ns: int) -> None:
        entry = [deadline_ns, next(self._seq), req, True]
        req.timer = entry
        heapq.heappush(self._timers, entry)

    def timer_cancel(self, req: Request) -> bool:
        entry = req.timer
        req.timer = None
        if entry is None or not entry[3]:
            return False
        entry[3] = False
        return True

    def _fire_timers(self) -> None:
        timers = self._timers
        now = time.monotonic_ns()
        while timers and timers[0][0] <= now:
            entry = heapq.heappop(timers)
            if entry[3]:
                entry[3] = False
                req = entry[2]
                if req.timer is entry:
                    req.timer = None
                self._on_timer(req)

    def _next_timeout(self, timeout_ns: int | None) -> float:
        timers = self._timers
        while timers and not timers[0][3]:
            heapq.heappop(timers)
        if timers:
            until = max(0, timers[0][0] - time.monotonic_ns())
            timeout_ns = until if timeout_ns is None else min(timeout_ns, until)
        if timeout_ns is None:
            return -1
        # epoll has millisecond resolution: round up so a timer never fires early
        return (timeout_ns + 999_999) // 1_000_000 / 1000

    # -- buffer rings: the engine's consumer reads user memory directly ------------------------

    def buf_ring_register(self, group: BufRingConsumer) -> None:
        pass

    def buf_ring_unregister(self, group: BufRingConsumer) -> None:
        pass

    # -- driving ------------------------------------------------------------------------------

    def add_wakeup_fd(self, fd: int, callback: Callable[[], None]) -> None:
        self._wakeups[fd] = callback
        self._epoll.register(fd, _EPOLLIN)

    def flush(self) -> None:
        if self._timers:
            self._fire_timers()

    def wait(self, timeout_ns: int | None) -> None:
        timeout = self._next_timeout(timeout_ns)
        try:
            events = self._epoll.poll(timeout)
        except InterruptedError:
            events = []
        for fd, ev in events:
            self._ready(fd, ev)
        if self._timers:
            self._fire_timers()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._epoll.close()


def _scratch_results(addr: int) -> tuple[int, int, int]:
    namelen = ctypes.c_uint32.from_address(addr + 8).value
    controllen = ctypes.c_uint64.from_address(addr + 40).value
    flags = ctypes.c_int32.from_address(addr + 48).value
    return namelen, controllen, flags


def _nonblocking(call: Callable[[int, int, int, int], int], fd: int, buf: int, nbytes: int,
                 offset: int) -> int:
    """Run ``call`` with the fd switched to non-blocking (pipes, ttys: after readiness)."""
    try:
        was_blocking = os.get_blocking(fd)
    except OSError as exc:
        return -(exc.errno or errno.EBADF)
    if was_blocking:
        os.set_blocking(fd, False)
    try:
        return call(fd, buf, nbytes, offset)
    finally:
        if was_blocking:
            os.set_blocking(fd, True)
