"""The ops: what each opcode does, one module per family.

Each module exposes ``issue_*(engine, req)``, which validates the request and either
completes it or starts it on the backend, and, for ops that finish in the backend,
``complete_*(engine, req, res, cqe_flags)``, which cleans up op-specific state and completes
the request.  :data:`HANDLERS` and :data:`COMPLETERS` map opcodes to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from uring.abi import (
    IORING_OP_ASYNC_CANCEL,
    IORING_OP_BPF,
    IORING_OP_LINK_TIMEOUT,
    IORING_OP_MSG_RING,
    IORING_OP_NOP,
    IORING_OP_READ,
    IORING_OP_RECVMSG,
    IORING_OP_SENDMSG,
    IORING_OP_TIMEOUT,
    IORING_OP_WRITE,
)
from uring.ops import bpf, cancel, msg_ring, net, nop, rw, timeout

if TYPE_CHECKING:
    from uring.engine import Engine
    from uring.requests import Request


def complete_plain(engine: Engine, req: Request, res: int, cflags: int) -> None:
    """Completion for ops with nothing to clean up."""
    engine.complete(req, res, cflags)


HANDLERS: dict[int, Callable[[Engine, Request], None]] = {
    IORING_OP_NOP: nop.issue_nop,
    IORING_OP_TIMEOUT: timeout.issue_timeout,
    IORING_OP_LINK_TIMEOUT: timeout.issue_link_timeout,
    IORING_OP_SENDMSG: net.issue_sendmsg,
    IORING_OP_RECVMSG: net.issue_recvmsg,
    IORING_OP_READ: rw.issue_read,
    IORING_OP_WRITE: rw.issue_write,
    IORING_OP_ASYNC_CANCEL: cancel.issue_cancel,
    IORING_OP_MSG_RING: msg_ring.issue_msg_ring,
    IORING_OP_BPF: bpf.issue_bpf,
}

COMPLETERS: dict[int, Callable[[Engine, Request, int, int], None]] = {
    IORING_OP_SENDMSG: net.complete_sendmsg,
    IORING_OP_RECVMSG: net.complete_recvmsg,
    IORING_OP_READ: rw.complete_rw,
    IORING_OP_WRITE: rw.complete_rw,
}

__all__ = ["COMPLETERS", "HANDLERS", "bpf", "cancel", "complete_plain", "msg_ring", "net",
           "nop", "rw", "timeout"]
