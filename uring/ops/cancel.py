"""IORING_OP_ASYNC_CANCEL: cancel in-flight requests by ``user_data`` (``addr``).

Flags (``cancel_flags``): ``IORING_ASYNC_CANCEL_ALL`` every match instead of the oldest one;
``IORING_ASYNC_CANCEL_FD`` match on ``fd`` instead of ``user_data``;
``IORING_ASYNC_CANCEL_ANY`` match every in-flight request (implies ALL).

A cancelled request completes with ``-ECANCELED``.  The cancel's own result: ``0`` (found and
cancelled), ``-ENOENT`` (nothing in flight matches), ``-EALREADY`` (found, but running right
now -- a BPF request whose program is executing -- so it cannot be stopped).  With ALL/ANY the
result is the number of requests found.  Requests waiting in a link chain are not in flight
yet and are not found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uring.abi import (
    EINVAL,
    ENOENT,
    IORING_ASYNC_CANCEL_ALL,
    IORING_ASYNC_CANCEL_ANY,
    IORING_ASYNC_CANCEL_FD,
)

if TYPE_CHECKING:
    from uring.engine import Engine
    from uring.requests import Request

_FLAGS = IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ANY


def issue_cancel(engine: Engine, req: Request) -> None:
    flags = req.op_flags
    if flags & ~_FLAGS or (flags & IORING_ASYNC_CANCEL_ANY and flags & IORING_ASYNC_CANCEL_FD):
        engine.complete(req, -EINVAL)
        return
    if flags & IORING_ASYNC_CANCEL_ANY:
        targets = engine.find_requests()
    elif flags & IORING_ASYNC_CANCEL_FD:
        fd = req.fd
        targets = engine.find_requests(lambda r: r.fd == fd)
    else:
        targets = engine.find_requests(user_data=req.addr)
    targets = [t for t in targets if t is not req]
    if not targets:
        engine.complete(req, -ENOENT)
        return
    if not flags & (IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY):
        engine.cancel_request(targets[0], lambda res: engine.complete(req, res))
        return
    found = len(targets)
    outstanding = [found]

    def one_done(_res: int) -> None:
        outstanding[0] -= 1
        if not outstanding[0]:
            engine.complete(req, found)

    for target in targets:
        engine.cancel_request(target, one_done)
