"""IORING_OP_MSG_RING: post a CQE into another ring of this process.

``fd`` names the target ring (its engine's ``ring_fd``), ``len`` becomes the target CQE's
``res`` and ``off`` its ``user_data``; the CQE lands on the target's CQ 0.  Flags:
``IORING_MSG_RING_CQE_SKIP`` (post nothing in the target, only complete here) and
``IORING_MSG_RING_FLAGS_PASS`` (the target CQE's flags are this SQE's ``file_index``).

The engine delivers the message itself instead of using the kernel's MSG_RING: the target's
CQs are engine CQs in shared memory, not the private kernel ring behind its backend.  Targets
are looked up among the live engines of this process; a ring fd that is not one (another
process's ring, a plain fd) completes with ``-EBADFD``.  ``IORING_MSG_SEND_FD`` is not
supported (``-EOPNOTSUPP``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from uring.abi import (
    EBADFD,
    EINVAL,
    EOPNOTSUPP,
    IORING_MSG_DATA,
    IORING_MSG_RING_CQE_SKIP,
    IORING_MSG_RING_FLAGS_PASS,
    IORING_MSG_SEND_FD,
)

if TYPE_CHECKING:
    from uring.engine import Engine
    from uring.requests import Request

log = logging.getLogger("uring.ops.msg_ring")
_FLAGS = IORING_MSG_RING_CQE_SKIP | IORING_MSG_RING_FLAGS_PASS


def issue_msg_ring(engine: Engine, req: Request) -> None:
    if req.addr == IORING_MSG_SEND_FD:
        engine.complete(req, -EOPNOTSUPP)
        return
    if req.addr != IORING_MSG_DATA or req.op_flags & ~_FLAGS:
        engine.complete(req, -EINVAL)
        return
    from uring.engine import engine_for_fd

    target = engine_for_fd(req.fd)
    if target is None:
        log.warning("event=msg_ring_bad_target fd=%d reason='not a ring of a live engine in "
                    "this process (cross-process rings are not supported)'", req.fd)
        engine.complete(req, -EBADFD)
        return
    if not req.op_flags & IORING_MSG_RING_CQE_SKIP:
        res = req.len & 0xFFFFFFFF
        if res & 0x80000000:
            res -= 1 << 32
        flags = req.file_index if req.op_flags & IORING_MSG_RING_FLAGS_PASS else 0
        target.deliver_message(req.off, res, flags)
    engine.complete(req, 0)
