"""Each pointer fact the analysis keeps is used where it holds, and only there.

One small program per fact, run on both paths with inputs that take every branch; each
case checks the results agree and that the translation did (or, where the fact does not
hold, did not) turn the access into a direct one:

* a pointer spilled to a stack slot and filled back after paths joined keeps its region;
* a slot holding different kinds of pointers on the two paths, or overwritten by a scalar
  (whole or in part) on one of them, gives an unknown value: checked accesses;
* pointer arithmetic after a fill keeps a bounded offset range, accessed unchecked;
* values of two lookups of one array map meeting at a join point into *some* element;
* a loop that steps a pointer is followed trip by trip while the counter decides it;
* a bounded scalar spilled in 4 bytes bounds a helper's variable-size stack write;
* a branch the facts rule out (a NULL test of a pointer known non-NULL) is not emitted;
* a 32-bit compare with a register sees only the register's low half.
"""

from __future__ import annotations

import pytest
from insn_builder import I, exit_, ld_imm64, mov64
from recording_env import USER_BASE
from vm_pair import run_both

from uring.bpf import ArrayMap, isa

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
ADDX = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X
ANDK = isa.BPF_ALU64 | isa.BPF_AND | isa.BPF_K
DW, W, B = (isa.BPF_MEM | s for s in (isa.BPF_DW, isa.BPF_W, isa.BPF_B))
JEQ, JNE = isa.BPF_JMP | isa.BPF_JEQ | isa.BPF_K, isa.BPF_JMP | isa.BPF_JNE | isa.BPF_K


def ldx(size: int, dst: int, base: int, off: int) -> I:
    return I(isa.BPF_LDX | size, dst, base, off)


def stx(size: int, base: int, src: int, off: int) -> I:
    return I(isa.BPF_STX | size, base, src, off)


def st(size: int, base: int, off: int, imm: int) -> I:
    return I(isa.BPF_ST | size, base, 0, off, imm)


def lookup(key: int, dst: int, map_index: int = 0) -> list:
    """dst = bpf_map_lookup_elem(map, &key) (key at r10 - 4)."""
    return [st(W, 10, -4, key), I(MOVX, 2, 10), I(ADDK, 2, 0, 0, -4),
            I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, map_index), I(0),
            I(isa.OP_CALL, 0, 0, 0, 1), I(MOVX, dst, 0)]


def maps() -> list:
    out = [ArrayMap("arr", 4, 16, 4), ArrayMap("other", 4, 16, 2)]
    for k, m in enumerate(out):
        m.data[:] = bytes((i + 100 * k) & 0xFF for i in range(len(m.data)))
    return out


def run(insns, wait_nr: int):
    a, b, source, env = run_both(insns, maps_factory=maps, ctx=wait_nr.to_bytes(4, "little"))
    assert a == b
    return a, source


WAIT_NR = [ldx(W, 9, 6, 8)]  # r9 = ctx->wait_nr (R6 holds the ctx)


@pytest.mark.parametrize("wait_nr", [0, 1])
def test_spilled_pointer_filled_after_a_join_keeps_its_region(wait_nr) -> None:
    # p = arr[2] (checked); spill p; r8 = wait_nr ? 1 : 2; q = fill; *(u32 *)(q + 4) = r8;
    # return *(u32 *)(q + 4)
    insns = [I(MOVX, 6, 1), *lookup(2, 7), I(JNE, 7, 0, 2, 0), mov64(0, 9), exit_(),
             stx(DW, 10, 7, -16), *WAIT_NR, mov64(8, 1), I(JNE, 9, 0, 1, 0), mov64(8, 2),
             ldx(DW, 7, 10, -16), stx(W, 7, 8, 4), ldx(W, 0, 7, 4), exit_()]
    a, source = run(insns, wait_nr)
    assert a[0][1] == (1 if wait_nr else 2)
    assert "ld(" not in source and "sto(" not in source


@pytest.mark.parametrize("wait_nr", [0, 1])
def test_slot_holding_different_maps_on_two_paths_is_accessed_checked(wait_nr) -> None:
    # p = wait_nr ? arr[1] : other[1] (both checked), spilled on each path; after the join
    # the slot may point into either map
    insns = [I(MOVX, 6, 1), *WAIT_NR, I(JEQ, 9, 0, 12, 0),
             *lookup(1, 7, 0), I(JNE, 7, 0, 2, 0), mov64(0, 9), exit_(),
             stx(DW, 10, 7, -16), I(isa.BPF_JMP | isa.BPF_JA, 0, 0, 11, 0),
             *lookup(1, 7, 1), I(JNE, 7, 0, 2, 0), mov64(0, 9), exit_(),
             stx(DW, 10, 7, -16),
             ldx(DW, 8, 10, -16), ldx(DW, 0, 8, 0), exit_()]
    a, source = run(insns, wait_nr)
    want = bytes(range(16, 24)) if wait_nr else bytes(range(116, 124))
    assert a[0][1] == int.from_bytes(want, "little")
    assert "ld(" in source


