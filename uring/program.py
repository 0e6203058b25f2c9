"""The contract between the ring engine and whatever executes ``IORING_OP_BPF`` requests.

The engine does not know how a program runs; it only knows this interface.  The eBPF
runtime (:mod:`uring.bpf`) implements :class:`BpfProgram`; the engine implements
:class:`BpfEnv`, the "kernel side" that helper calls reach.  Keeping the two apart lets the
engine be tested with tiny hand-written programs and the VM with a recording environment.

One run, as the engine performs it::

    ctx = bytearray(BPF_CTX_SIZE)                  # zeroed before every run
    BPF_CTX_STRUCT.pack_into(ctx, 0, sqe.user_data, 0, 0)
    program.run(ctx, env)                          # may raise BpfRunError
    user_data, wait_nr, wait_idx = BPF_CTX_STRUCT.unpack_from(ctx)
    # wait_nr != 0: the request stays alive and re-runs when CQ wait_idx holds >= wait_nr
    # unreaped CQEs; otherwise it completes with (sqe.user_data, 0) on sqe.cq_idx.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class BpfRunError(Exception):
    """A program run aborted (sandbox violation, instruction budget, bad helper use).

    ``errno`` is the positive errno the engine posts, negated, as the failed request's
    ``res``; the message names the program, the instruction and the rule broken.
    """

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


class BpfEnv(Protocol):
    """What the engine offers a running program; each helper call lands on one method.

    Return values follow the kernel convention: ``0`` (or a non-negative result) on
    success, a negative errno on failure.  Pointer arguments arrive already resolved and
    bounds-checked by the VM (``bytes`` to read, a writable ``memoryview`` to fill); user
    pointers arrive as integers and are checked by the engine against its user memory.
    """

    def submit(self, sqe: bytes) -> int:
        """Helper 164 ``bpf_io_uring_submit``: queue one 64-byte SQE for the engine."""
        ...

    def emit_cqe(self, cq_idx: int, user_data: int, res: int, flags: int) -> int:
        """Helper 165 ``bpf_io_uring_emit_cqe``: post a CQE on CQ ``cq_idx``."""
        ...

    def reap_cqe(self, cq_idx: int, out: memoryview) -> int:
        """Helper 166 ``bpf_io_uring_reap_cqe``: move the oldest CQE of ``cq_idx`` into
        ``out`` (16 bytes); ``-ENOENT`` when the CQ is empty."""
        ...

    def copy_to_user(self, user_ptr: int, data: bytes) -> int:
        """Helper 167 ``bpf_copy_to_user``: write ``data`` at ``user_ptr``."""
        ...

    def copy_from_user(self, dst: memoryview, user_ptr: int) -> int:
        """``bpf_copy_from_user``: fill ``dst`` from ``user_ptr`` (zero-filled on fault)."""
        ...

    def ktime_get_ns(self) -> int:
        """``bpf_ktime_get_ns``: the engine's monotonic clock in nanoseconds."""
        ...

    def get_prandom_u32(self) -> int:
        """``bpf_get_prandom_u32``: a pseudo-random 32-bit value."""
        ...


@runtime_checkable
class BpfProgram(Protocol):
    """A loaded, verified program that ``IORING_OP_BPF`` can run."""

    name: str

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        """Run once from the entry point against ``ctx`` (``struct io_uring_bpf_ctx``).

        Returns the program's R0 (the engine ignores it).  Raises :class:`BpfRunError`
        when the run is aborted; the engine then fails the request with ``-errno`` and
        keeps running.
        """
        ...
