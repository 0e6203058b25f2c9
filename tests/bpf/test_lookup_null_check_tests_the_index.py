"""A NULL check of an inlined array-map lookup tests the element index, never a stale one.

The translator keeps an array lookup's element index in a local and turns ``if (!v)`` into
an index bound test, so the pointer value need not be built.  That is only right when the
NULL can only come from the lookup itself: when a NULL constant from another path (one
that skipped the lookup) reaches the same test, it must test the value.  Both paths must
agree in every case, with keys in and out of range.
"""

from __future__ import annotations

import pytest
from insn_builder import I, exit_, mov64
from vm_pair import run_both

from uring.bpf import ArrayMap, isa

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
JEQ0 = isa.BPF_JMP | isa.BPF_JEQ | isa.BPF_K


def arr() -> list:
    m = ArrayMap("arr", 4, 8, 4)
    m.data[:] = bytes(range(32))
    return [m]


def lookup_key_from_ctx() -> list:
    # key = ctx->wait_nr (u32 at ctx+8); r0 = bpf_map_lookup_elem(&arr, &key)
    return [I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 2, 1, 8),
            I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_W, 10, 2, -4),
            I(MOVX, 2, 10), I(ADDK, 2, 0, 0, -4),
            I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, 0), I(0), I(isa.OP_CALL, 0, 0, 0, 1)]


@pytest.mark.parametrize("key", [0, 3, 4, 0xFFFFFFFF])
def test_null_check_of_a_lookup_tests_its_index(key) -> None:
    insns = [*lookup_key_from_ctx(), I(JEQ0, 0, 0, 2, 0),
             I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, 0, 0, 0), exit_(),
             mov64(0, 77), exit_()]

    def ctx_env():
        from recording_env import RecordingEnv
        return RecordingEnv()

    a, b, source, _ = run_both(insns, maps_factory=arr, env_factory=ctx_env,
                               ctx=key.to_bytes(4, "little"))
    assert a == b
    assert a[0][1] == (77 if key >= 4 else int.from_bytes(bytes(range(8 * key, 8 * key + 8)),
                                                          "little"))
    assert "if ve6 >= 4:" in source  # tested on the index; the pointer is never built
    assert "r0 = 51539607552" not in source


@pytest.mark.parametrize("key", [1, 9])
@pytest.mark.parametrize("skip", [0, 1])
def test_null_constant_from_another_path_is_tested_on_the_value(key, skip) -> None:
    # r0 = 0; if ctx->wait_idx == 0 (skip=1 sets it non-zero) goto join; r0 = lookup(key)
    # join: if r0 == 0 goto out; r0 = *(u64 *)r0; out: exit
    insns = [mov64(0, 0), I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 3, 1, 12),
             I(JEQ0, 3, 0, 7, 0), *lookup_key_from_ctx(), I(JEQ0, 0, 0, 1, 0),
             I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, 0, 0, 0), exit_()]
    ctx = key.to_bytes(4, "little") + skip.to_bytes(4, "little")
    a, b, source, _ = run_both(insns, maps_factory=arr, ctx=ctx)
    assert a == b
    assert "if r0 == 0:" in source  # the joined NULL check reads the value itself


def test_32_bit_compare_of_a_found_pointer_is_not_a_null_check() -> None:
    # key 0: the pointer to element 0 has zero low 32 bits, so `if w0 == 0` is taken
    # although r0 is not NULL; return r0 on that path, 5 on the other
    insns = [*lookup_key_from_ctx(), I(isa.BPF_JMP32 | isa.BPF_JEQ | isa.BPF_K, 0, 0, 2, 0),
             mov64(0, 5), exit_(), exit_()]
    a, b, _, _ = run_both(insns, maps_factory=arr, ctx=bytes(4))
    assert a == b
    assert a[0][1] != 0 and a[0][1] & 0xFFFFFFFF == 0


def test_null_check_of_one_copy_tells_the_others() -> None:
    # r6 = lookup(...); r7 = r6; if r6 == 0 return 9; return *(u64 *)(r7 + 0)
    insns = [*lookup_key_from_ctx(), I(MOVX, 6, 0), I(MOVX, 7, 0), I(JEQ0, 6, 0, 2, 0),
             I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, 0, 7, 0), exit_(), mov64(0, 9), exit_()]
    for key in (1, 7):
        a, b, source, _ = run_both(insns, maps_factory=arr, ctx=key.to_bytes(4, "little"))
        assert a == b
        assert "V8_0[ve6]" in source  # the copy reads unchecked: it is known non-NULL
