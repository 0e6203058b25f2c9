"""Hand-written stand-ins for compiled BPF programs, used by the ring-engine tests.

Each class behaves as the C program of the same name would: it only touches the world
through its ctx and the helper environment, finds its argument block in user memory at
``ctx.user_data`` (read with ``bpf_copy_from_user``, written back with ``bpf_copy_to_user``),
and keeps no state of its own between runs.  The argument blocks are given as C structs in
each docstring.  Tests obtain programs only through :func:`load`, so pointing them at the
compiled objects once the eBPF VM lands means changing :func:`load` and nothing else.

Each exercises one engine rule that no example program covers; the prototype's own examples
(``counting``, ``pingpong``, ``write_file``, ``test``) run as the compiled objects in
``bpf_programs/examples`` (see the ``load_example`` fixture).
"""

from __future__ import annotations

import struct

from uring.abi import (
    BPF_CTX_STRUCT,
    IORING_OP_NOP,
    IOSQE_IO_LINK,
    Sqe,
    prep_cancel,
    prep_nop,
)
from uring.program import BpfEnv, BpfRunError


def _ctx(ctx: bytearray) -> tuple[int, int, int]:
    return BPF_CTX_STRUCT.unpack_from(ctx)


def _set_wait(ctx: bytearray, wait_nr: int, wait_idx: int) -> None:
    struct.pack_into("<II", ctx, 8, wait_nr, wait_idx)


class _StandIn:
    """Shared plumbing: the argument block as a struct read from and written to user memory."""

    name = "?"
    ARGS = struct.Struct("<")

    def load_args(self, env: BpfEnv, ptr: int) -> list:
        buf = bytearray(self.ARGS.size)
        if env.copy_from_user(memoryview(buf), ptr) != 0:
            raise BpfRunError(f"{self.name}: argument block at {ptr:#x} unreadable", 14)
        return list(self.ARGS.unpack(buf))

    def store_args(self, env: BpfEnv, ptr: int, values: list) -> None:
        if env.copy_to_user(ptr, self.ARGS.pack(*values)) != 0:
            raise BpfRunError(f"{self.name}: argument block at {ptr:#x} unwritable", 14)


class CtxRecorder(_StandIn):
    """Log the ctx seen at every entry, re-run ``limit`` times by emitting into its own wait CQ.

    ``struct { u32 runs; u32 limit; u32 wait_cq; u32 pad; u64 log[3 * 16]; }`` -- entry ``i``
    of the log holds ``user_data, wait_nr, wait_idx`` as found by run ``i``.
    """

    name = "ctx_recorder"
    ARGS = struct.Struct("<IIII")

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        ptr, wait_nr, wait_idx = _ctx(ctx)
        runs, limit, wait_cq, _ = self.load_args(env, ptr)
        entry = struct.pack("<QQQ", ptr, wait_nr, wait_idx)
        env.copy_to_user(ptr + self.ARGS.size + 24 * runs, entry)
        runs += 1
        out = memoryview(bytearray(16))
        env.reap_cqe(wait_cq, out)  # consume the trigger of this run, if any
        if runs < limit:
            env.emit_cqe(wait_cq, 0x5E1F, runs, 0)  # wakes this very request
            _set_wait(ctx, 1, wait_cq)
        self.store_args(env, ptr, [runs, limit, wait_cq, 0])
        return 0


class Faulting(_StandIn):
    """Abort every run as the runtime would on a sandbox violation (``errno`` 13, EACCES)."""

    name = "faulting"

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        raise BpfRunError("faulting: store outside its stack at insn 3", 13)


class Waiter(_StandIn):
    """Leave ``wait_nr``/``wait_idx`` from the argument block, counting runs.

    ``struct { u32 wait_nr; u32 wait_idx; u32 runs; u32 pad; }``
    """

    name = "waiter"
    ARGS = struct.Struct("<IIII")

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        ptr = _ctx(ctx)[0]
        wait_nr, wait_idx, runs, pad = self.load_args(env, ptr)
        _set_wait(ctx, wait_nr, wait_idx)
        self.store_args(env, ptr, [wait_nr, wait_idx, runs + 1, pad])
        return 0


