"""The reference interpreter: one loop, one branch per instruction class.

It is deliberately plain — every register is a u64 ``int``, every memory access goes through
:class:`~uring.bpf.memory.RunState` — because it defines what a program *means*.  The
translator must agree with it on every register, every byte of memory and every helper call
(``tests/bpf/test_translator_matches_interpreter*.py``).

Semantics fixed here (and documented in ``docs/bpf-runtime.md``):

* division by zero gives 0, modulo by zero leaves the dividend (32-bit ops zero-extend it);
  signed division truncates toward zero and ``INT_MIN / -1`` wraps;
* shift amounts are taken modulo the operand width;
* a helper call leaves R1..R5 as they were (the verifier rejects reading them afterwards);
* the instruction count includes every executed instruction of every frame and callback and
  is compared with the budget at each taken backward jump and after each ``bpf_loop``
  iteration.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from uring.bpf import isa
from uring.bpf.call_args import call_helper
from uring.bpf.helpers import HelperRegistry
from uring.bpf.isa import MASK32, MASK64, SIGN32, SIGN64, STACK_SIZE, Insn
from uring.bpf.maps import Map
from uring.bpf.memory import (
    CTX_BASE,
    FUNCTION_BASE,
    MAP_HANDLE_BASE,
    REGION_SHIFT,
    RID_STACK,
    RID_STATIC,
    RunState,
    stack_base,
    static_regions,
)
from uring.bpf.verifier import VerifiedProgram

_SWAP = {16: struct.Struct("<H"), 32: struct.Struct("<I"), 64: struct.Struct("<Q")}
_SWAP_BE = {16: struct.Struct(">H"), 32: struct.Struct(">I"), 64: struct.Struct(">Q")}


def bswap(value: int, width: int) -> int:
    """Reverse the byte order of the low ``width`` bits (result zero-extended)."""
    return _SWAP_BE[width].unpack(_SWAP[width].pack(value & ((1 << width) - 1)))[0]


def sext(value: int, bits: int) -> int:
    """Sign-extend the low ``bits`` bits of ``value`` to a u64."""
    value &= (1 << bits) - 1
    if value >> (bits - 1):
        value -= 1 << bits
    return value & MASK64


def sdiv(a: int, b: int, bits: int) -> int:
    """Signed division truncating toward zero on ``bits``-bit operands (b != 0)."""
    sign = 1 << (bits - 1)
    sa = a - (1 << bits) if a & sign else a
    sb = b - (1 << bits) if b & sign else b
    q = abs(sa) // abs(sb)
    if (sa < 0) != (sb < 0):
        q = -q
    return q & ((1 << bits) - 1)


def smod(a: int, b: int, bits: int) -> int:
    """Signed remainder with the dividend's sign on ``bits``-bit operands (b != 0)."""
    sign = 1 << (bits - 1)
    sa = a - (1 << bits) if a & sign else a
    sb = b - (1 << bits) if b & sign else b
    r = abs(sa) % abs(sb)
    if sa < 0:
        r = -r
    return r & ((1 << bits) - 1)


def alu(op: int, a: int, b: int, bits: int, off: int) -> int:
    """Result of ALU operation ``op`` (not MOV/NEG/END) on ``bits``-bit unsigned operands."""
    mask = MASK64 if bits == 64 else MASK32
    if op == isa.BPF_ADD:
        return (a + b) & mask
    if op == isa.BPF_SUB:
        return (a - b) & mask
    if op == isa.BPF_MUL:
        return (a * b) & mask
    if op == isa.BPF_DIV:
        if not b:
            return 0
        return sdiv(a, b, bits) if off == 1 else a // b
    if op == isa.BPF_MOD:
        if not b:
            return a
        return smod(a, b, bits) if off == 1 else a % b
    if op == isa.BPF_OR:
        return a | b
    if op == isa.BPF_AND:
        return a & b
    if op == isa.BPF_XOR:
        return a ^ b
    if op == isa.BPF_LSH:
        return (a << (b & (bits - 1))) & mask
    if op == isa.BPF_RSH:
        return a >> (b & (bits - 1))
    if op == isa.BPF_ARSH:
        sign = 1 << (bits - 1)
        sa = a - (1 << bits) if a & sign else a
        return (sa >> (b & (bits - 1))) & mask
    raise AssertionError(f"alu op {op:#x}")  # the verifier rejects anything else


