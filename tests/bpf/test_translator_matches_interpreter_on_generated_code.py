"""Both execution paths agree on generated instruction sequences.

Hypothesis builds straight-line and forward-branching programs from every ALU/ALU32 op
(register and immediate forms, signed division and modulo, sign-extending moves, byte
swaps), JMP/JMP32 conditions, stack loads/stores of 1/2/4/8 bytes, sign-extending loads,
atomics, and accesses through a pointer with a random offset (which may fault).  Registers
R0..R10, the stack, the instruction count -- or the abort error -- must be identical.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from insn_builder import I, exit_, ld_imm64, verified

from uring.bpf import io_uring_helpers, isa
from uring.bpf.interpreter import Interpreter
from uring.bpf.memory import RID_STACK
from uring.bpf.translator import translate
from uring.program import BpfRunError

ALU_OPS = [isa.BPF_ADD, isa.BPF_SUB, isa.BPF_MUL, isa.BPF_DIV, isa.BPF_OR, isa.BPF_AND,
           isa.BPF_LSH, isa.BPF_RSH, isa.BPF_MOD, isa.BPF_XOR, isa.BPF_MOV, isa.BPF_ARSH]
COND_OPS = [isa.BPF_JEQ, isa.BPF_JGT, isa.BPF_JGE, isa.BPF_JSET, isa.BPF_JNE, isa.BPF_JSGT,
            isa.BPF_JSGE, isa.BPF_JLT, isa.BPF_JLE, isa.BPF_JSLT, isa.BPF_JSLE]
SIZES = [isa.BPF_B, isa.BPF_H, isa.BPF_W, isa.BPF_DW]
WORK = range(0, 9)  # R0..R8 are scratch; R9 holds a stack pointer
interesting = st.sampled_from([0, 1, 2, 3, 7, 31, 32, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFF,
                               0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                               -1, -2, -0x80000000, 1 << 33])


@st.composite
def alu(draw):
    cls = draw(st.sampled_from([isa.BPF_ALU, isa.BPF_ALU64]))
    width = 64 if cls == isa.BPF_ALU64 else 32
    kind = draw(st.sampled_from(["op", "op", "op", "neg", "end", "movsx", "signed"]))
    d = draw(st.sampled_from(WORK))
    if kind == "neg":
        return [I(cls | isa.BPF_NEG, d)]
    if kind == "end":
        imm = draw(st.sampled_from([16, 32, 64]))
        src = draw(st.sampled_from([isa.BPF_TO_LE, isa.BPF_TO_BE]))
        if cls == isa.BPF_ALU64:
            src = isa.BPF_K
        return [I(cls | isa.BPF_END | src, d, 0, 0, imm)]
    if kind == "movsx":
        off = draw(st.sampled_from([8, 16, 32] if width == 64 else [8, 16]))
        return [I(cls | isa.BPF_MOV | isa.BPF_X, d, draw(st.sampled_from(WORK)), off)]
    if kind == "signed":
        op = draw(st.sampled_from([isa.BPF_DIV, isa.BPF_MOD]))
        if draw(st.booleans()):
            return [I(cls | op | isa.BPF_X, d, draw(st.sampled_from(WORK)), 1)]
        imm = draw(interesting.filter(lambda v: v != 0 and -2**31 <= v < 2**31))
        return [I(cls | op | isa.BPF_K, d, 0, 1, imm)]
    op = draw(st.sampled_from(ALU_OPS))
    if draw(st.booleans()):
        return [I(cls | op | isa.BPF_X, d, draw(st.sampled_from(WORK)))]
    if op in (isa.BPF_LSH, isa.BPF_RSH, isa.BPF_ARSH):
        imm = draw(st.integers(0, width - 1))
    else:
        imm = draw(interesting.filter(lambda v: -2**31 <= v < 2**31))
        if op in (isa.BPF_DIV, isa.BPF_MOD) and imm == 0:
            imm = 3
    return [I(cls | op | isa.BPF_K, d, 0, 0, imm)]


@st.composite
def memory(draw):
    size = draw(st.sampled_from(SIZES))
    nbytes = isa.SIZE_BYTES[size]
    kind = draw(st.sampled_from(["ldx", "stx", "st", "ldsx", "atomic", "ptr_ldx", "ptr_stx"]))
    reg = draw(st.sampled_from(WORK))
    slot = -8 * draw(st.integers(1, 32)) + draw(st.sampled_from([0, 0, 1, 2, 4])) % (9 - nbytes)
    if kind == "ldx":
        return [I(isa.BPF_LDX | isa.BPF_MEM | size, reg, isa.R10, slot)]
    if kind == "ldsx" and size != isa.BPF_DW:
        return [I(isa.BPF_LDX | isa.BPF_MEMSX | size, reg, isa.R10, slot)]
    if kind == "st":
        return [I(isa.BPF_ST | isa.BPF_MEM | size, isa.R10, 0, slot, draw(interesting.filter(
            lambda v: -2**31 <= v < 2**31)))]
    if kind == "atomic":
        size = draw(st.sampled_from([isa.BPF_W, isa.BPF_DW]))
        op = draw(st.sampled_from(sorted(isa.ATOMIC_OPS)))
        slot = -8 * draw(st.integers(1, 32))
        return [I(isa.BPF_STX | isa.BPF_ATOMIC | size, isa.R10, reg, slot, op)]
    off = draw(st.integers(-300, 300))
    if kind == "ptr_ldx":
        return [I(isa.BPF_LDX | isa.BPF_MEM | size, reg, isa.R9, off)]
    if kind == "ptr_stx":
        return [I(isa.BPF_STX | isa.BPF_MEM | size, isa.R9, reg, off)]
    return [I(isa.BPF_STX | isa.BPF_MEM | size, isa.R10, reg, slot)]


@st.composite
def program(draw):
    body: list[list] = draw(st.lists(st.one_of(alu(), alu(), memory()), min_size=1,
                                     max_size=40))
    # forward conditional jumps between body items
    items = [list(x) for x in body]
    n_jumps = draw(st.integers(0, 6))
    for _ in range(n_jumps):
        at = draw(st.integers(0, len(items) - 1))
        items.insert(at, ["JUMP", draw(st.integers(1, 8)), draw(st.sampled_from(COND_OPS)),
                          draw(st.sampled_from([isa.BPF_JMP, isa.BPF_JMP32])),
                          draw(st.booleans()), draw(st.sampled_from(WORK)),
                          draw(st.sampled_from(WORK)), draw(interesting.filter(
                              lambda v: -2**31 <= v < 2**31))])
    flat: list = []
    starts = []
    for item in items:
        starts.append(len(flat))
        flat.extend(item if item[0] != "JUMP" else [item])
    starts.append(len(flat))
    out = []
    for pc, ins in enumerate(flat):
        if isinstance(ins, list):
            _, skip, op, cls, use_x, d, s, imm = ins
            idx = starts.index(pc)
            target = starts[min(idx + skip, len(starts) - 1)]
            if use_x:
                out.append(I(cls | op | isa.BPF_X, d, s, target - pc - 1))
            else:
                out.append(I(cls | op | isa.BPF_K, d, 0, target - pc - 1, imm))
        else:
            out.append(ins)
    init = []
    for r in WORK:
        init += ld_imm64(r, draw(st.integers(0, 2**64 - 1)) if draw(st.booleans())
                         else draw(interesting) & isa.MASK64)
    init.append(I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, isa.R9, isa.R10))
    init.append(I(isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K, isa.R9, 0, 0,
                  draw(st.integers(-520, 8))))
    return init + out + [exit_()]


def run_path(fn):
    try:
        regs, state = fn()
    except BpfRunError as exc:
        return ("error", str(exc), exc.errno)
    return ("ok", list(regs), bytes(state.regions[RID_STACK][0]), state.count)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program())
def test_generated_programs_run_identically(insns) -> None:
    prog = verified(insns)
    helpers = io_uring_helpers()
    interp = Interpreter(prog, [], helpers, 10_000)
    fast = translate(prog, [], helpers, 10_000, debug=True)
    a = run_path(lambda: interp.run_state(bytearray(16), None))
    b = run_path(lambda: fast.run(bytearray(16), None))
    assert a == b
