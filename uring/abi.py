"""The ring ABI: io_uring's SQE/CQE layout, opcodes and flags, plus the BPF-requests extension.

Every constant here carries the Linux kernel's name and number (``include/uapi/linux/io_uring.h``)
so that an SQE built by this module is byte-compatible with ``struct io_uring_sqe`` and can be
copied into a real kernel ring unchanged.  The only additions are those of the 2021
"BPF requests" design:

* ``cq_idx`` -- a u16 at byte 48 of the SQE (overlapping the kernel's ``addr3``) naming the
  completion queue that receives the request's CQE;
* ``IORING_OP_BPF`` -- an opcode number the kernel does not use (see its docstring);
* the BPF helper IDs 164..167.

This module is pure: it packs and unpacks bytes and nothing else.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

# --------------------------------------------------------------------------------------------
# Sizes and struct layouts
# --------------------------------------------------------------------------------------------

SQE_SIZE = 64
CQE_SIZE = 16

#: ``struct io_uring_sqe`` with the BPF-requests ``cq_idx`` at byte 48 (little endian).
#: opcode B, flags B, ioprio H, fd i, off Q, addr Q, len I, op_flags I, user_data Q,
#: buf_index H, personality H, file_index I, cq_idx H, 14 bytes of padding.
SQE_STRUCT = struct.Struct("<BBHiQQIIQHHIH14x")
#: ``struct io_uring_cqe``: user_data u64, res s32, flags u32.
CQE_STRUCT = struct.Struct("<QiI")

assert SQE_STRUCT.size == SQE_SIZE
assert CQE_STRUCT.size == CQE_SIZE

#: Byte offsets of the SQE fields, for code that pokes single fields (BPF programs, tests).
SQE_OFF_OPCODE = 0
SQE_OFF_FLAGS = 1
SQE_OFF_IOPRIO = 2
SQE_OFF_FD = 4
SQE_OFF_OFF = 8
SQE_OFF_ADDR = 16
SQE_OFF_LEN = 24
SQE_OFF_OP_FLAGS = 28
SQE_OFF_USER_DATA = 32
SQE_OFF_BUF_INDEX = 40
SQE_OFF_PERSONALITY = 42
SQE_OFF_FILE_INDEX = 44
SQE_OFF_CQ_IDX = 48

# --------------------------------------------------------------------------------------------
# Opcodes (enum io_uring_op)
# --------------------------------------------------------------------------------------------

IORING_OP_NOP = 0
IORING_OP_READV = 1
IORING_OP_WRITEV = 2
IORING_OP_FSYNC = 3
IORING_OP_READ_FIXED = 4
IORING_OP_WRITE_FIXED = 5
IORING_OP_POLL_ADD = 6
IORING_OP_POLL_REMOVE = 7
IORING_OP_SYNC_FILE_RANGE = 8
IORING_OP_SENDMSG = 9
IORING_OP_RECVMSG = 10
IORING_OP_TIMEOUT = 11
IORING_OP_TIMEOUT_REMOVE = 12
IORING_OP_ACCEPT = 13
IORING_OP_ASYNC_CANCEL = 14
IORING_OP_LINK_TIMEOUT = 15
IORING_OP_CONNECT = 16
IORING_OP_FALLOCATE = 17
IORING_OP_OPENAT = 18
IORING_OP_CLOSE = 19
IORING_OP_FILES_UPDATE = 20
IORING_OP_STATX = 21
IORING_OP_READ = 22
IORING_OP_WRITE = 23
IORING_OP_FADVISE = 24
IORING_OP_MADVISE = 25
IORING_OP_SEND = 26
IORING_OP_RECV = 27
IORING_OP_OPENAT2 = 28
IORING_OP_EPOLL_CTL = 29
IORING_OP_SPLICE = 30
IORING_OP_PROVIDE_BUFFERS = 31
IORING_OP_REMOVE_BUFFERS = 32
IORING_OP_TEE = 33
IORING_OP_SHUTDOWN = 34
IORING_OP_RENAMEAT = 35
IORING_OP_UNLINKAT = 36
IORING_OP_MKDIRAT = 37
IORING_OP_SYMLINKAT = 38
IORING_OP_LINKAT = 39
IORING_OP_MSG_RING = 40

#: Run a registered BPF program (the 2021 BPF-requests design).  The kernel never assigned
#: this op a number; we take 0xBF, far above the kernel's last opcode, so an SQE carrying it
#: can never be mistaken for a kernel request.  It is executed by the engine, never passed to
#: a kernel ring.
IORING_OP_BPF = 0xBF

OPCODE_NAMES: dict[int, str] = {
    value: name[len("IORING_OP_"):]
    for name, value in dict(globals()).items()
    if name.startswith("IORING_OP_") and isinstance(value, int)
}

# --------------------------------------------------------------------------------------------
# SQE flags (sqe->flags)
# --------------------------------------------------------------------------------------------

IOSQE_FIXED_FILE = 1 << 0
IOSQE_IO_DRAIN = 1 << 1
IOSQE_IO_LINK = 1 << 2
IOSQE_IO_HARDLINK = 1 << 3
IOSQE_ASYNC = 1 << 4
IOSQE_BUFFER_SELECT = 1 << 5
IOSQE_CQE_SKIP_SUCCESS = 1 << 6

# --------------------------------------------------------------------------------------------
# CQE flags (cqe->flags)
# --------------------------------------------------------------------------------------------

IORING_CQE_F_BUFFER = 1 << 0
IORING_CQE_F_MORE = 1 << 1
IORING_CQE_F_SOCK_NONEMPTY = 1 << 2
IORING_CQE_F_NOTIF = 1 << 3
IORING_CQE_BUFFER_SHIFT = 16

# --------------------------------------------------------------------------------------------
# Per-opcode flags
# --------------------------------------------------------------------------------------------

# sqe->timeout_flags (op_flags of TIMEOUT / LINK_TIMEOUT)
IORING_TIMEOUT_ABS = 1 << 0
IORING_TIMEOUT_UPDATE = 1 << 1
IORING_TIMEOUT_BOOTTIME = 1 << 2
IORING_TIMEOUT_REALTIME = 1 << 3
IORING_LINK_TIMEOUT_UPDATE = 1 << 4
IORING_TIMEOUT_ETIME_SUCCESS = 1 << 5
IORING_TIMEOUT_MULTISHOT = 1 << 6

# sqe->ioprio of SEND/RECV/SENDMSG/RECVMSG
IORING_RECVSEND_POLL_FIRST = 1 << 0
IORING_RECV_MULTISHOT = 1 << 1

# sqe->cancel_flags (op_flags of ASYNC_CANCEL)
IORING_ASYNC_CANCEL_ALL = 1 << 0
IORING_ASYNC_CANCEL_FD = 1 << 1
IORING_ASYNC_CANCEL_ANY = 1 << 2

# MSG_RING: sqe->addr selects the command, sqe->msg_ring_flags (op_flags) modifies it
IORING_MSG_DATA = 0
IORING_MSG_SEND_FD = 1
IORING_MSG_RING_CQE_SKIP = 1 << 0
IORING_MSG_RING_FLAGS_PASS = 1 << 1

# --------------------------------------------------------------------------------------------
# Setup / enter / register (used by the kernel backend)
# --------------------------------------------------------------------------------------------

IORING_SETUP_IOPOLL = 1 << 0
IORING_SETUP_SQPOLL = 1 << 1
IORING_SETUP_SQ_AFF = 1 << 2
IORING_SETUP_CQSIZE = 1 << 3
IORING_SETUP_CLAMP = 1 << 4
IORING_SETUP_ATTACH_WQ = 1 << 5
IORING_SETUP_R_DISABLED = 1 << 6
IORING_SETUP_SUBMIT_ALL = 1 << 7
IORING_SETUP_COOP_TASKRUN = 1 << 8
IORING_SETUP_TASKRUN_FLAG = 1 << 9
IORING_SETUP_SQE128 = 1 << 10
IORING_SETUP_CQE32 = 1 << 11
IORING_SETUP_SINGLE_ISSUER = 1 << 12
IORING_SETUP_DEFER_TASKRUN = 1 << 13

IORING_ENTER_GETEVENTS = 1 << 0
IORING_ENTER_SQ_WAKEUP = 1 << 1
IORING_ENTER_SQ_WAIT = 1 << 2
IORING_ENTER_EXT_ARG = 1 << 3

IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000

# sq_ring->flags and cq_ring->flags
IORING_SQ_NEED_WAKEUP = 1 << 0
IORING_SQ_CQ_OVERFLOW = 1 << 1
IORING_CQ_EVENTFD_DISABLED = 1 << 0

IORING_FEAT_SINGLE_MMAP = 1 << 0
IORING_FEAT_NODROP = 1 << 1
IORING_FEAT_EXT_ARG = 1 << 8
IORING_FEAT_MIN_TIMEOUT = 1 << 15

IORING_REGISTER_BUFFERS = 0
IORING_UNREGISTER_BUFFERS = 1
IORING_REGISTER_FILES = 2
IORING_UNREGISTER_FILES = 3
IORING_REGISTER_EVENTFD = 4
IORING_UNREGISTER_EVENTFD = 5
IORING_REGISTER_PROBE = 8
IORING_REGISTER_PBUF_RING = 22
IORING_UNREGISTER_PBUF_RING = 23

#: ``struct io_uring_params`` (120 bytes): sq_entries, cq_entries, flags, sq_thread_cpu,
#: sq_thread_idle, features, wq_fd, resv[3], then ``struct io_sqring_offsets`` (head, tail,
#: ring_mask, ring_entries, flags, dropped, array, resv1, user_addr u64) and
#: ``struct io_cqring_offsets`` (head, tail, ring_mask, ring_entries, overflow, cqes, flags,
#: resv1, user_addr u64).
IO_URING_PARAMS_STRUCT = struct.Struct("<10I" + "7IIQ" + "7IIQ")
assert IO_URING_PARAMS_STRUCT.size == 120

#: ``struct io_uring_buf_reg``: ring_addr u64, ring_entries u32, bgid u16, flags u16, resv.
BUF_REG_STRUCT = struct.Struct("<QIHH24x")
assert BUF_REG_STRUCT.size == 40

#: ``struct io_uring_getevents_arg``: sigmask u64, sigmask_sz u32, min_wait_usec u32, ts u64.
GETEVENTS_ARG_STRUCT = struct.Struct("<QIIQ")

#: ``struct io_uring_recvmsg_out``: the header multishot RECVMSG writes at the start of each
#: provided buffer (namelen, controllen, payloadlen, flags), followed by ``msg_namelen`` bytes
#: of address, ``msg_controllen`` bytes of control data and then the payload.
RECVMSG_OUT_STRUCT = struct.Struct("<IIII")
RECVMSG_OUT_SIZE = RECVMSG_OUT_STRUCT.size

# POLL_ADD: sqe->len carries these, sqe->poll32_events (op_flags) the poll mask
IORING_POLL_ADD_MULTI = 1 << 0

#: ``struct io_uring_buf``: addr u64, len u32, bid u16, resv u16 (the ring's tail lives in
#: the ``resv`` field of entry 0, as in the kernel).
BUF_STRUCT = struct.Struct("<QIHH")
BUF_SIZE = BUF_STRUCT.size
BUF_RING_TAIL_OFFSET = 14

#: ``struct __kernel_timespec``: tv_sec s64, tv_nsec s64.
TIMESPEC_STRUCT = struct.Struct("<qq")

#: ``struct iovec``: iov_base u64, iov_len u64.
IOVEC_STRUCT = struct.Struct("<QQ")
IOVEC_SIZE = IOVEC_STRUCT.size

#: ``struct msghdr`` (x86-64/aarch64 LP64): msg_name u64, msg_namelen u32, pad, msg_iov u64,
#: msg_iovlen u64, msg_control u64, msg_controllen u64, msg_flags s32, pad.
MSGHDR_STRUCT = struct.Struct("<QI4xQQQQi4x")
MSGHDR_SIZE = MSGHDR_STRUCT.size
MSGHDR_OFF_NAMELEN = 8
MSGHDR_OFF_CONTROLLEN = 40
MSGHDR_OFF_FLAGS = 48
assert MSGHDR_SIZE == 56

# --------------------------------------------------------------------------------------------
# BPF requests
# --------------------------------------------------------------------------------------------

#: Program-table slots an engine offers (the 2021 prototype's limit).
BPF_MAX_PROGRAMS = 100

#: ``struct io_uring_bpf_ctx { u64 user_data; u32 wait_nr; u32 wait_idx; }``
BPF_CTX_STRUCT = struct.Struct("<QII")
BPF_CTX_SIZE = BPF_CTX_STRUCT.size
BPF_CTX_OFF_USER_DATA = 0
BPF_CTX_OFF_WAIT_NR = 8
BPF_CTX_OFF_WAIT_IDX = 12

#: Helper IDs of the 2021 prototype.
BPF_FUNC_io_uring_submit = 164
BPF_FUNC_io_uring_emit_cqe = 165
BPF_FUNC_io_uring_reap_cqe = 166
BPF_FUNC_copy_to_user = 167

# --------------------------------------------------------------------------------------------
# Errno values used in CQEs (negative in cqe->res)
# --------------------------------------------------------------------------------------------

EINVAL = errno.EINVAL
EFAULT = errno.EFAULT
EBUSY = errno.EBUSY
ENOENT = errno.ENOENT
ENOBUFS = errno.ENOBUFS
ECANCELED = errno.ECANCELED
ETIME = errno.ETIME
EALREADY = errno.EALREADY
EOVERFLOW = errno.EOVERFLOW
EBADF = errno.EBADF
ENOSPC = errno.ENOSPC
EAGAIN = errno.EAGAIN
EOPNOTSUPP = errno.EOPNOTSUPP
ELOOP = errno.ELOOP
EBADFD = errno.EBADFD
ENOMEM = errno.ENOMEM
EMSGSIZE = errno.EMSGSIZE
EEXIST = errno.EEXIST
ETIMEDOUT = errno.ETIMEDOUT


# --------------------------------------------------------------------------------------------
# SQE / CQE value types
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sqe:
    """One submission queue entry, field for field as ``struct io_uring_sqe``.

    ``op_flags`` is the kernel's anonymous union at byte 28 (rw_flags, msg_flags,
    timeout_flags, cancel_flags, msg_ring_flags, ...).  ``cq_idx`` is the BPF-requests
    extension at byte 48.
    """

    opcode: int = IORING_OP_NOP
    flags: int = 0
    ioprio: int = 0
    fd: int = -1
    off: int = 0
    addr: int = 0
    len: int = 0
    op_flags: int = 0
    user_data: int = 0
    buf_index: int = 0
    personality: int = 0
    file_index: int = 0
    cq_idx: int = 0

    def pack(self) -> bytes:
        return SQE_STRUCT.pack(
            self.opcode, self.flags, self.ioprio, self.fd, self.off, self.addr, self.len,
            self.op_flags, self.user_data, self.buf_index, self.personality, self.file_index,
            self.cq_idx,
        )

    def pack_into(self, buf: bytearray | memoryview, offset: int) -> None:
        SQE_STRUCT.pack_into(
            buf, offset, self.opcode, self.flags, self.ioprio, self.fd, self.off, self.addr,
            self.len, self.op_flags, self.user_data, self.buf_index, self.personality,
            self.file_index, self.cq_idx,
        )

    @classmethod
    def unpack_from(cls, buf: bytes | bytearray | memoryview, offset: int = 0) -> Sqe:
        return cls(*SQE_STRUCT.unpack_from(buf, offset))

    def __repr__(self) -> str:
        name = OPCODE_NAMES.get(self.opcode, str(self.opcode))
        return (
            f"Sqe({name} flags={self.flags:#x} fd={self.fd} off={self.off} addr={self.addr:#x} "
            f"len={self.len} op_flags={self.op_flags:#x} user_data={self.user_data} "
            f"cq_idx={self.cq_idx})"
        )


@dataclass(slots=True, frozen=True)
class Cqe:
    """One completion queue entry: ``(user_data u64, res s32, flags u32)``."""

    user_data: int
    res: int
    flags: int = 0

    def pack(self) -> bytes:
        return CQE_STRUCT.pack(self.user_data, self.res, self.flags)

    @classmethod
    def unpack_from(cls, buf: bytes | bytearray | memoryview, offset: int = 0) -> Cqe:
        return cls(*CQE_STRUCT.unpack_from(buf, offset))

    @property
    def buffer_id(self) -> int | None:
        """The provided-buffer ID of a buffer-select completion, else ``None``."""
        if self.flags & IORING_CQE_F_BUFFER:
            return self.flags >> IORING_CQE_BUFFER_SHIFT
        return None

    @property
    def more(self) -> bool:
        """True while a multishot request keeps posting completions."""
        return bool(self.flags & IORING_CQE_F_MORE)


# --------------------------------------------------------------------------------------------
# prep_* helpers: fill an SQE for one opcode and nothing more (as liburing does)
# --------------------------------------------------------------------------------------------


def prep_nop(user_data: int = 0, *, cq_idx: int = 0, flags: int = 0) -> Sqe:
    return Sqe(IORING_OP_NOP, flags=flags, user_data=user_data, cq_idx=cq_idx)


def prep_timeout(
    ts_addr: int, count: int = 0, op_flags: int = 0, user_data: int = 0, *, cq_idx: int = 0,
    flags: int = 0,
) -> Sqe:
    """TIMEOUT: ``addr`` points to a ``__kernel_timespec`` in user memory; ``off`` = count."""
    return Sqe(
        IORING_OP_TIMEOUT, flags=flags, fd=-1, addr=ts_addr, len=1, off=count,
        op_flags=op_flags, user_data=user_data, cq_idx=cq_idx,
    )


def prep_link_timeout(
    ts_addr: int, op_flags: int = 0, user_data: int = 0, *, cq_idx: int = 0, flags: int = 0,
) -> Sqe:
    return Sqe(
        IORING_OP_LINK_TIMEOUT, flags=flags, fd=-1, addr=ts_addr, len=1, op_flags=op_flags,
        user_data=user_data, cq_idx=cq_idx,
    )


def prep_sendmsg(
    fd: int, msghdr_addr: int, msg_flags: int = 0, user_data: int = 0, *, cq_idx: int = 0,
    flags: int = 0,
) -> Sqe:
    return Sqe(
        IORING_OP_SENDMSG, flags=flags, fd=fd, addr=msghdr_addr, len=1, op_flags=msg_flags,
        user_data=user_data, cq_idx=cq_idx,
    )


def prep_recvmsg(
    fd: int, msghdr_addr: int, msg_flags: int = 0, user_data: int = 0, *, cq_idx: int = 0,
    flags: int = 0,
) -> Sqe:
    return Sqe(
        IORING_OP_RECVMSG, flags=flags, fd=fd, addr=msghdr_addr, len=1, op_flags=msg_flags,
        user_data=user_data, cq_idx=cq_idx,
    )


def prep_recvmsg_multishot(
    fd: int, msghdr_addr: int, buf_group: int, msg_flags: int = 0, user_data: int = 0, *,
    cq_idx: int = 0, flags: int = 0,
) -> Sqe:
    """Multishot RECVMSG from a provided-buffer ring (``IOSQE_BUFFER_SELECT`` is implied)."""
    return Sqe(
        IORING_OP_RECVMSG, flags=flags | IOSQE_BUFFER_SELECT, ioprio=IORING_RECV_MULTISHOT,
        fd=fd, addr=msghdr_addr, len=1, op_flags=msg_flags, user_data=user_data,
        buf_index=buf_group, cq_idx=cq_idx,
    )


def prep_read(
    fd: int, buf_addr: int, nbytes: int, offset: int, user_data: int = 0, *, cq_idx: int = 0,
    flags: int = 0,
) -> Sqe:
    return Sqe(
        IORING_OP_READ, flags=flags, fd=fd, addr=buf_addr, len=nbytes, off=offset,
        user_data=user_data, cq_idx=cq_idx,
    )


def prep_write(
    fd: int, buf_addr: int, nbytes: int, offset: int, user_data: int = 0, *, cq_idx: int = 0,
    flags: int = 0,
) -> Sqe:
    return Sqe(
        IORING_OP_WRITE, flags=flags, fd=fd, addr=buf_addr, len=nbytes, off=offset,
        user_data=user_data, cq_idx=cq_idx,
    )


def prep_cancel(
    target_user_data: int, cancel_flags: int = 0, user_data: int = 0, *, cq_idx: int = 0,
    flags: int = 0,
) -> Sqe:
    """ASYNC_CANCEL of the request(s) whose user_data is ``target_user_data``."""
    return Sqe(
        IORING_OP_ASYNC_CANCEL, flags=flags, fd=-1, addr=target_user_data,
        op_flags=cancel_flags, user_data=user_data, cq_idx=cq_idx,
    )


def prep_msg_ring(
    ring_fd: int, res: int, target_user_data: int, msg_ring_flags: int = 0,
    user_data: int = 0, *, cq_idx: int = 0, flags: int = 0,
) -> Sqe:
    """MSG_RING: post ``(target_user_data, res)`` into the ring behind ``ring_fd``."""
    return Sqe(
        IORING_OP_MSG_RING, flags=flags, fd=ring_fd, addr=IORING_MSG_DATA, len=res & 0xFFFFFFFF,
        off=target_user_data, op_flags=msg_ring_flags, user_data=user_data, cq_idx=cq_idx,
    )


def prep_bpf(slot: int, user_data: int = 0, *, cq_idx: int = 0, flags: int = 0) -> Sqe:
    """IORING_OP_BPF: run the program registered in ``slot``; ``user_data`` reaches its ctx."""
    return Sqe(IORING_OP_BPF, flags=flags, fd=-1, off=slot, user_data=user_data, cq_idx=cq_idx)