def condition(op: int, a: int, b: int, bits: int) -> bool:
    """Outcome of conditional jump ``op`` on ``bits``-bit unsigned operands."""
    if op == isa.BPF_JEQ:
        return a == b
    if op == isa.BPF_JNE:
        return a != b
    if op == isa.BPF_JGT:
        return a > b
    if op == isa.BPF_JGE:
        return a >= b
    if op == isa.BPF_JLT:
        return a < b
    if op == isa.BPF_JLE:
        return a <= b
    if op == isa.BPF_JSET:
        return bool(a & b)
    sign = SIGN64 if bits == 64 else SIGN32
    full = 1 << bits
    sa = a - full if a & sign else a
    sb = b - full if b & sign else b
    if op == isa.BPF_JSGT:
        return sa > sb
    if op == isa.BPF_JSGE:
        return sa >= sb
    if op == isa.BPF_JSLT:
        return sa < sb
    if op == isa.BPF_JSLE:
        return sa <= sb
    raise AssertionError(f"jump op {op:#x}")


class Interpreter:
    """Executes a verified program instruction by instruction."""

    def __init__(self, prog: VerifiedProgram, maps: list[Map], helpers: HelperRegistry,
                 budget: int) -> None:
        self.prog = prog
        self.name = prog.name
        self.insns: list[Insn] = prog.insns
        self.maps = maps
        self.helpers = helpers
        self.budget = budget
        self.static_regions, self.region_names = static_regions(maps)
        #: Instructions executed by the last run (for benchmarks and tests).
        self.last_count = 0

    def new_state(self, ctx: bytearray, env: object) -> RunState:
        return RunState(self.name, self.static_regions, self.region_names, ctx, env,
                        self.budget)

    def run(self, ctx: bytearray, env: object) -> int:
        st = self.new_state(ctx, env)
        regs = [0] * 11
        regs[1] = CTX_BASE
        try:
            return self.execute(st, 0, regs, 0)
        finally:
            self.last_count = st.count

    def run_state(self, ctx: bytearray, env: object,
                  regs_in: list[int] | None = None) -> tuple[list[int], RunState]:
        """Run and return the final register file and run state (for differential tests)."""
        st = self.new_state(ctx, env)
        regs = list(regs_in) if regs_in else [0] * 11
        if not regs_in:
            regs[1] = CTX_BASE
        self.execute(st, 0, regs, 0)
        return regs, st

    def make_callback(self, st: RunState, target: int, call_pc: int,
                      depth: int) -> Callable[..., int]:
        def callback(*args: int) -> int:
            regs = [0] * 11
            for i, v in enumerate(args[:5]):
                regs[i + 1] = v & MASK64
            r0 = self.execute(st, target, regs, depth + 1)
            if st.count > st.budget:
                raise st.budget_exceeded(target)
            return r0

        return callback

    def resume(self, st: RunState, pc: int, regs: list[int], depth: int
               ) -> tuple[int, list[int]]:
        """Finish a frame another execution path started: run from ``pc`` with ``regs`` (R10
        included) and the frame's stack as mapped in ``st``, until the frame exits; returns
        R0 and the final registers.  The translator hands a run over here when something
        its facts rule out happens after all (a store through a pointer that left its
        region landed in the frame's own stack)."""
        regs = list(regs)
        r0 = self.execute(st, pc, regs, depth, fresh_frame=False)
        return r0, regs

    def execute(self, st: RunState, pc: int, regs: list[int], depth: int, *,
                fresh_frame: bool = True) -> int:
        """Run from ``pc`` in a new frame at call depth ``depth`` until that frame exits
        (``fresh_frame=False``: in the frame already mapped, from the middle)."""
        insns = self.insns
        helpers = self.helpers
        frames: list[tuple[int, list[int], int]] = []
        uses_stack = self.prog.uses_stack
        owner = self.prog.owner
        if fresh_frame and uses_stack[owner[pc]]:
            st.regions[RID_STACK + depth] = (bytearray(STACK_SIZE), STACK_SIZE, True)
        regs[10] = stack_base(depth) + STACK_SIZE
        count = st.count
        budget = st.budget
        while True:
            insn = insns[pc]
            op, d, s, off, imm = insn
            count += 1
            cls = op & 0x07
            if cls == isa.BPF_ALU64 or cls == isa.BPF_ALU:
                bits = 64 if cls == isa.BPF_ALU64 else 32
                mask = MASK64 if bits == 64 else MASK32
                aop = op & 0xF0
                b = regs[s] & mask if op & isa.BPF_X else imm & mask
                a = regs[d] & mask
                if aop == isa.BPF_MOV:
                    if off:
                        b = sext(regs[s], off) & mask
                    regs[d] = b
                elif aop == isa.BPF_NEG:
                    regs[d] = -a & mask
                elif aop == isa.BPF_END:
                    if cls == isa.BPF_ALU64 or op & isa.BPF_X:
                        regs[d] = bswap(regs[d], imm)
                    else:
                        regs[d] = regs[d] & ((1 << imm) - 1)
                else:
                    regs[d] = alu(aop, a, b, bits, off)
                pc += 1
            elif cls == isa.BPF_LDX:
                size = isa.SIZE_BYTES[op & 0x18]
                value = st.load(pc, (regs[s] + off) & MASK64, size)
                if op & 0xE0 == isa.BPF_MEMSX:
                    value = sext(value, size * 8)
                regs[d] = value
                pc += 1
            elif cls == isa.BPF_STX or cls == isa.BPF_ST:
                size = isa.SIZE_BYTES[op & 0x18]
                addr = (regs[d] + off) & MASK64
                if cls == isa.BPF_ST:
                    st.store(pc, addr, size, imm)
                elif op & 0xE0 == isa.BPF_MEM:
                    st.store(pc, addr, size, regs[s])
                else:
                    self._atomic(st, pc, insn, addr, size, regs)
                pc += 1
            elif cls == isa.BPF_JMP or cls == isa.BPF_JMP32:
                jop = op & 0xF0
                if op == isa.OP_EXIT:
                    if not frames:
                        st.count = count
                        return regs[0]
                    pc, saved, depth = frames.pop()
                    regs[6:11] = saved
                    continue
                if op == isa.OP_CALL:
                    if s == isa.BPF_PSEUDO_CALL:
                        frames.append((pc + 1, regs[6:11], depth))
                        depth += 1
                        pc = pc + imm + 1
                        if uses_stack[owner[pc]]:
                            st.regions[RID_STACK + depth] = (bytearray(STACK_SIZE),
                                                             STACK_SIZE, True)
                        regs[10] = stack_base(depth) + STACK_SIZE
                        continue
                    spec = helpers.get(imm)
                    assert spec is not None  # the verifier checked the ID
                    st.count = count
                    regs[0] = call_helper(
                        st, pc, spec, tuple(regs[1:6]), self.maps, self.prog.callbacks,
                        lambda st_, target_, pc_, depth_=depth: self.make_callback(
                            st_, target_, pc_, depth_))
                    count = st.count
                    pc += 1
                    continue
                target = pc + isa.jump_offset(insn) + 1
                if jop == isa.BPF_JA:
                    taken = True
                else:
                    bits = 64 if cls == isa.BPF_JMP else 32
                    mask = MASK64 if bits == 64 else MASK32
                    b = regs[s] & mask if op & isa.BPF_X else imm & mask
                    taken = condition(jop, regs[d] & mask, b, bits)
                if taken:
                    if target <= pc and count > budget:
                        st.count = count
                        raise st.budget_exceeded(pc)
                    pc = target
                else:
                    pc += 1
            else:  # BPF_LD: ld_imm64 (the verifier rejects every other LD form)
                hi = insns[pc + 1]
                if s == isa.BPF_PSEUDO_MAP_FD:
                    regs[d] = MAP_HANDLE_BASE + imm
                elif s == isa.BPF_PSEUDO_MAP_VALUE:
                    regs[d] = ((RID_STATIC + imm) << REGION_SHIFT) + hi.imm
                elif s == isa.BPF_PSEUDO_FUNC:
                    regs[d] = FUNCTION_BASE + pc + imm + 1
                else:
                    regs[d] = isa.ld_imm64_value(insn, hi)
                pc += 2

    @staticmethod
    def _atomic(st: RunState, pc: int, insn: Insn, addr: int, size: int,
                regs: list[int]) -> None:
        buf, off = st.locate(pc, addr, size, True)
        old = atomic_at(buf, off, size, insn.imm, regs[insn.src], regs[0])
        if insn.imm == isa.BPF_CMPXCHG:
            regs[0] = old
        elif insn.imm & isa.BPF_FETCH:
            regs[insn.src] = old


_STRUCTS = {4: struct.Struct("<I"), 8: struct.Struct("<Q")}


def atomic_at(buf: bytearray, off: int, size: int, op: int, src: int, r0: int) -> int:
    """Perform atomic ``op`` on ``buf[off:off+size]`` (the memory is already checked);
    returns the old value.  Shared by both execution paths."""
    s = _STRUCTS[size]
    mask = MASK64 if size == 8 else MASK32
    old = s.unpack_from(buf, off)[0]
    src &= mask
    if op == isa.BPF_CMPXCHG:
        if old == r0 & mask:
            s.pack_into(buf, off, src)
        return old
    if op == isa.BPF_XCHG:
        new = src
    else:
        base = op & ~isa.BPF_FETCH
        if base == isa.BPF_ADD:
            new = (old + src) & mask
        elif base == isa.BPF_OR:
            new = old | src
        elif base == isa.BPF_AND:
            new = old & src
        else:
            new = old ^ src
    s.pack_into(buf, off, new)
    return old