class SubmitMany(_StandIn):
    """Submit ``count`` NOPs (user_data 1000+i, to ``cq``) and record each helper result.

    ``struct { u32 count; u32 cq; s32 results[count]; }``
    """

    name = "submit_many"
    ARGS = struct.Struct("<II")

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        ptr = _ctx(ctx)[0]
        count, cq = self.load_args(env, ptr)
        results = [env.submit(prep_nop(1000 + i, cq_idx=cq).pack()) for i in range(count)]
        env.copy_to_user(ptr + self.ARGS.size, struct.pack(f"<{count}i", *results))
        return 0


class SubmitChain(_StandIn):
    """Submit a three-request link chain over three helper calls: NOP, a READ from a bad
    pointer (fails -EFAULT), NOP.  ``struct { s32 fd; u32 pad; }``"""

    name = "submit_chain"
    ARGS = struct.Struct("<iI")

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        ptr = _ctx(ctx)[0]
        fd, _ = self.load_args(env, ptr)
        env.submit(Sqe(IORING_OP_NOP, flags=IOSQE_IO_LINK, user_data=1).pack())
        env.submit(Sqe(22, flags=IOSQE_IO_LINK, fd=fd, addr=8, len=16, user_data=2).pack())
        env.submit(Sqe(IORING_OP_NOP, user_data=3).pack())
        return 0


class Emitter(_StandIn):
    """Emit ``count`` CQEs (user_data 2000+i, res i) on ``cq`` and record each helper result.

    ``struct { u32 count; u32 cq; s32 results[count]; }``
    """

    name = "emitter"
    ARGS = struct.Struct("<II")

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        ptr = _ctx(ctx)[0]
        count, cq = self.load_args(env, ptr)
        results = [env.emit_cqe(cq, 2000 + i, i, 0) for i in range(count)]
        env.copy_to_user(ptr + self.ARGS.size, struct.pack(f"<{count}i", *results))
        return 0


class HelperProbe(_StandIn):
    """Call every helper with good and bad arguments and record the results.

    ``struct { u32 full_cq; u32 n_cqs; s32 results[12]; u64 ktime[2]; u32 rand[2]; }``
    """

    name = "helper_probe"
    ARGS = struct.Struct("<II")
    RESULTS = 12

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        ptr = _ctx(ctx)[0]
        full_cq, n_cqs = self.load_args(env, ptr)
        out = memoryview(bytearray(16))
        scratch = memoryview(bytearray(8))
        t0 = env.ktime_get_ns()
        results = [
            env.emit_cqe(n_cqs, 1, 0, 0),                 # 0: CQ that does not exist
            env.emit_cqe(full_cq, 2, 0, 0),               # 1: fills the last slot
            env.emit_cqe(full_cq, 3, 0, 0),               # 2: full extra CQ -> dropped
            env.reap_cqe(n_cqs, out),                     # 3: bad CQ
            env.reap_cqe(1, out),                         # 4: empty CQ 1
            env.reap_cqe(full_cq, memoryview(bytearray(8))),  # 5: out too short
            env.copy_to_user(0, b"x"),                    # 6: NULL
            env.copy_to_user(ptr + (1 << 40), b"x"),     # 7: far outside user memory
            env.copy_from_user(scratch, 0),               # 8: NULL (zero-filled)
            env.copy_from_user(scratch, ptr),             # 9: good
            env.submit(b"\0" * 63),                       # 10: SQE of the wrong size
            env.reap_cqe(full_cq, out),                   # 11: the CQE emitted by call 1
        ]
        t1 = env.ktime_get_ns()
        blob = struct.pack(f"<{self.RESULTS}iQQII", *results, t0, t1, env.get_prandom_u32(),
                           env.get_prandom_u32())
        env.copy_to_user(ptr + self.ARGS.size, blob)
        return 0


class CancelSelf(_StandIn):
    """Submit an ASYNC_CANCEL aimed at its own request while it runs, then complete.

    ``struct { u64 cancel_user_data; }``"""

    name = "cancel_self"
    ARGS = struct.Struct("<Q")

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        user_data = _ctx(ctx)[0]
        (cancel_ud,) = self.load_args(env, user_data)
        env.submit(prep_cancel(user_data, user_data=cancel_ud).pack())
        return 0


_PROGRAMS = {cls.name: cls for cls in (CtxRecorder, Faulting, Waiter, SubmitMany, SubmitChain,
                                       Emitter, HelperProbe, CancelSelf)}


def load(name: str) -> _StandIn:
    """A ready-to-register program called ``name``."""
    return _PROGRAMS[name]()
