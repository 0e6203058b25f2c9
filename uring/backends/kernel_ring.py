"""The kernel's io_uring instance: setup, the mmap'd SQ/CQ rings, enter and register.

Nothing here knows about the engine: it packs SQEs into the kernel's SQ, publishes the tail,
calls ``io_uring_enter`` and reads CQEs back, like liburing's ``queue.c``/``setup.c``.  The
same store-then-publish ordering as :mod:`uring.rings` applies (x86-64 TSO; the kernel side
uses acquire/release), and the same rule: the SQ tail and the CQ head are stored, and the
kernel's indices loaded, as single aligned 32-bit accesses -- the kernel may post a CQE from
another context (an io-wq worker) while this thread moves the head.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct

from uring import libc
from uring.abi import (
    CQE_SIZE,
    CQE_STRUCT,
    GETEVENTS_ARG_STRUCT,
    IO_URING_PARAMS_STRUCT,
    IORING_ENTER_EXT_ARG,
    IORING_ENTER_GETEVENTS,
    IORING_FEAT_EXT_ARG,
    IORING_FEAT_NODROP,
    IORING_FEAT_SINGLE_MMAP,
    IORING_OFF_CQ_RING,
    IORING_OFF_SQ_RING,
    IORING_OFF_SQES,
    IORING_SQ_CQ_OVERFLOW,
    SQE_SIZE,
    SQE_STRUCT,
    TIMESPEC_STRUCT,
)

_U32 = struct.Struct("<I")
_u32_unpack = _U32.unpack_from
_u32_pack = _U32.pack_into
_sqe_pack = SQE_STRUCT.pack_into
_cqe_unpack = CQE_STRUCT.unpack_from
_M32 = 0xFFFFFFFF
_syscall = libc._syscall
_syscall_nowait = libc.syscall_nowait
#: io_uring_enter results that are normal outcomes of a wait, not failures
_WAIT_OUTCOMES = (-errno.ETIME, -errno.EINTR, -errno.EBUSY)


class KernelRingError(OSError):
    """A kernel ring call failed; the message names the call and the errno."""


def _fail(call: str, res: int) -> KernelRingError:
    return KernelRingError(-res, f"{call} failed: {os.strerror(-res)} (errno {-res})")


class KernelRing:
    """One ``io_uring_setup`` instance with its rings mapped into this process."""

    def __init__(self, entries: int = 256, cq_entries: int = 0, flags: int = 0) -> None:
        params = ctypes.create_string_buffer(IO_URING_PARAMS_STRUCT.size)
        if cq_entries:
            from uring.abi import IORING_SETUP_CQSIZE

            flags |= IORING_SETUP_CQSIZE
            struct.pack_into("<I", params, 4, cq_entries)
        struct.pack_into("<I", params, 8, flags)
        fd = libc.io_uring_setup(entries, ctypes.addressof(params))
        if fd < 0:
            raise _fail("io_uring_setup", fd)
        self.fd = fd
        p = IO_URING_PARAMS_STRUCT.unpack_from(params)
        self.sq_entries, self.cq_entries, self.flags = p[0], p[1], p[2]
        self.features = p[5]
        (sq_head, sq_tail, sq_mask, _sq_entries, sq_flags, sq_dropped, sq_array, _r1,
         _ua1) = p[10:19]
        (cq_head, cq_tail, cq_mask, _cq_entries, cq_overflow, cq_cqes, cq_flags, _r2,
         _ua2) = p[19:28]
        required = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG
        if self.features & required != required:
            os.close(fd)
            raise KernelRingError(
                0, f"kernel io_uring lacks features {required & ~self.features:#x} "
                   f"(SINGLE_MMAP, NODROP, EXT_ARG are needed: Linux 5.11 or later)")
        ring_size = max(sq_array + self.sq_entries * 4, cq_cqes + self.cq_entries * CQE_SIZE)
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        mflags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        try:
            self._rings = mmap.mmap(fd, ring_size, flags=mflags, prot=prot,
                                    offset=IORING_OFF_SQ_RING)
            self._sqes = mmap.mmap(fd, self.sq_entries * SQE_SIZE, flags=mflags, prot=prot,
                                   offset=IORING_OFF_SQES)
        except OSError:
            os.close(fd)
            raise
        assert IORING_OFF_CQ_RING  # single mmap: the CQ ring shares the SQ ring's mapping
        rings = self._rings
        # the ring's header words: every index access is one aligned 32-bit load or store
        self._words = memoryview(rings)[:cq_cqes].cast("I")
        self._sq_head = sq_head >> 2
        self._sq_tail = sq_tail >> 2
        self.sq_mask = _u32_unpack(rings, sq_mask)[0]
        self._sq_flags = sq_flags >> 2
        self._sq_dropped = sq_dropped
        self._cq_head = cq_head >> 2
        self._cq_tail = cq_tail >> 2
        self.cq_mask = _u32_unpack(rings, cq_mask)[0]
        self._cq_overflow = cq_overflow
        self._cq_cqes = cq_cqes
        self._cq_flags = cq_flags
        # identity SQ index array, written once
        for i in range(self.sq_entries):
            _u32_pack(rings, sq_array + 4 * i, i)
        self._local_tail = self._words[self._sq_tail]
        self._pending = 0
        # getevents argument with its timespec, for waits with a timeout
        self._ts = ctypes.create_string_buffer(TIMESPEC_STRUCT.size)
        self._ts_addr = ctypes.addressof(self._ts)
        self._arg = ctypes.create_string_buffer(GETEVENTS_ARG_STRUCT.size)
        self._arg_addr = ctypes.addressof(self._arg)
        self.closed = False

    # -- SQ -----------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """SQEs queued with :meth:`push` and not yet submitted."""
        return self._pending

    def push(self, opcode: int, flags: int, ioprio: int, fd: int, off: int, addr: int,
             length: int, op_flags: int, user_data: int, buf_index: int = 0) -> bool:
        """Queue one SQE; ``False`` when the SQ is full (submit first)."""
        tail = self._local_tail
        if (tail - self._words[self._sq_head]) & _M32 >= self.sq_entries:
            return False
        _sqe_pack(self._sqes, (tail & self.sq_mask) * SQE_SIZE, opcode, flags, ioprio, fd,
                  off, addr, length, op_flags, user_data, buf_index, 0, 0, 0)
        self._local_tail = (tail + 1) & _M32
        self._pending += 1
        return True

    def enter(self, min_complete: int = 0, timeout_ns: int | None = None, *,
              getevents: bool = False, min_wait_us: int = 0) -> int:
        """Publish queued SQEs and call ``io_uring_enter``; waits for ``min_complete`` CQEs
        (at most ``timeout_ns``).  ``getevents`` with no wait still runs the kernel's
        completion side (pending task work, moving overflowed CQEs into the ring).
        ``min_wait_us`` (kernels with ``IORING_FEAT_MIN_TIMEOUT``): once that long has
        passed, return as soon as any CQE is there instead of waiting for ``min_complete``.
        Returns the syscall's result (``-ETIME`` on timeout, ``-EINTR`` on a signal)."""
        self._words[self._sq_tail] = self._local_tail
        to_submit = self._pending
        flags = 0
        arg = 0
        argsz = 0
        if min_complete or getevents:
            flags = IORING_ENTER_GETEVENTS
            if timeout_ns is not None or min_wait_us:
                flags |= IORING_ENTER_EXT_ARG
                ts = 0
                if timeout_ns is not None:
                    TIMESPEC_STRUCT.pack_into(self._ts, 0, timeout_ns // 1_000_000_000,
                                              timeout_ns % 1_000_000_000)
                    ts = self._ts_addr
                GETEVENTS_ARG_STRUCT.pack_into(self._arg, 0, 0, 0, min_wait_us, ts)
                arg = self._arg_addr
                argsz = GETEVENTS_ARG_STRUCT.size
        if not to_submit and not flags:
            return 0
        # only a wait for completions may block: anything else keeps the interpreter lock
        call = _syscall if min_complete else _syscall_nowait
        res = call(libc.SYS_io_uring_enter, self.fd, to_submit, min_complete, flags, arg, argsz)
        if res < 0:
            res = -ctypes.get_errno()
        if res >= 0:
            self._pending -= min(res, to_submit)
        elif res not in _WAIT_OUTCOMES:
            raise _fail("io_uring_enter", res)
        return res

    # -- CQ -----------------------------------------------------------------------------------

    def cq_ready(self) -> int:
        """CQEs the kernel has posted and :meth:`reap` has not taken yet."""
        words = self._words
        return (words[self._cq_tail] - words[self._cq_head]) & _M32

    def cq_overflowed(self) -> bool:
        """Whether CQEs wait in the kernel's overflow list (``IORING_SQ_CQ_OVERFLOW``); an
        ``enter(getevents=True)`` moves them into the ring."""
        return bool(self._words[self._sq_flags] & IORING_SQ_CQ_OVERFLOW)

    def reap(self) -> list[tuple[int, int, int]]:
        """Every CQE the kernel has posted, oldest first."""
        words = self._words
        head = words[self._cq_head]
        tail = words[self._cq_tail]
        if head == tail:
            return []
        rings = self._rings
        mask = self.cq_mask
        base = self._cq_cqes
        n = (tail - head) & _M32
        out = [_cqe_unpack(rings, base + ((head + i) & mask) * CQE_SIZE) for i in range(n)]
        words[self._cq_head] = tail
        return out

    def cq_overflow(self) -> int:
        return _u32_unpack(self._rings, self._cq_overflow)[0]

    # -- register -----------------------------------------------------------------------------

    def register(self, opcode: int, arg: int, nr_args: int) -> int:
        res = libc.io_uring_register(self.fd, opcode, arg, nr_args)
        if res < 0:
            raise _fail(f"io_uring_register(opcode {opcode})", res)
        return res

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._words.release()
        self._sqes.close()
        self._rings.close()
        os.close(self.fd)
