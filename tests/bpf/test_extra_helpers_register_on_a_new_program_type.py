"""A program type with an extra helper: registering it is one call, the verifier accepts the
new ID only under that registry, and both paths hand the implementation checked values."""

from __future__ import annotations

import pytest
from insn_builder import I, exit_, mov64, verified

from uring.bpf import Arg, HelperSpec, io_uring_helpers, isa
from uring.bpf.errors import VerifierError
from uring.bpf.interpreter import Interpreter
from uring.bpf.translator import translate

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K


class SealEnv:
    def __init__(self) -> None:
        self.sealed: list[tuple[int, bytes]] = []

    def seal(self, slot: int, buf: memoryview) -> int:
        self.sealed.append((slot, bytes(buf)))
        buf[:] = bytes(b ^ 0x5A for b in buf)
        return len(buf)


def _seal(env: SealEnv, slot: int, buf: memoryview) -> int:
    return env.seal(slot, buf)


SPEC = HelperSpec(212, "bpf_test_seal", (Arg.ANYTHING, Arg.MEM_WRITE, Arg.SIZE), _seal)

# store 0x1122334455667788 at r10-8, seal it with slot 3, return the sealed u64
PROGRAM = [
    I(isa.OP_LD_IMM64, 1, 0, 0, 0x55667788), I(0, 0, 0, 0, 0x11223344),
    I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW, 10, 1, -8),
    mov64(1, 3), I(MOVX, 2, 10), I(ADDK, 2, 0, 0, -8), mov64(3, 8),
    I(isa.OP_CALL, 0, 0, 0, 212),
    I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, 0, 10, -8), exit_(),
]


def test_extra_helper_unknown_to_the_base_type() -> None:
    with pytest.raises(VerifierError) as info:
        verified(PROGRAM)
    assert info.value.rule == "helper" and "io_uring" in str(info.value)


def test_extra_helper_runs_with_checked_arguments_on_both_paths() -> None:
    registry = io_uring_helpers().extended("sealing", SPEC)
    assert 212 in registry and 212 not in io_uring_helpers()
    prog = verified(PROGRAM, helpers=registry)
    expected = 0x1122334455667788 ^ 0x5A5A5A5A5A5A5A5A
    for run in (Interpreter(prog, [], registry, 1000).run,
                translate(prog, [], registry, 1000).run):
        env = SealEnv()
        assert run(bytearray(16), env) == expected
        assert env.sealed == [(3, (0x1122334455667788).to_bytes(8, "little"))]


def test_duplicate_helper_id_is_refused() -> None:
    registry = io_uring_helpers()
    with pytest.raises(ValueError, match="already registered"):
        registry.register(HelperSpec(5, "again", (), _seal))
