"""Stack bytes the translator keeps in locals stay coherent with everything that can see them.

Each case is a small hand-built program that stores to the stack at constant offsets (so the
bytes become locals) and then lets something else look: a load through an address the
analysis cannot place, a narrower store into part of a wider slot, a helper reading or
writing the range, a callee or a bpf_loop callback holding a pointer into the caller's
frame, the caller reading a callee's frame after it returned.  Both paths must agree, and
each case also checks that the translation really kept the bytes in locals (or, for a frame
indexed with an unbounded offset, that it did not; a bounded variable offset works on the
buffer around the cells).
"""

from __future__ import annotations

import re
import struct

from insn_builder import I, exit_, ld_imm64, mov64
from recording_env import USER_BASE
from vm_pair import production_source, run_both

from uring.bpf import isa
from uring.bpf.memory import stack_base

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
ADDX = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X
DW, W, H, B = (isa.BPF_MEM | s for s in (isa.BPF_DW, isa.BPF_W, isa.BPF_H, isa.BPF_B))
FRAME0 = stack_base(0) + isa.STACK_SIZE


def st(size: int, off: int, imm: int) -> I:
    return I(isa.BPF_ST | size, 10, 0, off, imm)


def stx(size: int, off: int, reg: int, base: int = 10) -> I:
    return I(isa.BPF_STX | size, base, reg, off)


def ldx(size: int, reg: int, off: int, base: int = 10) -> I:
    return I(isa.BPF_LDX | size, reg, base, off)


def call(helper: int) -> I:
    return I(isa.OP_CALL, 0, 0, 0, helper)


def agree(insns, **kw):
    a, b, source, env = run_both(insns, **kw)
    assert a == b
    assert a[0][0] == "ok", a[0]
    return a, source, env


def before(source: str, first: str, then: str) -> bool:
    return first in source and then in source and source.index(first) < source.index(then)


def test_promoted_slot_read_back_through_a_forged_pointer() -> None:
    # *(u64 *)(r10 - 8) = ctx->user_data; r0 = *(u32 *)((FRAME0 - 8) + 2)
    insns = [ldx(DW, 1, 0, base=1), stx(DW, -8, 1), *ld_imm64(2, FRAME0 - 8), ldx(W, 0, 2, 2),
             exit_()]
    a, source, _ = agree(insns)
    assert a[0][1] == (USER_BASE >> 16) & 0xFFFFFFFF
    assert "s8 = r1" in source  # kept in a local, written back before the checked load
    assert before(source, "P8(stk, 504, s8)", "ld(4,")


def test_partially_overwritten_slot_reads_back_merged_bytes() -> None:
    # u64 store, then a u8 and a u16 store into it, then u64 and u32 loads across them
    insns = [*ld_imm64(1, 0x8877665544332211), stx(DW, -16, 1), st(B, -15, 0xAB),
             mov64(2, 0xBEEF), stx(H, -12, 2), ldx(DW, 0, -16), ldx(W, 6, -14),
             I(isa.BPF_ALU64 | isa.BPF_XOR | isa.BPF_X, 0, 6), exit_()]
    a, source, _ = agree(insns)
    raw = bytearray(struct.pack("<Q", 0x8877665544332211))
    raw[1], raw[4:6] = 0xAB, b"\xef\xbe"
    whole = int.from_bytes(raw, "little")
    assert a[0][1] == whole ^ ((whole >> 16) & 0xFFFFFFFF)
    assert "stack cells" in source
    assert "stk" not in production_source(insns).split("n = st.count")[1]  # no buffer use


def test_struct_built_in_locals_is_packed_for_the_helper() -> None:
    # an SQE zeroed with u64 stores, fields set with u8/u32/u64/u16 stores (constants and
    # values from the ctx), then submitted
    insns = [I(MOVX, 6, 1)]
    insns += [st(DW, -64 + k, 0) for k in range(0, 64, 8)]
    insns += [st(B, -64, 9), st(B, -63, 64), ldx(W, 2, 12, base=6), stx(W, -60, 2),
              ldx(DW, 3, 0, base=6), stx(DW, -48, 3), st(W, -40, 1), stx(DW, -32, 3),
              st(H, -16, 2),
              I(MOVX, 1, 6), I(MOVX, 2, 10), I(ADDK, 2, 0, 0, -64), mov64(3, 64), call(164),
              exit_()]
    a, source, env = agree(insns)
    assert len(env.sqes) == 1 and env.sqes[0][:2] == b"\x09\x40"
    assert env.sqes[0][16:24] == env.sqes[0][32:40] == USER_BASE.to_bytes(8, "little")
    assert "env.submit(PK_" in source  # one struct.pack of the locals, no buffer writes
    assert "stk" not in production_source(insns).split("n = st.count")[1]


