"""io_uring backend: the engine's operations run as SQEs on a real kernel ring.

The kernel ring is private to the engine.  Each operation becomes one kernel SQE whose
``user_data`` is an engine token; the kernel's CQE comes back to the engine, which posts the
application-visible CQE on the CQ the original SQE named.  Pointers in kernel SQEs are real
addresses: msghdrs and iovecs built by :mod:`uring.kernel_memory`, data buffers inside user
memory, timespecs in engine memory -- all kept alive until the kernel's final CQE.

Timers stay in the engine (:mod:`uring.timer_heap`), so a timer costs no kernel request at
all.  The engine blocks in ``epoll_wait`` on the ring's file descriptor, which is readable
whenever the CQ holds entries, with the time left until its earliest deadline: measured on
Linux 6.18, a blocking ``io_uring_enter`` costs about twice the CPU of an ``epoll_wait``
that sleeps as long.  An engine thread that batches its waits (:meth:`bind_to_thread`)
moves to a ring with deferred task work instead and waits in ``io_uring_enter``: there,
completions no longer wake it one by one, which is worth far more.  SQEs are handed to the
kernel with a non-blocking ``io_uring_enter`` only when there are any.  A cancel is a kernel
``ASYNC_CANCEL`` of the token; the engine's doorbell eventfd is watched with a multishot
``POLL_ADD``, so new work wakes the wait.

Provided-buffer rings: the application's ring lives in user memory and holds user addresses,
so the kernel gets a mirror registered with ``IORING_REGISTER_PBUF_RING`` whose entries carry
the real addresses of the same buffers, with the same buffer IDs.  New entries are copied
across right before every ``io_uring_enter`` -- the only moments the kernel can pick a buffer
for us when the engine drives the ring -- so both rings hold the same buffers whenever it
matters and buffer IDs in CQEs mean the same thing on both backends.  Only the new entries'
``addr``/``len``/``bid`` are written; the kernel's tail lives in entry 0's ``resv``, which the
mirror owns alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import mmap
import select
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from uring.abi import (
    BUF_REG_STRUCT,
    BUF_RING_TAIL_OFFSET,
    BUF_SIZE,
    IORING_ASYNC_CANCEL_ANY,
    IORING_CQE_F_MORE,
    IORING_FEAT_MIN_TIMEOUT,
    IORING_OP_ASYNC_CANCEL,
    IORING_OP_NOP,
    IORING_OP_POLL_ADD,
    IORING_OP_READ,
    IORING_OP_RECVMSG,
    IORING_OP_SENDMSG,
    IORING_OP_WRITE,
    IORING_POLL_ADD_MULTI,
    IORING_RECV_MULTISHOT,
    IORING_REGISTER_PBUF_RING,
    IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_SINGLE_ISSUER,
    IORING_SETUP_SUBMIT_ALL,
    IORING_UNREGISTER_PBUF_RING,
    IOSQE_BUFFER_SELECT,
)
from uring.backends.base import Backend, BackendUnavailable
from uring.backends.kernel_ring import KernelRing, KernelRingError

if TYPE_CHECKING:
    from uring.buf_ring import BufRingConsumer
    from uring.kernel_memory import KernelArena, KernelMsg
    from uring.requests import Request
    from uring.user_memory import UserMemory

# what a non-I/O kernel token stands for (an I/O token maps to its Request directly)
_T_CANCEL = 2    # a cancel on behalf of the engine; payload: the done callback
_T_WAKE = 3      # the multishot poll on a wakeup fd; payload: (fd, callback)
_T_IGNORE = 4    # bookkeeping SQEs whose result nobody needs (the cancel-all at close)

#: ``struct io_uring_buf`` without its ``resv`` (entry 0's ``resv`` is the kernel's tail)
_BUF_HEAD = struct.Struct("<QIH")
_buf_head_pack = _BUF_HEAD.pack_into
_ETIME = errno.ETIME
_EINTR = errno.EINTR
_MIN_SQ = 256

log = logging.getLogger(__name__)
#: completions that end a bound wait before its batch time is up
_WAIT_BATCH = 64


class _Special:
    """What a non-I/O kernel token stands for (I/O tokens map straight to their request)."""

    __slots__ = ("kind", "payload")

    def __init__(self, kind: int, payload: object) -> None:
        self.kind = kind
        self.payload = payload


class _Mirror:
    """Kernel-facing copy of one provided-buffer ring (page-aligned, real addresses)."""

    __slots__ = ("group", "memory", "addr", "synced", "tail_word")

    def __init__(self, group: BufRingConsumer) -> None:
        self.group = group
        size = max(mmap.PAGESIZE, group.entries * BUF_SIZE)
        self.memory = mmap.mmap(-1, size)
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.memory))
        self.synced = group.head  # user-ring index up to which entries were copied
        # the kernel reads this tail while it picks buffers: one aligned 16-bit store
        view = memoryview(self.memory)
        self.tail_word = view[BUF_RING_TAIL_OFFSET:BUF_RING_TAIL_OFFSET + 2].cast("H")


class IoUringBackend(Backend):
    """Runs operations on a kernel io_uring instance."""

    name = "io_uring"

    def __init__(self, entries: int = _MIN_SQ) -> None:
        self._entries = entries
        try:
            self.ring = KernelRing(entries, cq_entries=entries * 8,
                                   flags=IORING_SETUP_SUBMIT_ALL)
        except KernelRingError as exc:
            raise BackendUnavailable(exc.errno, f"io_uring unavailable: {exc}") from exc
        #: completions gathered per wait while bound to one thread (0: not bound)
        self._batch_us = 0
        self._batch = 0
        self._owner = 0
        self._tokens: dict[int, object] = {}
        self._next_token = 1
        self._mirrors: dict[int, _Mirror] = {}
        self._mirror_list: list[_Mirror] = []
        self._epoll = select.epoll()
        self._epoll.register(self.ring.fd, select.EPOLLIN)

    def bind(self, engine: object, mem: UserMemory, arena: KernelArena) -> None:
        self._on_done = engine.on_io_done  # type: ignore[attr-defined]
        self._on_more = engine.on_io_more  # type: ignore[attr-defined]
        self._mem = mem
        self._arena = arena

    # -- submission ---------------------------------------------------------------------------

    def _token(self, kind: int, payload: object) -> int:
        token = self._next_token
        self._next_token = token + 1 if token < (1 << 62) else 1
        self._tokens[token] = _Special(kind, payload)
        return token

    def _push(self, opcode: int, flags: int, ioprio: int, fd: int, off: int, addr: int,
              length: int, op_flags: int, token: int, buf_index: int = 0) -> None:
        ring = self.ring
        if not ring.push(opcode, flags, ioprio, fd, off, addr, length, op_flags, token,
                         buf_index):
            self._submit(0, None)
            if not ring.push(opcode, flags, ioprio, fd, off, addr, length, op_flags, token,
                             buf_index):
                raise KernelRingError(errno.EBUSY, "kernel SQ still full after submitting")

    def _io(self, req: Request, opcode: int, flags: int, ioprio: int, fd: int, off: int,
            addr: int, length: int, op_flags: int, buf_index: int = 0) -> None:
        token = self._next_token
        self._next_token = token + 1 if token < (1 << 62) else 1
        self._tokens[token] = req
        req.token = token
        if not self.ring.push(opcode, flags, ioprio, fd, off, addr, length, op_flags, token,
                              buf_index):
            self._push(opcode, flags, ioprio, fd, off, addr, length, op_flags, token, buf_index)

    def nop(self, req: Request) -> None:
        self._io(req, IORING_OP_NOP, 0, 0, -1, 0, 0, 0, 0)

    def sendmsg(self, req: Request, kmsg: KernelMsg, msg_flags: int) -> None:
        self._io(req, IORING_OP_SENDMSG, 0, 0, req.fd, 0, kmsg.addr, 1, msg_flags)

    def recvmsg(self, req: Request, kmsg: KernelMsg, msg_flags: int) -> None:
        self._io(req, IORING_OP_RECVMSG, 0, 0, req.fd, 0, kmsg.addr, 1, msg_flags)

    def recvmsg_multishot(self, req: Request, kmsg: KernelMsg, msg_flags: int,
                          group: BufRingConsumer) -> None:
        self._io(req, IORING_OP_RECVMSG, IOSQE_BUFFER_SELECT, IORING_RECV_MULTISHOT, req.fd, 0,
                 kmsg.addr, 1, msg_flags, group.bgid)

    def read(self, req: Request, fd: int, buf: int, nbytes: int, offset: int) -> None:
        self._io(req, IORING_OP_READ, 0, 0, fd, offset & 0xFFFFFFFFFFFFFFFF, buf, nbytes, 0)

    def write(self, req: Request, fd: int, buf: int, nbytes: int, offset: int) -> None:
        self._io(req, IORING_OP_WRITE, 0, 0, fd, offset & 0xFFFFFFFFFFFFFFFF, buf, nbytes, 0)

    def cancel(self, req: Request, done: Callable[[int], None]) -> None:
        token = self._token(_T_CANCEL, done)
        self._push(IORING_OP_ASYNC_CANCEL, 0, 0, -1, 0, req.token, 0, 0, token)

    # -- provided-buffer rings ----------------------------------------------------------------

    def buf_ring_register(self, group: BufRingConsumer) -> None:
        mirror = _Mirror(group)
        reg = ctypes.create_string_buffer(BUF_REG_STRUCT.size)
        BUF_REG_STRUCT.pack_into(reg, 0, mirror.addr, group.entries, group.bgid, 0)
        self.ring.register(IORING_REGISTER_PBUF_RING, ctypes.addressof(reg), 1)
        self._mirrors[group.bgid] = mirror
        self._mirror_list = list(self._mirrors.values())
        self._sync_mirror(mirror)

    def buf_ring_unregister(self, group: BufRingConsumer) -> None:
        mirror = self._mirrors.pop(group.bgid, None)
        if mirror is None:
            return
        self._mirror_list = list(self._mirrors.values())
        reg = ctypes.create_string_buffer(BUF_REG_STRUCT.size)
        BUF_REG_STRUCT.pack_into(reg, 0, 0, 0, group.bgid, 0)
        self.ring.register(IORING_UNREGISTER_PBUF_RING, ctypes.addressof(reg), 1)

    def _sync_mirror(self, mirror: _Mirror) -> None:
        group = mirror.group
        tail = group.tail()
        index = mirror.synced
        if index == tail:
            return
        mem = self._mem
        mem_base = mem.base
        mem_size = mem.size
        real_base = mem.real_base
        memory = mirror.memory
        mask = group.mask
        entry = group.entry
        while index != tail:
            addr, length, bid = entry(index)
            off = addr - mem_base
            real = real_base + off if off >= 0 and off + length <= mem_size else 0
            _buf_head_pack(memory, (index & mask) * BUF_SIZE, real, length, bid)
            index = (index + 1) & 0xFFFF
        mirror.synced = tail
        mirror.tail_word[0] = tail

    # -- driving ------------------------------------------------------------------------------

    def add_wakeup_fd(self, fd: int, callback: Callable[[], None]) -> None:
        token = self._token(_T_WAKE, (fd, callback))
        self._push(IORING_OP_POLL_ADD, 0, 0, fd, 0, 0, IORING_POLL_ADD_MULTI, select.POLLIN,
                   token)

    def _submit(self, min_complete: int, timeout_ns: int | None) -> int:
        for mirror in self._mirror_list:
            self._sync_mirror(mirror)
        return self.ring.enter(min_complete, timeout_ns)

    def flush(self) -> None:
        if self.ring.pending:
            self._submit(0, None)
        self._dispatch()

    def bind_to_thread(self, batch_us: int) -> bool:
        """Move to a kernel ring that only the calling thread may drive, with deferred task
        work, so that completions stop interrupting it and each wait gathers them for up to
        ``batch_us`` microseconds.  Possible only before any I/O is in flight (the wakeup
        polls move along); ``False`` when it is not, or the kernel lacks deferred task
        work or minimum wait times -- the backend then goes on as it was."""
        if self._batch_us or batch_us <= 0 or self._live_operations() or self._mirrors:
            return False
        try:
            bound = KernelRing(self._entries, cq_entries=self._entries * 8,
                               flags=IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER
                               | IORING_SETUP_DEFER_TASKRUN)
        except KernelRingError:
            return False
        if not bound.features & IORING_FEAT_MIN_TIMEOUT:
            bound.close()
            return False
        old = self.ring
        self._epoll.unregister(old.fd)
        old.close()  # takes its wakeup polls along; they are armed again on the new ring
        self.ring = bound
        self._epoll.register(bound.fd, select.EPOLLIN)
        for token, entry in list(self._tokens.items()):
            if entry.__class__ is _Special and entry.kind == _T_WAKE:
                fd, _callback = entry.payload
                self._push(IORING_OP_POLL_ADD, 0, 0, fd, 0, 0, IORING_POLL_ADD_MULTI,
                           select.POLLIN, token)
            else:
                del self._tokens[token]
        self._batch_us = batch_us
        self._batch = max(1, min(_WAIT_BATCH, bound.cq_entries // 2))
        self._owner = threading.get_ident()
        return True

    def wait(self, timeout_ns: int | None) -> None:
        ring = self.ring
        for mirror in self._mirror_list:  # the kernel reads the mirror when it picks a buffer
            self._sync_mirror(mirror)
        if self._batch_us:
            # bound: completions are task work the kernel runs only in here.  Wait for a
            # batch of them, but once batch_us has passed return with whatever there is.
            if timeout_ns == 0 or ring.cq_ready():
                self._get_events(0, None)
            else:
                self._get_events(self._batch, timeout_ns, self._batch_us)
            self._dispatch()
            return
        if ring.pending or ring.cq_overflowed():
            # submit, and move CQEs the kernel had to park in its overflow list into the ring
            # (the ring fd polls readable while any are parked, so they must not stay there)
            self._get_events(0, None)
        if not ring.cq_ready() and (timeout_ns is None or timeout_ns > 0):
            # epoll has millisecond resolution: round up so a timer never fires early
            timeout = -1.0 if timeout_ns is None else (timeout_ns + 999_999) // 1_000_000 / 1000
            with contextlib.suppress(InterruptedError):
                self._epoll.poll(timeout)
        self._dispatch()

    def _get_events(self, min_complete: int, timeout_ns: int | None,
                    min_wait_us: int = 0) -> None:
        """Submit what is queued and run the kernel's completion side, waiting as asked; a
        timeout or a signal ends the wait, anything else that fails raises."""
        res = self.ring.enter(min_complete, timeout_ns, getevents=True, min_wait_us=min_wait_us)
        if res < 0 and res not in (-_ETIME, -_EINTR):
            raise KernelRingError(-res, f"io_uring_enter failed: errno {-res}")

    def _dispatch(self) -> None:
        ring = self.ring
        tokens = self._tokens
        cqes = ring.reap()
        while True:
            if not cqes:
                if not ring.cq_overflowed():
                    return
                ring.enter(0, None, getevents=True)  # bring the overflowed CQEs in
                cqes = ring.reap()
                if not cqes:
                    return
            for token, res, cflags in cqes:
                more = cflags & IORING_CQE_F_MORE
                entry = tokens.get(token) if more else tokens.pop(token, None)
                if entry is None:
                    continue
                if entry.__class__ is not _Special:
                    if more:
                        self._on_more(entry, res, cflags)
                    else:
                        self._on_done(entry, res, cflags)
                    continue
                kind = entry.kind  # type: ignore[attr-defined]
                payload = entry.payload  # type: ignore[attr-defined]
                if kind == _T_CANCEL:
                    payload(res)
                elif kind == _T_WAKE:
                    fd, callback = payload
                    callback()
                    if not more:
                        self.add_wakeup_fd(fd, callback)
            if ring.pending:
                self._submit(0, None)
            elif not ring.cq_overflowed():
                return
            cqes = ring.reap()

    def close(self) -> None:
        """Cancel everything in flight and wait for the kernel to let go of user memory
        before the ring goes away (a receive must never land in freed memory)."""
        if self.ring.closed:
            return
        try:
            if self._batch_us and threading.get_ident() != self._owner:
                # a bound ring whose thread is gone (it only ends without closing the ring
                # when it crashed): nobody may enter it any more; the kernel ends the
                # requests of an exited task, and closing the ring ends the rest
                log.error("event=bound_ring_closed_by_other_thread ring_fd=%d", self.ring.fd)
            elif self._live_operations():
                self._push(IORING_OP_ASYNC_CANCEL, 0, 0, -1, 0, 0, 0, IORING_ASYNC_CANCEL_ANY,
                           self._token(_T_IGNORE, None))
                deadline = time.monotonic() + 2.0
                while self._live_operations() and time.monotonic() < deadline:
                    self.ring.enter(1, 50_000_000)
                    for token, _res, cflags in self.ring.reap():
                        if not cflags & IORING_CQE_F_MORE:
                            self._tokens.pop(token, None)
            for mirror in list(self._mirrors.values()):
                with contextlib.suppress(OSError):
                    self.buf_ring_unregister(mirror.group)
        finally:
            self._epoll.close()
            self.ring.close()

    def _live_operations(self) -> bool:
        return any(e.__class__ is not _Special for e in self._tokens.values())


def probe() -> tuple[bool, str]:
    """Whether a kernel ring can be created here, and why not if it cannot."""
    try:
        ring = KernelRing(4)
    except KernelRingError as exc:
        return False, str(exc)
    ring.close()
    return True, "io_uring_setup succeeded"

