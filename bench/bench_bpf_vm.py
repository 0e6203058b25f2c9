"""Interpreter vs translator on a realistic program: ns per executed instruction and ratio.

The workload is ``bpf_programs/keepalive_scan.bpf.c``: one run walks CONNS connection slots
of an array map, and for every due connection builds and submits a SENDMSG SQE, draws a
jitter and reschedules (about 40 instructions per connection).  Both paths run the same
object against the same in-process helper environment; the map is reset to "everything due"
before each run.  Prints ns per executed instruction, us per connection handled and the
translator / interpreter speed ratio measured side by side.

    python bench/bench_bpf_vm.py [--conns 1000] [--runs 20]
"""

from __future__ import annotations

import argparse
import struct
import time
from pathlib import Path

from uring.bpf import load_object

OBJ = Path(__file__).resolve().parents[1] / "bpf_programs" / "keepalive_scan.bpf.o"
CONN = struct.Struct("<QQQQIIII")  # struct conn
ARGS = struct.Struct("<QIIiIII")  # struct scan_args (+ pad to 32)
USER_BASE = 1 << 40
ARGS_ADDR = USER_BASE
MSG_BASE = USER_BASE + 4096


class BenchEnv:
    """The engine side, reduced to what the program touches; keeps the submitted SQEs."""

    def __init__(self) -> None:
        self.user = bytearray(64 * 1024)
        self.sqes: list[bytes] = []
        self.cqes: list[tuple[int, int, int, int]] = []
        self.now = 10**12
        self.rand = 12345

    def submit(self, sqe: bytes) -> int:
        self.sqes.append(sqe)
        return 0

    def emit_cqe(self, cq_idx: int, user_data: int, res: int, flags: int) -> int:
        self.cqes.append((cq_idx, user_data, res, flags))
        return 0

    def reap_cqe(self, cq_idx: int, out: memoryview) -> int:
        return -2

    def copy_to_user(self, user_ptr: int, data: bytes) -> int:
        off = user_ptr - USER_BASE
        self.user[off:off + len(data)] = data
        return 0

    def copy_from_user(self, dst: memoryview, user_ptr: int) -> int:
        off = user_ptr - USER_BASE
        dst[:] = self.user[off:off + len(dst)]
        return 0

    def ktime_get_ns(self) -> int:
        self.now += 1000
        return self.now

    def get_prandom_u32(self) -> int:
        self.rand = (self.rand * 1103515245 + 12345) & 0xFFFFFFFF
        return self.rand


def prepare(mode: str, conns: int):
    obj = load_object(OBJ, mode=mode)
    prog = obj.programs["keepalive_scan"]
    template = bytearray(len(obj.maps["conns"].data))
    for i in range(conns):
        CONN.pack_into(template, i * CONN.size, 0, 15 * 10**9, 0x7000 + i, 100, i % 3, 1,
                       i * 64, 0)
    return obj, prog, template


def measure(mode: str, conns: int, runs: int) -> tuple[float, int, int]:
    """(seconds per run, instructions per run, pings per run)."""
    obj, prog, template = prepare(mode, conns)
    env = BenchEnv()
    ARGS.pack_into(env.user, 0, MSG_BASE, 0, conns, 7, 1, 0, 0)
    ctx = bytearray(16)
    best = float("inf")
    for _ in range(runs):
        obj.maps["conns"].data[:] = template
        env.sqes.clear()
        struct.pack_into("<QII", ctx, 0, ARGS_ADDR, 0, 0)
        t0 = time.perf_counter()
        prog.run(ctx, env)
        best = min(best, time.perf_counter() - t0)
    pings = len(env.sqes)
    # count executed instructions with the reference interpreter on the same input
    obj.maps["conns"].data[:] = template
    prog.interpreter.run(ctx, env)
    return best, prog.interpreter.last_count, pings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    results = {}
    for mode in ("interpreter", "translator"):
        runs = max(3, args.runs // 5) if mode == "interpreter" else args.runs
        results[mode] = measure(mode, args.conns, runs)
    print(f"keepalive_scan: {args.conns} connections per run, best of {args.runs} runs")
    for mode, (secs, insns, pings) in results.items():
        print(f"  {mode:12s} {secs * 1e3:8.2f} ms/run  {insns:7d} insns/run  "
              f"{secs / insns * 1e9:6.1f} ns/insn  {secs / args.conns * 1e6:6.2f} us/conn  "
              f"({pings} PINGs queued)")
    ratio = results["interpreter"][0] / results["translator"][0]
    print(f"  translator speed-up over the interpreter: {ratio:.1f}x")


if __name__ == "__main__":
    main()
