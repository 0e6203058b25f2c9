"""io_uring backend: the engine's operations run as SQEs on a real kernel ring.

The kernel ring is private to the engine.  Each operation becomes one kernel SQE whose
``user_data`` is an engine token; the kernel's CQE comes back to the engine, which posts the
application-visible CQE on the CQ the original SQE named.  Pointers in kernel SQEs are real
addresses: msghdrs and iovecs built by :mod:`uring.kernel_memory`, data buffers inside user
memory, timespecs in engine memory -- all kept alive until the kernel's final CQE.

Timers are kernel ``TIMEOUT`` requests with absolute ``CLOCK_MONOTONIC`` deadlines; a cancel
is a kernel ``ASYNC_CANCEL`` of the token; the engine's doorbell eventfd is watched with a
multishot ``POLL_ADD`` so that a blocked ``io_uring_enter`` wakes when there is work.

Provided-buffer rings: the application's ring lives in user memory and holds user addresses,
so the kernel gets a mirror registered with ``IORING_REGISTER_PBUF_RING`` whose entries carry
the real addresses of the same buffers, with the same buffer IDs.  New entries are copied
across right before every ``io_uring_enter`` -- the only moments the kernel can pick a buffer
for us when the engine drives the ring -- so both rings hold the same buffers whenever it
matters and buffer IDs in CQEs mean the same thing on both backends.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import select
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from uring.abi import (
    BUF_REG_STRUCT,
    BUF_RING_TAIL_OFFSET,
    BUF_SIZE,
    BUF_STRUCT,
    ECANCELED,
    IORING_ASYNC_CANCEL_ANY,
    IORING_CQE_F_MORE,
    IORING_OP_ASYNC_CANCEL,
    IORING_OP_NOP,
    IORING_OP_POLL_ADD,
    IORING_OP_READ,
    IORING_OP_RECVMSG,
    IORING_OP_SENDMSG,
    IORING_OP_TIMEOUT,
    IORING_OP_TIMEOUT_REMOVE,
    IORING_OP_WRITE,
    IORING_POLL_ADD_MULTI,
    IORING_RECV_MULTISHOT,
    IORING_REGISTER_PBUF_RING,
    IORING_SETUP_SUBMIT_ALL,
    IORING_TIMEOUT_ABS,
    IORING_UNREGISTER_PBUF_RING,
    IOSQE_BUFFER_SELECT,
    TIMESPEC_STRUCT,
)
from uring.backends.base import Backend, BackendUnavailable
from uring.backends.kernel_ring import KernelRing, KernelRingError

if TYPE_CHECKING:
    from uring.buf_ring import BufRingConsumer
    from uring.kernel_memory import KernelArena, KernelMsg
    from uring.requests import Request
    from uring.user_memory import UserMemory

# what a non-I/O kernel token stands for (an I/O token maps to its Request directly)
_T_TIMER = 1     # an engine timer (TIMEOUT with an absolute deadline)
_T_CANCEL = 2    # a cancel on behalf of the engine; payload: the done callback
_T_WAKE = 3      # the multishot poll on a wakeup fd; payload: (fd, callback)
_T_IGNORE = 4    # bookkeeping SQEs whose result nobody needs (TIMEOUT_REMOVE)

_U16 = struct.Struct("<H")
_ETIME = errno.ETIME
_EINTR = errno.EINTR
_MIN_SQ = 256


class _Special:
    """What a non-I/O kernel token stands for (I/O tokens map straight to their request)."""

    __slots__ = ("kind", "payload")

    def __init__(self, kind: int, payload: object) -> None:
        self.kind = kind
        self.payload = payload


class _Mirror:
    """Kernel-facing copy of one provided-buffer ring (page-aligned, real addresses)."""

    __slots__ = ("group", "memory", "addr", "synced")

    def __init__(self, group: BufRingConsumer) -> None:
        self.group = group
        size = max(mmap.PAGESIZE, group.entries * BUF_SIZE)
        self.memory = mmap.mmap(-1, size)
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.memory))
        self.synced = group.head  # user-ring index up to which entries were copied


class IoUringBackend(Backend):
    """Runs operations on a kernel io_uring instance."""

    name = "io_uring"

    def __init__(self, entries: int = _MIN_SQ) -> None:
        try:
            self.ring = KernelRing(entries, cq_entries=entries * 8,
                                   flags=IORING_SETUP_SUBMIT_ALL)
        except KernelRingError as exc:
            raise BackendUnavailable(exc.errno, f"io_uring unavailable: {exc}") from exc
        self._tokens: dict[int, object] = {}
        self._next_token = 1
        self._mirrors: dict[int, _Mirror] = {}

    def bind(self, engine: object, mem: UserMemory, arena: KernelArena) -> None:
        self._on_done = engine.on_io_done  # type: ignore[attr-defined]
        self._on_more = engine.on_io_more  # type: ignore[attr-defined]
        self._on_timer = engine.on_timer  # type: ignore[attr-defined]
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

    # -- timers -------------------------------------------------------------------------------

    def timer_arm(self, req: Request, deadline_ns: int) -> None:
        handle = self._arena.alloc()
        view, off = self._arena.chunk_view(handle)
        TIMESPEC_STRUCT.pack_into(view, off, deadline_ns // 1_000_000_000,
                                  deadline_ns % 1_000_000_000)
        entry = [req, handle, True]
        token = self._token(_T_TIMER, entry)
        entry.append(token)
        req.timer = entry
        self._push(IORING_OP_TIMEOUT, 0, 0, -1, 0, self._arena.address(handle), 1,
                   IORING_TIMEOUT_ABS, token)

    def timer_cancel(self, req: Request) -> bool:
        entry = req.timer
        req.timer = None
        if entry is None or not entry[2]:
            return False
        entry[2] = False
        # let the kernel drop it too; its -ECANCELED CQE frees the timespec
        self._push(IORING_OP_TIMEOUT_REMOVE, 0, 0, -1, 0, entry[3], 0, 0,
                   self._token(_T_IGNORE, None))
        return True

    # -- provided-buffer rings ----------------------------------------------------------------

    def buf_ring_register(self, group: BufRingConsumer) -> None:
        mirror = _Mirror(group)
        reg = ctypes.create_string_buffer(BUF_REG_STRUCT.size)
        BUF_REG_STRUCT.pack_into(reg, 0, mirror.addr, group.entries, group.bgid, 0)
        self.ring.register(IORING_REGISTER_PBUF_RING, ctypes.addressof(reg), 1)
        self._mirrors[group.bgid] = mirror
        self._sync_mirror(mirror)

    def buf_ring_unregister(self, group: BufRingConsumer) -> None:
        mirror = self._mirrors.pop(group.bgid, None)
        if mirror is None:
            return
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
        memory = mirror.memory
        mask = group.mask
        while index != tail:
            addr, length, bid = group.entry(index)
            real = mem.real_address(addr, length) if mem.contains(addr, length) else 0
            slot = (index & mask) * BUF_SIZE
            resv = _U16.unpack_from(memory, slot + BUF_RING_TAIL_OFFSET)[0]
            BUF_STRUCT.pack_into(memory, slot, real, length, bid, resv)
            index = (index + 1) & 0xFFFF
        mirror.synced = tail
        _U16.pack_into(memory, BUF_RING_TAIL_OFFSET, tail)

    # -- driving ------------------------------------------------------------------------------

    def add_wakeup_fd(self, fd: int, callback: Callable[[], None]) -> None:
        token = self._token(_T_WAKE, (fd, callback))
        self._push(IORING_OP_POLL_ADD, 0, 0, fd, 0, 0, IORING_POLL_ADD_MULTI, select.POLLIN,
                   token)

    def _submit(self, min_complete: int, timeout_ns: int | None) -> int:
        for mirror in self._mirrors.values():
            self._sync_mirror(mirror)
        return self.ring.enter(min_complete, timeout_ns)

    def flush(self) -> None:
        if self.ring.pending:
            self._submit(0, None)
        self._dispatch()

    def wait(self, timeout_ns: int | None) -> None:
        if timeout_ns == 0:
            self.flush()
            return
        res = self._submit(1, timeout_ns)
        if res < 0 and res not in (-_ETIME, -_EINTR):
            raise KernelRingError(-res, f"io_uring_enter failed: errno {-res}")
        self._dispatch()

    def _dispatch(self) -> None:
        ring = self.ring
        tokens = self._tokens
        cqes = ring.reap()
        while cqes:
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
                if kind == _T_TIMER:
                    req, handle, alive, _token = payload
                    self._arena.free(handle)
                    if alive:
                        payload[2] = False
                        if req.timer is payload:
                            req.timer = None
                        if res != -ECANCELED:
                            self._on_timer(req)
                elif kind == _T_CANCEL:
                    payload(res)
                elif kind == _T_WAKE:
                    fd, callback = payload
                    callback()
                    if not more:
                        self.add_wakeup_fd(fd, callback)
            if not ring.pending:
                return
            self._submit(0, None)
            cqes = ring.reap()

    def close(self) -> None:
        """Cancel everything in flight and wait for the kernel to let go of user memory
        before the ring goes away (a receive must never land in freed memory)."""
        if self.ring.closed:
            return
        try:
            if self._live_operations():
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
            self.ring.close()

    def _live_operations(self) -> bool:
        return any(e.__class__ is not _Special or e.kind == _T_TIMER  # type: ignore[attr-defined]
                   for e in self._tokens.values())


def probe() -> tuple[bool, str]:
    """Whether a kernel ring can be created here, and why not if it cannot."""
    try:
        ring = KernelRing(4)
    except KernelRingError as exc:
        return False, str(exc)
    ring.close()
    return True, "io_uring_setup succeeded"