def test_helper_writes_reach_promoted_slots() -> None:
    # zero a slot, let bpf_copy_from_user fill it, read it back (u32 and u16 halves)
    insns = [st(DW, -8, 0), ldx(W, 7, -8), I(MOVX, 1, 10), I(ADDK, 1, 0, 0, -8), mov64(2, 8),
             *ld_imm64(3, USER_BASE + 40), call(148), ldx(W, 0, -8), ldx(H, 6, -4),
             I(ADDX, 0, 6), I(ADDX, 0, 7), exit_()]

    def env_factory():
        from recording_env import RecordingEnv
        env = RecordingEnv()
        env.user[40:48] = bytes.fromhex("0102030405060708")
        return env

    a, source, _ = agree(insns, env_factory=env_factory)
    assert a[0][1] == 0x04030201 + 0x0605
    assert re.search(r"s8, s4\b.* = UF_\w+\(stk, 504\)", source)  # re-read after the helper


def test_callee_writes_the_callers_stack_through_a_pointer() -> None:
    # main: *(u64 *)(r10-16) = 5; r0 = bump(r10 - 16); return r0 + *(u32 *)(r10-12)
    # bump(p): *(u32 *)(p + 4) += 3; return *(u64 *)(p + 0)
    main = [st(DW, -16, 5), I(MOVX, 1, 10), I(ADDK, 1, 0, 0, -16),
            I(isa.OP_CALL, 0, isa.BPF_PSEUDO_CALL, 0, 3), ldx(W, 6, -12), I(ADDX, 0, 6),
            exit_()]
    bump = [ldx(W, 2, 4, base=1), I(ADDK, 2, 0, 0, 3), stx(W, 4, 2, base=1),
            ldx(DW, 0, 0, base=1), exit_()]
    a, source, _ = agree(main + bump, functions=[("main", 0, 7), ("bump", 7, 12)])
    assert a[0][1] == 5 + (3 << 32) + 3
    caller = source.split("def F7")[0]
    assert before(caller, "P4(stk, 496, 5)", "r0 = F7(")  # written back before the call
    assert re.search(r"s12 = (U4\(stk, 500\)|UF_II\(stk, 496\))", caller)  # and re-read


def test_callback_reads_and_writes_the_callers_stack() -> None:
    # main: acc at r10-8 = 100; bpf_loop(4, visit, r10 - 8, 0); return acc
    # visit(i, p): *(u64 *)p += i; return 0
    main = [st(DW, -8, 100), mov64(1, 4), I(isa.OP_LD_IMM64, 2, isa.BPF_PSEUDO_FUNC, 0, 7),
            I(0), I(MOVX, 3, 10), I(ADDK, 3, 0, 0, -8), mov64(4, 0), call(181),
            ldx(DW, 0, -8), exit_()]
    visit = [ldx(DW, 3, 0, base=2), I(ADDX, 3, 1), stx(DW, 0, 3, base=2), mov64(0, 0),
             exit_()]
    a, source, _ = agree(main + visit, functions=[("main", 0, 10), ("visit", 10, 15)])
    assert a[0][1] == 100 + 0 + 1 + 2 + 3
    caller, callback = source.split("def F10")
    assert before(caller, "P8(stk, 504, 100)", "= F10(_li, ")  # bpf_loop, inlined
    assert before(caller, "= F10(_li, ", "s8 = U8(stk, 504)")
    # the callback's context is known to be the caller's r10 - 8: no checked access
    assert "U8(pstk, 504)" in callback and "P8(pstk, 504" in callback
    assert "ld(" not in callback and "sto(" not in callback


