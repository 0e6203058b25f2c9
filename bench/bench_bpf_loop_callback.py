"""A bpf_loop callback working on its caller's stack: interpreter vs translator, side by side.

The program (assembled here, the shape clang gives ``bpf_loop(n, visit, &state, 0)``):
the caller keeps ``struct { u64 acc; u32 hits; u32 limit; }`` on its stack and passes a
pointer to it; ``visit(i, state)`` adds ``i * 3`` to ``acc``, counts a hit and stops the loop
once ``hits`` reaches ``limit``.  Every callback instruction that touches the state goes
through the context pointer, so this measures how the translator handles a callback's
context (a region fixed at translation time when every call site passes the same stack
slot).  Prints ns per executed instruction, ns per callback call and the ratio.

    python bench/bench_bpf_loop_callback.py [--loops 10000] [--runs 20]
"""

from __future__ import annotations

import argparse
import time

from uring.bpf import io_uring_helpers, isa
from uring.bpf.elf_loader import Function, LinkedProgram
from uring.bpf.interpreter import Interpreter
from uring.bpf.isa import Insn
from uring.bpf.translator import translate
from uring.bpf.verifier import verify

DW, W = isa.BPF_MEM | isa.BPF_DW, isa.BPF_MEM | isa.BPF_W
MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
MOVK = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_K
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
ADDX = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X


def I(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:  # noqa: E743
    return Insn(opcode, dst, src, off, imm)


def program(loops: int) -> LinkedProgram:
    main = [
        I(isa.BPF_ST | DW, 10, 0, -16, 0),          # state.acc = 0
        I(isa.BPF_ST | W, 10, 0, -8, 0),            # state.hits = 0
        I(isa.BPF_ST | W, 10, 0, -4, loops - 1),    # state.limit
        I(MOVK, 1, 0, 0, loops),                    # bpf_loop(loops, visit, &state, 0)
        I(isa.OP_LD_IMM64, 2, isa.BPF_PSEUDO_FUNC, 0, 0), I(0, 0, 0, 0, 0),
        I(MOVX, 3, 10), I(ADDK, 3, 0, 0, -16),
        I(MOVK, 4, 0, 0, 0),
        I(isa.OP_CALL, 0, 0, 0, 181),
        I(isa.BPF_LDX | DW, 0, 10, -16),            # return state.acc
        I(isa.OP_EXIT, 0, 0, 0, 0),
    ]
    visit = [
        I(MOVX, 3, 1),                              # acc += i * 3
        I(isa.BPF_ALU64 | isa.BPF_MUL | isa.BPF_K, 3, 0, 0, 3),
        I(isa.BPF_LDX | DW, 4, 2, 0),
        I(ADDX, 4, 3),
        I(isa.BPF_STX | DW, 2, 4, 0),
        I(isa.BPF_LDX | W, 4, 2, 8),                # if (++hits >= limit) return 1
        I(isa.BPF_ALU | isa.BPF_ADD | isa.BPF_K, 4, 0, 0, 1),
        I(isa.BPF_STX | W, 2, 4, 8),
        I(isa.BPF_LDX | W, 5, 2, 12),
        I(MOVK, 0, 0, 0, 1),
        I(isa.BPF_JMP32 | isa.BPF_JGE | isa.BPF_X, 4, 5, 1, 0),
        I(MOVK, 0, 0, 0, 0),
        I(isa.OP_EXIT, 0, 0, 0, 0),
    ]
    main[4] = main[4]._replace(imm=len(main) - 4 - 1)  # visit, relative
    insns = main + visit
    functions = [Function("loop_main", 0, len(main)), Function("visit", len(main), len(insns))]
    return LinkedProgram("loop_main", "iouring", insns, functions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    helpers = io_uring_helpers()
    prog = verify(program(args.loops), [], helpers)
    interp = Interpreter(prog, [], helpers, 10**9)
    fast = translate(prog, [], helpers, 10**9)
    results = {}
    for name, run in (("interpreter", interp.run), ("translator", fast.run)):
        runs = max(3, args.runs // 5) if name == "interpreter" else args.runs
        best, r0 = float("inf"), None
        for _ in range(runs):
            t0 = time.perf_counter()
            r0 = run(bytearray(16), None)
            best = min(best, time.perf_counter() - t0)
        results[name] = (best, r0)
    if results["interpreter"][1] != results["translator"][1]:
        raise SystemExit("the two paths returned different results")
    insns = interp.last_count
    print(f"bpf_loop callback on the caller's stack: {args.loops} calls per run, "
          f"{insns} insns per run")
    for name, (secs, _) in results.items():
        print(f"  {name:12s} {secs * 1e3:8.2f} ms/run  {secs / insns * 1e9:6.1f} ns/insn  "
              f"{secs / args.loops * 1e9:7.1f} ns/callback")
    print(f"  translator speed-up over the interpreter: "
          f"{results['interpreter'][0] / results['translator'][0]:.1f}x")


if __name__ == "__main__":
    main()
