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
  files they wait for readiness first.

Timers belong to the engine (:mod:`uring.timer_heap`): it hands its earliest deadline to
:meth:`PortableBackend.wait` as the epoll timeout.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import stat
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from uring import libc
from uring.abi import (
    BUF_RING_TAIL_OFFSET,
    BUF_SIZE,
    BUF_STRUCT,
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
    RECVMSG_OUT_SIZE,
    RECVMSG_OUT_STRUCT,
)
from uring.backends.base import Backend
from uring.kernel_memory import MSGHDR_IOV1_STRUCT

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
_recvmsg_out_pack = RECVMSG_OUT_STRUCT.pack_into
_msg1_pack = MSGHDR_IOV1_STRUCT.pack_into
_msg1_unpack = MSGHDR_IOV1_STRUCT.unpack_from
_buf_unpack = BUF_STRUCT.unpack_from
_u16_unpack = struct.Struct("<H").unpack_from
_NEG_EAGAIN = -EAGAIN
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
    """A multishot receive's scratch msghdr (engine memory) and what shapes each buffer."""

    __slots__ = ("kmsg", "group", "scratch", "scratch_addr", "scratch_view", "scratch_off",
                 "namelen", "controllen", "header")

    def __init__(self, kmsg: KernelMsg, group: BufRingConsumer, scratch: int, scratch_addr: int,
                 scratch_view: memoryview, scratch_off: int) -> None:
        self.kmsg = kmsg
        self.group = group
        self.scratch = scratch
        self.scratch_addr = scratch_addr
        self.scratch_view = scratch_view
        self.scratch_off = scratch_off
        self.namelen = kmsg.namelen
        self.controllen = kmsg.controllen
        self.header = RECVMSG_OUT_SIZE + kmsg.namelen + kmsg.controllen


class PortableBackend(Backend):
    """epoll + timer heap implementation of :class:`~uring.backends.base.Backend`."""

    name = "portable"
    defers_work = False

    def __init__(self) -> None:
        self._epoll = select.epoll()
        # fd -> (readers, writers, registered event mask)
        self._readers: dict[int, deque[_Parked]] = {}
        self._writers: dict[int, deque[_Parked]] = {}
        self._registered: dict[int, int] = {}
        self._wakeups: dict[int, Callable[[], None]] = {}
        # parked operations by id(request), for cancel
        self._parked_index: dict[int, _Parked] = {}
        self._closed = False

    def bind(self, engine: object, mem: UserMemory, arena: KernelArena) -> None:
        self._on_done = engine.on_io_done  # type: ignore[attr-defined]
        self._on_more = engine.on_io_more  # type: ignore[attr-defined]
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
        mem = self._mem
        view = mem.view
        mem_base = mem.base
        mem_size = mem.size
        real_base = mem.real_base
        ring_off = group.ring_off
        tail_off = ring_off + BUF_RING_TAIL_OFFSET
        mask = group.mask
        head = group.head
        tail = _u16_unpack(view, tail_off)[0]
        fd = parked.fd
        flags = parked.flags | _MSG_DONTWAIT
        namelen = state.namelen
        controllen = state.controllen
        header = state.header
        scratch_view = state.scratch_view
        scratch_off = state.scratch_off
        scratch_addr = state.scratch_addr
        iov_addr = scratch_addr + MSGHDR_SIZE
        recvmsg = libc.recvmsg
        on_more = self._on_more
        req = parked.req
        for _ in range(_MULTISHOT_BATCH):
            if head == tail:
                tail = _u16_unpack(view, tail_off)[0]
                if head == tail:
                    self._finish(parked, -ENOBUFS)
                    return False
            addr, blen, bid, _ = _buf_unpack(view, ring_off + (head & mask) * BUF_SIZE)
            off = addr - mem_base
            if blen < header or off < 0 or off + blen > mem_size:
                group.head = head = (head + 1) & 0xFFFF
                self._finish(parked, -EFAULT)
                return False
            real = real_base + off
            payload_cap = blen - header
            _msg1_pack(scratch_view, scratch_off,
                       real + RECVMSG_OUT_SIZE if namelen else 0, namelen, iov_addr, 1,
                       real + RECVMSG_OUT_SIZE + namelen if controllen else 0, controllen, 0,
                       real + header, payload_cap)
            res = recvmsg(fd, scratch_addr, flags)
            if res < 0:
                if res == _NEG_EAGAIN and not parked.flags & _MSG_DONTWAIT:
                    return True
                self._finish(parked, res)
                return False
            group.head = head = (head + 1) & 0xFFFF
            out = _msg1_unpack(scratch_view, scratch_off)
            _recvmsg_out_pack(view, off, out[1], out[5], res, out[6])
            on_more(req, header + (res if res < payload_cap else payload_cap),
                    _MULTI_FLAGS | (bid << IORING_CQE_BUFFER_SHIFT))
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
        pass  # every operation is started the moment it is issued

    def wait(self, timeout_ns: int | None) -> None:
        if timeout_ns is None:
            timeout = -1.0
        else:
            # epoll has millisecond resolution: round up so a timer never fires early
            timeout = (timeout_ns + 999_999) // 1_000_000 / 1000 if timeout_ns > 0 else 0.0
        try:
            events = self._epoll.poll(timeout)
        except InterruptedError:
            return
        for fd, ev in events:
            self._ready(fd, ev)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._epoll.close()


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
