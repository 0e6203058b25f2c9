"""The translator keeps stack bytes in locals; every way of reaching them still agrees.

Hypothesis builds programs that mix stores and loads of 1/2/4/8 bytes at overlapping R10
offsets (so cells are split, partly overwritten and read back wider or narrower) with
everything else that can see the stack: a struct filled field by field and handed to a
helper (the SQE pattern), helpers reading a stack range (``copy_to_user``, ``submit``) and
writing one (``copy_from_user``, ``reap_cqe``), loads and stores through an
address the analysis cannot place (a forged constant pointer into the frame), an array-map
lookup keyed by stack bytes, a bpf-to-bpf call and a ``bpf_loop`` callback that read and
write the caller's stack through the pointer they get, forward branches and a bounded loop.
The interpreter and the translator must leave identical registers (R0 and R6..R10: a call
leaves R1..R5 unreadable), stack (frame 0), instruction counts, helper calls, user memory and
map contents -- or the identical error.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from insn_builder import I, exit_, ld_imm64, mov64, verified
from recording_env import USER_BASE, RecordingEnv
from vm_pair import run_outcome

from uring.bpf import ArrayMap, io_uring_helpers, isa
from uring.bpf.interpreter import Interpreter
from uring.bpf.memory import stack_base
from uring.bpf.translator import translate

SIZES = {1: isa.BPF_B, 2: isa.BPF_H, 4: isa.BPF_W, 8: isa.BPF_DW}
WORK = (0, 7, 8)  # R6 keeps the ctx, R9 counts loop iterations
MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
FRAME0 = stack_base(0) + isa.STACK_SIZE  # R10 of the entry frame, as a number
values = st.sampled_from([0, 1, 7, 0x80, 0xFF, 0x1234, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, -1, -2,
                          0x123456789, 3])


def call(helper: int) -> I:
    return I(isa.OP_CALL, 0, 0, 0, helper)


def fp_ptr(reg: int, off: int) -> list:
    return [I(MOVX, reg, 10), I(ADDK, reg, 0, 0, off)]


@st.composite
def offset(draw, size: int) -> int:
    """An R10 offset in the 96 bytes the programs share, aligned to ``size`` most of the
    time (clang's own habit) and unaligned sometimes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.integers(-96, -size))
    return -size * draw(st.integers(1, 96 // size))


@st.composite
def stack_access(draw):
    size = draw(st.sampled_from(list(SIZES)))
    off = draw(offset(size))
    reg = draw(st.sampled_from(WORK))
    kind = draw(st.sampled_from(["st", "stx", "stx", "ldx", "ldx", "ldsx"]))
    mode = isa.BPF_MEM | SIZES[size]
    if kind == "st":
        return [I(isa.BPF_ST | mode, 10, 0, off, draw(values.filter(lambda v: v < 2**31)))]
    if kind == "stx":
        return [I(isa.BPF_STX | mode, 10, reg, off)]
    if kind == "ldsx" and size != 8:
        return [I(isa.BPF_LDX | isa.BPF_MEMSX | SIZES[size], reg, 10, off)]
    return [I(isa.BPF_LDX | mode, reg, 10, off)]


@st.composite
def alu(draw):
    d = draw(st.sampled_from(WORK))
    op = draw(st.sampled_from([isa.BPF_ADD, isa.BPF_XOR, isa.BPF_LSH, isa.BPF_MOV,
                               isa.BPF_RSH, isa.BPF_OR]))
    cls = draw(st.sampled_from([isa.BPF_ALU, isa.BPF_ALU64]))
    if draw(st.booleans()):
        return [I(cls | op | isa.BPF_X, d, draw(st.sampled_from(WORK)))]
    imm = draw(st.integers(0, 31)) if op in (isa.BPF_LSH, isa.BPF_RSH) else draw(
        values.filter(lambda v: -2**31 <= v < 2**31))
    return [I(cls | op | isa.BPF_K, d, 0, 0, imm)]


@st.composite
def helper_call(draw):
    kind = draw(st.sampled_from(["to_user", "from_user", "submit", "reap", "emit"]))
    off = draw(st.integers(-96, -1))
    size = draw(st.integers(0, -off))
    user = USER_BASE + draw(st.integers(0, 1024))
    if kind == "to_user":  # bpf_copy_to_user(user, r10 + off, size)
        return [*ld_imm64(1, user), *fp_ptr(2, off), mov64(3, size), call(167)]
    if kind == "from_user":  # bpf_copy_from_user(r10 + off, size, user)
        return [*fp_ptr(1, off), mov64(2, size), *ld_imm64(3, user), call(148)]
    if kind == "submit":  # bpf_io_uring_submit(ctx, r10 - 96 .., 64)
        at = draw(st.sampled_from([-96, -88, -64]))
        return [I(MOVX, 1, 6), *fp_ptr(2, at), mov64(3, 64 if at == -96 else -at), call(164)]
    if kind == "reap":  # bpf_io_uring_reap_cqe(ctx, cq, r10 + off, 16)
        off = draw(st.integers(-96, -16))
        return [I(MOVX, 1, 6), mov64(2, draw(st.integers(0, 2))), *fp_ptr(3, off),
                mov64(4, 16), call(166)]
    # bpf_io_uring_emit_cqe(ctx, cq, r7, r8, 0)
    return [I(MOVX, 1, 6), mov64(2, draw(st.integers(0, 2))), I(MOVX, 3, 7), I(MOVX, 4, 8),
            mov64(5, 0), call(165)]


@st.composite
def struct_fill(draw):
    """Zero a struct with 8-byte stores, set its fields one by one (mixed sizes, constants
    and registers), then hand it to a helper -- the way clang builds an SQE."""
    length = draw(st.sampled_from([8, 16, 24, 64]))
    base = -96 if length == 64 else -8 * draw(st.integers(length // 8, 12))
    out = []
    if draw(st.booleans()):
        out += [I(isa.BPF_ST | isa.BPF_MEM | isa.BPF_DW, 10, 0, base + k, 0)
                for k in range(0, length, 8)]
    pos = 0
    while pos < length:
        size = draw(st.sampled_from([n for n in SIZES if (base + pos) % n == 0
                                     and pos + n <= length]))
        mode = isa.BPF_MEM | SIZES[size]
        if draw(st.booleans()):
            out.append(I(isa.BPF_ST | mode, 10, 0, base + pos, draw(st.integers(0, 200))))
        elif draw(st.integers(0, 3)):
            out.append(I(isa.BPF_STX | mode, 10, draw(st.sampled_from(WORK)), base + pos))
        pos += size  # (skipped fields keep what the zeroing or earlier code left)
    if length == 64 and draw(st.booleans()):
        return out + [I(MOVX, 1, 6), *fp_ptr(2, base), mov64(3, 64), call(164)]
    user = USER_BASE + draw(st.integers(0, 1024))
    return out + [*ld_imm64(1, user), *fp_ptr(2, base), mov64(3, length), call(167)]


@st.composite
def unplaced_access(draw):
    """A load or store through a forged address of this frame's stack: the analysis sees a
    plain number, so the buffer must be current (loads) or re-read (stores)."""
    size = draw(st.sampled_from(list(SIZES)))
    off = draw(offset(size))
    reg = draw(st.sampled_from(WORK))
    head = ld_imm64(5, FRAME0 + off)
    if draw(st.integers(0, 3)) == 0:
        return [*head, I(isa.BPF_STX | isa.BPF_MEM | SIZES[size], 5, reg, 0)]
    return [*head, I(isa.BPF_LDX | isa.BPF_MEM | SIZES[size], reg, 5, 0)]


@st.composite
def lookup(draw):
    """arr[*(u32 *)(r10 + off)]: read or bump the value when found."""
    off = draw(offset(4))
    body = [*fp_ptr(2, off), I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, 0), I(0),
            call(1), I(isa.BPF_JMP | isa.BPF_JEQ | isa.BPF_K, 0, 0, 3, 0)]
    field = draw(st.sampled_from([0, 4, 8, 12, 6]))
    size = 4 if field % 4 == 0 else 2
    mode = isa.BPF_MEM | SIZES[size]
    return body + [I(isa.BPF_LDX | mode, 7, 0, field), I(ADDK, 7, 0, 0, 1),
                   I(isa.BPF_STX | mode, 0, 7, field)]


@st.composite
def subprogram_call(draw):
    """r0 = bump(r10 + off) (a bpf-to-bpf call), or bpf_loop(n, visit, r10 + off, 0)."""
    off = -8 * draw(st.integers(1, 12))
    if draw(st.booleans()):
        return [*fp_ptr(1, off), ("CALL", "bump")]
    return [mov64(1, draw(st.integers(0, 4))), ("FUNC", "visit", 2), *fp_ptr(3, off),
            mov64(4, 0), call(181)]


def bump() -> list:
    # *(u32 *)(r1 + 4) += 3; return *(u64 *)(r1 + 0)
    w = isa.BPF_MEM | isa.BPF_W
    return [I(isa.BPF_LDX | w, 2, 1, 4), I(ADDK, 2, 0, 0, 3), I(isa.BPF_STX | w, 1, 2, 4),
            I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, 0, 1, 0), exit_()]


def visit() -> list:
    # *(u64 *)(r2 + 0) += i; *(u8 *)(r2 + 3) = i; return 0
    dw, b = isa.BPF_MEM | isa.BPF_DW, isa.BPF_MEM | isa.BPF_B
    return [I(isa.BPF_LDX | dw, 3, 2, 0), I(isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X, 3, 1),
            I(isa.BPF_STX | dw, 2, 3, 0), I(isa.BPF_STX | b, 2, 1, 3), mov64(0, 0), exit_()]


@st.composite
def segment(draw, depth: int = 0):
    items = draw(st.lists(st.one_of(stack_access(), stack_access(), stack_access(), alu(),
                                    helper_call(), struct_fill(), unplaced_access(), lookup(),
                                    subprogram_call()), min_size=1, max_size=14))
    for _ in range(draw(st.integers(0, 3))):  # forward jumps over whole items
        at = draw(st.integers(0, len(items) - 1))
        skip = draw(st.integers(1, 4))
        cond = draw(st.sampled_from([isa.BPF_JEQ, isa.BPF_JGT, isa.BPF_JSET, isa.BPF_JNE]))
        items.insert(at, [("JUMP", skip, cond, draw(st.sampled_from(WORK)),
                           draw(values.filter(lambda v: -2**31 <= v < 2**31)))])
    if depth == 0 and draw(st.booleans()):  # a bounded loop around some of the items
        body = draw(segment(1))
        count = draw(st.integers(1, 3))
        items.append([mov64(9, count), ("LOOP_START",)] + [x for item in body for x in item]
                     + [I(ADDK, 9, 0, 0, -1), ("LOOP_END",)])
    return items


@st.composite
def program(draw):
    items = draw(segment())
    init = [I(MOVX, 6, 1)]
    for r in WORK:
        init += ld_imm64(r, draw(st.integers(0, 2**64 - 1)) if draw(st.booleans())
                         else draw(values) & isa.MASK64)
    # lay the items out, resolving forward jumps to item starts
    flat: list = []
    starts = []
    for item in items:
        starts.append(len(flat))
        flat.extend(item)
    starts.append(len(flat))
    main: list = []
    loop_at: list[int] = []
    for pc, ins in enumerate(flat):
        if isinstance(ins, tuple) and ins[0] == "JUMP":
            _, skip, cond, d, imm = ins
            idx = max(i for i, s in enumerate(starts) if s <= pc)
            target = starts[min(idx + skip, len(starts) - 1)]
            main.append(("J", cond, d, imm, target))
        elif isinstance(ins, tuple) and ins[0] == "LOOP_START":
            loop_at.append(len(main))
        elif isinstance(ins, tuple) and ins[0] == "LOOP_END":
            main.append(("BACK", loop_at.pop()))
        else:
            main.append(ins)
    # second pass: real instruction indexes (markers removed, ld_imm64 is two slots)
    out: list = list(init)
    index_of: dict[int, int] = {}
    for i, ins in enumerate(main):
        index_of[i] = len(out)
        out.append(ins)
        if isinstance(ins, tuple) and ins[0] == "FUNC":
            out.append(None)  # second slot of the function-address ld_imm64
    index_of[len(main)] = len(out)
    body_end = len(out)
    out.append(mov64(0, 0))
    out.append(exit_())
    funcs = {"bump": len(out)}
    out += bump()
    funcs["visit"] = len(out)
    out += visit()
    insns = []
    for pc, ins in enumerate(out):
        if ins is None:
            insns.append(I(0))
        elif isinstance(ins, tuple) and ins[0] == "J":
            _, cond, d, imm, target_item = ins
            target = index_of.get(target_item, body_end)
            insns.append(I(isa.BPF_JMP | cond | isa.BPF_K, d, 0, target - pc - 1, imm))
        elif isinstance(ins, tuple) and ins[0] == "BACK":
            target = index_of[ins[1]]
            insns.append(I(isa.BPF_JMP | isa.BPF_JNE | isa.BPF_K, 9, 0, target - pc - 1, 0))
        elif isinstance(ins, tuple) and ins[0] == "CALL":
            insns.append(I(isa.OP_CALL, 0, isa.BPF_PSEUDO_CALL, 0, funcs[ins[1]] - pc - 1))
        elif isinstance(ins, tuple) and ins[0] == "FUNC":
            _, name, reg = ins
            insns.append(I(isa.OP_LD_IMM64, reg, isa.BPF_PSEUDO_FUNC, 0, funcs[name] - pc - 1))
        else:
            insns.append(ins)
    functions = [("main", 0, funcs["bump"]), ("bump", funcs["bump"], funcs["visit"]),
                 ("visit", funcs["visit"], len(insns))]
    return insns, functions


def fresh(seed: int):
    env = RecordingEnv(seed=seed)
    env.user[:] = bytes((i * 7 + seed) & 0xFF for i in range(len(env.user)))
    for i, cq in enumerate(env.cqs):
        cq.extend((0x1000 + i * 16 + k, k - 1, k) for k in range(4))
    arr = ArrayMap("arr", 4, 16, 4)
    arr.data[:] = bytes(range(64))
    return env, [arr]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program(), st.integers(0, 3))
def test_stack_in_locals_runs_identically(prog, seed) -> None:
    insns, functions = prog
    env_a, maps_a = fresh(seed)
    env_b, maps_b = fresh(seed)
    helpers = io_uring_helpers()
    verified_a = verified(insns, maps_a, functions=functions)
    verified_b = verified(insns, maps_b, functions=functions)
    interp = Interpreter(verified_a, maps_a, helpers, 100_000)
    fast = translate(verified_b, maps_b, helpers, 100_000, debug=True)
    ctx_a = bytearray(USER_BASE.to_bytes(8, "little") + bytes(8))
    ctx_b = bytearray(ctx_a)
    a = run_outcome(lambda: interp.run_state(ctx_a, env_a), env_a, maps_a)
    b = run_outcome(lambda: fast.run(ctx_b, env_b), env_b, maps_b)
    assert a == b
    assert ctx_a == ctx_b
