"""IORING_OP_SENDMSG and IORING_OP_RECVMSG (single shot, and multishot with provided buffers).

``addr`` points to a ``struct msghdr`` in user memory.  The engine mirrors it into a
kernel-facing msghdr with real pointers (:mod:`uring.kernel_memory`), kept until the final
completion.  A single-shot RECVMSG writes ``msg_namelen``, ``msg_controllen`` and
``msg_flags`` back into the user's msghdr, as ``recvmsg(2)`` does.

Multishot RECVMSG (``IORING_RECV_MULTISHOT`` in ``ioprio``, ``IOSQE_BUFFER_SELECT``, buffer
group in ``buf_group``) posts one CQE per datagram with ``IORING_CQE_F_MORE`` and the buffer
ID in the upper CQE flags; each buffer starts with ``struct io_uring_recvmsg_out``, then
``msg_namelen`` bytes of address, ``msg_controllen`` bytes of control data, then the payload.
It ends (no ``F_MORE``) on error, on cancel, or with ``-ENOBUFS`` when the group runs dry; the
application re-adds buffers and submits it again.

Not supported (``-EINVAL``): buffer selection for single-shot receives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uring.abi import (
    EINVAL,
    ENOBUFS,
    IORING_RECV_MULTISHOT,
    IORING_RECVSEND_POLL_FIRST,
    IOSQE_BUFFER_SELECT,
)
from uring.kernel_memory import KernelMsg, KernelStructError, build_kernel_msg
from uring.requests import WAIT_IO

if TYPE_CHECKING:
    from uring.engine import Engine
    from uring.requests import Request


def issue_sendmsg(engine: Engine, req: Request) -> None:
    if req.ioprio & ~IORING_RECVSEND_POLL_FIRST or req.flags & IOSQE_BUFFER_SELECT:
        engine.complete(req, -EINVAL)
        return
    try:
        kmsg = build_kernel_msg(engine.mem, engine.arena, req.addr)
    except KernelStructError as exc:
        engine.complete(req, -exc.errno)
        return
    req.io = kmsg
    req.wait = WAIT_IO
    engine.backend.sendmsg(req, kmsg, req.op_flags)


def complete_sendmsg(engine: Engine, req: Request, res: int, cflags: int) -> None:
    kmsg: KernelMsg = req.io  # type: ignore[assignment]
    req.io = None
    kmsg.release()
    engine.complete(req, res, cflags)


def issue_recvmsg(engine: Engine, req: Request) -> None:
    ioprio = req.ioprio
    if ioprio & ~(IORING_RECVSEND_POLL_FIRST | IORING_RECV_MULTISHOT):
        engine.complete(req, -EINVAL)
        return
    multishot = bool(ioprio & IORING_RECV_MULTISHOT)
    if multishot != bool(req.flags & IOSQE_BUFFER_SELECT):
        engine.complete(req, -EINVAL)
        return
    group = None
    if multishot:
        group = engine.buf_groups.get(req.buf_index)
        if group is None:
            engine.complete(req, -ENOBUFS)
            return
    try:
        kmsg = build_kernel_msg(engine.mem, engine.arena, req.addr, with_iov=not multishot)
    except KernelStructError as exc:
        engine.complete(req, -exc.errno)
        return
    req.io = kmsg
    req.wait = WAIT_IO
    if group is not None:
        engine.backend.recvmsg_multishot(req, kmsg, req.op_flags, group)
    else:
        engine.backend.recvmsg(req, kmsg, req.op_flags)


def complete_recvmsg(engine: Engine, req: Request, res: int, cflags: int) -> None:
    kmsg: KernelMsg = req.io  # type: ignore[assignment]
    req.io = None
    if res >= 0 and not req.ioprio & IORING_RECV_MULTISHOT:
        kmsg.copy_back(engine.mem)
    kmsg.release()
    engine.complete(req, res, cflags)
