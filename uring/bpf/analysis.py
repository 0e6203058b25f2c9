"""Static facts about a verified program, for the translator: what each register holds.

A forward data-flow analysis over each function's control-flow graph computes, before every
instruction, an abstract value per register and per 8-byte stack slot:

* ``Scalar(lo, hi)``: an integer known to lie in ``[lo, hi]`` (unsigned; ``lo == hi`` is a
  constant).  ``UNKNOWN`` (``Scalar(0, 2**64-1)``) also stands for "anything", pointers
  included;
* ``Ptr(region, off, nullable)``: a pointer into a region known at translation time — the
  context, this frame's stack, the calling frame's stack (a ``bpf_loop`` callback's
  context), a static map region, or the value a particular lookup call site returned — at a
  constant offset from the start of the pointed-to element (``off`` is ``None`` when it is
  not constant);
* ``MapRef(i)`` / ``FuncRef(pc)``: the constants ``ld_imm64`` loads for a map or a callback.

The facts must be *sound* (true on every execution) but need not be precise: the translator
uses them only to skip work (a region decode, a bounds check, a 64-bit mask) and falls back
to the checked generic path whenever a fact is missing.  Soundness points worth knowing:

* a value returned by lookup site ``p`` lives in translator locals of that site, so when the
  site runs again every register and slot still holding an older ``Ptr(site p)`` is
  forgotten;
* stack slots are tracked only for 8-byte stores at constant offsets; any other store that
  may touch the stack forgets the slots it may touch, and once a pointer to the stack has
  escaped (stored to memory or passed to a call) a store through an unknown pointer or any
  call forgets them all;
* a pointer is only an integer, so code can reach any frame's stack through an address it
  computed: functions are analysed callees first, and a call to a function that may write
  through an address the analysis cannot place (:attr:`Analysis.foreign`) forgets the
  caller's slots too;
* loads from a frozen map (``.rodata``) at a constant offset are constants: neither the
  program nor Python can change that memory after load;
* a ``bpf_loop`` callback gets a region for its context only when every callback in the
  program is passed as a known function to the standard ``bpf_loop``, this one always with
  a pointer into the caller's stack at the same offset, and no code calls it directly: then
  R2 points into the frame one below its own, and R1 is below ``BPF_MAX_LOOPS``.  Its
  accesses there still count as reaching another frame in :attr:`Analysis.foreign` (the
  summary is taken before this refinement);
* loops are widened: after a few visits of a block, ranges that still grow jump to full.
"""

from __future__ import annotations

from dataclasses import dataclass

from uring.bpf import isa
from uring.bpf.helpers import (
    BPF_MAX_LOOPS,
    Arg,
    BPF_FUNC_map_lookup_elem,
    HelperRegistry,
    Ret,
)
from uring.bpf.inline_helpers import is_standard_loop
from uring.bpf.interpreter import alu, sext
from uring.bpf.isa import MASK32, MASK64, STACK_SIZE, Insn
from uring.bpf.maps import ArrayMap, Map
from uring.bpf.memory import REGION_SHIFT, RID_STACK, RID_STATIC
from uring.bpf.verifier import VerifiedProgram, successors

WIDEN_AFTER = 4
WIDEN_BOUNDS = (0xFF, 0xFFFF, MASK32 - 1, MASK32, MASK64 - 1, MASK64)
CTX_SIZE = 16


@dataclass(frozen=True, slots=True)
class Scalar:
    lo: int
    hi: int

    @property
    def const(self) -> int | None:
        return self.lo if self.lo == self.hi else None


@dataclass(frozen=True, slots=True)
class Ptr:
    region: object  # "ctx" | "fp" | "caller_fp" | ("g", map index) | ("site", pc)
    off: int | None
    nullable: bool = False
    #: the NULL may also be a constant from another path, not only what the lookup returned
    other_null: bool = False


@dataclass(frozen=True, slots=True)
class MapRef:
    index: int


