"""Static facts about a verified program, for the translator: what each register holds.

A forward data-flow analysis over each function's control-flow graph computes, before every
instruction, an abstract value per register and per 8-byte stack slot:

* ``Scalar(lo, hi)``: an integer known to lie in ``[lo, hi]`` (unsigned; ``lo == hi`` is a
  constant).  ``UNKNOWN`` (``Scalar(0, 2**64-1)``) also stands for "anything", pointers
  included;
* ``Ptr(region, lo, hi, nullable)``: a pointer into a region known at translation time —
  the context, this frame's stack, the calling frame's stack (a ``bpf_loop`` callback's
  context), a static map region, the value a particular lookup call site returned, or
  *some* element of a map (values of different lookups of one map meeting where paths
  join) — at an offset known to lie in ``[lo, hi]`` from the start of the pointed-to
  element (both ``None`` when it is not bounded; ``off`` is the offset when it is one
  constant).  A stack slot holding a spilled pointer keeps its fact, so a fill gets it back;
* ``MapRef(i)`` / ``FuncRef(pc)``: the constants ``ld_imm64`` loads for a map or a callback.

The facts must be *sound* (true on every execution) but need not be precise: the translator
uses them only to skip work (a region decode, a bounds check, a 64-bit mask) and falls back
to the checked generic path whenever a fact is missing.  Soundness points worth knowing:

* a value returned by lookup site ``p`` lives in translator locals of that site, so when the
  site runs again every register and slot still holding an older ``Ptr(site p)`` becomes a
  pointer into *some* element of that map (reached through its value, not the locals);
* stack slots are tracked for stores at constant offsets (a pointer in 8 bytes, a scalar
  that fits in 1, 2, 4 or 8); a load of the same size at the same offset gets the value
  back.  Any other store that may touch the stack forgets the slots it may touch, and once
  a pointer to the stack has escaped (stored to memory or passed to a call) a store through
  an unknown pointer or any call forgets them all.  A store (or a helper's write) at a
  bounded range of offsets forgets the slots the range overlaps; an unbounded pointer
  offset may reach any region;
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
from uring.bpf.verifier import VerifiedProgram, reads_writes, successors

WIDEN_AFTER = 4
#: States with different pointer facts one instruction may keep before they are merged.
PATHS_PER_INSN = 12
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
    """A pointer into ``region`` at an offset in ``[lo, hi]`` (both None: not known) from
    the start of the pointed-to element (of the whole region for ``ctx``, the stacks and
    ``("g", i)``).  A bounded offset always lies within +-2**31, so the pointer cannot
    reach another region."""

    #: "ctx" | "fp" | "caller_fp" | ("g", map index) | ("site", pc, map index)
    #: | ("elem", map index)
    region: object
    lo: int | None
    hi: int | None
    nullable: bool = False
    #: the NULL may also be a constant from another path, not only what the lookup returned
    other_null: bool = False

    @property
    def off(self) -> int | None:
        """The offset when it is one constant, else None."""
        return self.lo if self.lo == self.hi else None


def ptr(region: object, off: int | None, nullable: bool = False,
        other_null: bool = False) -> Ptr:
    """A pointer at one constant offset (or an unknown one when ``off`` is None)."""
    return Ptr(region, off, off, nullable, other_null)


def region_map(region: object) -> int | None:
    """The map index of a map region (``g``, ``site`` or ``elem``), else None."""
    if isinstance(region, tuple):
        return region[-1]  # type: ignore[no-any-return]
    return None


def is_element(region: object) -> bool:
    """Whether offsets in ``region`` are from the start of one map element (a value a
    lookup returned), not from the start of the map's storage."""
    return isinstance(region, tuple) and region[0] in ("site", "elem")


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
    if isinstance(a, Ptr) and isinstance(b, Ptr):
        region = a.region
        if region != b.region:
            # values of two lookups of the same map: a pointer into some element of it
            if not (is_element(region) and is_element(b.region)
                    and region_map(region) == region_map(b.region)):
                return UNKNOWN
            region = ("elem", region_map(region))
        if a.lo is None or b.lo is None:
            lo = hi = None
        else:
            lo, hi = min(a.lo, b.lo), max(a.hi, b.hi)  # type: ignore[type-var]
        return Ptr(region, lo, hi, a.nullable or b.nullable, a.other_null or b.other_null)
    # NULL on one path, a pointer on the other: the pointer may be NULL
    if isinstance(a, Ptr) and b == Scalar(0, 0):
        return Ptr(a.region, a.lo, a.hi, True, True)
    if isinstance(b, Ptr) and a == Scalar(0, 0):
        return Ptr(b.region, b.lo, b.hi, True, True)
    return UNKNOWN


