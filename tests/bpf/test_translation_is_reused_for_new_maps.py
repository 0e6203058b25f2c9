"""Loading an object again reuses its translation, bound to the new load's own maps.

Every engine loads the offload objects with maps of its own; translating is the slow part
of a load, and the generated code depends only on the program and the maps' shapes.  So a
second load must share the first one's code object -- and still work on its own maps
only: a run of either touches nothing of the other.  A map of another shape (or frozen
data with other contents) gets a translation of its own.
"""

from __future__ import annotations

from insn_builder import I, exit_, verified

from uring.bpf import ArrayMap, io_uring_helpers, isa
from uring.bpf.translator import translate

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K


def program() -> list:
    # arr[0].u64 += 5; return arr[0].u64
    return [I(isa.BPF_ST | isa.BPF_MEM | isa.BPF_W, 10, 0, -4, 0), I(MOVX, 2, 10),
            I(ADDK, 2, 0, 0, -4), I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, 0), I(0),
            I(isa.OP_CALL, 0, 0, 0, 1), I(isa.BPF_JMP | isa.BPF_JEQ | isa.BPF_K, 0, 0, 4, 0),
            I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, 1, 0, 0), I(ADDK, 1, 0, 0, 5),
            I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW, 0, 1, 0), I(MOVX, 0, 1), exit_()]


def load(value_size: int = 8):
    maps = [ArrayMap("arr", 4, value_size, 2)]
    prog = translate(verified(program(), maps), maps, io_uring_helpers(), 1000)
    return prog, maps[0]


def test_second_load_shares_the_code_and_keeps_its_own_maps() -> None:
    first, arr1 = load()
    second, arr2 = load()
    assert second.code is first.code and second.source == first.source
    ctx = bytearray(16)
    assert first.run(ctx, object()) == 5
    assert first.run(ctx, object()) == 10
    assert second.run(ctx, object()) == 5  # its own map: still at 0 before
    assert arr1.lookup_int(0) == 10 and arr2.lookup_int(0) == 5


def test_other_map_shape_gets_its_own_translation() -> None:
    first, _ = load(8)
    other, arr = load(16)
    assert other.code is not first.code
    assert other.run(bytearray(16), object()) == 5 and arr.lookup_int(0) == 5
