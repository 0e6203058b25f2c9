"""Human-readable disassembly in the C-like syntax of llvm-objdump and the kernel verifier log.

Used by verifier messages, ``quic-offload bpf dump`` and the translator's source comments, so
one instruction reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from uring.bpf import isa
from uring.bpf.isa import Insn

_ALU_SYM = {
    isa.BPF_ADD: "+=", isa.BPF_SUB: "-=", isa.BPF_MUL: "*=", isa.BPF_DIV: "/=",
    isa.BPF_OR: "|=", isa.BPF_AND: "&=", isa.BPF_LSH: "<<=", isa.BPF_RSH: ">>=",
    isa.BPF_MOD: "%=", isa.BPF_XOR: "^=", isa.BPF_MOV: "=", isa.BPF_ARSH: "s>>=",
}
_JMP_SYM = {
    isa.BPF_JEQ: "==", isa.BPF_JGT: ">", isa.BPF_JGE: ">=", isa.BPF_JSET: "&",
    isa.BPF_JNE: "!=", isa.BPF_JSGT: "s>", isa.BPF_JSGE: "s>=", isa.BPF_JLT: "<",
    isa.BPF_JLE: "<=", isa.BPF_JSLT: "s<", isa.BPF_JSLE: "s<=",
}
_SIZE_NAME = {isa.BPF_B: "u8", isa.BPF_H: "u16", isa.BPF_W: "u32", isa.BPF_DW: "u64"}
_SSIZE_NAME = {isa.BPF_B: "s8", isa.BPF_H: "s16", isa.BPF_W: "s32", isa.BPF_DW: "s64"}
_ATOMIC_SYM = {isa.BPF_ADD: "+=", isa.BPF_OR: "|=", isa.BPF_AND: "&=", isa.BPF_XOR: "^="}
_ATOMIC_NAME = {isa.BPF_ADD: "add", isa.BPF_OR: "or", isa.BPF_AND: "and", isa.BPF_XOR: "xor"}


def _mem(reg: int, off: int, size: int, signed: bool = False) -> str:
    name = (_SSIZE_NAME if signed else _SIZE_NAME)[size]
    sign = "-" if off < 0 else "+"
    return f"*({name} *)(r{reg} {sign} {abs(off)})"


def format_insn(
    insns: Sequence[Insn],
    pc: int,
    *,
    map_name: Callable[[int], str] | None = None,
    helper_name: Callable[[int], str] | None = None,
) -> str:
    """Disassemble the instruction at ``pc`` (an ``ld_imm64`` reads the following slot)."""
    insn = insns[pc]
    op, cls = insn.opcode, insn.opcode & 0x07
    d, s, off, imm = insn.dst, insn.src, insn.off, insn.imm
    if cls in (isa.BPF_ALU, isa.BPF_ALU64):
        r = "r" if cls == isa.BPF_ALU64 else "w"
        aop = op & 0xF0
        if aop == isa.BPF_NEG:
            return f"{r}{d} = -{r}{d}"
        if aop == isa.BPF_END:
            if cls == isa.BPF_ALU64:
                return f"r{d} = bswap{imm} r{d}"
            kind = "be" if op & isa.BPF_X else "le"
            return f"r{d} = {kind}{imm} r{d}"
        sym = _ALU_SYM.get(aop)
        if sym is None:
            return f"invalid alu opcode {op:#04x}"
        if aop in (isa.BPF_DIV, isa.BPF_MOD) and off == 1:
            sym = "s" + sym
        src = f"{r}{s}" if op & isa.BPF_X else str(imm)
        if aop == isa.BPF_MOV and op & isa.BPF_X and off in (8, 16, 32):
            return f"{r}{d} = (s{off}){r}{s}"
        return f"{r}{d} {sym} {src}"
    if cls in (isa.BPF_JMP, isa.BPF_JMP32):
        jop = op & 0xF0
        if op == isa.OP_EXIT:
            return "exit"
        if op == isa.OP_CALL:
            if s == isa.BPF_PSEUDO_CALL:
                return f"call pc{imm:+d} <{pc + imm + 1}>"
            name = helper_name(imm) if helper_name else None
            return f"call {name}#{imm}" if name else f"call {imm}"
        target = pc + isa.jump_offset(insn) + 1
        if jop == isa.BPF_JA:
            return f"goto {isa.jump_offset(insn):+d} <{target}>"
        r = "r" if cls == isa.BPF_JMP else "w"
        sym = _JMP_SYM.get(jop)
        if sym is None:
            return f"invalid jump opcode {op:#04x}"
        src = f"{r}{s}" if op & isa.BPF_X else str(imm)
        return f"if {r}{d} {sym} {src} goto {off:+d} <{target}>"
    mode, size = op & 0xE0, op & 0x18
    if op == isa.OP_LD_IMM64:
        hi = insns[pc + 1] if pc + 1 < len(insns) else Insn(0, 0, 0, 0, 0)
        if s == isa.BPF_PSEUDO_MAP_FD:
            name = map_name(imm) if map_name else f"#{imm}"
            return f"r{d} = map[{name}] ll"
        if s == isa.BPF_PSEUDO_MAP_VALUE:
            name = map_name(imm) if map_name else f"#{imm}"
            return f"r{d} = map_value[{name}] + {hi.imm} ll"
        if s == isa.BPF_PSEUDO_FUNC:
            return f"r{d} = func pc{imm:+d} <{pc + imm + 1}> ll"
        return f"r{d} = {isa.ld_imm64_value(insn, hi):#x} ll"
    if cls == isa.BPF_LDX and mode in (isa.BPF_MEM, isa.BPF_MEMSX):
        return f"r{d} = {_mem(s, off, size, mode == isa.BPF_MEMSX)}"
    if cls == isa.BPF_ST and mode == isa.BPF_MEM:
        return f"{_mem(d, off, size)} = {imm}"
    if cls == isa.BPF_STX and mode == isa.BPF_MEM:
        return f"{_mem(d, off, size)} = r{s}"
    if cls == isa.BPF_STX and mode == isa.BPF_ATOMIC:
        r = "r" if size == isa.BPF_DW else "w"
        target = _mem(d, off, size)
        if imm == isa.BPF_XCHG:
            return f"{r}{s} = xchg({target}, {r}{s})"
        if imm == isa.BPF_CMPXCHG:
            return f"{r}0 = cmpxchg({target}, {r}0, {r}{s})"
        base = imm & ~isa.BPF_FETCH
        if imm & isa.BPF_FETCH and base in _ATOMIC_NAME:
            return f"{r}{s} = atomic_fetch_{_ATOMIC_NAME[base]}({target}, {r}{s})"
        if base in _ATOMIC_SYM:
            return f"lock {target} {_ATOMIC_SYM[base]} {r}{s}"
    if pc > 0 and insns[pc - 1].opcode == isa.OP_LD_IMM64 and op == 0:
        return "(second half of ld_imm64)"
    return f"invalid opcode {op:#04x}"


def disassemble(
    insns: Sequence[Insn],
    *,
    map_name: Callable[[int], str] | None = None,
    helper_name: Callable[[int], str] | None = None,
) -> list[str]:
    """One line per instruction (``ld_imm64`` takes one line for its two slots)."""
    lines = []
    pc = 0
    while pc < len(insns):
        text = format_insn(insns, pc, map_name=map_name, helper_name=helper_name)
        lines.append(f"{pc:5d}: {text}")
        pc += 2 if insns[pc].opcode == isa.OP_LD_IMM64 else 1
    return lines