def widen(old: Value, new: Value) -> Value:
    if isinstance(old, Scalar) and isinstance(new, Scalar):
        lo = old.lo if new.lo >= old.lo else 0
        # a growing bound jumps to the next natural one, so 32-bit counters stay known as
        # 32-bit (and a counter kept below a u32 by its loop test settles one under it)
        hi = old.hi if new.hi <= old.hi else next(b for b in WIDEN_BOUNDS if new.hi <= b)
        return Scalar(lo, hi)
    if (isinstance(old, Ptr) and isinstance(new, Ptr) and old.region == new.region
            and old.lo is not None and new.lo is not None
            and (new.lo < old.lo or new.hi > old.hi)):  # type: ignore[operator]
        return Ptr(new.region, None, None, new.nullable, new.other_null)  # still growing
    return new


#: A tracked stack slot: (offset from R10, size in bytes, what it holds).
Slot = tuple[int, int, Value]


@dataclass(frozen=True)
class State:
    regs: tuple[Value, ...]
    slots: tuple[Slot, ...]  # sorted by offset, never overlapping
    escaped: bool  # a pointer to this frame's stack may be stored somewhere

    def slot(self, off: int, size: int = 8) -> Value | None:
        for o, n, v in self.slots:
            if o == off and n == size:
                return v
        return None


def join_states(a: State, b: State, widen_now: bool) -> State:
    f = widen if widen_now else (lambda _o, n: n)
    regs = tuple(f(x, join(x, y)) for x, y in zip(a.regs, b.regs, strict=True))
    bs = {(o, n): v for o, n, v in b.slots}
    slots = tuple((o, n, f(v, join(v, bs[o, n]))) for o, n, v in a.slots if (o, n) in bs)
    return State(regs, slots, a.escaped or b.escaped)


def _pointer_key(s: State) -> object:
    """What tells states apart for path sensitivity: where each pointer points."""
    return (tuple((r, v) for r, v in enumerate(s.regs) if isinstance(v, Ptr)),
            tuple((o, v) for o, _, v in s.slots if isinstance(v, Ptr)))


def _without_dead(s: State, live: int) -> State:
    """``s`` with the registers that are not ``live`` forgotten (R10 is always kept)."""
    regs = s.regs
    if all(live >> r & 1 or regs[r] == UNKNOWN for r in range(10)):
        return s
    return State(tuple(v if r == 10 or live >> r & 1 else UNKNOWN for r, v in enumerate(regs)),
                 s.slots, s.escaped)


def forget_overlapping(slots: dict[int, tuple[int, Value]], start: int, end: int) -> None:
    """Drop the tracked slots that overlap the stack bytes [start, end)."""
    for o in [o for o, (n, _) in slots.items() if o < end and start < o + n]:
        del slots[o]


def bits_mask(v: int) -> int:
    """Smallest 2**k - 1 >= v."""
    return (1 << v.bit_length()) - 1


