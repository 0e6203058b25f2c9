"""A sandbox violation or a runaway loop aborts the run with BpfRunError, on both paths.

Out-of-bounds stack access through a pointer, a NULL dereference, a store into frozen
.rodata, a bad ctx argument to a helper and an endless loop each abort with the documented
errno (EFAULT, EINVAL, ELOOP) and a message naming the program and instruction; the program
stays usable for the next run.
"""

from __future__ import annotations

import errno

import pytest
from insn_builder import I, exit_, mov64, verified

from uring.bpf import ArrayMap, io_uring_helpers, isa
from uring.bpf.interpreter import Interpreter
from uring.bpf.translator import translate
from uring.program import BpfRunError

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K


def runners(insns, maps=(), budget=10_000):
    prog = verified(list(insns), maps=list(maps))
    helpers = io_uring_helpers()
    return (Interpreter(prog, list(maps), helpers, budget).run,
            translate(prog, list(maps), helpers, budget).run)


def abort(run) -> BpfRunError:
    with pytest.raises(BpfRunError) as info:
        run(bytearray(16), None)
    return info.value


def both_abort(insns, maps=(), budget=10_000) -> BpfRunError:
    a, b = (abort(r) for r in runners(insns, maps, budget))
    assert (str(a), a.errno) == (str(b), b.errno)
    return a


def test_stack_overrun_through_a_pointer() -> None:
    err = both_abort([I(MOVX, 1, 10), I(ADDK, 1, 0, 0, 8),
                      I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW, 1, 1, -4), mov64(0, 0),
                      exit_()])
    assert err.errno == errno.EFAULT
    assert "insn 2" in str(err) and "invalid write of 8 bytes" in str(err)


def test_null_dereference() -> None:
    err = both_abort([mov64(1, 0), I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 0, 1, 0), exit_()])
    assert err.errno == errno.EFAULT and "NULL" in str(err)


def test_store_into_frozen_rodata() -> None:
    ro = ArrayMap(".rodata", 4, 8, 1, frozen=True)
    insns = [I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_VALUE, 0, 0), I(0, 0, 0, 0, 0),
             I(isa.BPF_ST | isa.BPF_MEM | isa.BPF_W, 1, 0, 0, 7), mov64(0, 0), exit_()]
    err = both_abort(insns, [ro])
    assert err.errno == errno.EFAULT and "read-only" in str(err)
    assert ro.data == bytes(8)


def test_helper_given_a_non_ctx_pointer() -> None:
    # bpf_io_uring_submit(r10 - 64, r10 - 64, 64)
    insns = [I(MOVX, 1, 10), I(ADDK, 1, 0, 0, -64), I(MOVX, 2, 1), mov64(3, 64),
             I(isa.OP_CALL, 0, 0, 0, 164), exit_()]
    err = both_abort(insns)
    assert err.errno == errno.EINVAL and "expected the ctx pointer" in str(err)


def test_endless_loop_hits_the_budget() -> None:
    insns = [mov64(0, 0), I(ADDK, 0, 0, 0, 1),
             I(isa.BPF_JMP | isa.BPF_JNE | isa.BPF_K, 0, 0, -2, -1), exit_()]
    err = both_abort(insns, budget=500)
    assert err.errno == errno.ELOOP and "budget of 500" in str(err)


def test_program_runs_again_after_an_abort() -> None:
    # reads ctx->wait_nr; faults when it is 1 (jumps to a NULL load)
    insns = [I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 2, 1, 8),
             I(isa.BPF_JMP | isa.BPF_JEQ | isa.BPF_K, 2, 0, 2, 1),
             mov64(0, 5), exit_(),
             mov64(3, 0), I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 0, 3, 0), exit_()]
    for run in runners(insns):
        with pytest.raises(BpfRunError):
            run(bytearray(b"\0" * 8 + b"\x01" + b"\0" * 7), None)
        assert run(bytearray(16), None) == 5