@dataclass(frozen=True, slots=True)
class FuncRef:
    pc: int


Value = Scalar | Ptr | MapRef | FuncRef
UNKNOWN = Scalar(0, MASK64)
U32_RANGE = Scalar(0, MASK32)


def const(v: int) -> Scalar:
    return Scalar(v, v)


def join(a: Value, b: Value) -> Value:
    if a == b:
        return a
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return Scalar(min(a.lo, b.lo), max(a.hi, b.hi))
    if isinstance(a, Ptr) and isinstance(b, Ptr) and a.region == b.region:
        return Ptr(a.region, a.off if a.off == b.off else None, a.nullable or b.nullable,
                   a.other_null or b.other_null)
    # NULL on one path, a pointer on the other: the pointer may be NULL
    if isinstance(a, Ptr) and b == Scalar(0, 0):
        return Ptr(a.region, a.off, True, True)
    if isinstance(b, Ptr) and a == Scalar(0, 0):
        return Ptr(b.region, b.off, True, True)
    return UNKNOWN


def widen(old: Value, new: Value) -> Value:
    if isinstance(old, Scalar) and isinstance(new, Scalar):
        lo = old.lo if new.lo >= old.lo else 0
        # a growing bound jumps to the next natural one, so 32-bit counters stay known as
        # 32-bit (and a counter kept below a u32 by its loop test settles one under it)
        hi = old.hi if new.hi <= old.hi else next(b for b in WIDEN_BOUNDS if new.hi <= b)
        return Scalar(lo, hi)
    return new


@dataclass(frozen=True)
class State:
    regs: tuple[Value, ...]
    slots: tuple[tuple[int, Value], ...]  # (offset from R10, value), sorted
    escaped: bool  # a pointer to this frame's stack may be stored somewhere

    def slot(self, off: int) -> Value | None:
        for o, v in self.slots:
            if o == off:
                return v
        return None


def join_states(a: State, b: State, widen_now: bool) -> State:
    f = widen if widen_now else (lambda _o, n: n)
    regs = tuple(f(x, join(x, y)) for x, y in zip(a.regs, b.regs, strict=True))
    bs = dict(b.slots)
    slots = tuple((o, f(v, join(v, bs[o]))) for o, v in a.slots if o in bs)
    return State(regs, slots, a.escaped or b.escaped)


def bits_mask(v: int) -> int:
    """Smallest 2**k - 1 >= v."""
    return (1 << v.bit_length()) - 1


def placed(v: Value, off: int = 0) -> bool:
    """Whether an access through ``v + off`` provably stays out of every frame's stack other
    than the one ``v`` points into (a pointer with a known region and offset, a map handle
    or function, or a constant address outside the stack regions)."""
    if isinstance(v, Ptr):
        return v.off is not None
    if isinstance(v, (MapRef, FuncRef)):
        return True
    c = v.const
    if c is None:
        return False
    rid = ((c + off) & MASK64) >> REGION_SHIFT
    return not RID_STACK <= rid < RID_STATIC


