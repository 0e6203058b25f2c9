"""Translated code calls the engine's methods directly for the standard helpers, identically.

The standard io_uring helpers only convert their arguments and forward to one BpfEnv
method; the translator emits that call itself.  The engine must see the same calls with the
same arguments as through the interpreter (cq_idx and flags masked to 32 bits, res
sign-converted, an SQE of the wrong size refused without a call), a registry that replaces
an implementation gets its own function called, and an engine lacking a method fails only
when a run reaches the call, as with the interpreter.
"""

from __future__ import annotations

import pytest
from insn_builder import I, exit_, ld_imm64, mov64, verified
from vm_pair import run_both

from uring.bpf import Arg, HelperSpec, io_uring_helpers, isa
from uring.bpf.helpers import HelperRegistry
from uring.bpf.interpreter import Interpreter
from uring.bpf.translator import translate

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
CALL = isa.OP_CALL


def emit_then_submit(sqe_len: int) -> list:
    # r6 = ctx; emit_cqe(ctx, 2**32 + 1, ctx->user_data, 0xFFFFFFFF, 2**32 + 7)
    # then submit(ctx, r10 - 64, sqe_len) with a u64 from ctx in the SQE; return r0
    return [I(MOVX, 6, 1), I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, 3, 1, 0),
            I(MOVX, 1, 6), *ld_imm64(2, (1 << 32) + 1), *ld_imm64(4, 0xFFFFFFFF),
            *ld_imm64(5, (1 << 32) + 7), I(CALL, 0, 0, 0, 165),
            I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW, 10, 0, -64),
            I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, 7, 6, 0),
            I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW, 10, 7, -56),
            I(MOVX, 1, 6), I(MOVX, 2, 10), I(ADDK, 2, 0, 0, -64), mov64(3, sqe_len),
            I(CALL, 0, 0, 0, 164), exit_()]


@pytest.mark.parametrize("sqe_len", [64, 63])
def test_engine_sees_the_same_calls(sqe_len) -> None:
    a, b, source, env = run_both(emit_then_submit(sqe_len))
    assert a == b
    assert env.calls[0] == ("emit_cqe", 1, 1 << 40, -1, 7)
    if sqe_len == 64:
        assert env.calls[1][0] == "submit" and a[0][1] == 0
        assert "env.submit(" in source
    else:  # refused by the helper itself: -EINVAL, the engine never asked
        assert len(env.calls) == 1 and a[0][1] == (-22) & isa.MASK64
    assert "env.emit_cqe(1, " in source and "to_signed32(" not in source.split("# 10:")[0]


def test_replaced_implementation_is_called_as_registered() -> None:
    seen = []

    def submit_twice(env, ctx, sqe):
        seen.append(bytes(sqe))
        env.submit(sqe)
        return env.submit(sqe) + 5

    registry = HelperRegistry("io_uring", tuple(
        HelperSpec(164, "bpf_io_uring_submit", (Arg.CTX, Arg.MEM, Arg.SIZE), submit_twice)
        if spec.id == 164 else spec for spec in io_uring_helpers()))
    a, b, source, env = run_both(emit_then_submit(64), helpers=registry)
    assert a == b and a[0][1] == 5
    assert "IMPL164(env, ctx, " in source and "env.submit(" not in source
    assert len(seen) == 2 and [c[0] for c in env.calls] == ["emit_cqe", "submit", "submit"]


class NoClockEnv:
    """An engine double without ktime_get_ns (and nothing else)."""


def run_one(insns, path: str, wait_nr: int):
    helpers = io_uring_helpers()
    prog = verified(insns, [], helpers)
    run = (Interpreter(prog, [], helpers, 1000).run if path == "interpreter"
           else translate(prog, [], helpers, 1000).run)
    return run(bytearray(8) + wait_nr.to_bytes(4, "little") + bytes(4), NoClockEnv())


@pytest.mark.parametrize("path", ["interpreter", "translator"])
def test_missing_engine_method_fails_only_when_reached(path) -> None:
    # if ctx->wait_nr == 0: return 7; else return bpf_ktime_get_ns()
    insns = [I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 2, 1, 8),
             I(isa.BPF_JMP | isa.BPF_JNE | isa.BPF_K, 2, 0, 2, 0), mov64(0, 7), exit_(),
             I(CALL, 0, 0, 0, 5), exit_()]
    assert run_one(insns, path, 0) == 7
    with pytest.raises(AttributeError, match="'NoClockEnv' object has no attribute "
                                             "'ktime_get_ns'"):
        run_one(insns, path, 1)
