"""Array-map fields go through typed views when aligned; frozen .rodata is folded.

A value of an array map found by an inlined lookup, and a global in ``.data``, are read and
written at constant offsets: aligned accesses of 2/4/8 bytes index a typed ``memoryview``
(when the element size keeps every element aligned), the others use ``unpack_from`` /
``pack_into``.  Loads from frozen ``.rodata`` become literals.  Both paths must agree for
keys in and out of range; the source shows which form each access took.
"""

from __future__ import annotations

import pytest
from insn_builder import I, exit_, mov64
from vm_pair import run_both

from uring.bpf import ArrayMap, isa

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
ADDX = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X
DW, W, H, B = (isa.BPF_MEM | s for s in (isa.BPF_DW, isa.BPF_W, isa.BPF_H, isa.BPF_B))


def maps(value_size: int):
    def make():
        arr = ArrayMap("arr", 4, value_size, 3)
        arr.data[:] = bytes((7 * i + 3) & 0xFF for i in range(len(arr.data)))
        data = ArrayMap(".data", 4, 16, 1)
        data.data[:] = bytes(range(100, 116))
        ro = ArrayMap(".rodata", 4, 8, 1, frozen=True,
                      initial=(0x0102030405060708).to_bytes(8, "little"))
        return [arr, data, ro]
    return make


def program() -> list:
    # v = arr[ctx->wait_nr]; if !v return 1
    # r0 = v->u64@0 + v->u32@8 + v->u16@2 + v->u32@6 (unaligned) + .data u64@8
    #      + .rodata u32@4; v->u32@8 += 1; v->u16@6 = r0; .data u32@0 = r0; .data u8@5 = r0
    return [
        I(isa.BPF_LDX | W, 2, 1, 8), I(isa.BPF_STX | W, 10, 2, -4),
        I(MOVX, 2, 10), I(ADDK, 2, 0, 0, -4),
        I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, 0), I(0), I(isa.OP_CALL, 0, 0, 0, 1),
        I(isa.BPF_JMP | isa.BPF_JNE | isa.BPF_K, 0, 0, 2, 0), mov64(0, 1), exit_(),
        I(MOVX, 6, 0),
        I(isa.BPF_LDX | DW, 0, 6, 0), I(isa.BPF_LDX | W, 3, 6, 8), I(ADDX, 0, 3),
        I(isa.BPF_LDX | H, 3, 6, 2), I(ADDX, 0, 3),
        I(isa.BPF_LDX | W, 3, 6, 6), I(ADDX, 0, 3),            # unaligned u32
        I(isa.OP_LD_IMM64, 7, isa.BPF_PSEUDO_MAP_VALUE, 0, 1), I(0, 0, 0, 0, 0),
        I(isa.BPF_LDX | DW, 3, 7, 8), I(ADDX, 0, 3),
        I(isa.OP_LD_IMM64, 8, isa.BPF_PSEUDO_MAP_VALUE, 0, 2), I(0, 0, 0, 0, 0),
        I(isa.BPF_LDX | W, 3, 8, 4), I(ADDX, 0, 3),
        I(isa.BPF_LDX | W, 3, 6, 8), I(ADDK, 3, 0, 0, 1), I(isa.BPF_STX | W, 6, 3, 8),
        I(isa.BPF_STX | H, 6, 0, 6), I(isa.BPF_STX | W, 7, 0, 0), I(isa.BPF_STX | B, 7, 0, 5),
        exit_()]


@pytest.mark.parametrize("key", [0, 2, 3, 1 << 31])
@pytest.mark.parametrize("value_size", [16, 12])
def test_fields_and_globals_read_and_written_identically(key, value_size) -> None:
    a, b, source, _ = run_both(program(), maps_factory=maps(value_size),
                               ctx=key.to_bytes(4, "little"))
    assert a == b
    if key >= 3:
        assert a[0][1] == 1
    # .data and .rodata: one-element maps at constant offsets
    assert "V8_1[1]" in source and "V4_1[0] = " in source and "G1[5] = " in source
    assert "r0 + 16909060" in source  # .rodata u32 at 4 (0x01020304), folded into the add
    if value_size == 16:  # every element 8-byte aligned: typed for 2/4/8-byte fields
        assert "V8_0[ve6x2]" in source and "V4_0[ve6x4 + 2]" in source
        assert "V2_0[ve6x8 + 1]" in source
    else:  # 12-byte elements: 4-byte and 2-byte fields typed, 8-byte ones not
        assert "U8(G0, ve6x12)" in source and "V4_0[ve6x3 + 2]" in source
    assert "U4(G0, ve6x" in source  # the unaligned u32 at 6 is unpacked
