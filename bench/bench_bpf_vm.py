"""Interpreter vs translator on a realistic program: ns per executed instruction and ratio.

The workload is ``bpf_programs/keepalive_scan.bpf.c``: one run walks CONNS connection slots
of an array map, and for every due connection builds and submits a SENDMSG SQE, draws a
jitter and reschedules (77 instructions per connection).  Both paths run the same object
against the same in-process helper environment; the map is reset to "everything due" before
each run.  As a floor, the same policy written directly in Python (struct views over the
same map, the same engine calls) runs in the same process; all three must queue identical
SQEs and leave identical maps.  Prints ns per executed instruction, us per connection
handled and the ratios, all measured side by side.

    python bench/bench_bpf_vm.py [--conns 1000] [--runs 20]
"""

from __future__ import annotations

import argparse
import random
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
SQE_SENDMSG = struct.Struct("<BBHiQQIIQ8xH14x")  # the fields keepalive_scan sets (cq_idx at 48)
IORING_OP_SENDMSG = 9
IOSQE_CQE_SKIP_SUCCESS = 64
MAX_UNACKED = 3
WAKE_UNRESPONSIVE = 4


class BenchEnv:
    """The engine side, reduced to what the program touches; keeps the submitted SQEs.

    Each method does what the engine's does (``uring.bpf_env``), minus ring bookkeeping:
    ``get_prandom_u32`` is ``Random.getrandbits(32)``, ``submit`` queues the bytes."""

    def __init__(self) -> None:
        self.user = bytearray(64 * 1024)
        self.sqes: list[bytes] = []
        self.cqes: list[tuple[int, int, int, int]] = []
        self.now = 10**12
        self.random = random.Random(12345)

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
        return self.random.getrandbits(32)


def plain_python_scan(conns: bytearray, stats: bytearray, env: BenchEnv, args_addr: int) -> None:
    """keepalive_scan written directly in Python: the floor for the same work."""
    msg_base, first, count, fd, send_cq, _, _ = ARGS.unpack_from(env.user,
                                                                 args_addr - USER_BASE)
    count = min(count, 4096)
    now = env.ktime_get_ns()
    q = memoryview(conns).cast("Q")
    w = memoryview(conns).cast("I")
    submit, prandom = env.submit, env.get_prandom_u32
    pings = wakes = 0
    for slot in range(first, first + count):
        if slot >= 4096:
            break
        qi, wi = slot * 6, slot * 12
        if not w[wi + 9] & 1 or q[qi] > now:
            continue
        if w[wi + 8] >= MAX_UNACKED:
            env.emit_cqe(0, q[qi + 2], WAKE_UNRESPONSIVE, 0)
            w[wi + 9] &= ~1
            wakes += 1
            continue
        if submit(SQE_SENDMSG.pack(IORING_OP_SENDMSG, IOSQE_CQE_SKIP_SUCCESS, 0, fd, 0,
                                   (msg_base + w[wi + 10]) & 0xFFFFFFFFFFFFFFFF, 1, 0,
                                   q[qi + 2], send_cq & 0xFFFF)):
            break
        interval = q[qi + 1]
        jitter = prandom() % (interval >> 3 | 1)
        w[wi + 8] = (w[wi + 8] + 1) & 0xFFFFFFFF
        q[qi + 3] = (q[qi + 3] + 1) & 0xFFFFFFFFFFFFFFFF
        q[qi] = (now + interval - jitter) & 0xFFFFFFFFFFFFFFFF
        pings += 1
    s = memoryview(stats).cast("Q")
    s[0] += 1
    s[1] += pings
    s[2] += wakes
    out = bytearray(env.user[args_addr - USER_BASE:args_addr - USER_BASE + 32])
    struct.pack_into("<II", out, 24, pings, wakes)
    env.copy_to_user(args_addr, bytes(out))


def prepare(mode: str, conns: int):
    obj = load_object(OBJ, mode=mode)
    prog = obj.programs["keepalive_scan"]
    template = bytearray(len(obj.maps["conns"].data))
    for i in range(conns):
        CONN.pack_into(template, i * CONN.size, 0, 15 * 10**9, 0x7000 + i, 100, i % 3, 1,
                       i * 64, 0)
    return obj, prog, template


def measure(mode: str, conns: int, runs: int) -> tuple[float, int, list[bytes], bytes]:
    """(best seconds per run, instructions per run, SQEs, map contents after a run)."""
    obj, prog, template = prepare("interpreter" if mode == "python" else mode, conns)
    env = BenchEnv()
    ARGS.pack_into(env.user, 0, MSG_BASE, 0, conns, 7, 1, 0, 0)
    ctx = bytearray(16)
    data, stats = obj.maps["conns"].data, obj.maps["scan_stats"].data
    best = float("inf")
    for _ in range(runs):
        data[:] = template
        env.sqes.clear()
        env.random.seed(12345)
        env.now = 10**12
        struct.pack_into("<QII", ctx, 0, ARGS_ADDR, 0, 0)
        t0 = time.perf_counter()
        if mode == "python":
            plain_python_scan(data, stats, env, ARGS_ADDR)
        else:
            prog.run(ctx, env)
        best = min(best, time.perf_counter() - t0)
    sqes, after = list(env.sqes), bytes(data)
    # count executed instructions with the reference interpreter on the same input
    data[:] = template
    prog.interpreter.run(ctx, env)
    return best, prog.interpreter.last_count, sqes, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    results = {}
    for mode in ("interpreter", "translator", "python"):
        runs = max(3, args.runs // 5) if mode == "interpreter" else args.runs
        results[mode] = measure(mode, args.conns, runs)
    reference = results["interpreter"][2:]
    for mode, (_, _, sqes, after) in results.items():
        if (sqes, after) != reference:
            raise SystemExit(f"{mode}: different SQEs or map contents than the interpreter")
    print(f"keepalive_scan: {args.conns} connections per run, best of {args.runs} runs "
          f"(interpreter: {max(3, args.runs // 5)})")
    for mode, (secs, insns, sqes, _) in results.items():
        label = "plain Python" if mode == "python" else mode
        per_insn = f"{secs / insns * 1e9:6.1f} ns/insn" if mode != "python" else " " * 14
        print(f"  {label:12s} {secs * 1e3:8.2f} ms/run  {insns:7d} insns/run  {per_insn}  "
              f"{secs / args.conns * 1e6:6.2f} us/conn  ({len(sqes)} PINGs queued)")
    interp, fast, plain = (results[m][0] for m in ("interpreter", "translator", "python"))
    print(f"  translator speed-up over the interpreter: {interp / fast:.1f}x")
    print(f"  translator cost over plain Python (same policy, same engine calls): "
          f"{fast / plain:.1f}x")


if __name__ == "__main__":
    main()