class Analysis:
    """Runs the data flow over every function of a program; ``state_in[pc]`` holds facts."""

    def __init__(self, prog: VerifiedProgram, maps: list[Map], helpers: HelperRegistry) -> None:
        self.prog = prog
        self.insns: list[Insn] = prog.insns
        self.maps = maps
        self.helpers = helpers
        self.state_in: dict[int, State] = {}
        #: lookup call site pc -> map index, for sites whose map is a known constant
        self.site_map: dict[int, int] = {}
        #: function index -> (may read, may write) memory through an address the analysis
        #: cannot place -- possibly another frame's stack -- itself or in what it calls
        self.foreign: dict[int, tuple[bool, bool]] = {}
        #: bpf_loop callback start pc -> R10 offset of the caller's stack its R2 points at
        self.callback_ctx: dict[int, int] = {}
        for fi in self._callees_first():
            self._run_function(fi, prog.functions[fi].start)
            self.foreign[fi] = self._foreign_access(fi, self.foreign)
        self.callback_ctx = self._callback_contexts()
        for start in self.callback_ctx:  # again, with R1 and R2 known at entry
            f = prog.functions[prog.owner[start]]
            for pc in range(f.start, f.end):
                self.state_in.pop(pc, None)
            self._run_function(prog.owner[start], start)
        #: like :attr:`foreign`, but a callback's accesses to its caller's stack count as
        #: placed: what may reach a frame that is *not* live (a callee's, after it returned)
        self.unplaced: dict[int, tuple[bool, bool]] = {}
        for fi in self._callees_first():
            self.unplaced[fi] = self._foreign_access(fi, self.unplaced)

    def _callback_contexts(self) -> dict[int, int]:
        insns = self.insns
        called = {pc + insn.imm + 1 for pc, insn in enumerate(insns)
                  if insn.opcode == isa.OP_CALL and insn.src == isa.BPF_PSEUDO_CALL}
        contexts: dict[int, int | None] = {}
        for pc, s in self.state_in.items():
            insn = insns[pc]
            if insn.opcode != isa.OP_CALL or insn.src == isa.BPF_PSEUDO_CALL:
                continue
            spec = self.helpers.get(insn.imm)
            if spec is None or Arg.CALLBACK not in spec.args:
                continue
            fn = s.regs[spec.args.index(Arg.CALLBACK) + 1]
            if not isinstance(fn, FuncRef):
                return {}  # some callback is made from a value: any function may get anything
            ctx = s.regs[3]
            k = None
            if (is_standard_loop(spec) and isinstance(ctx, Ptr) and ctx.region == "fp"
                    and ctx.off is not None and not ctx.nullable):
                k = ctx.off
            if fn.pc in contexts and contexts[fn.pc] != k:
                k = None
            contexts[fn.pc] = k
        return {pc: k for pc, k in contexts.items() if k is not None and pc not in called}

    def _callees_first(self) -> list[int]:
        """Function indexes, every callee (or callback) before its callers."""
        prog = self.prog
        callees: list[set[int]] = [set() for _ in prog.functions]
        for fi, f in enumerate(prog.functions):
            for pc in range(f.start, f.end):
                insn = self.insns[pc]
                if (insn.opcode == isa.OP_CALL and insn.src == isa.BPF_PSEUDO_CALL) or (
                        insn.opcode == isa.OP_LD_IMM64 and insn.src == isa.BPF_PSEUDO_FUNC):
                    target = pc + insn.imm + 1
                    if 0 <= target < len(self.insns):
                        callees[fi].add(prog.owner[target])
        order: list[int] = []
        seen: set[int] = set()

        def visit(fi: int) -> None:
            if fi in seen:
                return
            seen.add(fi)
            for c in sorted(callees[fi]):
                visit(c)
            order.append(fi)

        for fi in range(len(prog.functions)):
            visit(fi)
        return order

    def callee_foreign(self, target_pc: int,
                       table: dict[int, tuple[bool, bool]] | None = None) -> tuple[bool, bool]:
        """What the function starting at ``target_pc`` may do to other frames' stacks."""
        return (self.foreign if table is None else table).get(self.prog.owner[target_pc],
                                                              (True, True))

    def _foreign_access(self, fi: int, table: dict[int, tuple[bool, bool]]
                        ) -> tuple[bool, bool]:
        f = self.prog.functions[fi]
        reads = writes = False
        for pc in range(f.start, f.end):
            s = self.state_in.get(pc)
            if s is None:
                continue
            insn = self.insns[pc]
            op, cls = insn.opcode, insn.opcode & 0x07
            r = w = False
            if cls == isa.BPF_LDX:
                r = not placed(s.regs[insn.src], insn.off)
            elif cls in (isa.BPF_ST, isa.BPF_STX):
                w = not placed(s.regs[insn.dst], insn.off)
                r = w and op & 0xE0 == isa.BPF_ATOMIC
            elif op == isa.OP_CALL and insn.src == isa.BPF_PSEUDO_CALL:
                r, w = self.callee_foreign(pc + insn.imm + 1, table)
            elif op == isa.OP_CALL:
                r, w = self.helper_foreign(insn, s.regs, table)
            reads, writes = reads or r, writes or w
        return reads, writes

    def helper_foreign(self, insn: Insn, regs: tuple[Value, ...] | list[Value],
                       table: dict[int, tuple[bool, bool]] | None = None
                       ) -> tuple[bool, bool]:
        """(may read, may write) memory outside the places the arguments point into."""
        spec = self.helpers.get(insn.imm)
        reads = writes = False
        if spec is None:
            return True, True
        for i, kind in enumerate(spec.args):
            v = regs[i + 1]
            if kind in (Arg.MEM, Arg.MAP_KEY, Arg.MAP_VALUE):
                reads = reads or not placed(v)
            elif kind is Arg.MEM_WRITE and not placed(v):
                reads = writes = True
            elif kind is Arg.CALLBACK:
                r, w = (self.callee_foreign(v.pc, table) if isinstance(v, FuncRef)
                        else (True, True))
                reads, writes = reads or r, writes or w
        return reads, writes

    def _entry_state(self, fi: int) -> State:
        regs: list[Value] = [UNKNOWN] * 11
        if fi == 0:
            regs[1] = Ptr("ctx", 0)
        k = self.callback_ctx.get(self.prog.functions[fi].start)
        if k is not None:
            regs[1] = Scalar(0, BPF_MAX_LOOPS - 1)
            regs[2] = Ptr("caller_fp", k)
        regs[10] = Ptr("fp", 0)
        return State(tuple(regs), (), False)

    def _run_function(self, fi: int, start: int) -> None:
        visits: dict[int, int] = {}
        self.state_in[start] = self._entry_state(fi)
        work = [start]
        while work:
            pc = work.pop()
            state = self.state_in[pc]
            for nxt, out in self.transfer(pc, state):
                old = self.state_in.get(nxt)
                if old is None:
                    self.state_in[nxt] = out
                    work.append(nxt)
                    continue
                visits[nxt] = visits.get(nxt, 0) + 1
                new = join_states(old, out, visits[nxt] > WIDEN_AFTER)
                if new != old:
                    self.state_in[nxt] = new
                    work.append(nxt)

    # -- transfer functions ------------------------------------------------------------------

    def transfer(self, pc: int, s: State) -> list[tuple[int, State]]:
        insn = self.insns[pc]
        op, cls = insn.opcode, insn.opcode & 0x07
        if op == isa.OP_EXIT:
            return []
        if isa.is_jump(insn):
            succ = successors(self.insns, pc)
            target = pc + isa.jump_offset(insn) + 1
            if len(succ) == 1:
                return [(succ[0], s)]
            taken, fall = self.refine(insn, s)
            return [(pc + 1, fall), (target, taken)]
        regs = list(s.regs)
        slots = dict(s.slots)
        escaped = s.escaped
        if cls in (isa.BPF_ALU, isa.BPF_ALU64):
            regs[insn.dst] = alu_value(insn, regs[insn.dst], self.src_value(insn, regs))
        elif op == isa.OP_LD_IMM64:
            regs[insn.dst] = self.ld_imm64_value(pc)
        elif cls == isa.BPF_LDX:
            regs[insn.dst] = self.load_value(insn, regs[insn.src], slots)
        elif cls in (isa.BPF_ST, isa.BPF_STX):
            size = isa.SIZE_BYTES[op & 0x18]
            base = regs[insn.dst]
            stored: Value | None = None
            if cls == isa.BPF_STX and op & 0xE0 == isa.BPF_MEM:
                stored = regs[insn.src]
                if isinstance(stored, Ptr) and stored.region == "fp":
                    escaped = True
            elif cls == isa.BPF_ST:
                stored = const(insn.imm & MASK64)
            if isinstance(base, Ptr) and base.region == "fp" and base.off is not None:
                at = base.off + insn.off
                for o in [o for o in slots if o < at + size and at < o + 8]:
                    del slots[o]
                if size == 8 and at % 8 == 0 and stored is not None:
                    slots[at] = stored
            elif self.may_point_to_stack(base, escaped):
                slots.clear()
            if op & 0xE0 == isa.BPF_ATOMIC:
                if insn.imm == isa.BPF_CMPXCHG:
                    regs[0] = U32_RANGE if size == 4 else UNKNOWN
                elif insn.imm & isa.BPF_FETCH:
                    regs[insn.src] = U32_RANGE if size == 4 else UNKNOWN
        elif op == isa.OP_CALL:
            escaped, ret = self.call_effects(pc, insn, regs, slots, escaped)
            for r in range(1, 6):
                regs[r] = UNKNOWN
            regs[0] = ret
        return [(pc + (2 if op == isa.OP_LD_IMM64 else 1),
                 State(tuple(regs), tuple(sorted(slots.items(), key=lambda kv: kv[0])),
                       escaped))]

    def load_value(self, insn: Insn, base: Value, slots: dict[int, Value]) -> Value:
        """Abstract value an LDX loads (``slots``: the tracked stack slots before it)."""
        op = insn.opcode
        size = isa.SIZE_BYTES[op & 0x18]
        signed = op & 0xE0 == isa.BPF_MEMSX
        folded = self.frozen_value(base, insn.off, size)
        if folded is not None:
            return const(sext(folded, 8 * size) if signed else folded)
        if signed:
            return UNKNOWN
        if size == 8 and isinstance(base, Ptr) and base.region == "fp" and base.off is not None:
            slot = slots.get(base.off + insn.off)
            return slot if slot is not None else UNKNOWN
        return Scalar(0, (1 << (8 * size)) - 1)

    def frozen_value(self, base: Value, off: int, size: int) -> int | None:
        """The value at ``base + off`` when it lies in a frozen map at a known offset."""
        if not (isinstance(base, Ptr) and isinstance(base.region, tuple)
                and base.region[0] == "g" and self.access_ok(base, off, size, False)):
            return None
        m = self.maps[base.region[1]]
        if not m.frozen:
            return None
        k = base.off + off  # type: ignore[operator]
        return int.from_bytes(m.data[k:k + size], "little")  # type: ignore[attr-defined]

    def access_ok(self, v: Value, off: int, size: int, write: bool) -> bool:
        """Whether an access of ``size`` bytes at ``v + off`` is provably in bounds (and
        writable if ``write``), so the translator may skip the run-time check."""
        if not isinstance(v, Ptr) or v.nullable or v.off is None:
            return False
        k = v.off + off
        region = v.region
        if region == "ctx":
            return k >= 0 and k + size <= CTX_SIZE
        if region in ("fp", "caller_fp"):
            return k >= -STACK_SIZE and k + size <= 0
        kind, idx = region  # type: ignore[misc]
        if kind == "g":
            m = self.maps[idx]
            vs = m.value_size
            return (not (write and m.frozen) and k >= 0 and k + size <= vs * m.max_entries
                    and k % vs + size <= vs)
        m = self.maps[self.site_map[idx]]
        return not (write and m.frozen) and k >= 0 and k + size <= m.value_size

    @staticmethod
    def may_point_to_stack(base: Value, escaped: bool) -> bool:
        if isinstance(base, Ptr):
            return base.region == "fp"
        return escaped or not isinstance(base, (MapRef, FuncRef))

    def call_effects(self, pc: int, insn: Insn, regs: list[Value], slots: dict[int, Value],
                     escaped: bool) -> tuple[bool, Value]:
        stack_args = [r for r in range(1, 6) if isinstance(regs[r], Ptr)
                      and regs[r].region == "fp"]
        if insn.src == isa.BPF_PSEUDO_CALL:
            if stack_args or escaped or self.callee_foreign(pc + insn.imm + 1)[1]:
                slots.clear()
            return escaped or bool(stack_args), UNKNOWN
        spec = self.helpers.get(insn.imm)
        assert spec is not None
        for i, kind in enumerate(spec.args):
            v = regs[i + 1]
            if not (isinstance(v, Ptr) and v.region == "fp"):
                continue
            if kind in (Arg.MEM, Arg.MAP_KEY, Arg.MAP_VALUE, Arg.CTX):
                continue  # read only
            if kind is Arg.MEM_WRITE and v.off is not None:
                size = regs[i + 2]
                if isinstance(size, Scalar) and size.const is not None:
                    at, end = v.off, v.off + size.const
                    for o in [o for o in slots if o < end and at < o + 8]:
                        del slots[o]
                    continue
            escaped = True
            slots.clear()
        if spec.runs_code and (escaped or self.helper_foreign(insn, regs)[1]):
            slots.clear()
        if spec.ret is Ret.MAP_VALUE_OR_NULL:
            m = regs[1]
            if (spec.id == BPF_FUNC_map_lookup_elem and isinstance(m, MapRef)
                    and self.access_ok(regs[2], 0, self.maps[m.index].key_size, False)):
                self.site_map[pc] = m.index
                region = ("site", pc)
                # older values from this site live in locals about to be overwritten
                for r in range(11):
                    v = regs[r]
                    if isinstance(v, Ptr) and v.region == region:
                        regs[r] = UNKNOWN
                for o, v in list(slots.items()):
                    if isinstance(v, Ptr) and v.region == region:
                        slots[o] = UNKNOWN
                return escaped, Ptr(region, 0, True)
            return escaped, UNKNOWN
        if spec.name == "bpf_get_prandom_u32":
            return escaped, U32_RANGE
        return escaped, UNKNOWN

    def src_value(self, insn: Insn, regs: list[Value]) -> Value:
        if insn.opcode & isa.BPF_X:
            return regs[insn.src]
        if insn.opcode & 0x07 == isa.BPF_ALU64:
            return const(insn.imm & MASK64)
        return const(insn.imm & MASK32)

    def ld_imm64_value(self, pc: int) -> Value:
        insn, hi = self.insns[pc], self.insns[pc + 1]
        if insn.src == isa.BPF_PSEUDO_MAP_FD:
            return MapRef(insn.imm)
        if insn.src == isa.BPF_PSEUDO_MAP_VALUE:
            m = self.maps[insn.imm]
            if isinstance(m, ArrayMap):
                return Ptr(("g", insn.imm), hi.imm)
            return UNKNOWN
        if insn.src == isa.BPF_PSEUDO_FUNC:
            return FuncRef(pc + insn.imm + 1)
        return const(isa.ld_imm64_value(insn, hi))

    def refine(self, insn: Insn, s: State) -> tuple[State, State]:
        """(state if taken, state if not taken) of a conditional jump."""
        op = insn.opcode
        jop = op & 0xF0
        d = s.regs[insn.dst]
        if op & isa.BPF_X:
            other = s.regs[insn.src]
        else:
            other = const(insn.imm & (MASK64 if op & 0x07 == isa.BPF_JMP else MASK32))
        is64 = op & 0x07 == isa.BPF_JMP
        if not isinstance(other, Scalar):
            return s, s
        if other.const is None:
            return self.refine_by_range(jop, d, other, is64, s, insn.dst)
        c = other.const

        def with_dst(v: Value) -> State:
            regs = list(s.regs)
            regs[insn.dst] = v
            return State(tuple(regs), s.slots, s.escaped)

        if (isinstance(d, Ptr) and d.nullable and c == 0 and is64
                and jop in (isa.BPF_JEQ, isa.BPF_JNE)):
            nonnull = self.with_null_known(s, insn.dst, Ptr(d.region, d.off, False))
            null = self.with_null_known(s, insn.dst, const(0))
            return (null, nonnull) if jop == isa.BPF_JEQ else (nonnull, null)
        if not isinstance(d, Scalar) or (not is64 and d.hi > MASK32):
            return s, s
        lo, hi = d.lo, d.hi

        def rng(a: int, b: int) -> State:
            return with_dst(Scalar(a, b)) if a <= b else s

        if jop == isa.BPF_JEQ:
            return rng(max(lo, c), min(hi, c)), s
        if jop == isa.BPF_JNE:
            return s, rng(max(lo, c), min(hi, c))
        if jop == isa.BPF_JGT:
            return rng(max(lo, c + 1), hi), rng(lo, min(hi, c))
        if jop == isa.BPF_JGE:
            return rng(max(lo, c), hi), rng(lo, min(hi, c - 1))
        if jop == isa.BPF_JLT:
            return rng(lo, min(hi, c - 1)), rng(max(lo, c), hi)
        if jop == isa.BPF_JLE:
            return rng(lo, min(hi, c)), rng(max(lo, c + 1), hi)
        return s, s

    @staticmethod
    def with_null_known(s: State, reg: int, v: Value) -> State:
        """``s`` after a NULL check of ``reg`` found ``v``.  Every copy of the same lookup
        result is the same number -- a register or slot holding ``Ptr(site p)`` holds what
        the latest run of site p returned -- so all copies learn it, unless a NULL from
        elsewhere may have reached one of them."""
        d = s.regs[reg]
        if not (isinstance(d, Ptr) and isinstance(d.region, tuple) and d.region[0] == "site"
                and not d.other_null):
            regs = list(s.regs)
            regs[reg] = v
            return State(tuple(regs), s.slots, s.escaped)
        regs = [v if x == d else x for x in s.regs]
        slots = tuple((o, v if x == d else x) for o, x in s.slots)
        return State(tuple(regs), slots, s.escaped)

    @staticmethod
    def refine_by_range(jop: int, d: Value, other: Scalar, is64: bool, s: State,
                        reg: int) -> tuple[State, State]:
        """(taken, not taken) for an unsigned compare of ``d`` with a register whose value
        lies in ``other``: ``d < other`` means ``d < other.hi``, and so on."""
        if not isinstance(d, Scalar) or (not is64 and d.hi > MASK32):
            return s, s
        if not is64 and other.hi > MASK32:
            other = U32_RANGE
        lo, hi = d.lo, d.hi

        def rng(a: int, b: int) -> State:
            if a > b:
                return s
            regs = list(s.regs)
            regs[reg] = Scalar(a, b)
            return State(tuple(regs), s.slots, s.escaped)

        if jop == isa.BPF_JLT:
            return rng(lo, min(hi, other.hi - 1)), rng(max(lo, other.lo), hi)
        if jop == isa.BPF_JLE:
            return rng(lo, min(hi, other.hi)), rng(max(lo, other.lo + 1), hi)
        if jop == isa.BPF_JGT:
            return rng(max(lo, other.lo + 1), hi), rng(lo, min(hi, other.hi))
        if jop == isa.BPF_JGE:
            return rng(max(lo, other.lo), hi), rng(lo, min(hi, other.hi - 1))
        return s, s


