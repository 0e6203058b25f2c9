"""Build programs from instructions (no ELF) for verifier and VM tests."""

from __future__ import annotations

from uring.bpf import isa
from uring.bpf.elf_loader import Function, LinkedProgram
from uring.bpf.helpers import HelperRegistry, io_uring_helpers
from uring.bpf.isa import Insn
from uring.bpf.maps import Map
from uring.bpf.verifier import VerifiedProgram, verify


def I(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:  # noqa: E743
    return Insn(opcode, dst, src, off, imm)


def mov64(dst: int, imm: int) -> Insn:
    return I(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_K, dst, 0, 0, imm)


def ld_imm64(dst: int, value: int) -> list[Insn]:
    value &= isa.MASK64
    lo, hi = value & isa.MASK32, value >> 32
    to_s32 = isa.to_signed32
    return [I(isa.OP_LD_IMM64, dst, 0, 0, to_s32(lo)), I(0, 0, 0, 0, to_s32(hi))]


def exit_() -> Insn:
    return I(isa.OP_EXIT)


def linked(insns: list[Insn], functions: list[tuple[str, int, int]] | None = None,
           name: str = "t") -> LinkedProgram:
    funcs = [Function(n, s, e) for n, s, e in (functions or [(name, 0, len(insns))])]
    return LinkedProgram(name, "iouring", list(insns), funcs)


def verified(insns: list[Insn], maps: list[Map] | None = None,
             helpers: HelperRegistry | None = None,
             functions: list[tuple[str, int, int]] | None = None) -> VerifiedProgram:
    maps = maps or []
    return verify(linked(insns, functions), [(m.name, m.value_size) for m in maps],
                  helpers if helpers is not None else io_uring_helpers())