@pytest.mark.parametrize(("wait_nr", "clobber"), [(0, DW), (1, DW), (0, W), (1, W), (1, B)])
def test_slot_overwritten_by_a_scalar_on_one_path_is_not_a_pointer(wait_nr, clobber) -> None:
    # spill p = arr[0]; if wait_nr: store 8 (all 8 bytes, the low 4, or 1 byte) over the
    # slot; fill and load through it: a fault or a mangled pointer on that path
    insns = [I(MOVX, 6, 1), *lookup(0, 7), I(JNE, 7, 0, 2, 0), mov64(0, 9), exit_(),
             stx(DW, 10, 7, -16), *WAIT_NR, I(JEQ, 9, 0, 1, 0), st(clobber, 10, -16, 8),
             ldx(DW, 8, 10, -16), ldx(B, 0, 8, 0), exit_()]
    a, source = run(insns, wait_nr)
    if not wait_nr:
        assert a[0] == ("ok", 0, a[0][2], a[0][3], a[0][4])
    assert "ld(" in source


@pytest.mark.parametrize("wait_nr", [0, 4, 8, 12, 13])
def test_pointer_arithmetic_after_a_fill_keeps_a_bounded_offset(wait_nr) -> None:
    # p = arr[1]; spill; q = fill + (wait_nr & 12); return *(u32 *)q
    insns = [I(MOVX, 6, 1), *lookup(1, 7), I(JNE, 7, 0, 2, 0), mov64(0, 9), exit_(),
             stx(DW, 10, 7, -8), *WAIT_NR, I(ANDK, 9, 0, 0, 12), ldx(DW, 8, 10, -8),
             I(ADDX, 8, 9), ldx(W, 0, 8, 0), exit_()]
    a, source = run(insns, wait_nr)
    k = 16 + (wait_nr & 12)
    assert a[0][1] == int.from_bytes(bytes(range(k, k + 4)), "little")
    assert "ld(" not in source and "r8 - " in source  # the offset comes from the address


@pytest.mark.parametrize("wait_nr", [0, 1])
def test_two_lookups_of_one_map_meet_as_some_element(wait_nr) -> None:
    # p = wait_nr ? arr[3] : arr[1]; *(u64 *)(p + 8) += 1; return *(u64 *)(p + 8)
    insns = [I(MOVX, 6, 1), *WAIT_NR, I(JEQ, 9, 0, 11, 0),
             *lookup(3, 7), I(JNE, 7, 0, 2, 0), mov64(0, 9), exit_(),
             I(isa.BPF_JMP | isa.BPF_JA, 0, 0, 10, 0),
             *lookup(1, 7), I(JNE, 7, 0, 2, 0), mov64(0, 9), exit_(),
             ldx(DW, 8, 7, 8), I(ADDK, 8, 0, 0, 1), stx(DW, 7, 8, 8), ldx(DW, 0, 7, 8),
             exit_()]
    a, source = run(insns, wait_nr)
    k = 16 * (3 if wait_nr else 1) + 8
    assert a[0][1] == int.from_bytes(bytes(range(k, k + 8)), "little") + 1
    assert "ld(" not in source and "sto(" not in source
    assert f"r7 - {((4 + 8) << 32) - 8}" in source  # by value: (r7 - arr's base + 8) / 8


@pytest.mark.parametrize("wait_nr", [0, 3])
def test_loop_stepping_a_pointer_is_followed_trip_by_trip(wait_nr) -> None:
    # p = arr[0]; for (i = 4; i; i--) { *(u32 *)p += wait_nr; p += 4; } return arr[0] word 3
    insns = [I(MOVX, 6, 1), *lookup(0, 7), I(JNE, 7, 0, 2, 0), mov64(0, 9), exit_(),
             *WAIT_NR, mov64(8, 4),
             ldx(W, 2, 7, 0), I(isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X, 2, 9), stx(W, 7, 2, 0),
             I(ADDK, 7, 0, 0, 4), I(ADDK, 8, 0, 0, -1), I(JNE, 8, 0, -6, 0),
             ldx(W, 0, 7, -4), exit_()]
    a, source = run(insns, wait_nr)
    assert a[0][1] == int.from_bytes(bytes(range(12, 16)), "little") + wait_nr
    assert "ld(" not in source and "sto(" not in source