def alu_value(insn: Insn, a: Value, b: Value) -> Value:
    """Abstract result of an ALU instruction (the translator emits code to match)."""
    op, cls = insn.opcode, insn.opcode & 0x07
    aop = op & 0xF0
    if cls == isa.BPF_ALU:
        if aop == isa.BPF_MOV and not insn.off:
            if isinstance(b, Scalar) and b.hi <= MASK32:
                return b
            return U32_RANGE
        if aop == isa.BPF_END:  # to-le/to-be work on the low imm bits of the 64-bit value
            if insn.imm == 64:
                return a if isinstance(a, Scalar) and not op & isa.BPF_X else UNKNOWN
            return Scalar(0, (1 << insn.imm) - 1)
        r = scalar_alu(aop, as_u32(a), as_u32(b), 32, insn)
        return r
    # ALU64
    if aop == isa.BPF_MOV:
        if insn.off:
            return UNKNOWN
        return b
    if aop in (isa.BPF_ADD, isa.BPF_SUB) and (isinstance(a, Ptr) or isinstance(b, Ptr)):
        return pointer_arith(aop, a, b)
    if not isinstance(a, Scalar) or not isinstance(b, Scalar):
        return UNKNOWN
    return scalar_alu(aop, a, b, 64, insn)


def as_u32(v: Value) -> Scalar:
    if isinstance(v, Scalar) and v.hi <= MASK32:
        return v
    return U32_RANGE