def placed(v: Value, off: int = 0) -> bool:
    """Whether an access through ``v + off`` provably stays out of every frame's stack other
    than the one ``v`` points into (a pointer with a known region and offset, a map handle
    or function, or a constant address outside the stack regions)."""
    if isinstance(v, Ptr):
        return v.lo is not None
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
        #: pc -> the successors some execution can reach from it (a branch the facts rule
        #: out is missing)
        self.edges: dict[int, set[int]] = {}
        for fi in self._callees_first():
            self._run_function(fi, prog.functions[fi].start)
            self.foreign[fi] = self._foreign_access(fi, self.foreign)
        self.callback_ctx = self._callback_contexts()
        for start in self.callback_ctx:  # again, with R1 and R2 known at entry
            f = prog.functions[prog.owner[start]]
            for pc in range(f.start, f.end):
                self.state_in.pop(pc, None)
                self.edges.pop(pc, None)
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
            regs[1] = ptr("ctx", 0)
        k = self.callback_ctx.get(self.prog.functions[fi].start)
        if k is not None:
            regs[1] = Scalar(0, BPF_MAX_LOOPS - 1)
            regs[2] = ptr("caller_fp", k)
        regs[10] = ptr("fp", 0)
        return State(tuple(regs), (), False)

    def _run_function(self, fi: int, start: int) -> None:
        """The data flow over one function, path-sensitive where pointers differ.

        An instruction keeps one state per distinct set of pointer facts that reaches it
        (states with the same pointers are joined, scalars widened after a few rounds), up
        to :data:`PATHS_PER_INSN`; past that all are merged into one, widened from then on,
        so loops terminate.  So a loop that steps a pointer by a constant each time round
        (clang's strength reduction of ``a[i]``) is followed iteration by iteration while
        its trip count is decided by the facts, and the pointer keeps a bounded offset
        where merging at the loop head would have lost it.  Registers nobody reads any
        more are forgotten first, so paths that differ only in dead values count as one.
        The facts the translator sees are, per instruction, the join of all its states."""
        f = self.prog.functions[fi]
        live = self._live_registers(f.start, f.end)
        entry = self._entry_state(fi)
        states: dict[int, dict[object, State]] = {start: {_pointer_key(entry): entry}}
        merged: set[int] = set()
        visits: dict[tuple[int, object], int] = {}
        work = [(start, entry)]
        edges = self.edges
        while work:
            pc, state = work.pop()
            for nxt, out in self.transfer(pc, state):
                edges.setdefault(pc, set()).add(nxt)
                out = _without_dead(out, live.get(nxt, 0))
                known = states.setdefault(nxt, {})
                key = None if nxt in merged else _pointer_key(out)
                old = known.get(key)
                if old is None and key is not None and len(known) >= PATHS_PER_INSN:
                    merged.add(nxt)  # too many: one state from now on
                    key = None
                    for other in known.values():
                        out = join_states(other, out, False)
                    known.clear()
                if old is None:
                    known[key] = out
                    work.append((nxt, out))
                    continue
                n = visits[nxt, key] = visits.get((nxt, key), 0) + 1
                new = join_states(old, out, n > WIDEN_AFTER)
                if new != old:
                    new_key = _pointer_key(new)
                    if key is not None and new_key != key:  # (a NULL joined in)
                        del known[key]
                        key = new_key
                        if key in known:
                            new = join_states(known[key], new, False)
                    known[key] = new
                    work.append((nxt, new))
        for pc, found in states.items():
            joined = None
            for other in found.values():
                joined = other if joined is None else join_states(joined, other, False)
            assert joined is not None
            self.state_in[pc] = joined

    def successors(self, pc: int) -> list[int]:
        """The control-flow successors of ``pc`` some execution can reach (fall-through
        first), for a reachable ``pc``."""
        reached = self.edges.get(pc, ())
        return [nxt for nxt in successors(self.insns, pc) if nxt in reached]

    def _live_registers(self, start: int, end: int) -> dict[int, int]:
        """Registers (bit set) that may be read before they are written, at each pc."""
        insns = self.insns
        reads: dict[int, int] = {}
        writes: dict[int, int] = {}
        pcs = []
        pc = start
        while pc < end:
            insn = insns[pc]
            r, w = reads_writes(insn, self.helpers)
            if insn.opcode == isa.OP_CALL and insn.src == isa.BPF_PSEUDO_CALL:
                r = 0b111110
            reads[pc], writes[pc] = r, w
            pcs.append(pc)
            pc += 2 if insn.opcode == isa.OP_LD_IMM64 else 1
        live = dict.fromkeys(pcs, 0)
        changed = True
        while changed:
            changed = False
            for pc in reversed(pcs):
                out = 0
                for nxt in successors(insns, pc):
                    out |= live.get(nxt, 0)
                new = reads[pc] | (out & ~writes[pc])
                if new != live[pc]:
                    live[pc] = new
                    changed = True
        return live

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
            taken, fall = self.refine(insn, s)  # (None: the facts rule that branch out)
            return [(nxt, t) for nxt, t in ((pc + 1, fall), (target, taken)) if t is not None]
        regs = list(s.regs)
        slots = {o: (n, v) for o, n, v in s.slots}
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
            if isinstance(base, Ptr) and base.region == "fp" and base.lo is not None:
                at, last = base.lo + insn.off, base.hi + insn.off  # type: ignore[operator]
                forget_overlapping(slots, at, last + size)
                stored = spilled(stored, size) if at == last and at % size == 0 else None
                if stored is not None:
                    slots[at] = (size, stored)
            elif op & 0xE0 == isa.BPF_MEM and self.guarded(base, insn.off, size, True):
                pass  # the translated code checks it lands in the pointer's region
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
                 State(tuple(regs), tuple(sorted((o, n, v) for o, (n, v) in slots.items())),
                       escaped))]

    def load_value(self, insn: Insn, base: Value, slots: dict[int, tuple[int, Value]]
                   ) -> Value:
        """Abstract value an LDX loads (``slots``: the tracked stack slots before it)."""
        op = insn.opcode
        size = isa.SIZE_BYTES[op & 0x18]
        signed = op & 0xE0 == isa.BPF_MEMSX
        folded = self.frozen_value(base, insn.off, size)
        if folded is not None:
            return const(sext(folded, 8 * size) if signed else folded)
        if signed:
            return UNKNOWN
        if isinstance(base, Ptr) and base.region == "fp" and base.off is not None:
            slot = slots.get(base.off + insn.off)
            if slot is not None and slot[0] == size:
                return slot[1]  # a fill gets back what the spill stored
        return UNKNOWN if size == 8 else Scalar(0, (1 << (8 * size)) - 1)

    def frozen_value(self, base: Value, off: int, size: int) -> int | None:
        """The value at ``base + off`` when it lies in a frozen map at a known offset."""
        if not (isinstance(base, Ptr) and isinstance(base.region, tuple)
                and base.region[0] == "g" and base.off is not None
                and self.access_ok(base, off, size, False)):
            return None
        m = self.maps[base.region[1]]
        if not m.frozen:
            return None
        k = base.off + off  # type: ignore[operator]
        return int.from_bytes(m.data[k:k + size], "little")  # type: ignore[attr-defined]

    def access_ok(self, v: Value, off: int, size: int, write: bool) -> bool:
        """Whether an access of ``size`` bytes at ``v + off`` is provably in bounds (and
        writable if ``write``), so the translator may skip the run-time check.  A pointer
        with an offset range must be in bounds at both ends (and, into an array map's
        storage, inside one element)."""
        if not isinstance(v, Ptr) or v.nullable or v.lo is None:
            return False
        lo, hi = v.lo + off, v.hi + off  # type: ignore[operator]
        region = v.region
        if region == "ctx":
            return lo >= 0 and hi + size <= CTX_SIZE
        if region in ("fp", "caller_fp"):
            return lo >= -STACK_SIZE and hi + size <= 0
        m = self.maps[region_map(region)]  # type: ignore[index]
        if write and m.frozen:
            return False
        vs = m.value_size
        if region[0] == "g":  # type: ignore[index]
            return (lo >= 0 and hi + size <= vs * m.max_entries
                    and lo // vs == (hi + size - 1) // vs)
        return lo >= 0 and hi + size <= vs

    def guarded(self, v: Value, off: int, size: int, write: bool) -> bool:
        """Whether an access through ``v + off`` that is not provably in bounds is made
        through a pointer whose region is known to be the ctx or an array map's storage:
        the translator then checks at run time that it lands there (unchecked access if it
        does) and only otherwise takes the checked path -- and a store that lands in the
        frame's own stack after all hands the rest of the frame to the interpreter, so the
        facts about the stack need not allow for it."""
        if not isinstance(v, Ptr) or self.access_ok(v, off, size, write):
            return False
        if v.region == "ctx":
            return True
        mi = region_map(v.region)
        if mi is None:
            return False
        m = self.maps[mi]
        return isinstance(m, ArrayMap) and not (write and m.frozen)

    def live_registers(self, start: int, end: int) -> dict[int, int]:
        """Registers (bit set) the program may read before writing them, at each pc of the
        function ``[start, end)``."""
        return self._live_registers(start, end)

    @staticmethod
    def may_point_to_stack(base: Value, escaped: bool) -> bool:
        if isinstance(base, Ptr):  # (an unbounded offset may reach any region)
            return base.region == "fp" or base.lo is None
        return escaped or not isinstance(base, (MapRef, FuncRef))

    def call_effects(self, pc: int, insn: Insn, regs: list[Value],
                     slots: dict[int, tuple[int, Value]], escaped: bool) -> tuple[bool, Value]:
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
            if kind is Arg.MEM_WRITE and v.lo is not None:
                size = regs[i + 2]
                if isinstance(size, Scalar) and size.hi <= STACK_SIZE:
                    forget_overlapping(slots, v.lo, v.hi + size.hi)  # type: ignore[operator]
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
                region = ("site", pc, m.index)
                # older values from this site live in locals about to be overwritten: they
                # are still pointers into some element of the map, reached by their value
                for r in range(11):
                    v = regs[r]
                    if isinstance(v, Ptr) and v.region == region:
                        regs[r] = self.older(v)
                for o, (n, v) in list(slots.items()):
                    if isinstance(v, Ptr) and v.region == region:
                        slots[o] = (n, self.older(v))
                return escaped, ptr(region, 0, True)
            return escaped, UNKNOWN
        if spec.name == "bpf_get_prandom_u32":
            return escaped, U32_RANGE
        return escaped, UNKNOWN

    @staticmethod
    def older(v: Ptr) -> Ptr:
        """An older value of a lookup site, once the site ran again."""
        return Ptr(("elem", region_map(v.region)), v.lo, v.hi, v.nullable, v.other_null)

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
                return ptr(("g", insn.imm), hi.imm)
            return UNKNOWN
        if insn.src == isa.BPF_PSEUDO_FUNC:
            return FuncRef(pc + insn.imm + 1)
        return const(isa.ld_imm64_value(insn, hi))

    def refine(self, insn: Insn, s: State) -> tuple[State | None, State | None]:
        """(state if taken, state if not taken) of a conditional jump; None for a branch
        no execution can take (a constant counter's loop test, a pointer compared with
        NULL)."""
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
        if not is64 and other.hi > MASK32:  # a 32-bit compare sees the low half only
            other = U32_RANGE if other.const is None else const(other.const & MASK32)
        if other.const is None:
            return self.refine_by_range(jop, d, other, is64, s, insn.dst)
        c = other.const

        def with_dst(v: Value) -> State:
            regs = list(s.regs)
            regs[insn.dst] = v
            return State(tuple(regs), s.slots, s.escaped)

        if isinstance(d, Ptr) and c == 0 and is64 and jop in (isa.BPF_JEQ, isa.BPF_JNE):
            nonnull: State | None = s
            null: State | None = None  # a pointer the facts hold non-NULL is never 0
            if d.nullable:
                nonnull = self.with_null_known(s, insn.dst, Ptr(d.region, d.lo, d.hi, False))
                null = self.with_null_known(s, insn.dst, const(0))
            return (null, nonnull) if jop == isa.BPF_JEQ else (nonnull, null)
        if not isinstance(d, Scalar) or (not is64 and d.hi > MASK32):
            return s, s
        lo, hi = d.lo, d.hi

        def rng(a: int, b: int) -> State | None:
            return with_dst(Scalar(a, b)) if a <= b else None

        # a value other than c: the range loses c when c is one of its ends
        differs = (None if lo == hi == c else rng(lo + 1, hi) if c == lo
                   else rng(lo, hi - 1) if c == hi else s)
        if jop == isa.BPF_JEQ:
            return rng(max(lo, c), min(hi, c)), differs
        if jop == isa.BPF_JNE:
            return differs, rng(max(lo, c), min(hi, c))
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
        slots = tuple((o, n, v if x == d else x) for o, n, x in s.slots)
        return State(tuple(regs), slots, s.escaped)

    @staticmethod
    def refine_by_range(jop: int, d: Value, other: Scalar, is64: bool, s: State,
                        reg: int) -> tuple[State | None, State | None]:
        """(taken, not taken) for an unsigned compare of ``d`` with a register whose value
        lies in ``other``: ``d < other`` means ``d < other.hi``, and so on."""
        if not isinstance(d, Scalar) or (not is64 and d.hi > MASK32):
            return s, s
        if not is64 and other.hi > MASK32:
            other = U32_RANGE
        lo, hi = d.lo, d.hi

        def rng(a: int, b: int) -> State | None:
            if a > b:
                return None
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


def spilled(v: Value | None, size: int) -> Value | None:
    """What a tracked slot holds after a store of ``v`` in ``size`` bytes (None: nothing
    worth tracking).  A pointer needs all 8 bytes; a scalar is kept when it fits."""
    if v is None:
        return None
    if size == 8:
        return v
    limit = (1 << (8 * size)) - 1
    if isinstance(v, Scalar):
        if v.hi <= limit:
            return v
        if v.const is not None:
            return const(v.const & limit)
    return None


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
    """Pointer plus or minus a scalar: the offset range moves by the scalar's range (a
    constant may be negative; a range must stay below 2**31)."""
    if aop == isa.BPF_ADD and isinstance(b, Ptr) and isinstance(a, Scalar):
        a, b = b, a
    if not isinstance(a, Ptr) or not isinstance(b, Scalar) or a.nullable:
        return UNKNOWN
    unknown = Ptr(a.region, None, None)
    if a.lo is None:
        return unknown
    c = b.const
    if c is not None:
        delta = c if c <= MASK64 >> 1 else c - (1 << 64)
        if aop == isa.BPF_SUB:
            delta = -delta
        lo, hi = a.lo + delta, a.hi + delta  # type: ignore[operator]
    elif b.hi < 1 << 31:
        if aop == isa.BPF_ADD:
            lo, hi = a.lo + b.lo, a.hi + b.hi  # type: ignore[operator]
        else:
            lo, hi = a.lo - b.hi, a.hi - b.lo  # type: ignore[operator]
    else:
        return unknown
    if not (lo > -(1 << 31) and hi < (1 << 31)):
        return unknown
    return Ptr(a.region, lo, hi)


def scalar_alu(aop: int, a: Scalar, b: Scalar, bits: int, insn: Insn) -> Scalar:
    mask = MASK64 if bits == 64 else MASK32
    full = Scalar(0, mask)
    if a.const is not None and b.const is not None and aop != isa.BPF_END:
        if aop == isa.BPF_MOV:
            return const(sext(b.const, insn.off) & mask if insn.off else b.const)
        if aop == isa.BPF_NEG:
            return const(-a.const & mask)
        return const(alu(aop, a.const, b.const, bits, insn.off))
    if aop in (isa.BPF_ADD, isa.BPF_SUB) and b.const is not None:  # a signed immediate
        delta = b.const if b.const <= mask >> 1 else b.const - mask - 1
        if aop == isa.BPF_SUB:
            delta = -delta
        lo, hi = a.lo + delta, a.hi + delta
        return Scalar(lo, hi) if lo >= 0 and hi <= mask else full
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
