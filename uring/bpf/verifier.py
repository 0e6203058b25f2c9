"""Load-time verifier: the structural rules a program must pass before it may run.

This is *not* the kernel's verifier.  The kernel proves memory safety by abstract
interpretation of every path; we check what can be checked cheaply on the instruction
stream and leave memory safety to the run-time sandbox (:mod:`uring.bpf.memory`), as uBPF
does.  The rules, each named in a rejection:

==================  ====================================================================
rule                what it checks
==================  ====================================================================
``size``            1 .. ``max_insns`` instruction slots
``opcode``          known opcode; reserved fields zero; registers R0..R10; ``ld_imm64``
                    complete; valid atomic operation and ``BPF_END`` width
``frame-pointer``   nothing writes R10
``shift``           constant shift amounts below the operand width
``div-by-zero``     no division or modulo by the constant 0
``jump-range``      jump targets inside the function, not into an ``ld_imm64``'s 2nd half
``fall-off``        no path runs past the end of a function
``unreachable``     every instruction is reachable
``helper``          helper IDs exist in the program type's registry
``call``            bpf-to-bpf call targets and function references are function starts;
                    no recursion; at most 8 frames deep
``map``             ``ld_imm64`` map references name a map; value offsets are inside it
``stack``           constant R10-relative accesses lie in [-512, 0); the stacks of a call
                    chain add up to at most 512 bytes
``uninit``          no register is read before it is written on every path (R1..R5 are
                    clobbered by calls); R0 is set at every exit
==================  ====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from uring.bpf import isa
from uring.bpf.disasm import format_insn
from uring.bpf.elf_loader import Function, LinkedProgram
from uring.bpf.errors import VerifierError
from uring.bpf.helpers import HelperRegistry
from uring.bpf.isa import Insn

#: Default program size limit in instruction slots (the kernel's classic BPF_MAXINSNS).
DEFAULT_MAX_INSNS = 4096

_ALU_OPS = {isa.BPF_ADD, isa.BPF_SUB, isa.BPF_MUL, isa.BPF_DIV, isa.BPF_OR, isa.BPF_AND,
            isa.BPF_LSH, isa.BPF_RSH, isa.BPF_NEG, isa.BPF_MOD, isa.BPF_XOR, isa.BPF_MOV,
            isa.BPF_ARSH, isa.BPF_END}
_COND_OPS = {isa.BPF_JEQ, isa.BPF_JGT, isa.BPF_JGE, isa.BPF_JSET, isa.BPF_JNE, isa.BPF_JSGT,
             isa.BPF_JSGE, isa.BPF_JLT, isa.BPF_JLE, isa.BPF_JSLT, isa.BPF_JSLE}
_ALL_REGS = (1 << 11) - 1


@dataclass
class VerifiedProgram:
    """A program that passed every load-time rule, with what the checks learned."""

    name: str
    section: str
    insns: list[Insn]
    functions: list[Function]
    #: function index of every instruction slot
    owner: list[int]
    #: bytes of stack each function uses (deepest constant R10-relative access)
    stack_depth: list[int]
    #: starts of functions used as bpf_loop callbacks
    callbacks: set[int] = field(default_factory=set)
    #: whether each function touches R10 (only those get a fresh stack when entered)
    uses_stack: list[bool] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def reads_writes(insn: Insn, helpers: HelperRegistry | None = None) -> tuple[int, int]:
    """(registers read, registers written) by ``insn``, as bit masks."""
    op, cls = insn.opcode, insn.opcode & 0x07
    d, s = 1 << insn.dst, 1 << insn.src
    if cls in (isa.BPF_ALU, isa.BPF_ALU64):
        aop = op & 0xF0
        src = s if op & isa.BPF_X and aop not in (isa.BPF_NEG, isa.BPF_END) else 0
        if aop == isa.BPF_MOV:
            return src, d
        return d | src, d
    if cls in (isa.BPF_JMP, isa.BPF_JMP32):
        jop = op & 0xF0
        if op == isa.OP_EXIT:
            return 1, 0
        if op == isa.OP_CALL:
            clobber = 0b111111  # R0..R5
            if insn.src == isa.BPF_HELPER_CALL and helpers is not None:
                spec = helpers.get(insn.imm)
                nargs = len(spec.args) if spec else 0
                return ((1 << (nargs + 1)) - 2), clobber
            return 0, clobber
        if jop == isa.BPF_JA:
            return 0, 0
        return d | (s if op & isa.BPF_X else 0), 0
    if op == isa.OP_LD_IMM64:
        return 0, d
    if cls == isa.BPF_LDX:
        return s, d
    if cls == isa.BPF_ST:
        return d, 0
    if cls == isa.BPF_STX:
        if op & 0xE0 == isa.BPF_ATOMIC:
            if insn.imm == isa.BPF_CMPXCHG:
                return d | s | 1, 1
            if insn.imm & isa.BPF_FETCH:
                return d | s, s
        return d | s, 0
    return 0, 0


def successors(insns: list[Insn], pc: int) -> list[int]:
    """Control-flow successors of the instruction at ``pc`` within its function."""
    insn = insns[pc]
    op = insn.opcode
    if op == isa.OP_EXIT:
        return []
    if op == isa.OP_LD_IMM64:
        return [pc + 2]
    if isa.is_jump(insn):
        target = pc + isa.jump_offset(insn) + 1
        if op & 0xF0 == isa.BPF_JA:
            return [target]
        return [pc + 1, target] if target != pc + 1 else [pc + 1]
    return [pc + 1]


class _Checker:
    def __init__(self, prog: LinkedProgram, map_shapes: list[tuple[str, int]],
                 helpers: HelperRegistry, max_insns: int) -> None:
        self.prog = prog
        self.insns = prog.insns
        self.map_shapes = map_shapes  # (name, value_size)
        self.helpers = helpers
        self.max_insns = max_insns
        self.log: list[str] = []

    def reject(self, pc: int | None, rule: str, message: str) -> VerifierError:
        if pc is not None and 0 <= pc < len(self.insns):
            self.log.append(f"{pc}: {self.fmt(pc)}")
        where = f"insn {pc}: " if pc is not None else ""
        self.log.append(f"{where}{message} [{rule}]")
        return VerifierError(self.prog.name, pc, rule, message, self.log)

    def fmt(self, pc: int) -> str:
        return format_insn(
            self.insns, pc,
            map_name=lambda i: self.map_shapes[i][0] if 0 <= i < len(self.map_shapes)
            else f"#{i}",
            helper_name=self.helpers.name_of,
        )

    def run(self) -> VerifiedProgram:
        insns = self.insns
        n = len(insns)
        self.log.append(f"program {self.prog.name} (section {self.prog.section}): {n} insns, "
                        f"{len(self.prog.functions)} function(s), helpers of program type "
                        f"{self.helpers.program_type}")
        if n == 0:
            raise self.reject(None, "size", "program is empty")
        if n > self.max_insns:
            raise self.reject(None, "size", f"program has {n} insns, limit is "
                              f"{self.max_insns}")
        starts = {f.start: i for i, f in enumerate(self.prog.functions)}
        owner = [0] * n
        for i, f in enumerate(self.prog.functions):
            for pc in range(f.start, f.end):
                owner[pc] = i
        self.starts, self.owner = starts, owner
        second_half = set()
        pc = 0
        while pc < n:
            self.check_insn(pc)
            if insns[pc].opcode == isa.OP_LD_IMM64:
                second_half.add(pc + 1)
                pc += 2
            else:
                pc += 1
        self.second_half = second_half
        callees: list[set[int]] = [set() for _ in self.prog.functions]
        callbacks: set[int] = set()
        for fi, f in enumerate(self.prog.functions):
            self.check_function(fi, f, callees[fi], callbacks)
        self.check_call_graph(callees)
        depths = [self.stack_depth(f) for f in self.prog.functions]
        self.check_combined_stack(callees, depths)
        for fi, f in enumerate(self.prog.functions):
            self.check_uninit(f, is_main=fi == 0)
        self.log.append(f"accepted: {n} insns, stack depth "
                        + "+".join(str(d) for d in depths))
        uses_stack = []
        for f in self.prog.functions:
            uses_stack.append(any(
                reads_writes(insns[pc])[0] & (1 << isa.FRAME_REG)
                for pc in range(f.start, f.end) if pc not in second_half))
        return VerifiedProgram(self.prog.name, self.prog.section, insns,
                               self.prog.functions, owner, depths, callbacks=callbacks,
                               uses_stack=uses_stack, log=self.log)

    # -- per instruction -------------------------------------------------------------------

    def check_insn(self, pc: int) -> None:
        insn = self.insns[pc]
        op, cls = insn.opcode, insn.opcode & 0x07
        d, s, off, imm = insn.dst, insn.src, insn.off, insn.imm
        bad = lambda why: self.reject(pc, "opcode", why)  # noqa: E731
        if d > isa.MAX_REG or s > isa.MAX_REG:
            raise bad(f"invalid register (dst r{d}, src r{s})")
        if cls in (isa.BPF_ALU, isa.BPF_ALU64):
            aop = op & 0xF0
            if aop not in _ALU_OPS:
                raise bad(f"unknown ALU operation {op:#04x}")
            if d == isa.FRAME_REG:
                raise self.reject(pc, "frame-pointer", "frame pointer R10 is read only")
            if aop == isa.BPF_END:
                if s or off or imm not in (16, 32, 64):
                    raise bad(f"invalid byte swap (width {imm})")
                if cls == isa.BPF_ALU64 and op & isa.BPF_X:
                    raise bad("invalid 64-bit byte swap opcode")
                return
            if aop == isa.BPF_NEG:
                if op & isa.BPF_X or s or off or imm:
                    raise bad("reserved fields of neg must be zero")
                return
            if op & isa.BPF_X:
                if imm:
                    raise bad("register-source ALU op with nonzero imm")
            elif s:
                raise bad("immediate ALU op with nonzero src register")
            allowed_off = {0}
            if aop in (isa.BPF_DIV, isa.BPF_MOD):
                allowed_off = {0, 1}
            elif aop == isa.BPF_MOV and op & isa.BPF_X:
                allowed_off = {0, 8, 16, 32} if cls == isa.BPF_ALU64 else {0, 8, 16}
            if off not in allowed_off:
                raise bad(f"invalid off {off} for this ALU op")
            if not op & isa.BPF_X:
                width = 64 if cls == isa.BPF_ALU64 else 32
                if aop in (isa.BPF_LSH, isa.BPF_RSH, isa.BPF_ARSH) and not 0 <= imm < width:
                    raise self.reject(pc, "shift", f"invalid shift {imm} of a {width}-bit "
                                      "value")
                if aop in (isa.BPF_DIV, isa.BPF_MOD) and imm == 0:
                    raise self.reject(pc, "div-by-zero", "division by constant zero")
            return
        if cls in (isa.BPF_JMP, isa.BPF_JMP32):
            jop = op & 0xF0
            if op == isa.OP_EXIT:
                if d or s or off or imm:
                    raise bad("reserved fields of exit must be zero")
                return
            if jop == isa.BPF_CALL:
                if cls != isa.BPF_JMP or op & isa.BPF_X or d or off:
                    raise bad("invalid call encoding")
                if s == isa.BPF_HELPER_CALL:
                    if imm not in self.helpers:
                        raise self.reject(pc, "helper", f"unknown helper {imm}: not offered "
                                          f"to program type {self.helpers.program_type}")
                elif s == isa.BPF_PSEUDO_CALL:
                    if pc + imm + 1 not in self.starts:
                        raise self.reject(pc, "call", f"call target {pc + imm + 1} is not "
                                          "the start of a function")
                else:
                    raise self.reject(pc, "call", "kfunc calls are not supported")
                return
            if jop == isa.BPF_EXIT or (jop not in _COND_OPS and jop != isa.BPF_JA):
                raise bad(f"unknown jump operation {op:#04x}")
            if jop == isa.BPF_JA:
                if op & isa.BPF_X or d or s or (imm if cls == isa.BPF_JMP else off):
                    raise bad("reserved fields of goto must be zero")
            elif op & isa.BPF_X:
                if imm:
                    raise bad("register-source jump with nonzero imm")
            elif s:
                raise bad("immediate jump with nonzero src register")
            target = pc + isa.jump_offset(insn) + 1
            f = self.prog.functions[self.owner[pc]]
            if not f.start <= target < f.end:
                raise self.reject(pc, "jump-range", f"jump out of range to {target} "
                                  f"(function {f.name} is insns {f.start}..{f.end - 1})")
            return
        if cls == isa.BPF_LD:
            if op != isa.OP_LD_IMM64:
                raise bad("legacy packet access (LD_ABS/LD_IND) and other LD modes are "
                          "not supported")
            if d == isa.FRAME_REG:
                raise self.reject(pc, "frame-pointer", "frame pointer R10 is read only")
            if pc + 1 >= len(self.insns):
                raise bad("ld_imm64 missing its second half")
            hi = self.insns[pc + 1]
            if hi.opcode or hi.dst or hi.src or hi.off or off:
                raise bad("invalid ld_imm64 second half")
            if s == isa.BPF_PSEUDO_MAP_FD or s == isa.BPF_PSEUDO_MAP_VALUE:
                if not 0 <= imm < len(self.map_shapes):
                    raise self.reject(pc, "map", f"map reference #{imm} but the object has "
                                      f"{len(self.map_shapes)} maps")
                name, value_size = self.map_shapes[imm]
                if s == isa.BPF_PSEUDO_MAP_FD and hi.imm:
                    raise bad("map reference with nonzero upper immediate")
                if s == isa.BPF_PSEUDO_MAP_VALUE and not 0 <= hi.imm < value_size:
                    raise self.reject(pc, "map", f"offset {hi.imm} outside the "
                                      f"{value_size}-byte value of map {name}")
            elif s == isa.BPF_PSEUDO_FUNC:
                if hi.imm or pc + imm + 1 not in self.starts:
                    raise self.reject(pc, "call", f"function reference to {pc + imm + 1}, "
                                      "which is not the start of a function")
            elif s != 0:
                raise bad(f"unsupported ld_imm64 source {s}")
            return
        mode, size = op & 0xE0, op & 0x18
        if cls == isa.BPF_LDX:
            if mode not in (isa.BPF_MEM, isa.BPF_MEMSX) or imm:
                raise bad("invalid load")
            if mode == isa.BPF_MEMSX and size == isa.BPF_DW:
                raise bad("sign-extending load of 8 bytes")
            if d == isa.FRAME_REG:
                raise self.reject(pc, "frame-pointer", "frame pointer R10 is read only")
            self.check_stack_off(pc, s, off, isa.SIZE_BYTES[size])
            return
        if cls == isa.BPF_ST:
            if mode != isa.BPF_MEM or s:
                raise bad("invalid store of an immediate")
            self.check_stack_off(pc, d, off, isa.SIZE_BYTES[size])
            return
        if cls == isa.BPF_STX:
            if mode == isa.BPF_MEM:
                if imm:
                    raise bad("store with nonzero imm")
            elif mode == isa.BPF_ATOMIC:
                if size not in (isa.BPF_W, isa.BPF_DW):
                    raise bad("atomic operations work on 4 or 8 bytes only")
                if imm not in isa.ATOMIC_OPS:
                    raise bad(f"unknown atomic operation {imm:#x}")
                if imm & isa.BPF_FETCH and s == isa.FRAME_REG:
                    raise self.reject(pc, "frame-pointer", "frame pointer R10 is read only")
            else:
                raise bad("invalid store mode")
            self.check_stack_off(pc, d, off, isa.SIZE_BYTES[size])
            return
        raise bad(f"unknown opcode {op:#04x}")

    def check_stack_off(self, pc: int, base: int, off: int, size: int) -> None:
        if base == isa.FRAME_REG and not -isa.STACK_SIZE <= off <= -size:
            raise self.reject(pc, "stack", f"invalid stack access off={off} size={size} "
                              f"(the stack is R10-{isa.STACK_SIZE} .. R10-1)")

    # -- per function --------------------------------------------------------------------------

    def check_function(self, fi: int, f: Function, callees: set[int],
                       callbacks: set[int]) -> None:
        insns = self.insns
        last = f.end - 1
        if last in self.second_half:
            last -= 1
        lop = insns[last].opcode
        if lop != isa.OP_EXIT and not (lop & 0xF0 == isa.BPF_JA and lop & 0x07 in
                                       (isa.BPF_JMP, isa.BPF_JMP32)):
            raise self.reject(last, "fall-off", f"last insn of function {f.name} is not an "
                              "exit or goto")
        seen = set()
        stack = [f.start]
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            insn = insns[pc]
            if insn.opcode == isa.OP_CALL and insn.src == isa.BPF_PSEUDO_CALL:
                callees.add(self.owner[pc + insn.imm + 1])
            if insn.opcode == isa.OP_LD_IMM64 and insn.src == isa.BPF_PSEUDO_FUNC:
                callees.add(self.owner[pc + insn.imm + 1])
                callbacks.add(pc + insn.imm + 1)
            for nxt in successors(insns, pc):
                if nxt in self.second_half:
                    raise self.reject(pc, "jump-range", f"jump into the middle of the "
                                      f"ld_imm64 at {nxt - 1}")
                if nxt >= f.end:
                    raise self.reject(pc, "fall-off", f"execution falls off the end of "
                                      f"function {f.name}")
                stack.append(nxt)
        for pc in range(f.start, f.end):
            if pc not in seen and pc not in self.second_half:
                raise self.reject(pc, "unreachable", "unreachable insn")
        self.reachable = getattr(self, "reachable", set()) | seen

    def check_call_graph(self, callees: list[set[int]]) -> None:
        names = [f.name for f in self.prog.functions]

        def depth(fi: int, path: tuple[int, ...]) -> int:
            if fi in path:
                cycle = " -> ".join(names[i] for i in (*path, fi))
                raise self.reject(self.prog.functions[fi].start, "call",
                                  f"recursive call chain {cycle}")
            return 1 + max((depth(c, (*path, fi)) for c in callees[fi]), default=0)

        frames = depth(0, ())
        if frames > isa.MAX_CALL_FRAMES:
            raise self.reject(None, "call", f"call chain {frames} frames deep, limit is "
                              f"{isa.MAX_CALL_FRAMES}")

    def stack_depth(self, f: Function) -> int:
        deepest = 0
        for pc in range(f.start, f.end):
            insn = self.insns[pc]
            cls = insn.opcode & 0x07
            if pc in self.second_half:
                continue
            base = None
            if cls == isa.BPF_LDX:
                base = insn.src
            elif cls in (isa.BPF_ST, isa.BPF_STX):
                base = insn.dst
            if base == isa.FRAME_REG:
                deepest = max(deepest, -insn.off)
            elif (cls == isa.BPF_ALU64 and insn.opcode & 0xF0 == isa.BPF_ADD
                  and not insn.opcode & isa.BPF_X and insn.imm < 0
                  and self._copies_fp(pc, insn.dst)):
                deepest = max(deepest, min(-insn.imm, isa.STACK_SIZE))
        return (deepest + 7) // 8 * 8

    def _copies_fp(self, pc: int, reg: int) -> bool:
        """Whether ``reg`` was just set to R10 (the ``rX = r10; rX += -N`` idiom)."""
        if pc == 0:
            return False
        prev = self.insns[pc - 1]
        return (prev.opcode == (isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X) and prev.dst == reg
                and prev.src == isa.FRAME_REG)

    def check_combined_stack(self, callees: list[set[int]], depths: list[int]) -> None:
        def chain(fi: int) -> int:
            return depths[fi] + max((chain(c) for c in callees[fi]), default=0)

        total = chain(0)
        if total > isa.STACK_SIZE:
            raise self.reject(None, "stack", f"combined stack size of the call chain is "
                              f"{total} bytes, limit is {isa.STACK_SIZE}")

    def check_uninit(self, f: Function, *, is_main: bool) -> None:
        insns = self.insns
        entry = (1 << isa.R1) | (1 << isa.FRAME_REG)
        if not is_main:
            entry |= 0b111110  # R1..R5 carry the arguments
        state: dict[int, int] = {f.start: entry}
        work = [f.start]
        while work:
            pc = work.pop()
            have = state[pc]
            reads, writes = reads_writes(insns[pc], self.helpers)
            missing = reads & ~have
            if missing:
                reg = (missing & -missing).bit_length() - 1
                raise self.reject(pc, "uninit", f"R{reg} !read_ok (read before it is "
                                  "written on some path)")
            out = have | writes
            if insns[pc].opcode == isa.OP_CALL:
                out = (have & ~0b111111) | 1
            for nxt in successors(insns, pc):
                old = state.get(nxt)
                new = out if old is None else old & out
                if new != old:
                    state[nxt] = new
                    work.append(nxt)


def verify(prog: LinkedProgram, map_shapes: list[tuple[str, int]], helpers: HelperRegistry,
           *, max_insns: int = DEFAULT_MAX_INSNS) -> VerifiedProgram:
    """Check ``prog`` against every load-time rule; raise :class:`VerifierError` if one fails.

    ``map_shapes`` lists ``(name, value_size)`` of the object's maps, by index.
    """
    return _Checker(prog, map_shapes, helpers, max_insns).run()
