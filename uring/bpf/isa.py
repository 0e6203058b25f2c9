"""The eBPF instruction set: encoding constants and the decoded instruction type.

Numbers follow the eBPF instruction-set specification (RFC 9669) and the Linux UAPI
``linux/bpf.h`` names.  An instruction is 8 bytes: opcode u8, dst_reg:4 / src_reg:4 (dst in
the low nibble), off s16, imm s32, little endian.  ``ld_imm64`` spans two slots; the second
slot has opcode 0 and carries the upper 32 bits of the immediate in its ``imm``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

INSN_SIZE = 8
_INSN = struct.Struct("<BBhi")

# Instruction classes (opcode & 0x07)
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_ST = 0x02
BPF_STX = 0x03
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_JMP32 = 0x06
BPF_ALU64 = 0x07

# Load/store size (opcode & 0x18)
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_DW = 0x18
SIZE_BYTES = {BPF_W: 4, BPF_H: 2, BPF_B: 1, BPF_DW: 8}

# Load/store mode (opcode & 0xe0)
BPF_IMM = 0x00
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MEM = 0x60
BPF_MEMSX = 0x80
BPF_ATOMIC = 0xC0

# Source operand (opcode & 0x08)
BPF_K = 0x00
BPF_X = 0x08

# ALU operations (opcode & 0xf0)
BPF_ADD = 0x00
BPF_SUB = 0x10
BPF_MUL = 0x20
BPF_DIV = 0x30
BPF_OR = 0x40
BPF_AND = 0x50
BPF_LSH = 0x60
BPF_RSH = 0x70
BPF_NEG = 0x80
BPF_MOD = 0x90
BPF_XOR = 0xA0
BPF_MOV = 0xB0
BPF_ARSH = 0xC0
BPF_END = 0xD0
# BPF_END direction (the source bit): to little endian / to big endian
BPF_TO_LE = 0x00
BPF_TO_BE = 0x08

# Jump operations (opcode & 0xf0)
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JGE = 0x30
BPF_JSET = 0x40
BPF_JNE = 0x50
BPF_JSGT = 0x60
BPF_JSGE = 0x70
BPF_CALL = 0x80
BPF_EXIT = 0x90
BPF_JLT = 0xA0
BPF_JLE = 0xB0
BPF_JSLT = 0xC0
BPF_JSLE = 0xD0

# Atomic operations (imm of BPF_STX | BPF_ATOMIC)
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH
ATOMIC_OPS = {
    BPF_ADD, BPF_OR, BPF_AND, BPF_XOR,
    BPF_ADD | BPF_FETCH, BPF_OR | BPF_FETCH, BPF_AND | BPF_FETCH, BPF_XOR | BPF_FETCH,
    BPF_XCHG, BPF_CMPXCHG,
}

# src_reg of ld_imm64: what the immediate means
BPF_PSEUDO_MAP_FD = 1  # imm = map (index into the object's maps after loading)
BPF_PSEUDO_MAP_VALUE = 2  # imm = map, next imm = offset into its value
BPF_PSEUDO_FUNC = 4  # imm = relative instruction offset of a function (a callback)

# src_reg of BPF_CALL
BPF_HELPER_CALL = 0
BPF_PSEUDO_CALL = 1  # imm = relative instruction offset of a bpf-to-bpf callee
BPF_PSEUDO_KFUNC_CALL = 2

# Registers
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
FRAME_REG = R10
MAX_REG = 10

#: Bytes of stack every frame gets; constant-offset accesses beyond it are rejected at load.
STACK_SIZE = 512
#: bpf-to-bpf call depth limit (frames, including the entry program), as in Linux.
MAX_CALL_FRAMES = 8

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
SIGN64 = 1 << 63
SIGN32 = 1 << 31

OP_LD_IMM64 = BPF_LD | BPF_IMM | BPF_DW
OP_EXIT = BPF_JMP | BPF_EXIT
OP_CALL = BPF_JMP | BPF_CALL
OP_JA = BPF_JMP | BPF_JA


class Insn(NamedTuple):
    """One decoded 8-byte instruction slot."""

    opcode: int
    dst: int
    src: int
    off: int
    imm: int

    @property
    def cls(self) -> int:
        return self.opcode & 0x07

    def encode(self) -> bytes:
        return _INSN.pack(self.opcode, (self.src << 4) | self.dst, self.off, self.imm)


def decode(data: bytes | memoryview) -> list[Insn]:
    """Split raw program text into instruction slots (length must be a multiple of 8)."""
    if len(data) % INSN_SIZE:
        raise ValueError(f"program text of {len(data)} bytes is not a multiple of 8")
    out = []
    for opcode, regs, off, imm in _INSN.iter_unpack(data):
        out.append(Insn(opcode, regs & 0x0F, regs >> 4, off, imm))
    return out


def encode(insns: list[Insn]) -> bytes:
    return b"".join(i.encode() for i in insns)


def is_ld_imm64(insn: Insn) -> bool:
    return insn.opcode == OP_LD_IMM64


def ld_imm64_value(lo: Insn, hi: Insn) -> int:
    """The 64-bit immediate of an ``ld_imm64`` pair, as an unsigned value."""
    return ((hi.imm & MASK32) << 32) | (lo.imm & MASK32)


def is_jump(insn: Insn) -> bool:
    """True for conditional and unconditional jumps (not call or exit)."""
    cls = insn.opcode & 0x07
    if cls not in (BPF_JMP, BPF_JMP32):
        return False
    op = insn.opcode & 0xF0
    return op not in (BPF_CALL, BPF_EXIT)


def jump_offset(insn: Insn) -> int:
    """Relative target of a jump: ``off``, except ``gotol`` (JMP32|JA) which uses ``imm``."""
    if insn.opcode == (BPF_JMP32 | BPF_JA):
        return insn.imm
    return insn.off


def to_signed64(v: int) -> int:
    return v - (1 << 64) if v & SIGN64 else v


def to_signed32(v: int) -> int:
    v &= MASK32
    return v - (1 << 32) if v & SIGN32 else v
