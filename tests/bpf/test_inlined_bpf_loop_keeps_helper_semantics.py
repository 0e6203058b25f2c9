"""The translator inlines the standard bpf_loop; every outcome of the helper stays the same.

bpf_loop(nr, visit, ctx, flags) with a known callback becomes a Python ``for`` loop calling
the callback's function directly.  It must still return -EINVAL for non-zero flags and
-E2BIG above BPF_MAX_LOOPS without calling the callback, stop and return i + 1 when the
callback returns non-zero, and abort with the same ELOOP error when the instruction budget
runs out inside the callback.  A registry that replaces bpf_loop's implementation is called
as registered, not inlined.
"""

from __future__ import annotations

import errno

import pytest
from insn_builder import I, exit_, mov64, verified
from recording_env import RecordingEnv
from vm_pair import run_both

from uring.bpf import Arg, HelperSpec, io_uring_helpers, isa
from uring.bpf.helpers import BPF_MAX_LOOPS, BPF_FUNC_loop, HelperRegistry
from uring.bpf.interpreter import Interpreter
from uring.bpf.translator import translate
from uring.program import BpfRunError

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
ADDX = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X
DW = isa.BPF_MEM | isa.BPF_DW
FUNCS = [("main", 0, 13), ("visit", 13, 20)]


def program(flags: int) -> list:
    # acc at r10-8 = 0; r0 = bpf_loop(ctx->wait_nr | ctx->wait_idx << 32, visit, r10-8, flags)
    # return r0 (the helper's result); visit adds i to acc and stops after i == 5
    main = [I(isa.BPF_ST | DW, 10, 0, -8, 0),
            I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 6, 1, 8),
            I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 7, 1, 12),
            I(isa.BPF_ALU64 | isa.BPF_LSH | isa.BPF_K, 7, 0, 0, 32),
            I(isa.BPF_ALU64 | isa.BPF_OR | isa.BPF_X, 6, 7), I(MOVX, 1, 6),
            I(isa.OP_LD_IMM64, 2, isa.BPF_PSEUDO_FUNC, 0, 13 - 6 - 1), I(0),
            I(MOVX, 3, 10), I(ADDK, 3, 0, 0, -8), mov64(4, flags),
            I(isa.OP_CALL, 0, 0, 0, BPF_FUNC_loop), exit_()]
    visit = [I(isa.BPF_LDX | DW, 3, 2, 0), I(ADDX, 3, 1), I(isa.BPF_STX | DW, 2, 3, 0),
             mov64(0, 0), I(isa.BPF_JMP | isa.BPF_JNE | isa.BPF_K, 1, 0, 1, 5), mov64(0, 1),
             exit_()]
    return main + visit


def nr_ctx(nr: int) -> bytes:
    return nr.to_bytes(8, "little")


@pytest.mark.parametrize(("nr", "flags", "expected"), [
    (3, 0, 3),                                   # runs to the end: nr
    (10, 0, 6),                                  # visit stops at i == 5: i + 1
    (0, 0, 0),
    (4, 1, -errno.EINVAL & isa.MASK64),          # flags must be 0
    (BPF_MAX_LOOPS + 1, 0, -errno.E2BIG & isa.MASK64),
    (1 << 40, 0, -errno.E2BIG & isa.MASK64),
])
def test_inlined_loop_returns_what_the_helper_returns(nr, flags, expected) -> None:
    a, b, source, _ = run_both(program(flags), functions=FUNCS, ctx=nr_ctx(nr))
    assert a == b
    assert a[0][1] == expected
    assert "for _li in range(" in source and "IMPL181" not in source


def test_budget_runs_out_inside_the_inlined_loop() -> None:
    insns = program(0)
    # a budget that ends in the middle of the iterations: both paths abort identically
    helpers = io_uring_helpers()
    prog = verified(insns, [], helpers, FUNCS)
    ctx = (1 << 40).to_bytes(8, "little") + nr_ctx(4)
    errors = []
    for run in (Interpreter(prog, [], helpers, 25).run_state,
                translate(prog, [], helpers, 25, debug=True).run):
        with pytest.raises(BpfRunError) as info:
            run(bytearray(ctx), RecordingEnv())
        errors.append((str(info.value), info.value.errno))
    assert errors[0] == errors[1]
    assert errors[0][1] == errno.ELOOP and "insn 13" in errors[0][0]


def test_replaced_bpf_loop_is_called_not_inlined() -> None:
    calls = []

    def counting_loop(env, nr, callback, ctx, flags):
        calls.append(nr)
        return sum(1 for i in range(nr) if not callback(i, ctx)) + 100

    base = io_uring_helpers()
    registry = HelperRegistry("io_uring", tuple(
        HelperSpec(BPF_FUNC_loop, "bpf_loop", (Arg.ANYTHING, Arg.CALLBACK, Arg.ANYTHING,
                                               Arg.ANYTHING), counting_loop)
        if spec.id == BPF_FUNC_loop else spec for spec in base))
    a, b, source, _ = run_both(program(0), functions=FUNCS, helpers=registry,
                               ctx=nr_ctx(3))
    assert a == b and a[0][1] == 103
    assert "IMPL181(" in source and "for _li in range(" not in source
    assert calls == [3, 3]  # once per path