@pytest.mark.parametrize("wait_nr", [0, 5, 15, 16])
def test_bounded_scalar_spilled_in_four_bytes_bounds_a_helper_write(wait_nr) -> None:
    # n = wait_nr & 15, spilled in a u32 slot and filled back (across a helper call);
    # bpf_copy_from_user(r10 - 32, n, user + 8); return *(u64 *)(r10 - 32)
    insns = [I(MOVX, 6, 1), *WAIT_NR, I(ANDK, 9, 0, 0, 15), stx(W, 10, 9, -36),
             st(DW, 10, -32, 0), st(DW, 10, -24, 0), ldx(W, 2, 10, -36),
             I(MOVX, 1, 10), I(ADDK, 1, 0, 0, -32), *ld_imm64(3, USER_BASE + 8),
             I(isa.OP_CALL, 0, 0, 0, 148), ldx(DW, 0, 10, -32), exit_()]
    a, source = run(insns, wait_nr)
    n = min(wait_nr & 15, 8)
    assert a[0][1] & ((1 << (8 * n)) - 1) == a[0][1]
    assert "call_helper(" not in source and "env.copy_from_user(mstk[" in source


def test_null_test_of_a_pointer_known_non_null_is_not_emitted() -> None:
    # if (ctx == NULL) return 4242; return ctx->wait_nr
    insns = [I(JNE, 1, 0, 3, 0), *ld_imm64(0, 4242), exit_(), ldx(W, 0, 1, 8), exit_()]
    a, source = run(insns, 7)
    assert a[0][1] == 7
    assert "4242" not in source.split("def run(")[0]


@pytest.mark.parametrize("wait_nr", [0, 1])
def test_32_bit_compare_with_a_register_sees_its_low_half(wait_nr) -> None:
    # r7 = 2**32 + wait_nr; if w9 == w7 return 1 (taken when wait_nr == ctx->wait_nr low)
    insns = [I(MOVX, 6, 1), *WAIT_NR, *ld_imm64(7, (1 << 32)), I(ADDX, 7, 9),
             mov64(9, 0), I(isa.BPF_JMP32 | isa.BPF_JEQ | isa.BPF_X, 9, 7, 2, 0),
             mov64(0, 2), exit_(), mov64(0, 1), exit_()]
    a, _ = run(insns, wait_nr)
    assert a[0][1] == (1 if wait_nr == 0 else 2)


FRAME0_SLOT = (4 << 32) + 512 - 8  # r10 - 8 of the entry frame, as an address
ARR0 = 12 << 32  # element 0 of map 0


@pytest.mark.parametrize(("delta", "want"), [
    (8, 7),                                    # lands in arr[0]: unchecked
    ((FRAME0_SLOT - ARR0) & isa.MASK64, 1234),  # lands in our own r10 - 8: hand-over
    ((13 << 32) - ARR0, 7),                    # lands in the other map: checked store
])
def test_store_through_a_pointer_that_left_its_region(delta, want) -> None:
    # *(u64 *)(r10 - 8) = 7 (a cell); p = arr[0] + *(u64 *)(ctx + 8); *(u64 *)p = 1234;
    # return *(u64 *)(r10 - 8) -- the store may land anywhere, even in that cell
    insns = [I(MOVX, 6, 1), st(DW, 10, -8, 7), *lookup(0, 7), I(JNE, 7, 0, 2, 0),
             mov64(0, 9), exit_(), ldx(DW, 9, 6, 8), I(ADDX, 7, 9), st(DW, 7, 0, 1234),
             ldx(DW, 0, 10, -8), exit_()]
    a, b, source, _ = run_both(insns, maps_factory=maps, ctx=delta.to_bytes(8, "little"))
    assert a == b
    assert a[0][1] == want
    assert "RESUME(" in source and "stack cells" in source


@pytest.mark.parametrize(("delta", "want"), [
    (8, int.from_bytes(bytes(range(8, 16)), "little")),  # arr[0] bytes 8..16, unchecked
    ((FRAME0_SLOT - ARR0) & isa.MASK64, 77),            # our own r10 - 8, written back
])
def test_load_through_a_pointer_that_left_its_region_sees_the_cells(delta, want) -> None:
    # *(u64 *)(r10 - 8) = 77 (a cell, never in the buffer unless written back); p = arr[0] +
    # *(u64 *)(ctx + 8); return *(u64 *)p
    insns = [I(MOVX, 6, 1), st(DW, 10, -8, 77), *lookup(0, 7), I(JNE, 7, 0, 2, 0),
             mov64(0, 9), exit_(), ldx(DW, 9, 6, 8), I(ADDX, 7, 9), ldx(DW, 0, 7, 0),
             ldx(DW, 8, 10, -8), I(ADDX, 0, 8), I(isa.BPF_ALU64 | isa.BPF_SUB | isa.BPF_X, 0, 8),
             exit_()]
    a, b, source, _ = run_both(insns, maps_factory=maps, ctx=delta.to_bytes(8, "little"))
    assert a == b
    assert a[0][1] == want
    assert "_o % 16 <= 8" in source  # the guard: inside one element
