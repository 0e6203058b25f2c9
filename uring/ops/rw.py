"""IORING_OP_READ and IORING_OP_WRITE: ``len`` bytes at user address ``addr``, file offset
``off`` (``-1`` as u64: the file position).

The data moves directly between the file and user memory.  As in the kernel, a transfer
shorter than ``len`` counts as a failure for links and ``IOSQE_CQE_SKIP_SUCCESS`` (its CQE is
posted and the rest of the chain is cancelled).  Not supported (``-EINVAL``): ``rw_flags``
(RWF_*), ``ioprio`` and buffer selection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uring.abi import EFAULT, EINVAL, IOSQE_BUFFER_SELECT
from uring.requests import WAIT_IO

if TYPE_CHECKING:
    from uring.engine import Engine
    from uring.requests import Request

_CURRENT_POSITION = (1 << 64) - 1


def _prepare(engine: Engine, req: Request) -> tuple[int, int] | None:
    if req.flags & IOSQE_BUFFER_SELECT or req.op_flags or req.ioprio:
        engine.complete(req, -EINVAL)
        return None
    mem = engine.mem
    if not mem.contains(req.addr, req.len) or (req.len and not req.addr):
        engine.complete(req, -EFAULT)
        return None
    offset = req.off
    if offset == _CURRENT_POSITION:
        offset = -1
    elif offset >= 1 << 63:
        engine.complete(req, -EINVAL)
        return None
    buf = mem.real_address(req.addr, req.len) if req.len else mem.real_base
    req.wait = WAIT_IO
    return buf, offset


def issue_read(engine: Engine, req: Request) -> None:
    prepared = _prepare(engine, req)
    if prepared is not None:
        engine.backend.read(req, req.fd, prepared[0], req.len, prepared[1])


def issue_write(engine: Engine, req: Request) -> None:
    prepared = _prepare(engine, req)
    if prepared is not None:
        engine.backend.write(req, req.fd, prepared[0], req.len, prepared[1])


def complete_rw(engine: Engine, req: Request, res: int, cflags: int) -> None:
    engine.complete(req, res, cflags, failed=res < 0 or res != req.len)
