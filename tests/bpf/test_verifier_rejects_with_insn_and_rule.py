"""The load-time verifier rejects each kind of bad program, naming the instruction and rule.

One small hand-assembled program per rule; a good program of the same shape is accepted, so
each rejection is caused by the one thing that is wrong.
"""

from __future__ import annotations

import pytest
from insn_builder import I, exit_, ld_imm64, mov64, verified

from uring.bpf import ArrayMap, HelperRegistry, isa
from uring.bpf.errors import VerifierError

ALU64_K = isa.BPF_ALU64 | isa.BPF_K
CALL = isa.OP_CALL


def reject(insns, **kw) -> VerifierError:
    with pytest.raises(VerifierError) as info:
        verified(insns, **kw)
    return info.value


def test_minimal_program_is_accepted() -> None:
    prog = verified([mov64(0, 0), exit_()])
    assert prog.log[-1].startswith("accepted")


@pytest.mark.parametrize(
    ("insns", "pc", "rule"),
    [
        ([I(0xFF), exit_()], 0, "opcode"),
        ([I(isa.BPF_LD | isa.BPF_ABS | isa.BPF_W), exit_()], 0, "opcode"),
        ([mov64(0, 0), I(ALU64_K | isa.BPF_ADD, 11), exit_()], 1, "opcode"),
        ([mov64(10, 0), exit_()], 0, "frame-pointer"),
        ([mov64(0, 1), I(ALU64_K | isa.BPF_LSH, 0, 0, 0, 64), exit_()], 1, "shift"),
        ([mov64(0, 1), I(ALU64_K | isa.BPF_DIV, 0, 0, 0, 0), exit_()], 1, "div-by-zero"),
        ([mov64(0, 0), I(isa.OP_JA, 0, 0, 5), exit_()], 1, "jump-range"),
        ([mov64(0, 0), I(isa.OP_JA, 0, 0, 1), *ld_imm64(1, 5), exit_()], 1, "jump-range"),
        ([mov64(0, 0)], 0, "fall-off"),
        ([mov64(0, 0), I(isa.BPF_JMP | isa.BPF_JEQ | isa.BPF_K, 0, 0, 1, 0), exit_(),
          mov64(0, 1)], 3, "fall-off"),
        ([mov64(0, 0), exit_(), mov64(0, 1), exit_()], 2, "unreachable"),
        ([mov64(0, 0), I(CALL, 0, 0, 0, 99), exit_()], 1, "helper"),
        ([mov64(1, 0), exit_()], 1, "uninit"),
        ([mov64(0, 0), I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW, 10, 0, -520), exit_()], 1,
         "stack"),
        ([mov64(0, 0), I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_W, 10, 0, 0), exit_()], 1,
         "stack"),
        ([*ld_imm64(1, 0)[:1], I(0, 0, 0, 0, 0), mov64(0, 0), exit_()], None, None),
    ],
)
def test_rule_is_enforced(insns, pc, rule) -> None:
    if rule is None:  # control: well-formed
        verified(insns)
        return
    err = reject(insns)
    assert (err.insn, err.rule) == (pc, rule)
    assert f"insn {pc}" in str(err) and rule in str(err)
    assert err.log[-1].endswith(f"[{rule}]")


def test_read_after_call_clobber_is_rejected() -> None:
    insns = [mov64(1, 0), I(CALL, 0, 0, 0, 5), I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, 0, 1),
             exit_()]
    err = reject(insns)
    assert (err.insn, err.rule) == (2, "uninit")
    assert "R1 !read_ok" in str(err)


def test_helper_allowed_only_if_the_registry_has_it() -> None:
    insns = [I(CALL, 0, 0, 0, 5), exit_()]
    verified(insns)  # ktime is in the io_uring registry
    err = reject(insns, helpers=HelperRegistry("empty"))
    assert err.rule == "helper" and "program type empty" in str(err)


def test_map_references_must_name_a_map() -> None:
    m = ArrayMap("m", 4, 8, 1)
    good = [I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, 0), I(0), mov64(0, 0), exit_()]
    verified(good, maps=[m])
    bad = [I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, 1), I(0), mov64(0, 0), exit_()]
    assert reject(bad, maps=[m]).rule == "map"
    value = [I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_VALUE, 0, 0), I(0, 0, 0, 0, 8),
             mov64(0, 0), exit_()]
    assert reject(value, maps=[m]).rule == "map"


def test_recursion_and_call_targets() -> None:
    # main calls f (at 3), f calls itself
    insns = [I(CALL, 0, isa.BPF_PSEUDO_CALL, 0, 2), mov64(0, 0), exit_(),
             I(CALL, 0, isa.BPF_PSEUDO_CALL, 0, -1), exit_()]
    err = reject(insns, functions=[("main", 0, 3), ("f", 3, 5)])
    assert err.rule == "call" and "recursive" in str(err)
    bad_target = [I(CALL, 0, isa.BPF_PSEUDO_CALL, 0, 0), mov64(0, 0), exit_()]
    assert reject(bad_target).rule == "call"


def test_program_size_limit() -> None:
    from insn_builder import linked

    from uring.bpf.helpers import io_uring_helpers
    from uring.bpf.verifier import verify

    insns = [mov64(0, 0)] * 10 + [exit_()]
    with pytest.raises(VerifierError) as info:
        verify(linked(insns), [], io_uring_helpers(), max_insns=8)
    assert info.value.rule == "size"
