"""Pointer facts survive spills, joins and loops only where they are true: generated programs.

Hypothesis builds programs that move pointers around the way clang's code does and the
analysis has to follow: array-map lookups at several call sites (keys constant, bounded or
arbitrary; the NULL check sometimes missing), the values spilled to stack slots and filled
back, slots overwritten by scalars or narrower stores on some paths, pointer arithmetic after
a fill (constant, bounded, unbounded, negative), forward branches that join paths holding
different pointers in the same register or slot, loads and stores through all of it (some
out of bounds), stack accesses at a bounded variable offset, a helper writing a stack range
of variable size, 32-bit compares against registers with high bits set, and a bounded loop
that steps a pointer.  The interpreter and the translator must leave identical registers
(R0, R6..R10), stack, instruction counts, helper calls, user memory and maps -- or fail with
the identical error.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from insn_builder import I, exit_, ld_imm64, mov64, verified
from recording_env import USER_BASE, RecordingEnv
from vm_pair import run_outcome

from uring.bpf import ArrayMap, io_uring_helpers, isa
from uring.bpf.interpreter import Interpreter
from uring.bpf.translator import translate

SIZES = {1: isa.BPF_B, 2: isa.BPF_H, 4: isa.BPF_W, 8: isa.BPF_DW}
PTRS = (0, 7, 8)  # registers that carry pointers around (R6 keeps the ctx, R9 counts)
SLOTS = (-8, -16, -24, -32)  # spill slots; -48 holds lookup keys, -96..-64 a buffer
MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
ADDX = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X
ANDK = isa.BPF_ALU64 | isa.BPF_AND | isa.BPF_K
VALUE = 16  # value size of both maps: offsets -4..20 hit both sides of the bounds
KEY = -48


def call(helper: int) -> I:
    return I(isa.OP_CALL, 0, 0, 0, helper)


@st.composite
def lookup(draw):
    """rX = map_lookup_elem(map 0 or 1, &key): the key constant, bounded or arbitrary, the
    NULL check there (jumping over the next items) or not."""
    reg = draw(st.sampled_from(PTRS))
    kind = draw(st.sampled_from(["const", "const", "bounded", "any"]))
    if kind == "const":
        key = [I(isa.BPF_ST | isa.BPF_MEM | isa.BPF_W, 10, 0, KEY, draw(st.integers(0, 4)))]
    else:
        src = draw(st.sampled_from((7, 8)))
        key = [I(MOVX, 2, src)] + ([I(ANDK, 2, 0, 0, 3)] if kind == "bounded" else []) + [
            I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_W, 10, 2, KEY)]
    body = key + [I(MOVX, 2, 10), I(ADDK, 2, 0, 0, KEY),
                  I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, draw(st.integers(0, 1))),
                  I(0), call(1), I(MOVX, reg, 0)]
    items = [body]
    if draw(st.integers(0, 3)):
        items.append([("NULLCHECK", reg, draw(st.integers(1, 3)))])
    return items


@st.composite
def spill(draw):
    return [[I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW, 10, draw(st.sampled_from(PTRS)),
               draw(st.sampled_from(SLOTS)))]]


@st.composite
def fill(draw):
    return [[I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, draw(st.sampled_from(PTRS)), 10,
               draw(st.sampled_from(SLOTS)))]]


@st.composite
def clobber_slot(draw):
    """A scalar over a spill slot: all of it, or a narrower part."""
    size = draw(st.sampled_from([8, 4, 1]))
    off = draw(st.sampled_from(SLOTS)) + draw(st.sampled_from([0, 0, 4] if size < 8 else [0]))
    return [[I(isa.BPF_ST | isa.BPF_MEM | SIZES[size], 10, 0, off, draw(st.integers(0, 99)))]]


@st.composite
def deref(draw):
    reg = draw(st.sampled_from(PTRS))
    size = draw(st.sampled_from(list(SIZES)))
    off = draw(st.sampled_from([0, 0, 4, 8, 8, 12, VALUE - size, VALUE - size + 1, -4,
                                VALUE]))
    mode = isa.BPF_MEM | SIZES[size]
    if draw(st.booleans()):
        return [[I(isa.BPF_LDX | mode, draw(st.sampled_from((9, 0))), reg, off)]]
    if draw(st.booleans()):
        return [[I(isa.BPF_ST | mode, reg, 0, off, draw(st.integers(0, 200)))]]
    return [[I(isa.BPF_STX | mode, reg, draw(st.sampled_from((6, 9))), off)]]


@st.composite
def arith(draw):
    reg = draw(st.sampled_from(PTRS))
    kind = draw(st.sampled_from(["const", "const", "bounded", "unbounded", "sub", "mov",
                                 "fp", "ctx"]))
    if kind == "const":
        return [[I(ADDK, reg, 0, 0, draw(st.sampled_from([4, 8, -4, -8, 1, 16])))]]
    if kind == "bounded":  # reg += other & 12
        return [[I(MOVX, 3, draw(st.sampled_from((6, 9)))), I(ANDK, 3, 0, 0, 12),
                 I(ADDX, reg, 3)]]
    if kind == "unbounded":
        return [[I(ADDX, reg, 9)]]
    if kind == "sub":
        return [[I(isa.BPF_ALU64 | isa.BPF_SUB | isa.BPF_K, reg, 0, 0, draw(st.integers(1, 8)))]]
    if kind == "mov":
        return [[I(MOVX, reg, draw(st.sampled_from(PTRS)))]]
    if kind == "fp":
        return [[I(MOVX, reg, 10), I(ADDK, reg, 0, 0, -96)]]
    return [[I(MOVX, reg, 6)]]


@st.composite
def var_stack(draw):
    """An access to r10 - 96 + (r9 & mask): a bounded variable offset into the buffer."""
    mask = draw(st.sampled_from([7, 24, 31, 255]))
    size = draw(st.sampled_from(list(SIZES)))
    mode = isa.BPF_MEM | SIZES[size]
    head = [I(MOVX, 4, 9), I(ANDK, 4, 0, 0, mask), I(MOVX, 5, 10), I(ADDK, 5, 0, 0, -96),
            I(ADDX, 5, 4)]
    if draw(st.booleans()):
        return [head + [I(isa.BPF_LDX | mode, 0, 5, 0)]]
    return [head + [I(isa.BPF_STX | mode, 5, 6, 0)]]


@st.composite
def var_copy(draw):
    """bpf_copy_from_user(r10 - 96, r9 & mask, user): a stack range of variable size."""
    mask = draw(st.sampled_from([7, 31, 63]))
    return [[I(MOVX, 1, 10), I(ADDK, 1, 0, 0, -96), I(MOVX, 2, 9), I(ANDK, 2, 0, 0, mask),
             *ld_imm64(3, USER_BASE + draw(st.integers(0, 512))), call(148)]]


@st.composite
def scalar(draw):
    reg = draw(st.sampled_from((9, 0)))
    if draw(st.booleans()):
        return [[*ld_imm64(reg, draw(st.sampled_from([0, 3, 12, 1 << 32, (1 << 32) + 5,
                                                       2**64 - 1])))]]
    return [[I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, reg, 6, draw(st.sampled_from([0, 4])))]]


@st.composite
def stepping_loop(draw):
    """for (r9 = n; r9; r9--) { *(u32 *)(rX + 0) += 1; rX += 4; } -- a pointer stepped by a
    constant while a counter runs down."""
    reg = draw(st.sampled_from(PTRS))
    n = draw(st.integers(1, 5))
    return [[mov64(9, n), ("LOOP_START",), I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 4, reg, 0),
             I(ADDK, 4, 0, 0, 1), I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_W, reg, 4, 0),
             I(ADDK, reg, 0, 0, 4), I(ADDK, 9, 0, 0, -1), ("LOOP_END",)]]


@st.composite
def segment(draw):
    groups = draw(st.lists(st.one_of(lookup(), lookup(), spill(), spill(), fill(), fill(),
                                     clobber_slot(), deref(), deref(), arith(), var_stack(),
                                     var_copy(), scalar(), stepping_loop()),
                           min_size=1, max_size=16))
    items = [item for group in groups for item in group]
    for _ in range(draw(st.integers(0, 4))):  # forward jumps over whole items
        at = draw(st.integers(0, len(items) - 1))
        op = draw(st.sampled_from([isa.BPF_JEQ, isa.BPF_JGT, isa.BPF_JSET, isa.BPF_JNE]))
        cls = draw(st.sampled_from([isa.BPF_JMP, isa.BPF_JMP32]))
        if draw(st.booleans()):  # against a register (a 32-bit compare sees its low half)
            cond = ("X", cls | op, draw(st.sampled_from((9, 0, 7))),
                    draw(st.sampled_from((9, 0, 8))))
        else:
            cond = ("K", cls | op, draw(st.sampled_from((9, 0, 7))), draw(st.integers(0, 5)))
        items.insert(at, [("JUMP", draw(st.integers(1, 4)), cond)])
    return items


@st.composite
def program(draw):
    items = draw(segment())
    init = [I(MOVX, 6, 1), *ld_imm64(9, draw(st.sampled_from([0, 5, 12, (1 << 32) + 3])))]
    for r in PTRS:
        init.append(I(MOVX, r, draw(st.sampled_from((6, 10)))))
    flat: list = []
    starts = []
    for item in items:
        starts.append(len(flat))
        flat.extend(item)
    starts.append(len(flat))
    main: list = []  # instructions and jumps, jump targets still positions in flat
    at_main: dict[int, int] = {}  # flat position -> index in main (markers: the next one)
    loop_at: list[int] = []
    for pc, ins in enumerate(flat):
        at_main[pc] = len(main)
        idx = max(i for i, s in enumerate(starts) if s <= pc)
        if isinstance(ins, tuple) and ins[0] == "JUMP":
            main.append(("J", ins[2], starts[min(idx + ins[1], len(starts) - 1)]))
        elif isinstance(ins, tuple) and ins[0] == "NULLCHECK":
            cond = ("K", isa.BPF_JMP | isa.BPF_JEQ, ins[1], 0)
            main.append(("J", cond, starts[min(idx + 1 + ins[2], len(starts) - 1)]))
        elif isinstance(ins, tuple) and ins[0] == "LOOP_START":
            loop_at.append(len(main))
        elif isinstance(ins, tuple) and ins[0] == "LOOP_END":
            main.append(("BACK", loop_at.pop()))
        else:
            main.append(ins)
    at_main[len(flat)] = len(main)
    out: list = list(init)
    index_of: dict[int, int] = {}
    for i, ins in enumerate(main):
        index_of[i] = len(out)
        out.append(ins)
    index_of[len(main)] = len(out)
    out += [mov64(0, 0), exit_()]
    insns = []
    for pc, ins in enumerate(out):
        if isinstance(ins, tuple) and ins[0] == "J":
            (kind, op, d, other), target = ins[1], index_of[at_main[ins[2]]]
            if kind == "X":
                insns.append(I(op | isa.BPF_X, d, other, target - pc - 1))
            else:
                insns.append(I(op | isa.BPF_K, d, 0, target - pc - 1, other))
        elif isinstance(ins, tuple) and ins[0] == "BACK":
            target = index_of[ins[1]]
            insns.append(I(isa.BPF_JMP | isa.BPF_JNE | isa.BPF_K, 9, 0, target - pc - 1, 0))
        else:
            insns.append(ins)
    return insns


def fresh(seed: int):
    env = RecordingEnv(seed=seed)
    env.user[:] = bytes((i * 13 + seed) & 0xFF for i in range(len(env.user)))
    maps = [ArrayMap("a", 4, VALUE, 4), ArrayMap("b", 4, VALUE, 3)]
    for k, m in enumerate(maps):
        m.data[:] = bytes((i + 40 * k) & 0xFF for i in range(len(m.data)))
    return env, maps


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program(), st.integers(0, 3), st.sampled_from([0, 2, 0xFFFFFFFF]))
def test_pointer_facts_run_identically(insns, seed, wait_nr) -> None:
    env_a, maps_a = fresh(seed)
    env_b, maps_b = fresh(seed)
    helpers = io_uring_helpers()
    interp = Interpreter(verified(insns, maps_a), maps_a, helpers, 100_000)
    fast = translate(verified(insns, maps_b), maps_b, helpers, 100_000, debug=True)
    ctx_a = bytearray(USER_BASE.to_bytes(8, "little") + wait_nr.to_bytes(4, "little") + bytes(4))
    ctx_b = bytearray(ctx_a)
    a = run_outcome(lambda: interp.run_state(ctx_a, env_a), env_a, maps_a)
    b = run_outcome(lambda: fast.run(ctx_b, env_b), env_b, maps_b)
    assert a == b
    assert ctx_a == ctx_b
