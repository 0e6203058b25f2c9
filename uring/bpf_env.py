"""The helpers a BPF program reaches while the engine runs it (:class:`uring.program.BpfEnv`).

One environment object serves every run of one engine.  Each method is one helper call and
returns what the kernel helper would: 0 or a result on success, a negative errno on failure.
Programs can pass anything, so every argument is checked here and bad values become errnos,
never exceptions.

To add helpers (the QUIC crypto shim, maps, ...) subclass :class:`EngineBpfEnv` and give the
engine the subclass as its ``env_factory``; the engine calls ``factory(engine)``.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from uring.abi import (
    CQE_SIZE,
    EBUSY,
    EFAULT,
    EINVAL,
    ENOENT,
    EOVERFLOW,
    SQE_SIZE,
    SQE_STRUCT,
)

if TYPE_CHECKING:
    from uring.engine import Engine

_M64 = (1 << 64) - 1
_M32 = 0xFFFFFFFF
_sqe_unpack = SQE_STRUCT.unpack


def _s32(value: int) -> int:
    value &= _M32
    return value - (1 << 32) if value & 0x80000000 else value


class EngineBpfEnv:
    """Engine-side implementation of the helper calls of the BPF-requests design."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.mem = engine.mem
        self.n_cqs = engine.n_cqs
        self._pending: list[tuple] = []
        self._random = random.Random()
        self._stats = engine.stats
        self._cqs = engine.cqs
        self._post = engine.post_cqe
        from uring import engine as engine_module

        if type(engine).now_ns is engine_module.Engine.now_ns and \
                type(self).ktime_get_ns is EngineBpfEnv.ktime_get_ns:
            # the engine's clock is plain CLOCK_MONOTONIC: programs call it directly
            self.ktime_get_ns = time.monotonic_ns  # type: ignore[method-assign]

    # -- run bracketing (called by the engine around each program run) -----------------------

    def take_submissions(self) -> list[tuple]:
        """SQEs queued by ``submit`` during the run that just ended (the queue is emptied)."""
        pending = self._pending
        if pending:
            self._pending = []
        return pending

    # -- helper 164: bpf_io_uring_submit ------------------------------------------------------

    def submit(self, sqe: bytes) -> int:
        """Queue one SQE; the engine dispatches the run's SQEs, in order, as one batch right
        after the program returns, so ``IOSQE_IO_LINK`` chains may span several calls.
        ``-EINVAL`` for a wrong size, ``-EBUSY`` once the engine's queue is full."""
        if len(sqe) != SQE_SIZE:
            return -EINVAL
        pending = self._pending
        if len(pending) >= self.engine.max_helper_queue:
            self._stats.helper_submit_rejected += 1
            return -EBUSY
        pending.append(_sqe_unpack(sqe))
        self._stats.helper_sqes += 1
        return 0

    # -- helper 165: bpf_io_uring_emit_cqe ----------------------------------------------------

    def emit_cqe(self, cq_idx: int, user_data: int, res: int, flags: int) -> int:
        """Post a CQE; ``-EINVAL`` for a CQ that does not exist, ``-EOVERFLOW`` when an extra
        CQ is full (the CQE is dropped and counted; CQ 0 never drops)."""
        if not 0 <= cq_idx < self.n_cqs:
            return -EINVAL
        if self._post(cq_idx, user_data & _M64, _s32(res), flags & _M32):
            return 0
        return -EOVERFLOW

    # -- helper 166: bpf_io_uring_reap_cqe ----------------------------------------------------

    def reap_cqe(self, cq_idx: int, out: memoryview) -> int:
        """Move the oldest CQE of ``cq_idx`` into ``out``; ``-ENOENT`` when the CQ is empty,
        ``-EINVAL`` for a bad CQ or an ``out`` shorter than a CQE."""
        if not 0 <= cq_idx < self.n_cqs or len(out) < CQE_SIZE:
            return -EINVAL
        if not self._cqs[cq_idx].pop_into(out):
            return -ENOENT
        if cq_idx == 0:
            self.engine.after_cq0_reap()
        return 0

    # -- helper 167: bpf_copy_to_user, and bpf_copy_from_user ---------------------------------

    def copy_to_user(self, user_ptr: int, data: bytes) -> int:
        mem = self.mem
        n = len(data)
        off = user_ptr - mem.base
        if off < 0 or off + n > mem.size or (n and not user_ptr):
            return -EFAULT
        mem.view[off:off + n] = data
        return 0

    def copy_from_user(self, dst: memoryview, user_ptr: int) -> int:
        mem = self.mem
        n = len(dst)
        off = user_ptr - mem.base
        if off < 0 or off + n > mem.size or (n and not user_ptr):
            dst[:] = bytes(n)
            return -EFAULT
        dst[:] = mem.view[off:off + n]
        return 0

    # -- time and randomness ------------------------------------------------------------------

    def ktime_get_ns(self) -> int:
        return self.engine.now_ns()

    def get_prandom_u32(self) -> int:
        return self._random.getrandbits(32)
