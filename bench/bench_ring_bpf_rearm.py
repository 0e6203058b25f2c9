"""Engine cost of one BPF re-run: emit a CQE into the CQ the request waits on, re-run, reap.

This is the loop a parked connection's program goes through on every event.  Measured side by
side in one run:

* the floor: calling the same program's ``run`` directly with an environment that does
  nothing (what the program itself costs);
* the engine: the same program as an IORING_OP_BPF request that re-arms itself ``--runs``
  times by emitting into CQ 1 and waiting for one CQE there, on each backend.

Prints microseconds per run and the engine's overhead over the floor.  Bounded by ``--runs``.

    python bench/bench_ring_bpf_rearm.py [--runs 20000]
"""

from __future__ import annotations

import argparse
import struct
import time

from uring.abi import BPF_CTX_STRUCT, prep_bpf
from uring.backends import io_uring_available
from uring.program import BpfEnv
from uring.ring import Ring


class SelfRearm:
    """Reap the CQE that woke this run, then emit the next one and wait for it, until the
    budget in the argument block (``struct { u32 left; }``) is spent."""

    name = "bench_self_rearm"

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        ptr = BPF_CTX_STRUCT.unpack_from(ctx)[0]
        left = memoryview(bytearray(4))
        env.copy_from_user(left, ptr)
        n = struct.unpack("<I", left)[0]
        env.reap_cqe(1, memoryview(bytearray(16)))
        if n:
            env.copy_to_user(ptr, struct.pack("<I", n - 1))
            env.emit_cqe(1, ptr, 0, 0)
            struct.pack_into("<II", ctx, 8, 1, 1)
        return 0


class NullEnv:
    """Helpers that do nothing, to time the program alone."""

    def __init__(self) -> None:
        self.mem = bytearray(4)

    def submit(self, sqe: bytes) -> int:
        return 0

    def emit_cqe(self, cq_idx: int, user_data: int, res: int, flags: int) -> int:
        return 0

    def reap_cqe(self, cq_idx: int, out: memoryview) -> int:
        return -2

    def copy_to_user(self, user_ptr: int, data: bytes) -> int:
        self.mem[:] = data
        return 0

    def copy_from_user(self, dst: memoryview, user_ptr: int) -> int:
        dst[:] = self.mem
        return 0

    def ktime_get_ns(self) -> int:
        return time.monotonic_ns()

    def get_prandom_u32(self) -> int:
        return 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    args = parser.parse_args()
    program = SelfRearm()

    env = NullEnv()
    env.mem[:] = struct.pack("<I", args.runs)
    start = time.perf_counter()
    for _ in range(args.runs):
        ctx = bytearray(16)
        program.run(ctx, env)
    floor = (time.perf_counter() - start) / args.runs * 1e6
    print(f"  program alone (null helpers)          {floor:8.2f} us/run")

    backends = ["portable"] + (["io_uring"] if io_uring_available()[0] else [])
    for name in backends:
        with Ring.create(backend=name, cq_entries=(16, 16)) as ring:
            ring.register_bpf(0, program)
            block = ring.alloc.alloc(4)
            ring.user.write(block, struct.pack("<I", args.runs))
            start = time.perf_counter()
            ring.queue(prep_bpf(0, user_data=block))
            ring.submit(1, timeout=120)
            elapsed = time.perf_counter() - start
            runs = ring.engine.stats.bpf_runs
            assert ring.reap_cqe() is not None and runs == args.runs + 1, runs
            per_run = elapsed / runs * 1e6
            print(f"  {name:<9} engine re-run via CQ 1        {per_run:8.2f} us/run   "
                  f"(engine overhead {per_run - floor:.2f} us, {per_run / floor:.1f}x the "
                  f"program alone)")


if __name__ == "__main__":
    main()