def pointer_arith(aop: int, a: Value, b: Value) -> Value:
    if aop == isa.BPF_ADD and isinstance(b, Ptr) and isinstance(a, Scalar):
        a, b = b, a
    if not isinstance(a, Ptr) or not isinstance(b, Scalar) or a.nullable:
        return UNKNOWN
    c = b.const
    if c is None or a.off is None:
        return Ptr(a.region, None)
    delta = c if c <= MASK64 >> 1 else c - (1 << 64)
    if aop == isa.BPF_SUB:
        delta = -delta
    off = a.off + delta
    if not -(1 << 31) < off < (1 << 31):
        return Ptr(a.region, None)
    return Ptr(a.region, off)


def scalar_alu(aop: int, a: Scalar, b: Scalar, bits: int, insn: Insn) -> Scalar:
    mask = MASK64 if bits == 64 else MASK32
    full = Scalar(0, mask)
    if a.const is not None and b.const is not None and aop != isa.BPF_END:
        if aop == isa.BPF_MOV:
            return const(sext(b.const, insn.off) & mask if insn.off else b.const)
        if aop == isa.BPF_NEG:
            return const(-a.const & mask)
        return const(alu(aop, a.const, b.const, bits, insn.off))
    if aop == isa.BPF_ADD:
        hi = a.hi + b.hi
        return Scalar(a.lo + b.lo, hi) if hi <= mask else full
    if aop == isa.BPF_SUB:
        return Scalar(a.lo - b.hi, a.hi - b.lo) if a.lo >= b.hi else full
    if aop == isa.BPF_MUL:
        hi = a.hi * b.hi
        return Scalar(a.lo * b.lo, hi) if hi <= mask else full
    if aop == isa.BPF_DIV:
        return Scalar(0, a.hi) if insn.off == 0 else full
    if aop == isa.BPF_MOD:
        if insn.off:
            return full
        if b.lo > 0:
            return Scalar(0, min(a.hi, b.hi - 1))
        return Scalar(0, a.hi)
    if aop == isa.BPF_AND:
        return Scalar(0, min(a.hi, b.hi))
    if aop == isa.BPF_OR:
        return Scalar(max(a.lo, b.lo), bits_mask(max(a.hi, b.hi)))
    if aop == isa.BPF_XOR:
        return Scalar(0, bits_mask(max(a.hi, b.hi)))
    if aop == isa.BPF_LSH:
        if b.hi < bits:
            hi = a.hi << b.hi
            if hi <= mask:
                return Scalar(a.lo << b.lo, hi)
        return full
    if aop == isa.BPF_RSH:
        if b.hi < bits:
            return Scalar(a.lo >> b.hi, a.hi >> b.lo)
        return Scalar(0, a.hi)
    if aop == isa.BPF_ARSH:
        if a.hi <= mask >> 1 and b.hi < bits:
            return Scalar(a.lo >> b.hi, a.hi >> b.lo)
        return full
    if aop == isa.BPF_END:
        return Scalar(0, (1 << insn.imm) - 1) if insn.imm < bits else full
    return full