def test_callback_with_different_contexts_per_call_site_reads_them_checked() -> None:
    # bpf_loop(2, visit, r10 - 8, 0); bpf_loop(3, visit, r10 - 16, 0); return a + b
    loop = [isa.OP_CALL, 0, 0, 0, 181]
    main = [st(DW, -8, 100), st(DW, -16, 1000),
            mov64(1, 2), I(isa.OP_LD_IMM64, 2, isa.BPF_PSEUDO_FUNC, 0, 16), I(0),
            I(MOVX, 3, 10), I(ADDK, 3, 0, 0, -8), mov64(4, 0), I(*loop),
            mov64(1, 3), I(isa.OP_LD_IMM64, 2, isa.BPF_PSEUDO_FUNC, 0, 9), I(0),
            I(MOVX, 3, 10), I(ADDK, 3, 0, 0, -16), mov64(4, 0), I(*loop),
            ldx(DW, 0, -8), ldx(DW, 6, -16), I(ADDX, 0, 6), exit_()]
    visit = [ldx(DW, 3, 0, base=2), I(ADDX, 3, 1), stx(DW, 0, 3, base=2), mov64(0, 0),
             exit_()]
    a, source, _ = agree(main + visit, functions=[("main", 0, 20), ("visit", 20, 25)])
    assert a[0][1] == 100 + 1 + 1000 + 3
    callback = source.split("def F20")[1]
    assert "pstk" not in callback and "ld(" in callback


def test_callers_read_of_a_returned_callee_frame_sees_its_stores() -> None:
    # leak(): *(u64 *)(r10-8) = 42; return r10 - 8   (the frame stays mapped after return)
    # main: p = leak(); return *(u64 *)p
    main = [I(isa.OP_CALL, 0, isa.BPF_PSEUDO_CALL, 0, 2), ldx(DW, 0, 0, base=0), exit_()]
    leak = [st(DW, -8, 42), I(MOVX, 0, 10), I(ADDK, 0, 0, 0, -8), exit_()]
    a, source, _ = agree(main + leak, functions=[("main", 0, 3), ("leak", 3, 7)])
    assert a[0][1] == 42
    callee = source.split("def F3")[1].split("def ")[0]
    assert "stack cells" in callee and "P8(stk, 504, 42)" in callee


def test_frame_indexed_with_an_unbounded_offset_stays_in_the_buffer() -> None:
    # buf[i] for any u32 i from ctx: the frame is used as memory, nothing is promoted
    insns = [st(DW, -16, 7), st(DW, -8, 9), ldx(W, 2, 8, base=1), I(MOVX, 3, 10),
             I(ADDK, 3, 0, 0, -16), I(ADDX, 3, 2), ldx(DW, 0, 0, base=3), exit_()]
    a, source, _ = agree(insns)
    assert a[0][1] == 7
    assert "stack cells" not in source


def test_bounded_variable_offset_load_reads_the_buffer_after_its_cells_are_written_back(
        ) -> None:
    # buf[i & 8]: the offset is r10 - 16 + [0, 8], so the load is placed in this frame; the
    # two slots stay cells, written back just before the load reads the buffer unchecked
    for wait_nr, want in ((0, 7), (8, 9)):
        insns = [st(DW, -16, 7), st(DW, -8, 9), ldx(W, 2, 8, base=1),
                 I(isa.BPF_ALU64 | isa.BPF_AND | isa.BPF_K, 2, 0, 0, 8), I(MOVX, 3, 10),
                 I(ADDK, 3, 0, 0, -16), I(ADDX, 3, 2), ldx(DW, 0, 0, base=3), exit_()]
        a, source, _ = agree(insns, ctx=struct.pack("<I", wait_nr))
        assert a[0][1] == want
        assert "stack cells" in source and "ld(" not in source
        assert before(source, "(stk, 496,", f"U8(stk, r3 - {FRAME0 - 512})")


def test_bounded_variable_offset_store_is_read_back_into_the_cells() -> None:
    # buf[i & 8] = 5, then read both slots directly: the cells the store may have written
    # are reloaded from the buffer after it
    for wait_nr, want in ((0, 5 + 9), (8, 7 + 5)):
        insns = [st(DW, -16, 7), st(DW, -8, 9), ldx(W, 2, 8, base=1),
                 I(isa.BPF_ALU64 | isa.BPF_AND | isa.BPF_K, 2, 0, 0, 8), I(MOVX, 3, 10),
                 I(ADDK, 3, 0, 0, -16), I(ADDX, 3, 2), I(isa.BPF_ST | DW, 3, 0, 0, 5),
                 ldx(DW, 0, -16), ldx(DW, 4, -8), I(ADDX, 0, 4), exit_()]
        a, source, _ = agree(insns, ctx=struct.pack("<I", wait_nr))
        assert a[0][1] == want
        assert "stack cells" in source and "sto(" not in source
