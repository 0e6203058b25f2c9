"""IORING_OP_BPF: run a registered program; re-run it while it asks to wait for CQEs.

Checks at issue: ``ioprio``, ``len`` and ``addr`` must be 0 (``-EINVAL``); ``off`` names a
program-table slot, and an empty or out-of-range slot fails with ``-EFAULT``.

Each run gets a zeroed ``struct io_uring_bpf_ctx`` with ``user_data`` copied from the SQE.
SQEs the program queued through ``bpf_io_uring_submit`` are dispatched, as one batch, when the
run returns.  Then:

* the runtime aborted the run (:class:`~uring.program.BpfRunError`): the request fails with
  ``-errno`` (logged, counted in ``stats.bpf_faults``);
* ``ctx.wait_nr == 0``: the request completes ``(user_data, 0)`` on its own CQ;
* otherwise it stays alive and re-runs from the entry, with a fresh ctx, as soon as CQ
  ``ctx.wait_idx`` holds at least ``wait_nr`` unreaped CQEs -- checked right away (CQEs the
  program itself just emitted count) and whenever a CQE is posted there.  A ``wait_idx``
  naming no CQ fails the request with ``-EINVAL``.

Runs never nest: a BPF request issued while a program runs (by its submissions) gets its first
run right after, from the engine's re-run queue.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from uring.abi import BPF_CTX_SIZE, BPF_CTX_STRUCT, BPF_MAX_PROGRAMS, EFAULT, EINVAL
from uring.program import BpfProgram, BpfRunError
from uring.requests import ISSUED, RUNNING, WAIT_BPF, WAIT_NONE

if TYPE_CHECKING:
    from uring.engine import Engine
    from uring.requests import Request

log = logging.getLogger("uring.ops.bpf")
_ctx_pack = BPF_CTX_STRUCT.pack_into
_ctx_unpack = BPF_CTX_STRUCT.unpack_from


def issue_bpf(engine: Engine, req: Request) -> None:
    if req.ioprio or req.len or req.addr:
        engine.complete(req, -EINVAL)
        return
    slot = req.off
    program = engine.programs[slot] if 0 <= slot < BPF_MAX_PROGRAMS else None
    if program is None:
        engine.complete(req, -EFAULT)
        return
    req.io = program
    req.wait = WAIT_BPF
    engine.track(req)  # findable (and -EALREADY) while its program runs
    if engine.in_bpf:
        engine._rerun.append(req)
        return
    run(engine, req)


def run(engine: Engine, req: Request) -> None:
    """Run ``req``'s program once and settle the request according to the ctx it leaves."""
    if req.state != ISSUED:
        return  # cancelled while queued for a run
    program: BpfProgram = req.io  # type: ignore[assignment]
    ctx = bytearray(BPF_CTX_SIZE)
    _ctx_pack(ctx, 0, req.user_data, 0, 0)
    req.state = RUNNING
    req.wait = WAIT_NONE
    req.runs += 1
    stats = engine.stats
    stats.bpf_runs += 1
    env = engine.env
    error: BpfRunError | None = None
    engine.in_bpf = True
    try:
        program.run(ctx, env)
    except BpfRunError as exc:
        error = exc
    except Exception as exc:  # a runtime bug must not take the engine down
        log.exception("event=bpf_program_crashed program=%s user_data=%d", program.name,
                      req.user_data)
        error = BpfRunError(f"program {program.name!r} raised {exc!r}", EFAULT)
    finally:
        try:
            queued = env.take_submissions()  # type: ignore[attr-defined]
            if queued:
                engine.submit_batch(queued)  # issues everything, chain successors included
        finally:
            engine.in_bpf = False
    req.state = ISSUED
    if error is None:
        _, wait_nr, wait_idx = _ctx_unpack(ctx)
        if wait_nr and wait_idx < engine.n_cqs:
            stats.bpf_rearms += 1
            req.wait = WAIT_BPF
            engine.watch_ready(wait_idx, wait_nr, req)
            return
    _settle(engine, req, program, error, wait_nr if error is None else 0,
            wait_idx if error is None else 0)


def _settle(engine: Engine, req: Request, program: BpfProgram, error: BpfRunError | None,
            wait_nr: int, wait_idx: int) -> None:
    """The run did not re-arm: the request completes (0, the fault's errno or -EINVAL)."""
    if error is not None:
        engine.stats.bpf_faults += 1
        log.warning("event=bpf_run_failed program=%s user_data=%d errno=%d reason=%r",
                    program.name, req.user_data, error.errno, str(error))
        engine.complete(req, -error.errno)
    elif not wait_nr:
        engine.stats.bpf_completed += 1
        engine.complete(req, 0)
    else:
        log.warning("event=bpf_bad_wait_idx program=%s user_data=%d wait_idx=%d n_cqs=%d",
                    program.name, req.user_data, wait_idx, engine.n_cqs)
        engine.complete(req, -EINVAL)
