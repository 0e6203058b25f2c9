"""The fast path: each verified program becomes Python source, compiled once at load time.

Every BPF function turns into one Python function whose locals are the registers.  What
makes it fast (numbers in ``bench/bench_bpf_vm.py``):

* **registers as locals**, constants folded (``r2 = r10; r2 += -8`` becomes a literal), and
  loads from frozen ``.rodata`` folded into literals;
* **no 64-bit mask where ranges prove it unneeded** (a big-int ``&`` costs ~30 ns): the
  analysis (:mod:`uring.bpf.analysis`) knows e.g. that a 32-bit load plus a 32-bit load
  cannot overflow;
* **pointers with a region fixed at translation time**: when a register provably points
  into the context, this frame's stack, a map's storage or the value returned by a given
  lookup call site, at a constant offset, a load becomes a buffer access at a constant
  offset with no region decode and no bounds check (the check happened at translation
  time); aligned accesses to array maps index a typed ``memoryview`` (~30 ns instead of
  ~70 ns for ``unpack_from``);
* **stack bytes in locals** (:mod:`uring.bpf.stack_cells`): spills and struct fields at
  constant R10 offsets live in Python locals, a struct handed to a helper is built with one
  ``struct.pack``, and the stack buffer is only brought up to date where something could
  look at it;
* **array-map lookups inlined** for constant maps (a lookup is an index and a bounds
  compare; a NULL check tests the index), hash lookups reduced to a dict ``get``;
* **direct engine calls** for the standard helpers (:mod:`uring.bpf.inline_helpers`), with
  the engine's methods bound once per function entry;
* **structured control flow**: a function's blocks are laid out as nested ``if``s, a merge
  block reached from several places is duplicated while small, and only loop heads (and
  merges too big to copy) become cases of a ``while True`` dispatch on ``pc``; the
  instruction count is added once per path between budget check points.

Whatever cannot be proven goes through the same checked routines the interpreter uses
(:class:`~uring.bpf.memory.RunState`, :func:`~uring.bpf.call_args.call_helper`), so both
paths fault at the same instruction with the same message, count the same instructions and
make the same helper calls.  ``TranslatedProgram.source`` is the generated module, printable
with ``quic-offload bpf dump --python``.
"""

from __future__ import annotations

import errno
import io
import re
import struct
import sys
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType

from uring.bpf import isa
from uring.bpf.analysis import (
    Analysis,
    FuncRef,
    MapRef,
    Ptr,
    Scalar,
    State,
    Value,
    alu_value,
    placed,
    region_map,
)
from uring.bpf.call_args import call_helper
from uring.bpf.disasm import format_insn
from uring.bpf.helpers import BPF_MAX_LOOPS, Arg, HelperRegistry, HelperSpec, Ret
from uring.bpf.inline_helpers import ArgCode, direct_call, is_standard, is_standard_loop
from uring.bpf.interpreter import Interpreter, atomic_at, bswap, sdiv, sext, smod
from uring.bpf.isa import MASK32, MASK64, SIGN32, SIGN64, STACK_SIZE, Insn, to_signed32
from uring.bpf.maps import ArrayMap, HashMap, LruHashMap, Map
from uring.bpf.memory import (
    CTX_BASE,
    FUNCTION_BASE,
    MAP_HANDLE_BASE,
    REGION_SHIFT,
    RID_CTX,
    RID_STACK,
    RID_STATIC,
    RunState,
    stack_base,
    static_regions,
)
from uring.bpf.stack_cells import CELL_FORMAT, StackEffect, StackPlan
from uring.bpf.verifier import VerifiedProgram, reads_writes
from uring.program import BpfRunError

#: A block laid out more than once (reached from arms of different branches that only meet
#: further on) is copied while copies x instructions stays below this; past it, it becomes a
#: dispatch case.
DUP_BUDGET = 48
MAX_COPIES = 8
#: Layout rounds (each may turn more blocks into dispatch cases).
MAX_LAYOUTS = 40
#: Deepest ``if`` nesting before a block is reached through the dispatch loop instead.
MAX_NESTING = 40
#: Largest non-constant size of a helper's memory argument resolved at translation time.
MAX_VAR_SIZE = 1 << 16

_STRUCTS = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"),
            8: struct.Struct("<Q")}
#: Typed ``memoryview`` formats by access size; usable only where native order and sizes are
#: those of BPF memory (little endian, 2/4/8-byte H/I/Q).
_VIEW_FORMAT = {2: "H", 4: "I", 8: "Q"}
_TYPED_VIEWS = sys.byteorder == "little" and all(
    struct.calcsize(f) == n for n, f in _VIEW_FORMAT.items())
_STRUCT_METHODS = {"PK": "pack", "PI": "pack_into", "UF": "unpack_from"}


def scaled_index(site: int, per: int) -> str:
    """The local holding lookup site ``site``'s element index times ``per`` (the index of
    the element's first item in a view of ``value_size / per``-byte items); computed once per
    lookup, next to the index itself."""
    return f"ve{site}" if per == 1 else f"ve{site}x{per}"


_SCALES = re.compile(r"^(\s*)# scaled indexes of site (\d+)$")
#: Module-level names of translated code worth loading into locals.
_LOCALISED = re.compile(r"^(V\d_\d+|G\d+|MG\d+|U\d|P\d|PK_\w+|PI_\w+|UF_\w+|H\d+|M\d+"
                        r"|IMPL\d+|BUDGET)$")


@dataclass
class _CallArg:
    """One helper argument resolved at translation time."""

    kind: Arg
    reg: int
    value: Value
    #: byte size of a memory argument (constant), else None
    size: int | None = None
    #: a memory argument's size when it is not constant: (largest value, expression)
    var_size: tuple[int, str] | None = None
    #: (buffer, offset) expressions of a memory argument in a known region
    acc: tuple[str, str] | None = None
    #: R10 offset when a memory argument of constant size lies at a constant offset in
    #: this frame's stack (its cells may be packed for it)
    fp: int | None = None
    #: (R10 offset, length) of the stack range any other memory argument into this frame's
    #: stack may cover (it is read or written in the buffer)
    fp_span: tuple[int, int] | None = None
    map_index: int | None = None
    #: start pc of a callback
    target: int | None = None


def _arsh(a: int, n: int, bits: int) -> int:
    if a >> (bits - 1):
        a -= 1 << bits
    return (a >> n) & ((1 << bits) - 1)


def _if_else(cond: str, taken: list[str], taken_falls: bool, fall: list[str]) -> list[str]:
    """``if cond: taken`` then the fall-through code, with an ``else`` only where the taken
    arm can fall off its end (into whatever follows the statement)."""
    if not taken and taken_falls:
        return [f"if not ({cond}):", *("    " + ln for ln in fall)] if fall else []
    out = [f"if {cond}:", *("    " + ln for ln in taken or ["pass"])]
    if fall and taken_falls:
        return out + ["else:", *("    " + ln for ln in fall)]
    return out + fall


def _minus(expr: str, c: int) -> str:
    return f"{expr} - {c}" if c >= 0 else f"{expr} + {-c}"


class TranslatedProgram:
    """The compiled fast path of one program."""

    def __init__(self, name: str, source: str, namespace: dict[str, object],
                 debug: bool, code: CodeType | None = None) -> None:
        self.name = name
        self.source = source
        self.debug = debug
        self.code = code or compile(source, f"<bpf {name}>", "exec")
        exec(self.code, namespace)  # noqa: S102 - our own code, built from a verified program
        self.run: Callable[[bytearray, object], object] = namespace["run"]  # type: ignore
        self._namespace = namespace


#: Translations already made in this process: the source and code depend only on the
#: program, the shapes of its maps (and the contents of frozen ones) and its helper kinds,
#: so loading the same object again -- each engine has its own maps -- binds the same code
#: to the new maps instead of translating again.
_CACHE: dict[object, tuple[str, CodeType, list[tuple]]] = {}
_CACHE_ENTRIES = 64


def translate(prog: VerifiedProgram, maps: list[Map], helpers: HelperRegistry, budget: int,
              *, debug: bool = False) -> TranslatedProgram:
    """Translate a verified program.  ``debug=True`` makes ``run`` return the final
    registers and run state instead of R0 (for differential tests)."""
    key = _cache_key(prog, maps, helpers, debug)
    hit = _CACHE.get(key)
    if hit is not None:
        source, code, recipe = hit
        ns = _namespace(prog, maps, helpers, budget)
        for entry in recipe:
            _add_to_namespace(ns, maps, entry)
        return TranslatedProgram(prog.name, source, ns, debug, code)
    tr = _Translator(prog, maps, helpers, budget, debug)
    result = tr.build()
    if len(_CACHE) >= _CACHE_ENTRIES:
        del _CACHE[next(iter(_CACHE))]
    _CACHE[key] = (result.source, result.code, tr.recipe)
    return result


def _cache_key(prog: VerifiedProgram, maps: list[Map], helpers: HelperRegistry,
               debug: bool) -> object:
    shapes = tuple((type(m).__name__, m.key_size, m.value_size, m.max_entries, m.frozen,
                    bytes(m.data) if m.frozen else None)  # type: ignore[attr-defined]
                   for m in maps)
    kinds = tuple((spec.id, spec.name, spec.args, spec.ret, is_standard(spec))
                  for spec in helpers)
    return (prog.name, prog.section, tuple(prog.insns),
            tuple((f.name, f.start, f.end) for f in prog.functions),
            tuple(sorted(prog.callbacks)), tuple(prog.uses_stack), shapes, kinds, debug)


def _namespace(prog: VerifiedProgram, maps: list[Map], helpers: HelperRegistry,
               budget: int) -> dict[str, object]:
    """The module-level names translated code uses, bound to these maps and helpers."""
    regions, names = static_regions(maps)
    ns: dict[str, object] = {
        "RunState": RunState, "STATIC": regions, "NAMES": names, "NAME": prog.name,
        "BUDGET": budget, "CTX_BASE": CTX_BASE, "call_helper": call_helper,
        "MAPS": maps, "CALLBACKS": prog.callbacks, "atomic_at": atomic_at,
        "POOL": [],
        "RESUME": Interpreter(prog, maps, helpers, budget).resume,
        "sdiv": sdiv, "smod": smod, "sext": sext, "bswap": bswap, "arsh": _arsh,
        "BpfRunError": BpfRunError, "to_signed32": to_signed32,
    }
    for size, s in _STRUCTS.items():
        ns[f"U{size}"] = s.unpack_from
        ns[f"P{size}"] = s.pack_into
    for i, m in enumerate(maps):
        ns[f"M{i}"] = m
        if isinstance(m, ArrayMap):
            ns[f"G{i}"] = m.data
        if type(m) is HashMap:
            ns[f"H{i}"] = m.elements
    for spec in helpers:
        ns[f"SPEC{spec.id}"] = spec
        ns[f"IMPL{spec.id}"] = spec.impl
    return ns


def _add_to_namespace(ns: dict[str, object], maps: list[Map], entry: tuple) -> None:
    """Make one name the translation asked for: a bound ``struct`` method, a typed view of
    an array map's storage, or a plain ``memoryview`` of it."""
    kind, name, a, b = entry
    if kind == "struct":
        ns[name] = getattr(struct.Struct("<" + a), _STRUCT_METHODS[b])
    elif kind == "view":
        data = maps[a].data  # type: ignore[attr-defined]
        usable = len(data) - len(data) % b
        ns[name] = memoryview(data)[:usable].cast(_VIEW_FORMAT[b])
    else:
        ns[name] = memoryview(maps[a].data)  # type: ignore[attr-defined]


class _Translator:
    def __init__(self, prog: VerifiedProgram, maps: list[Map], helpers: HelperRegistry,
                 budget: int, debug: bool) -> None:
        self.prog = prog
        self.insns: list[Insn] = prog.insns
        self.maps = maps
        self.helpers = helpers
        self.budget = budget
        self.debug = debug
        self.analysis = Analysis(prog, maps, helpers)
        self.ns: dict[str, object] = _namespace(prog, maps, helpers, budget)
        #: how the names added to the namespace while translating were made
        self.recipe: list[tuple] = []
        self.typed = _TYPED_VIEWS
        self._calls: dict[int, list[_CallArg] | None] = {}

    # -- namespace ----------------------------------------------------------------------------

    def needs(self, entry: tuple) -> str:
        """Add a name the code uses to the namespace (once), remembering how it was made
        so a cached translation can make it again for other maps."""
        name = entry[1]
        if name not in self.ns:
            _add_to_namespace(self.ns, self.maps, entry)
            self.recipe.append(entry)
        return name  # type: ignore[no-any-return]

    def struct_fn(self, letters: str, what: str) -> str:
        """Name of a bound ``struct`` method for format ``'<' + letters`` (PK: pack,
        PI: pack_into, UF: unpack_from)."""
        return self.needs(("struct", f"{what}_{letters}", letters, what))

    def view(self, mi: int, size: int) -> str:
        """Name of a typed view of array map ``mi``'s storage, items of ``size`` bytes."""
        return self.needs(("view", f"V{size}_{mi}", mi, size))

    # -- helper calls -------------------------------------------------------------------------

    def resolve_call(self, pc: int) -> list[_CallArg] | None:
        """The arguments of the helper call at ``pc`` when every one of them is resolved at
        translation time (else None: the call takes the generic checked path)."""
        if pc not in self._calls:
            self._calls[pc] = self._resolve_call(pc)
        return self._calls[pc]

    def _resolve_call(self, pc: int) -> list[_CallArg] | None:
        insn = self.insns[pc]
        spec = self.helpers.get(insn.imm)
        assert spec is not None
        s = self.analysis.state_in[pc]
        main = self.prog.owner[pc] == 0
        out: list[_CallArg] = []
        current: Map | None = None
        for i, kind in enumerate(spec.args):
            r = i + 1
            v = s.regs[r]
            arg = _CallArg(kind, r, v)
            if kind is Arg.CTX:
                if not (isinstance(v, Ptr) and v.region == "ctx" and v.off == 0
                        and not v.nullable):
                    return None
            elif kind in (Arg.MEM, Arg.MEM_WRITE, Arg.MAP_KEY, Arg.MAP_VALUE):
                if kind in (Arg.MEM, Arg.MEM_WRITE):
                    size = s.regs[r + 1]
                    if not isinstance(size, Scalar) or size.hi > MAX_VAR_SIZE:
                        return None
                    n = size.hi
                    if size.const is None:
                        arg.var_size = (n, f"r{r + 1}")
                    else:
                        arg.size = n
                else:
                    assert current is not None
                    n = current.key_size if kind is Arg.MAP_KEY else current.value_size
                    arg.size = n
                if n:
                    acc = self.static_access(v, 0, n, kind is Arg.MEM_WRITE, f"r{r}", main)
                    if acc is None:
                        return None
                    arg.acc = acc
                    if isinstance(v, Ptr) and v.region == "fp":
                        assert v.lo is not None and v.hi is not None
                        if v.off is not None and arg.size is not None:
                            arg.fp = v.off
                        else:
                            arg.fp_span = (v.lo, v.hi - v.lo + n)
            elif kind is Arg.MAP:
                if not isinstance(v, MapRef):
                    return None
                arg.map_index = v.index
                current = self.maps[v.index]
            elif kind is Arg.CALLBACK:
                if not isinstance(v, FuncRef) or v.pc not in self.prog.callbacks:
                    return None
                arg.target = v.pc
            out.append(arg)
        if spec.ret is Ret.MAP_VALUE_OR_NULL and pc not in self.analysis.site_map:
            return None  # the analysis gives R0 a region exactly when this resolves
        return out

    def static_access(self, v: Value, off: int, size: int, write: bool,
                      reg: str | None = None, main: bool = True) -> tuple[str, str] | None:
        """(buffer expression, offset expression) when the access is provably in bounds.

        A pointer at a constant offset in a region with a fixed buffer gives a constant
        offset; otherwise the offset is computed from the register's value (``reg``, its
        local): the address minus the address of the buffer's first byte.  Without ``reg``
        only the first kind resolves.  ``main``: the code is in the program's main function
        (whose stack address is a constant)."""
        if not self.analysis.access_ok(v, off, size, write):
            return None
        assert isinstance(v, Ptr)
        k = None if v.off is None else v.off + off
        region = v.region
        if region == "ctx":
            if k is not None:
                return "ctx", str(k)
            return None if reg is None else ("ctx", _minus(reg, CTX_BASE - off))
        if region in ("fp", "caller_fp"):
            buf = "stk" if region == "fp" else "pstk"
            if k is not None:
                return buf, str(k + STACK_SIZE)
            if reg is None:
                return None
            if region == "fp" and main:
                return buf, _minus(reg, stack_base(0) - off)
            # the frame's first byte is at fp - 512 (the caller's: one region lower)
            extra = STACK_SIZE + off + (1 << REGION_SHIFT if region == "caller_fp" else 0)
            return buf, f"{reg} - fp + {extra}"
        kind = region[0]  # type: ignore[index]
        mi = region_map(region)
        assert mi is not None
        m = self.maps[mi]
        storage = (RID_STATIC + mi) << REGION_SHIFT
        if isinstance(m, ArrayMap):
            if k is not None and kind == "g":
                return f"G{mi}", str(k)
            if k is not None and kind == "site":
                base = scaled_index(region[1], m.value_size)  # type: ignore[index]
                return f"G{mi}", (f"{base} + {k}" if k else base)
            return None if reg is None else (f"G{mi}", _minus(reg, storage - off))
        # a hash-map value is a buffer of its own, mapped as a region per lookup
        if kind == "site":
            p = region[1]  # type: ignore[index]
            if k is not None:
                return f"vb{p}", str(k)
            return None if reg is None else (f"vb{p}", f"({reg} & 0xFFFFFFFF) + {off}")
        if reg is None:
            return None
        return f"st.regions[{reg} >> {REGION_SHIFT}][0]", f"({reg} & 0xFFFFFFFF) + {off}"

    def typed_item(self, v: Value, off: int, size: int, reg: str | None = None
                   ) -> str | None:
        """``view[index]`` for a provably in-bounds, aligned array-map access, else None
        (a pointer into some element of the map indexes by its value, ``reg``)."""
        if size == 1 or not self.typed or not isinstance(v, Ptr) or v.off is None:
            return None
        k = v.off + off
        region = v.region
        if not isinstance(region, tuple) or k % size:
            return None
        kind, mi = region[0], region_map(region)
        assert mi is not None
        m = self.maps[mi]
        if not isinstance(m, ArrayMap):
            return None
        view = self.view(mi, size)
        if kind == "g":
            return f"{view}[{k // size}]"
        if m.value_size % size:
            return None
        if kind == "elem":
            if reg is None:
                return None
            storage = (RID_STATIC + mi) << REGION_SHIFT
            return f"{view}[({_minus(reg, storage - k)}) >> {size.bit_length() - 1}]"
        per, j = m.value_size // size, k // size
        index = scaled_index(region[1], per)
        return f"{view}[{index} + {j}]" if j else f"{view}[{index}]"

    def register_free(self, v: Value, off: int, size: int, write: bool, main: bool) -> bool:
        """Whether a provably in-bounds access names its buffer and offset without the
        register's value (so the register need not be computed for it)."""
        return self.static_access(v, off, size, write, None, main) is not None

    def build(self) -> TranslatedProgram:
        ns = self.ns
        out = [f"# program {self.prog.name} (section {self.prog.section}): "
               f"{len(self.insns)} insns, translated from eBPF; generated code",
               ""]
        for fi, f in enumerate(self.prog.functions):
            out.extend(_FunctionEmitter(self, fi, f.start, f.end).emit())
            out.append("")
        out.extend(self.emit_callback_factory())
        out.extend([
            "def run(ctx, env):",
            "    if len(ctx) != 16:",
            "        raise ValueError(f'ctx must be 16 bytes (struct io_uring_bpf_ctx), "
            "got {len(ctx)}')",
        ])
        entry = f"F{self.prog.functions[0].start}(CTX_BASE, 0, 0, 0, 0, st, 0)"
        if self.debug:  # the caller gets the run state: a fresh one each time
            out += ["    st = RunState(NAME, STATIC, NAMES, ctx, env, BUDGET)",
                    f"    return {entry}"]
        else:  # run states are reused, reset field by field (cheaper than a new one)
            out += ["    st = POOL.pop() if POOL else "
                    "RunState(NAME, STATIC, NAMES, ctx, env, BUDGET)",
                    "    regions = st.regions = STATIC.copy()",
                    f"    regions[{RID_CTX}] = (ctx, 16, True)",
                    "    st.ctx = ctx",
                    "    st.env = env",
                    "    st.count = 0",
                    "    try:",
                    f"        return {entry}",
                    "    finally:",
                    "        POOL.append(st)"]
        source = "\n".join(out) + "\n"
        return TranslatedProgram(self.prog.name, source, ns, self.debug)

    def emit_callback_factory(self) -> list[str]:
        lines = ["def make_callback(st, target, pc, depth):"]
        if not self.prog.callbacks:
            lines.append("    raise AssertionError('program has no callbacks')")
            lines.append("")
            return lines
        lines.append("    fn = FUNCS[target]")
        lines.append("    def callback(*args):")
        lines.append("        a = (args + (0, 0, 0, 0, 0))[:5]")
        lines.append("        r0 = fn(a[0] & 0xFFFFFFFFFFFFFFFF, a[1] & 0xFFFFFFFFFFFFFFFF, "
                     "a[2] & 0xFFFFFFFFFFFFFFFF, a[3] & 0xFFFFFFFFFFFFFFFF, "
                     "a[4] & 0xFFFFFFFFFFFFFFFF, st, depth + 1)")
        lines.append("        if st.count > BUDGET:")
        lines.append("            raise st.budget_exceeded(target)")
        lines.append("        return r0")
        lines.append("    return callback")
        lines.append("")
        table = ", ".join(f"{f.start}: F{f.start}" for f in self.prog.functions)
        lines.append(f"FUNCS = {{{table}}}")
        lines.append("")
        return lines


class _Block:
    __slots__ = ("start", "end", "succ", "preds", "runs_code")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end  # exclusive
        self.succ: list[int] = []
        self.preds: list[int] = []
        self.runs_code = False


class _FunctionEmitter:
    def __init__(self, tr: _Translator, fi: int, start: int, end: int) -> None:
        self.tr = tr
        self.fi = fi
        self.start = start
        self.end = end
        self.insns = tr.insns
        self.st_in = tr.analysis.state_in
        self.is_main = fi == 0
        self.fp_expr = str(stack_base(0) + STACK_SIZE) if self.is_main else "fp"
        self.sites: set[int] = set()
        #: (lookup site, factor) pairs whose scaled element index the code uses
        self.scales_needed: set[tuple[int, int]] = set()
        #: set by alu_expr for an add/sub that may wrap: (unmasked expression, fix-up)
        self.wraps: tuple[str, str] | None = None
        #: pc -> {register: expression} folded into the code of the instruction at pc
        self.fold_at: dict[int, dict[int, str]] = {}
        self.cur_pc = -1
        self.cur_done = 0
        #: pc -> registers the program may still read (what a hand-over must pass on; a
        #: debug run reports them all at the end)
        self.program_live = tr.analysis.live_registers(start, end)
        if tr.debug:
            self.program_live = dict.fromkeys(self.program_live, (1 << 11) - 1)
        self.build_blocks()
        self.plan = self.stack_plan()
        self.dead, self.live_regs = self.dead_definitions()

    # -- blocks ---------------------------------------------------------------------------------

    def succ(self, pc: int) -> list[int]:
        """The successors of ``pc`` that some execution reaches (the analysis drops a branch
        the facts rule out)."""
        return self.tr.analysis.successors(pc)

    def build_blocks(self) -> None:
        insns = self.insns
        reachable = [p for p in range(self.start, self.end) if p in self.st_in]
        leaders = {self.start}
        for pc in reachable:
            insn = insns[pc]
            if isa.is_jump(insn):
                leaders.add(pc + isa.jump_offset(insn) + 1)
                leaders.add(pc + 1)
            elif insn.opcode == isa.OP_EXIT:
                leaders.add(pc + 1)
        order = sorted(p for p in leaders if p in self.st_in and p < self.end)
        self.blocks: dict[int, _Block] = {}
        self.last_pc: dict[int, int] = {}
        for i, lead in enumerate(order):
            stop = order[i + 1] if i + 1 < len(order) else self.end
            b = _Block(lead, lead)
            pc = last = lead
            while pc < stop:
                insn = insns[pc]
                last = pc
                b.runs_code = (b.runs_code or self._runs_code(insn)  # (counts must be exact
                               or self.is_guarded_store(pc))  # where the run leaves)
                pc += 2 if insn.opcode == isa.OP_LD_IMM64 else 1
                if isa.is_jump(insn) or insn.opcode == isa.OP_EXIT:
                    break
            b.end = pc
            b.succ = self.succ(last)
            self.blocks[lead] = b
            self.last_pc[lead] = last
        for b in self.blocks.values():
            for succ in b.succ:
                self.blocks[succ].preds.append(b.start)
        # loop heads (targets of DFS back edges) are always dispatch cases: that breaks every
        # cycle, so everything else is a DAG laid out as nested ifs
        self.labels = {self.start}
        self.back_edges: set[tuple[int, int]] = set()
        on_stack, done = {self.start}, set()
        stack = [(self.start, iter(self.blocks[self.start].succ))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                on_stack.discard(node)
                done.add(node)
            elif nxt in on_stack:
                self.labels.add(nxt)
                self.back_edges.add((node, nxt))
            elif nxt not in done:
                on_stack.add(nxt)
                stack.append((nxt, iter(self.blocks[nxt].succ)))
        # how many loops each block is in (hot dispatch cases are tested first)
        self.loop_depth: dict[int, int] = dict.fromkeys(self.blocks, 0)
        for tail, head in self.back_edges:
            body, todo = {head}, [tail]
            while todo:
                x = todo.pop()
                if x not in body:
                    body.add(x)
                    todo += self.blocks[x].preds
            for x in body:
                self.loop_depth[x] += 1

    def post_dominators(self) -> dict[int, int]:
        """Immediate post-dominator of each block in the DAG between dispatch cases (edges
        into a case or back along a loop, and exits, lead out of it): where the paths from
        a branch meet again; blocks whose paths only meet outside the DAG have none."""
        exit_ = -1
        out: dict[int, list[int]] = {}
        for lead, b in self.blocks.items():
            nxt = [t for t in b.succ if t not in self.labels and (lead, t) not in self.back_edges]
            if len(nxt) < len(b.succ) or not b.succ:
                nxt.append(exit_)
            out[lead] = nxt
        pdom: dict[int, frozenset[int]] = {exit_: frozenset((exit_,))}
        order: list[int] = []  # reverse topological: successors first
        seen: set[int] = set()
        for root in self.blocks:
            if root in seen:
                continue
            seen.add(root)
            stack = [(root, iter(out[root]))]
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    order.append(node)
                elif nxt != exit_ and nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, iter(out[nxt])))
        for node in order:
            common = frozenset.intersection(*(pdom[t] for t in out[node]))
            pdom[node] = common | {node}
        ipdom = {}
        for node in self.blocks:
            strict = pdom[node] - {node, exit_}
            if strict:  # a chain: the nearest one is post-dominated by all the others
                ipdom[node] = max(strict, key=lambda x: len(pdom[x]))
        return ipdom

    # -- liveness -------------------------------------------------------------------------------

    def _uses_defs(self, pc: int) -> tuple[int, int, bool]:
        """(registers the generated code reads, registers written, removable if unused)."""
        insn = self.insns[pc]
        s = self.st_in[pc]
        op, cls = insn.opcode, insn.opcode & 0x07
        reads, writes = reads_writes(insn, self.tr.helpers)
        removable = False
        if op == isa.OP_CALL:
            reads = 0b111110  # generic helper calls and bpf-to-bpf calls pass R1..R5
        elif op == isa.OP_EXIT:
            reads = 1 if not (self.is_main and self.tr.debug) else (1 << 11) - 1
        elif cls in (isa.BPF_ALU, isa.BPF_ALU64) or op == isa.OP_LD_IMM64:
            removable = True
        elif cls == isa.BPF_LDX:
            removable = self.tr.analysis.access_ok(
                s.regs[insn.src], insn.off, isa.SIZE_BYTES[op & 0x18], False)
        elif isa.is_jump(insn) and self.null_test(pc) is not None:
            reads = 0  # tested through the lookup's own locals
        if cls in (isa.BPF_ST, isa.BPF_STX) and self.is_guarded(pc):
            reads |= self.program_live.get(pc + 1, 0)  # a hand-over passes them on
        if cls in (isa.BPF_LDX, isa.BPF_ST, isa.BPF_STX):
            base = insn.src if cls == isa.BPF_LDX else insn.dst
            write = cls != isa.BPF_LDX
            if self.tr.register_free(s.regs[base], insn.off, isa.SIZE_BYTES[op & 0x18], write,
                                     self.is_main):
                reads &= ~(1 << base)  # the access names its buffer, not the register
        for r in range(11):
            if reads >> r & 1 and (r == isa.FRAME_REG or self.literal(s.regs[r]) is not None):
                reads &= ~(1 << r)
        return reads, writes, removable

    def dead_definitions(self) -> tuple[set[int], dict[int, int]]:
        """Instructions whose only effect is a register nobody reads afterwards, and the
        registers live after each instruction."""
        pcs = [pc for b in self.blocks.values() for pc in self._pcs(b)]
        info = {pc: self._uses_defs(pc) for pc in pcs}
        dead: set[int] = set()
        while True:
            live_in: dict[int, int] = dict.fromkeys(pcs, 0)
            changed = True
            while changed:
                changed = False
                for pc in reversed(pcs):
                    out = 0
                    for nxt in self.succ(pc):
                        out |= live_in.get(nxt, 0)
                    reads, writes, _ = info[pc]
                    new = out if pc in dead else out & ~writes | reads
                    if new != live_in[pc]:
                        live_in[pc] = new
                        changed = True
            live_out: dict[int, int] = {}
            for pc in pcs:
                out = 0
                for nxt in self.succ(pc):
                    out |= live_in.get(nxt, 0)
                live_out[pc] = out
            newly = {pc for pc in pcs if info[pc][2] and pc not in dead
                     and not live_out[pc] & info[pc][1]}
            if not newly:
                return dead, live_out
            dead |= newly

    def _pcs(self, b: _Block) -> list[int]:
        out, pc = [], b.start
        while pc < b.end:
            out.append(pc)
            pc += 2 if self.insns[pc].opcode == isa.OP_LD_IMM64 else 1
        return out

    def _runs_code(self, insn: Insn) -> bool:
        if insn.opcode != isa.OP_CALL:
            return False
        if insn.src == isa.BPF_PSEUDO_CALL:
            return True
        spec = self.tr.helpers.get(insn.imm)
        return bool(spec and spec.runs_code)

    def _count(self, b: _Block) -> int:
        n, pc = 0, b.start
        while pc < b.end:
            n += 1
            pc += 2 if self.insns[pc].opcode == isa.OP_LD_IMM64 else 1
        return n

    # -- the stack: what each instruction does to it ----------------------------------------

    def stack_plan(self) -> StackPlan:
        pcs = [pc for b in self.blocks.values() for pc in self._pcs(b)]
        effects: dict[int, StackEffect] = {}
        for pc in pcs:
            e = self.stack_effect(pc)
            if e is not None:
                effects[pc] = e
        if self.is_main:
            at_exit = self.tr.debug  # a debug run reports the final stack
        else:  # the frame stays mapped after return: code that may read any stack sees it
            at_exit = self.tr.analysis.unplaced.get(0, (True, True))[0]
        return StackPlan(self.start, sorted(pcs), self.succ,
                         effects, flush_at_exit=at_exit)

    def stack_effect(self, pc: int) -> StackEffect | None:
        insn = self.insns[pc]
        s = self.state(pc)
        op, cls = insn.opcode, insn.opcode & 0x07
        a = self.tr.analysis
        e = StackEffect()
        if cls == isa.BPF_LDX or cls in (isa.BPF_ST, isa.BPF_STX):
            load = cls == isa.BPF_LDX
            atomic = op & 0xE0 == isa.BPF_ATOMIC
            size = isa.SIZE_BYTES[op & 0x18]
            base = s.regs[insn.src if load else insn.dst]
            if isinstance(base, Ptr) and base.region == "fp":
                if base.off is not None and a.access_ok(base, insn.off, size, not load):
                    at = base.off + insn.off
                    if load:
                        e.loads.append((at, size))
                    elif atomic:
                        e.pinned.append((at, size))
                    else:
                        e.stores.append((at, size, self.stored_constant(insn, s, size)))
                elif base.off is not None:
                    pass  # out of bounds: it faults at run time, whatever the stack holds
                elif a.access_ok(base, insn.off, size, not load) and not atomic:
                    # at a bounded variable offset: in the buffer, around the cells there
                    span = (base.lo + insn.off, base.hi - base.lo + size)  # type: ignore
                    (e.flushes if load else e.writes).append(span)
                else:
                    e.memory_like = True
            elif self.is_guarded(pc):
                e.guarded = True
            elif not placed(base, insn.off):
                if load:
                    e.reads_any = True
                else:
                    e.memory_like = e.reads_any = e.writes_any = True
            return e
        if op == isa.OP_EXIT:
            e.exits = True
            return e
        if op != isa.OP_CALL:
            return None
        if insn.src == isa.BPF_PSEUDO_CALL:
            e.reads_any, e.writes_any = a.callee_foreign(pc + insn.imm + 1)
            return e
        call = self.tr.resolve_call(pc)
        if call is None:
            spec = self.tr.helpers.get(insn.imm)
            assert spec is not None
            for i, kind in enumerate(spec.args):
                v = s.regs[i + 1]
                ours = isinstance(v, Ptr) and v.region == "fp"
                if kind in (Arg.MEM, Arg.MAP_KEY, Arg.MAP_VALUE) and (ours or not placed(v)):
                    e.reads_any = True
                elif kind is Arg.MEM_WRITE and (ours or not placed(v)):
                    e.reads_any = e.writes_any = True
                elif kind is Arg.CALLBACK:
                    r, w = a.callee_foreign(v.pc) if isinstance(v, FuncRef) else (True, True)
                    e.reads_any, e.writes_any = e.reads_any or r, e.writes_any or w
            return e
        for arg in call:
            if arg.fp is not None and arg.size:
                ranges = e.writes if arg.kind is Arg.MEM_WRITE else e.reads
                ranges.append((arg.fp, arg.size))
            elif arg.fp_span is not None:
                (e.writes if arg.kind is Arg.MEM_WRITE else e.flushes).append(arg.fp_span)
            elif arg.kind is Arg.CALLBACK:
                assert arg.target is not None
                r, w = a.callee_foreign(arg.target)
                e.reads_any, e.writes_any = e.reads_any or r, e.writes_any or w
        return e

    def stored_constant(self, insn: Insn, s: State, size: int) -> int | None:
        mask = (1 << (8 * size)) - 1
        if insn.opcode & 0x07 == isa.BPF_ST:
            return insn.imm & mask
        literal = self.literal(s.regs[insn.src])
        return None if literal is None else int(literal) & mask

    # -- emission -------------------------------------------------------------------------------

    def emit(self) -> list[str]:
        self.body_cache: dict[int, list[str]] = {}
        for _ in range(MAX_LAYOUTS):
            cases = self.layout()
            # a block laid out many times over (reached from several arms that meet only
            # further on) becomes a dispatch case of its own, and the layout is redone
            big = {lead for lead, times in self.copies.items() if times > 1 and lead
                   not in self.labels and (times > MAX_COPIES
                                           or times * self._count(self.blocks[lead]) > DUP_BUDGET)}
            if not big:
                break
            # only the first ones on each path: copies below them multiply from theirs
            self.labels |= big - self.reachable_from(big)
        return self.function_lines(cases)

    def reachable_from(self, leads: set[int]) -> set[int]:
        """Blocks reached from ``leads`` by forward edges within the DAG (not ``leads``)."""
        seen: set[int] = set()
        todo = [t for lead in leads for t in self.blocks[lead].succ
                if (lead, t) not in self.back_edges]
        while todo:
            x = todo.pop()
            if x in seen or x in self.labels:
                continue
            seen.add(x)
            todo += [t for t in self.blocks[x].succ if (x, t) not in self.back_edges]
        return seen

    def layout(self) -> dict[int, list[str]]:
        """The code of every dispatch case (a copy count per block in ``self.copies``)."""
        self.ipdom = self.post_dominators()
        self.copies: dict[int, int] = {}
        self.dispatched = False
        cases: dict[int, list[str]] = {}
        self.pending = [self.start]
        while self.pending:
            lab = self.pending.pop(0)
            if lab not in cases:
                cases[lab], falls = self.emit_from(lab, 0, 0, None)
                assert not falls
        return cases

    def function_lines(self, cases: dict[int, list[str]]) -> list[str]:
        body = [ln for case in cases.values() for ln in case]
        text = "\n".join(body)
        for site, per in re.findall(r"\bve(\d+)x(\d+)\b", text):
            self.scales_needed.add((int(site), int(per)))
        for lab, case in cases.items():
            cases[lab] = self.expand_scales(case)
        self.sites |= {int(p) for p in re.findall(r"\bv[eb](\d+)", text)}
        fn = self.tr.prog.functions[self.fi].name
        lines = [f"def F{self.start}(r1, r2, r3, r4, r5, st, depth):  # {fn}",
                 "    r0 = r6 = r7 = r8 = r9 = 0"]
        if self.tr.prog.uses_stack[self.fi]:
            lines += [f"    stk = bytearray({STACK_SIZE})",
                      f"    st.regions[{RID_STACK} + depth] = (stk, {STACK_SIZE}, True)"]
        if self.plan.cells:
            first = self.plan.members(self.plan.needs_init)
            names = " = ".join(self.cell_name(c) for c in first)
            lines.append(f"    {names} = 0  # stack cells: the stack starts zeroed" if first else
                         "    # stack cells: each is assigned before it is read")
        if not self.is_main and re.search(r"\bfp\b", text):
            lines.append(f"    fp = {stack_base(0) + STACK_SIZE} + (depth << {REGION_SHIFT})")
        if re.search(r"\bpstk\b", text):  # a bpf_loop callback's context: the caller's stack
            lines.append(f"    pstk = st.regions[{RID_STACK - 1} + depth][0]")
        if re.search(r"\bmstk\b", text):
            lines.append("    mstk = memoryview(stk)")
        for name, attr in (("ctx", "ctx"), ("env", "env"), ("ld", "load"), ("sto", "store"),
                           ("addreg", "add_region")):
            if re.search(rf"\b{name}\b", text):
                lines.append(f"    {name} = st.{attr}")
        lines.append("    n = st.count")
        # (a lookup's locals ve<pc> / vb<pc> are only read where its result is known, so
        # always after the lookup assigned them)
        body: list[str] = []
        if not self.dispatched:
            body += ["    " + ln for ln in cases[self.start]]
        else:
            # innermost loops first: a back edge there is the most frequent dispatch
            order = sorted(cases, key=lambda c: (c == self.start, -self.loop_depth[c], c))
            body.append(f"    pc = {self.start}")
            body.append("    while True:")
            for i, lab in enumerate(order):
                kw = "if" if i == 0 else "elif"
                body.append(f"        {kw} pc == {lab}:")
                body += ["            " + ln for ln in cases[lab]]
        return self.with_local_names(lines, body)

    def with_local_names(self, head: list[str], body: list[str]) -> list[str]:
        """Load the module-level names the body uses more than once (typed views, map
        buffers, struct functions, helper implementations) into locals at entry: a local
        costs ~15 ns less per use than a global.  Renames tokens, never string contents."""
        found: dict[str, list[tuple[int, int, int]]] = {}
        source = "\n".join(body) + "\n"
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and _LOCALISED.match(tok.string) \
                    and tok.string in self.tr.ns:
                found.setdefault(tok.string, []).append((tok.start[0] - 1, *tok.start[1:],
                                                         tok.end[1]))
        edits: dict[int, list[tuple[int, int, str]]] = {}
        for name, places in found.items():
            if len(places) < 2:
                continue
            head.append(f"    L{name} = {name}")
            for row, start, end in places:
                edits.setdefault(row, []).append((start, end, "L" + name))
        out = list(body)
        for row, spans in edits.items():
            line = out[row]
            for start, end, text in sorted(spans, reverse=True):
                line = line[:start] + text + line[end:]
            out[row] = line
        return head + out

    def expand_scales(self, lines: list[str]) -> list[str]:
        out = []
        for ln in lines:
            m = _SCALES.match(ln)
            if m is None:
                out.append(ln)
                continue
            site = int(m.group(2))
            out += [f"{m.group(1)}{scaled_index(site, per)} = ve{site} * {per}"
                    for p, per in sorted(self.scales_needed) if p == site]
        return out

    def emit_from(self, lead: int, k: int, nesting: int, follow: int | None
                  ) -> tuple[list[str], bool]:
        """Code for block ``lead`` and everything it reaches without a dispatch, up to block
        ``follow``: every path of the code returns, dispatches (``continue``) or falls off its
        end, which means "go on with ``follow``" (the second result: whether some path
        does).  ``k`` is the number of instructions executed on this path and not yet added
        to ``n``.  Where the two arms of a branch meet again (the branch's immediate
        post-dominator), the code is an ``if``/``else`` followed by the meeting block."""
        self.copies[lead] = self.copies.get(lead, 0) + 1
        b = self.blocks[lead]
        out: list[str] = []
        if b.runs_code and k:
            out.append(f"n += {k}")
            k = 0
        out += self.block_body(b)
        k += self._count(b)
        lp = self.last_pc[lead]
        last = self.insns[lp]
        if last.opcode == isa.OP_EXIT:
            out += self.emit_exit(lp, k)
            return out, False
        if not (isa.is_jump(last) and len(b.succ) == 2):
            lines, falls = self.edge(lp, b.succ[0], k, nesting, follow)
            return out + lines, falls
        cond = self.condition(lp)
        target = lp + isa.jump_offset(last) + 1
        meet = self.ipdom.get(lead)
        if meet is None or meet == follow or nesting >= MAX_NESTING:
            meet = follow
        taken, taken_falls = self.edge(lp, target, k, nesting + 1, meet)
        fall, fall_falls = self.edge(lp, lp + 1, k, nesting + (1 if taken_falls else 0), meet)
        out += _if_else(cond, taken, taken_falls, fall)
        if not (taken_falls or fall_falls):
            return out, False
        if meet == follow:
            return out, True
        rest, falls = self.emit_from(meet, 0, nesting, follow)
        return out + rest, falls

    def edge(self, from_pc: int, target: int, k: int, nesting: int, follow: int | None
             ) -> tuple[list[str], bool]:
        out = []
        if target <= from_pc:  # a taken backward jump: the budget check point
            out += [f"n += {k}",
                    f"if n > BUDGET: st.count = n; raise st.budget_exceeded({from_pc})"]
            k = 0
        if target == follow:
            if k:
                out.append(f"n += {k}")
            return out, True
        if target in self.labels or nesting > MAX_NESTING:
            self.labels.add(target)
            self.pending.append(target)
            self.dispatched = True
            if k:
                out.append(f"n += {k}")
            return out + [f"pc = {target}", "continue"], False
        lines, falls = self.emit_from(target, k, nesting, follow)
        return out + lines, falls

    def emit_exit(self, pc: int, k: int) -> list[str]:
        s = self.state(pc)
        self.cur_pc = pc
        out = self.flush_code(pc)
        out.append(f"st.count = n + {k}" if k else "st.count = n")
        if self.is_main and self.tr.debug:
            regs = ", ".join(self.reg(r, s) for r in range(11))
            out.append(f"return [{regs}], st")
        else:
            out.append(f"return {self.reg(0, s)}")
        return out

    def block_body(self, b: _Block) -> list[str]:
        cached = self.body_cache.get(b.start)
        if cached is not None:
            return cached
        out: list[str] = []
        run: list[tuple[int, bytes]] = []  # constant stores to this frame's stack, coalesced
        pc = b.start
        done = 0
        lp = self.last_pc[b.start]
        while pc < b.end:
            insn = self.insns[pc]
            done += 1
            if pc == lp and (isa.is_jump(insn) or insn.opcode == isa.OP_EXIT):
                break
            text = format_insn(self.insns, pc, map_name=lambda i: self.tr.maps[i].name,
                               helper_name=self.tr.helpers.name_of)
            if pc in self.dead:
                out.append(f"# {pc}: {text}  (result unused)")
            else:
                store = self.const_stack_store(pc)
                if store is None:
                    out += self.flush_stores(run)
                    run = []
                into = (None if store is not None or pc in self.plan.flush
                        else self.fold(pc, b, done))
                if into is not None:
                    out.append(f"# {pc}: {text}  (computed where {into} uses it)")
                    pc += 1
                    continue
                out.append(f"# {pc}: {text}")
                if store is not None:
                    run.append(store)
                else:
                    self.cur_pc = pc
                    out += self.flush_code(pc)
                    out += self.insn_code(pc, done)
                    out += self.reload_code(pc)
            pc += 2 if insn.opcode == isa.OP_LD_IMM64 else 1
        out += self.flush_stores(run)
        self.body_cache[b.start] = out
        return out

    def fold(self, pc: int, b: _Block, done: int) -> int | None:
        """Fold the value an ALU op or an unchecked load at ``pc`` computes into its single
        use further down the block, if that is safe: returns the using pc (its code then
        has the expression where it reads the register, and ``pc`` emits nothing).

        Safe means: the register is read once, by that instruction, and dead after it (or
        redefined there); nothing in between writes it or the registers the expression
        reads, nor stores, nor calls (a moved load must see the same memory); and the
        using code names the register exactly once (no duplicated work)."""
        insn = self.insns[pc]
        op, cls = insn.opcode, insn.opcode & 0x07
        s = self.state(pc)
        x = insn.dst
        if cls in (isa.BPF_ALU, isa.BPF_ALU64):
            reads = reads_writes(insn)[0]
        elif cls == isa.BPF_LDX and op & 0xE0 in (isa.BPF_MEM, isa.BPF_MEMSX):
            size = isa.SIZE_BYTES[op & 0x18]
            base = s.regs[insn.src]
            if (self.fp_cells(base, insn.off, size) is None
                    and self.static_access(base, insn.off, size, False, "r") is None):
                return None  # a checked load may fault: it stays where it is
            reads = 0 if self.tr.register_free(base, insn.off, size, False, self.is_main) \
                else 1 << insn.src
        else:
            return None
        if x == isa.FRAME_REG:
            return None
        last = self.last_pc[b.start]
        use = pc + 1
        while True:
            if use > last:
                return None
            nxt = self.insns[use]
            r, w = reads_writes(nxt, self.tr.helpers)
            if nxt.opcode == isa.OP_CALL and nxt.src == isa.BPF_PSEUDO_CALL:
                r = 0b111110
            if r >> x & 1:
                break
            ncls = nxt.opcode & 0x07
            if (w >> x & 1 or w & reads or ncls in (isa.BPF_ST, isa.BPF_STX)
                    or nxt.opcode == isa.OP_CALL or use in self.plan.reload
                    or nxt.opcode == isa.OP_LD_IMM64):
                return None
            use += 1
        if use in self.dead or (self.live_regs.get(use, -1) >> x & 1
                                and not reads_writes(self.insns[use], self.tr.helpers)[1] >> x & 1):
            return None
        self.cur_pc = pc
        code = self.insn_code(pc, done)
        head = f"r{x} = "
        if len(code) != 1 or not code[0].startswith(head):
            return None
        rhs = code[0][len(head):]
        # dry run of the use: the register must appear exactly once in its code
        folds = self.fold_at.setdefault(use, {})
        folds[x] = "\x00"
        self.cur_pc = use
        used = self.insns[use]
        if use == last and isa.is_jump(used):
            text = self.condition(use)
        elif used.opcode == isa.OP_EXIT:
            text = "\n".join(self.emit_exit(use, 0))
        else:
            text = "\n".join(self.insn_code(use, done + use - pc))
        if text.count("\x00") != 1:
            del folds[x]
            return None
        folds[x] = f"({rhs})"
        return use

    def const_stack_store(self, pc: int) -> tuple[int, bytes] | None:
        """(stack offset, bytes) of a store of a known value to this frame's stack buffer
        (bytes kept in cells are stored by :meth:`insn_code`)."""
        insn = self.insns[pc]
        op, cls = insn.opcode, insn.opcode & 0x07
        if cls not in (isa.BPF_ST, isa.BPF_STX) or op & 0xE0 != isa.BPF_MEM:
            return None
        s = self.state(pc)
        size = isa.SIZE_BYTES[op & 0x18]
        value = self.stored_constant(insn, s, size)
        base = s.regs[insn.dst]
        if (value is None or not isinstance(base, Ptr) or base.off is None
                or self.fp_cells(base, insn.off, size) is not None):
            return None
        acc = self.tr.static_access(s.regs[insn.dst], insn.off, size, True)
        if acc is None or acc[0] != "stk":
            return None
        return int(acc[1]), value.to_bytes(size, "little")

    @staticmethod
    def flush_stores(run: list[tuple[int, bytes]]) -> list[str]:
        """One slice assignment per contiguous range the stores cover (later stores win)."""
        if not run:
            return []
        image: dict[int, int] = {}
        for off, data in run:
            for i, byte in enumerate(data):
                image[off + i] = byte
        out = []
        positions = sorted(image)
        start = prev = positions[0]
        for p in [*positions[1:], None]:
            if p is not None and p == prev + 1:
                prev = p
                continue
            chunk = bytes(image[i] for i in range(start, prev + 1))
            if len(chunk) == 1:
                out.append(f"stk[{start}] = {chunk[0]}")
            else:
                out.append(f"stk[{start}:{prev + 1}] = {chunk!r}")
            if p is not None:
                start = prev = p
        return out

    # -- stack cells -----------------------------------------------------------------------------

    def cell_name(self, c: int) -> str:
        return f"s{-self.plan.cells[c][0]}"

    def fp_cells(self, v: Value, off: int, size: int) -> list[int] | None:
        """Cells of a direct access to this frame's stack, or None (not in cells)."""
        if not (isinstance(v, Ptr) and v.region == "fp" and v.off is not None
                and self.tr.analysis.access_ok(v, off, size, False)):
            return None
        return self.plan.cells_for(v.off + off, size)

    def cell_value(self, pc: int, c: int) -> str:
        k = self.plan.constant(pc, c)
        return self.cell_name(c) if k is None else str(k)

    def cells_value(self, pc: int, cells: list[int]) -> str:
        """The little-endian value the cells hold together, as an expression."""
        parts: list[str] = []
        known = shift = 0
        for c in cells:
            k = self.plan.constant(pc, c)
            if k is not None:
                known |= k << shift
            else:
                parts.append(self.cell_name(c) if not shift else f"{self.cell_name(c)} << {shift}")
            shift += 8 * self.plan.cells[c][1]
        if known or not parts:
            parts.append(str(known))
        return parts[0] if len(parts) == 1 else "(" + " | ".join(parts) + ")"

    def cells_store(self, pc: int, off: int, cells: list[int], value: str,
                    known: int | None) -> list[str]:
        live = [c for c in cells if self.plan.store_live(pc, c)]
        if not live:
            return ["# (nothing reads these bytes before they are overwritten)"]
        if len(cells) == 1:
            return [f"{self.cell_name(cells[0])} = {value}"]
        out = []
        if known is None:
            out.append(f"_v = {value}")
        for c in live:
            o, n = self.plan.cells[c]
            shift = 8 * (o - off)
            mask = (1 << (8 * n)) - 1
            if known is not None:
                out.append(f"{self.cell_name(c)} = {known >> shift & mask}")
                continue
            expr = f"_v >> {shift}" if shift else "_v"
            if c != cells[-1]:  # the value is narrowed already: its top cell needs no mask
                expr = f"({expr}) & {mask:#x}" if shift else f"_v & {mask:#x}"
            out.append(f"{self.cell_name(c)} = {expr}")
        return out

    def cell_runs(self, cells: list[int]) -> list[list[int]]:
        """Cells grouped into runs of adjacent bytes."""
        runs: list[list[int]] = []
        for c in cells:
            o = self.plan.cells[c][0]
            if runs:
                po, pn = self.plan.cells[runs[-1][-1]]
                if po + pn == o:
                    runs[-1].append(c)
                    continue
            runs.append([c])
        return runs

    def pack_layout(self, pc: int, cells: list[int]) -> tuple[str, list[str]]:
        """``struct`` format letters and arguments that lay out adjacent cells: a cell whose
        value is known joins its neighbours in one bytes field, zero bytes become pad."""
        letters: list[str] = []
        args: list[str] = []
        known = bytearray()

        def close() -> None:
            if known:
                letters.append(f"{len(known)}{'s' if any(known) else 'x'}")
                if any(known):
                    args.append(repr(bytes(known)))
                known.clear()

        for c in cells:
            size = self.plan.cells[c][1]
            k = self.plan.constant(pc, c)
            if k is None:
                close()
                letters.append(CELL_FORMAT[size])
                args.append(self.cell_name(c))
            else:
                known.extend(k.to_bytes(size, "little"))
        close()
        return "".join(letters), args

    def flush_code(self, pc: int) -> list[str]:
        """Write the cells that may differ from the buffer back into it, before ``pc``."""
        return self.flush_cells(pc, self.plan.flush.get(pc, 0))

    def flush_cells(self, pc: int, bits: int) -> list[str]:
        out = []
        for run in self.cell_runs(self.plan.members(bits)):
            at = self.plan.cells[run[0]][0] + STACK_SIZE
            if len(run) == 1:
                out.append(self.store_stmt("stk", str(at), self.plan.cells[run[0]][1],
                                           self.cell_value(pc, run[0])))
                continue
            letters, args = self.pack_layout(pc, run)
            out.append(f"{self.tr.struct_fn(letters, 'PI')}(stk, {', '.join([str(at), *args])})")
        return out

    def reload_code(self, pc: int) -> list[str]:
        """Read cells back from the buffer after ``pc`` wrote it (cells nobody reads before
        they are overwritten are skipped)."""
        out = []
        for run in self.cell_runs(self.plan.members(self.plan.reload.get(pc, 0))):
            live = [c for c in run if self.plan.store_live(pc, c)]
            if not live:
                continue
            if len(live) == 1:
                o, size = self.plan.cells[live[0]]
                out.append(f"{self.cell_name(live[0])} = "
                           f"{self.load_expr('stk', str(o + STACK_SIZE), size)}")
                continue
            at = self.plan.cells[run[0]][0] + STACK_SIZE
            letters = ""
            skip = 0
            for c in run:
                size = self.plan.cells[c][1]
                if c in live:
                    letters += (f"{skip}x" if skip else "") + CELL_FORMAT[size]
                    skip = 0
                else:
                    skip += size
            names = ", ".join(self.cell_name(c) for c in live)
            fn = self.tr.struct_fn(letters, "UF")
            out.append(f"{names} = {fn}(stk, {at})")
        return out

    def packed(self, pc: int, off: int, size: int) -> str:
        """``bytes`` of the stack range [off, off + size) built from the cells holding it."""
        cells = self.plan.cells_in(off, size)
        if all(self.plan.constant(pc, c) is not None for c in cells):  # known: a literal
            return repr(b"".join(self.plan.constant(pc, c).to_bytes(  # type: ignore[union-attr]
                self.plan.cells[c][1], "little") for c in cells))
        letters, args = self.pack_layout(pc, cells)
        return f"{self.tr.struct_fn(letters, 'PK')}({', '.join(args)})"

    def read_arg(self, pc: int, arg: _CallArg) -> str:
        """A helper's readable memory argument as ``bytes``."""
        if arg.var_size is not None:
            assert arg.acc is not None
            buf, off = arg.acc
            return f"bytes({buf}[{off}:{off} + {arg.var_size[1]}])"
        n = arg.size or 0
        if not n:
            return "b''"
        if arg.fp is not None and self.plan.cells and self.plan.covers(arg.fp, n):
            return self.packed(pc, arg.fp, n)
        assert arg.acc is not None
        buf, off = arg.acc
        return f"bytes({buf}[{off}:{off} + {n}])"

    # -- values ---------------------------------------------------------------------------------

    def state(self, pc: int) -> State:
        return self.st_in[pc]

    def literal(self, v: Value) -> str | None:
        """The value as a literal when it is the same on every run, else None."""
        if isinstance(v, Scalar):
            return None if v.const is None else str(v.const)
        if isinstance(v, Ptr) and v.off is not None and not v.nullable:
            if v.region == "ctx":
                return str(CTX_BASE + v.off)
            if v.region == "fp" and self.is_main:
                return str(stack_base(0) + STACK_SIZE + v.off)
            if isinstance(v.region, tuple) and v.region[0] == "g":
                return str(((RID_STATIC + v.region[1]) << REGION_SHIFT) + v.off)
        if isinstance(v, MapRef):
            return str(MAP_HANDLE_BASE + v.index)
        if isinstance(v, FuncRef):
            return str(FUNCTION_BASE + v.pc)
        return None

    def reg(self, r: int, s: State) -> str:
        v = s.regs[r]
        literal = self.literal(v)
        if literal is not None:
            return literal
        if r == isa.FRAME_REG:
            return self.fp_expr
        folded = self.fold_at.get(self.cur_pc)
        if folded and r in folded:  # computed right here (see :meth:`fold`)
            return folded[r]
        return f"r{r}"

    @staticmethod
    def rng(v: Value) -> Scalar:
        return v if isinstance(v, Scalar) else Scalar(0, MASK64)

    def u32(self, r: int, s: State) -> str:
        v = s.regs[r]
        if isinstance(v, Scalar) and v.hi <= MASK32:
            return self.reg(r, s)
        return f"({self.reg(r, s)} & 0xFFFFFFFF)"

    # -- memory -----------------------------------------------------------------------------

    def static_access(self, v: Value, off: int, size: int, write: bool, reg: str | None = None
                      ) -> tuple[str, str] | None:
        return self.tr.static_access(v, off, size, write, reg, self.is_main)

    def load_expr(self, buf: str, off: str, size: int) -> str:
        if size == 1:
            return f"{buf}[{off}]"
        return f"U{size}({buf}, {off})[0]"

    def store_stmt(self, buf: str, off: str, size: int, value: str) -> str:
        if size == 1:
            return f"{buf}[{off}] = {value}"
        return f"P{size}({buf}, {off}, {value})"

    def addr_expr(self, r: int, off: int, s: State) -> str:
        base = self.reg(r, s)
        if off == 0:
            return base
        return f"({base} + {off}) & 0xFFFFFFFFFFFFFFFF"

    def narrow(self, r: int, s: State, size: int) -> str:
        """Register ``r`` truncated to ``size`` bytes, for a store."""
        v = s.regs[r]
        expr = self.reg(r, s)
        if size == 8:
            return expr
        limit = (1 << (8 * size)) - 1
        if isinstance(v, Scalar):
            if v.hi <= limit:
                return expr
            if v.const is not None:
                return str(v.const & limit)
        return f"{expr} & {limit:#x}"

    # -- instructions ---------------------------------------------------------------------------

    def insn_code(self, pc: int, done: int) -> list[str]:
        self.cur_done = done
        insn = self.insns[pc]
        s = self.state(pc)
        op, cls = insn.opcode, insn.opcode & 0x07
        d = insn.dst
        if cls in (isa.BPF_ALU, isa.BPF_ALU64):
            literal = self.literal(self._after(insn, s))
            if literal is not None:
                return [f"r{d} = {literal}"]
            self.wraps = None
            expr = self.alu_expr(insn, s, pc)
            if self.wraps is not None:  # an add/sub that may wrap: compare, adjust once
                unmasked, fix = self.wraps
                return [f"r{d} = {unmasked}", fix.format(r=f"r{d}")]
            return [f"r{d} = {expr}"]
        if op == isa.OP_LD_IMM64:
            hi = self.insns[pc + 1]
            if insn.src == isa.BPF_PSEUDO_MAP_FD:
                return [f"r{d} = {MAP_HANDLE_BASE + insn.imm}"]
            if insn.src == isa.BPF_PSEUDO_MAP_VALUE:
                return [f"r{d} = {((RID_STATIC + insn.imm) << REGION_SHIFT) + hi.imm}"]
            if insn.src == isa.BPF_PSEUDO_FUNC:
                return [f"r{d} = {FUNCTION_BASE + pc + insn.imm + 1}"]
            return [f"r{d} = {isa.ld_imm64_value(insn, hi)}"]
        if cls == isa.BPF_LDX:
            if self.is_guarded(pc):
                return self.guarded_code(pc, insn, s)
            return [f"r{d} = {self.load_code(pc, insn, s)}"]
        if cls in (isa.BPF_ST, isa.BPF_STX):
            size = isa.SIZE_BYTES[op & 0x18]
            if op & 0xE0 == isa.BPF_ATOMIC:
                return self.atomic_code(pc, insn, s, size)
            if cls == isa.BPF_ST:
                value = str(insn.imm & ((1 << (8 * size)) - 1))
            else:
                value = self.narrow(insn.src, s, size)
            base = s.regs[d]
            cells = self.fp_cells(base, insn.off, size)
            if cells is not None:
                assert isinstance(base, Ptr) and base.off is not None
                return self.cells_store(pc, base.off + insn.off, cells, value,
                                        self.stored_constant(insn, s, size))
            acc = self.static_access(base, insn.off, size, True, self.reg(d, s))
            if acc is not None:
                item = self.tr.typed_item(base, insn.off, size, self.reg(d, s))
                if item is not None:
                    return [f"{item} = {value}"]
                return [self.store_stmt(acc[0], acc[1], size, value)]
            if self.is_guarded(pc):
                return self.guarded_code(pc, insn, s, value)
            return [f"sto({pc}, {self.addr_expr(d, insn.off, s)}, {size}, {value})"]
        if op == isa.OP_CALL:
            return self.call_code(pc, insn, s, done)
        raise AssertionError(f"unexpected insn at {pc}")  # pragma: no cover

    def load_code(self, pc: int, insn: Insn, s: State) -> str:
        op = insn.opcode
        size = isa.SIZE_BYTES[op & 0x18]
        base = s.regs[insn.src]
        folded = self.tr.analysis.frozen_value(base, insn.off, size)
        if folded is not None:  # frozen .rodata: the value cannot change after load
            return str(sext(folded, 8 * size) if op & 0xE0 == isa.BPF_MEMSX else folded)
        cells = self.fp_cells(base, insn.off, size)
        if cells is not None:
            expr = self.cells_value(pc, cells)
        else:
            reg = self.reg(insn.src, s)
            acc = self.static_access(base, insn.off, size, False, reg)
            item = self.tr.typed_item(base, insn.off, size, reg) if acc is not None else None
            if item is not None:
                expr = item
            elif acc is not None:
                expr = self.load_expr(acc[0], acc[1], size)
            else:
                expr = f"ld({pc}, {self.addr_expr(insn.src, insn.off, s)}, {size})"
        if op & 0xE0 == isa.BPF_MEMSX:
            expr = f"sext({expr}, {size * 8})"
        return expr

    def is_guarded_store(self, pc: int) -> bool:
        return self.insns[pc].opcode & 0x07 != isa.BPF_LDX and self.is_guarded(pc)

    def is_guarded(self, pc: int) -> bool:
        """Whether the load or store at ``pc`` is made through a pointer with a known region
        but an offset the analysis cannot bound (see :meth:`Analysis.guarded`)."""
        insn = self.insns[pc]
        op, cls = insn.opcode, insn.opcode & 0x07
        if cls == isa.BPF_LDX:
            base, write = self.state(pc).regs[insn.src], False
        elif cls in (isa.BPF_ST, isa.BPF_STX) and op & 0xE0 == isa.BPF_MEM:
            base, write = self.state(pc).regs[insn.dst], True
        else:
            return False
        return (op & 0xE0 in (isa.BPF_MEM, isa.BPF_MEMSX)
                and self.tr.analysis.guarded(base, insn.off, isa.SIZE_BYTES[op & 0x18], write))

    def guarded_code(self, pc: int, insn: Insn, s: State, value: str | None = None
                     ) -> list[str]:
        """A load (``value`` None) or store through a pointer whose region is known but not
        its offset: unchecked when the address lands inside one element of that region,
        else the checked routine with the frame's dirty cells written back first.  A store
        that then lands in this frame's own stack hands the rest of the frame to the
        interpreter: the analysis took it to stay in its region."""
        op = insn.opcode
        size = isa.SIZE_BYTES[op & 0x18]
        r = insn.src if value is None else insn.dst
        v = s.regs[r]
        assert isinstance(v, Ptr)
        if v.region == "ctx":
            buf, first, element, total = "ctx", CTX_BASE, 16, 16
        else:
            mi = region_map(v.region)
            assert mi is not None
            m = self.tr.maps[mi]
            buf, first = f"G{mi}", (RID_STATIC + mi) << REGION_SHIFT
            element, total = m.value_size, m.value_size * m.max_entries
        reg = self.reg(r, s)
        inside = f"0 <= _o <= {total - size}"
        if element != total:
            inside += f" and _o % {element} <= {element - size}"
        out = [f"_o = {_minus(reg, first - insn.off)}", f"if {inside}:"]
        slow = self.flush_cells(pc, self.plan.dirty_in.get(pc, 0)) if self.plan.cells else []
        addr = self.addr_expr(r, insn.off, s)
        if value is None:
            fast = self.load_expr(buf, "_o", size)
            checked = f"ld({pc}, {addr}, {size})"
            if op & 0xE0 == isa.BPF_MEMSX:
                fast, checked = f"sext({fast}, {size * 8})", f"sext({checked}, {size * 8})"
            return out + [f"    r{insn.dst} = {fast}", "else:",
                          *("    " + ln for ln in slow), f"    r{insn.dst} = {checked}"]
        live = self.program_live.get(pc + 1, 0)
        regs = ", ".join(self.reg(x, s) if live >> x & 1 else "0" for x in range(10))
        resume = f"RESUME(st, {pc + 1}, [{regs}, {self.reg(isa.FRAME_REG, s)}], depth)"
        tail = [f"st.count = n + {self.cur_done}"]
        if self.is_main and self.tr.debug:
            tail += [f"_r = {resume}", "return _r[1], st"]
        else:
            tail.append(f"return {resume}[0]")
        return out + ["    " + self.store_stmt(buf, "_o", size, value), "else:",
                      *("    " + ln for ln in slow), f"    _a = {addr}",
                      f"    sto({pc}, _a, {size}, {value})",
                      f"    if _a >> {REGION_SHIFT} == {RID_STACK} + depth:  # our own stack",
                      *("        " + ln for ln in tail)]

    def atomic_code(self, pc: int, insn: Insn, s: State, size: int) -> list[str]:
        acc = self.static_access(s.regs[insn.dst], insn.off, size, True, self.reg(insn.dst, s))
        src = self.reg(insn.src, s)
        r0 = self.reg(0, s)
        out = []
        if acc is not None:
            buf, off = acc
        else:
            out.append(f"_b, _o = st.locate({pc}, {self.addr_expr(insn.dst, insn.off, s)}, "
                       f"{size}, True)")
            buf, off = "_b", "_o"
        call = f"atomic_at({buf}, {off}, {size}, {insn.imm}, {src}, {r0})"
        if insn.imm == isa.BPF_CMPXCHG:
            out.append(f"r0 = {call}")
        elif insn.imm & isa.BPF_FETCH:
            out.append(f"r{insn.src} = {call}")
        else:
            out.append(call)
        return out

    def alu_expr(self, insn: Insn, s: State, pc: int) -> str:
        op, cls = insn.opcode, insn.opcode & 0x07
        aop = op & 0xF0
        d = insn.dst
        is64 = cls == isa.BPF_ALU64
        bits = 64 if is64 else 32
        mask = MASK64 if is64 else MASK32
        m = "0xFFFFFFFFFFFFFFFF" if is64 else "0xFFFFFFFF"
        av = s.regs[d]
        if op & isa.BPF_X:
            bv = s.regs[insn.src]
            b = self.reg(insn.src, s) if is64 else self.u32(insn.src, s)
        else:
            c = insn.imm & mask
            bv = Scalar(c, c)
            b = str(c)
        a = self.reg(d, s) if is64 else self.u32(d, s)
        ar, br = self.rng(av), self.rng(bv)
        if not is64:
            ar = ar if ar.hi <= MASK32 else Scalar(0, MASK32)
            br = br if br.hi <= MASK32 else Scalar(0, MASK32)
        if aop == isa.BPF_MOV:
            if insn.off:
                return f"sext({self.reg(insn.src, s)}, {insn.off}) & {m}"
            return b
        if aop == isa.BPF_NEG:
            return f"-{a} & {m}"
        if aop == isa.BPF_END:
            if is64 or op & isa.BPF_X:
                return f"bswap({self.reg(d, s)}, {insn.imm})"
            if insn.imm == 64:
                return self.reg(d, s)
            return f"{self.reg(d, s)} & {(1 << insn.imm) - 1:#x}"
        # pointer +/- scalar with a bounded result: the address cannot wrap (a pointer's
        # value is its region's base, >= 2**33, plus an offset within +-2**31)
        if is64 and aop in (isa.BPF_ADD, isa.BPF_SUB) and op & isa.BPF_X:
            nv = self._after(insn, s)
            if isinstance(nv, Ptr) and nv.lo is not None:
                sv = bv if isinstance(av, Ptr) else av
                assert isinstance(sv, Scalar)
                if sv.const is not None and sv.const > MASK64 >> 1:  # a negative constant
                    delta = (1 << 64) - sv.const
                    other = a if isinstance(av, Ptr) else b
                    return f"{other} - {delta}" if aop == isa.BPF_ADD else f"{other} + {delta}"
                return f"{a} + {b}" if aop == isa.BPF_ADD else f"{a} - {b}"
        # +/- a constant: a negative immediate subtracts (small ints, no wrap to undo when
        # the range allows); a pointer with a bounded result cannot wrap
        if aop in (isa.BPF_ADD, isa.BPF_SUB) and not op & isa.BPF_X:
            delta = insn.imm if aop == isa.BPF_ADD else -insn.imm
            nv = self._after(insn, s)
            if is64 and isinstance(av, Ptr) and isinstance(nv, Ptr) and nv.lo is not None:
                return f"{a} + {delta}" if delta >= 0 else f"{a} - {-delta}"
            if isinstance(av, Scalar) or not is64:
                if delta >= 0:
                    if ar.hi + delta <= mask:
                        return f"{a} + {delta}"
                    self.wraps = (f"{a} + {delta}", f"if {{r}} > {m}: {{r}} -= {mask + 1:#x}")
                    return f"({a} + {delta}) & {m}"
                if ar.lo >= -delta:
                    return f"{a} - {-delta}"
                self.wraps = (f"{a} - {-delta}", f"if {{r}} < 0: {{r}} += {mask + 1:#x}")
                return f"({a} - {-delta}) & {m}"
        if aop == isa.BPF_ADD:
            if ar.hi + br.hi <= mask:
                return f"{a} + {b}"
            # both operands are below 2**bits, so one subtraction undoes a wrap (a compare
            # costs ~10 ns where a big-int & costs ~25 ns)
            self.wraps = (f"{a} + {b}", f"if {{r}} > {m}: {{r}} -= {mask + 1:#x}")
            return f"({a} + {b}) & {m}"
        if aop == isa.BPF_SUB:
            if ar.lo >= br.hi:
                return f"{a} - {b}"
            self.wraps = (f"{a} - {b}", f"if {{r}} < 0: {{r}} += {mask + 1:#x}")
            return f"({a} - {b}) & {m}"
        if aop == isa.BPF_MUL:
            if ar.hi * br.hi <= mask or self.quotient_times_divisor(pc) <= mask:
                return f"{a} * {b}"
            return f"({a} * {b}) & {m}"
        if aop == isa.BPF_DIV:
            if insn.off == 1:
                return f"(sdiv({a}, {b}, {bits}) if {b} else 0)"
            if br.lo > 0:
                return f"{a} // {b}"
            return f"({a} // {b} if {b} else 0)"
        if aop == isa.BPF_MOD:
            if insn.off == 1:
                return f"(smod({a}, {b}, {bits}) if {b} else {a})"
            if br.lo > 0:
                return f"{a} % {b}"
            return f"({a} % {b} if {b} else {a})"
        if aop == isa.BPF_OR:
            return f"{a} | {b}"
        if aop == isa.BPF_AND:
            return f"{a} & {b}"
        if aop == isa.BPF_XOR:
            return f"{a} ^ {b}"
        sh = b if br.hi < bits else f"({b} & {bits - 1})"
        if aop == isa.BPF_LSH:
            if br.hi < bits and (ar.hi << br.hi) <= mask:
                return f"{a} << {sh}"
            return f"({a} << {sh}) & {m}"
        if aop == isa.BPF_RSH:
            return f"{a} >> {sh}"
        if aop == isa.BPF_ARSH:
            if ar.hi <= mask >> 1:
                return f"{a} >> {sh}"
            if br.const is not None and br.const < bits:  # copy the sign into the top bits
                c = br.const
                top = mask ^ (mask >> c)
                return f"({a} >> {c} | {top:#x} if {a} >> {bits - 1} else {a} >> {c})"
            return f"arsh({a}, {sh}, {bits})"
        raise AssertionError(f"alu op {aop:#x}")  # pragma: no cover

    def quotient_times_divisor(self, pc: int) -> int:
        """An upper bound of ``rX * y`` right after ``rX /= y`` in the same block (clang's
        expansion of ``%``): ``(a / b) * b <= a``, and 0 when b was 0; else 2**64."""
        insn, prev = self.insns[pc], self.insns[pc - 1] if pc > self.start else None
        if (prev is None or pc in self.blocks or prev.opcode & 0xF0 != isa.BPF_DIV
                or prev.off or prev.opcode & 0x07 != insn.opcode & 0x07
                or prev.opcode & isa.BPF_X != insn.opcode & isa.BPF_X
                or prev.dst != insn.dst or prev.dst == prev.src and prev.opcode & isa.BPF_X
                or (prev.src if prev.opcode & isa.BPF_X else prev.imm)
                != (insn.src if insn.opcode & isa.BPF_X else insn.imm)):
            return 1 << 64
        dividend = self.state(pc - 1).regs[insn.dst]
        if insn.opcode & 0x07 == isa.BPF_ALU:
            return self.rng(dividend).hi if self.rng(dividend).hi <= MASK32 else MASK32
        return self.rng(dividend).hi

    def _after(self, insn: Insn, s: State) -> Value:
        if insn.opcode & isa.BPF_X:
            b = s.regs[insn.src]
        else:
            b = Scalar(insn.imm & MASK64, insn.imm & MASK64)
        return alu_value(insn, s.regs[insn.dst], b)

    def null_test(self, pc: int) -> str | None:
        """A NULL check of a pointer a lookup site returned, tested through the site's own
        locals (so the pointer value itself need not be computed).  Valid because a register
        holding ``Ptr(site p)`` holds what the latest run of site p returned (the analysis
        forgets older ones), when no other NULL can reach it."""
        insn = self.insns[pc]
        s = self.state(pc)
        jop = insn.opcode & 0xF0
        if insn.opcode & 0x07 != isa.BPF_JMP or jop not in (isa.BPF_JEQ, isa.BPF_JNE):
            return None
        v = s.regs[insn.dst]
        if insn.opcode & isa.BPF_X:
            if s.regs[insn.src] != Scalar(0, 0):
                return None
        elif insn.imm != 0:
            return None
        if not (isinstance(v, Ptr) and v.nullable and not v.other_null
                and isinstance(v.region, tuple) and v.region[0] == "site" and v.off == 0):
            return None  # (a NULL that may come from elsewhere is tested on the value)
        p = v.region[1]
        m = self.tr.maps[self.tr.analysis.site_map[p]]
        if isinstance(m, ArrayMap):
            return (f"ve{p} >= {m.max_entries}" if jop == isa.BPF_JEQ
                    else f"ve{p} < {m.max_entries}")
        return f"vb{p} is None" if jop == isa.BPF_JEQ else f"vb{p} is not None"

    def condition(self, pc: int) -> str:
        self.cur_pc = pc
        null = self.null_test(pc)
        if null is not None:
            return null
        insn = self.insns[pc]
        s = self.state(pc)
        op, cls = insn.opcode, insn.opcode & 0x07
        jop = op & 0xF0
        is64 = cls == isa.BPF_JMP
        mask = MASK64 if is64 else MASK32
        sign = SIGN64 if is64 else SIGN32
        if is64:
            a, ar = self.reg(insn.dst, s), self.rng(s.regs[insn.dst])
        else:
            a, ar = self.u32(insn.dst, s), self.rng(s.regs[insn.dst])
            if ar.hi > MASK32:
                ar = Scalar(0, MASK32)
        if op & isa.BPF_X:
            if is64:
                b, br = self.reg(insn.src, s), self.rng(s.regs[insn.src])
            else:
                b, br = self.u32(insn.src, s), self.rng(s.regs[insn.src])
                if br.hi > MASK32:
                    br = Scalar(0, MASK32)
        else:
            c = insn.imm & mask
            b, br = str(c), Scalar(c, c)
        sym = {isa.BPF_JEQ: "==", isa.BPF_JNE: "!=", isa.BPF_JGT: ">", isa.BPF_JGE: ">=",
               isa.BPF_JLT: "<", isa.BPF_JLE: "<=", isa.BPF_JSGT: ">", isa.BPF_JSGE: ">=",
               isa.BPF_JSLT: "<", isa.BPF_JSLE: "<="}
        if jop == isa.BPF_JSET:
            return f"{a} & {b}"
        if jop in (isa.BPF_JSGT, isa.BPF_JSGE, isa.BPF_JSLT, isa.BPF_JSLE):
            if ar.hi < sign and br.hi < sign:
                return f"{a} {sym[jop]} {b}"
            bb = str(int(b) ^ sign) if b.isdigit() else f"({b} ^ {sign:#x})"
            return f"({a} ^ {sign:#x}) {sym[jop]} {bb}"
        return f"{a} {sym[jop]} {b}"

    # -- calls ------------------------------------------------------------------------------------

    def call_code(self, pc: int, insn: Insn, s: State, done: int) -> list[str]:
        if insn.src == isa.BPF_PSEUDO_CALL:
            target = pc + insn.imm + 1
            args = ", ".join(self.reg(r, s) for r in range(1, 6))
            return [f"st.count = n + {done}",
                    f"r0 = F{target}({args}, st, depth + 1)",
                    f"n = st.count - {done}"]
        spec = self.tr.helpers.get(insn.imm)
        assert spec is not None
        out: list[str] = []
        if spec.runs_code:
            out.append(f"st.count = n + {done}")
        call = self.tr.resolve_call(pc)
        if call is not None:
            out += self.resolved_call(pc, spec, call, s)
        else:
            regs = ", ".join(self.reg(r, s) for r in range(1, 6))
            out.append(f"r0 = call_helper(st, {pc}, SPEC{spec.id}, ({regs}), MAPS, CALLBACKS, "
                       f"lambda a, t, p: make_callback(a, t, p, depth))")
        if spec.runs_code:
            out.append(f"n = st.count - {done}")
        return out

    def writable_view(self, buf: str) -> str:
        """A ``memoryview`` of a buffer expression, for a helper that writes into it: the
        frame's and the array maps' are made once (per function entry, per load)."""
        if buf == "stk":
            return "mstk"
        m = re.fullmatch(r"G(\d+)", buf)
        if m:
            return self.tr.needs(("mview", f"MG{m.group(1)}", int(m.group(1)), None))
        return f"memoryview({buf})"

    def r0_live(self, pc: int) -> bool:
        return bool(self.live_regs.get(pc, 1) & 1)

    def resolved_call(self, pc: int, spec: HelperSpec, call: list[_CallArg],
                      s: State) -> list[str]:
        impl_args: list[str] = []  # what IMPL<id>(env, ...) gets
        codes: list[ArgCode] = []  # the same without ctx and sizes, for a direct engine call
        for arg in call:
            kind = arg.kind
            if kind is Arg.SIZE:
                continue
            if kind is Arg.CTX:
                impl_args.append("ctx")
                continue
            if kind is Arg.ANYTHING:
                expr = self.reg(arg.reg, s)
                v = arg.value
                code = ArgCode(expr, v.const if isinstance(v, Scalar) else None,
                               v.hi if isinstance(v, Scalar) else None)
            elif kind is Arg.MEM_WRITE:
                n = arg.size or 0
                if arg.var_size is not None:
                    assert arg.acc is not None
                    buf, off = arg.acc
                    expr = f"{self.writable_view(buf)}[{off}:{off} + {arg.var_size[1]}]"
                elif n:
                    assert arg.acc is not None
                    buf, off = arg.acc
                    expr = f"{self.writable_view(buf)}[{off}:{off} + {n}]"
                else:
                    expr = "memoryview(bytearray(0))"
                code = ArgCode(expr, size=arg.size)
            elif kind in (Arg.MEM, Arg.MAP_KEY, Arg.MAP_VALUE):
                code = ArgCode(self.read_arg(pc, arg), size=arg.size)  # (None: not constant)
            elif kind is Arg.MAP:
                code = ArgCode(f"M{arg.map_index}")
            else:
                assert kind is Arg.CALLBACK
                code = ArgCode(f"make_callback(st, {arg.target}, {pc}, depth)")
            impl_args.append(code.expr)
            codes.append(code)
        if spec.ret is Ret.MAP_VALUE_OR_NULL:
            return self.lookup_code(pc, call, s)
        if is_standard_loop(spec):
            return self.loop_code(codes, call[1].target)  # type: ignore[arg-type]
        direct = direct_call(spec, codes)
        if direct is not None and direct.method is None:
            return [f"r0 = {direct.constant}"]
        if direct is not None:
            expr = f"env.{direct.method}({', '.join(direct.args)})"
            u32 = direct.u32
        else:
            expr = f"IMPL{spec.id}(env{''.join(', ' + a for a in impl_args)})"
            u32 = False
        if not self.r0_live(pc):
            return [expr]
        if u32:
            return [f"r0 = {expr}"]
        # what `& MASK64` gives, with no big-int op for the usual 0 or small result
        return [f"r0 = {expr}", "if not 0 <= r0 <= 0xFFFFFFFFFFFFFFFF: r0 &= 0xFFFFFFFFFFFFFFFF"]

    def loop_code(self, codes: list[ArgCode], target: int) -> list[str]:
        """The standard ``bpf_loop`` inlined: the callback function is called directly with
        ``(i, ctx, 0, 0, 0)``, the budget checked after each call, as the helper's wrapper
        does."""
        nr, _, ctx, flags = codes
        out = []
        guard = "if"
        if flags.const != 0:
            out += [f"if {flags.expr}:", f"    r0 = {-errno.EINVAL & MASK64}"]
            guard = "elif"
        if nr.const is None or nr.const > BPF_MAX_LOOPS:
            out += [f"{guard} {nr.expr} > {BPF_MAX_LOOPS}:", f"    r0 = {-errno.E2BIG & MASK64}"]
            guard = "elif"
        body = [f"r0 = {nr.expr}",
                f"for _li in range({nr.expr}):",
                f"    _lr = F{target}(_li, {ctx.expr}, 0, 0, 0, st, depth + 1)",
                f"    if st.count > BUDGET: raise st.budget_exceeded({target})",
                "    if _lr:",
                "        r0 = _li + 1",
                "        break"]
        if guard == "if":
            return body
        return out + ["else:"] + ["    " + ln for ln in body]

    def lookup_code(self, pc: int, call: list[_CallArg], s: State) -> list[str]:
        """An inlined ``bpf_map_lookup_elem`` on a constant map.  Array map: the element
        index goes to ``ve<pc>`` (NULL when it is out of range); hash map: the value buffer to
        ``vb<pc>`` (NULL when None), mapped as a region like the interpreter does."""
        mi = call[0].map_index
        assert mi is not None
        m = self.tr.maps[mi]
        self.sites.add(pc)
        key = call[1]
        if isinstance(m, ArrayMap):
            if key.fp is not None and self.plan.cells and self.plan.covers(key.fp, 4):
                index = self.cells_value(pc, self.plan.cells_in(key.fp, 4))
            else:
                assert key.acc is not None
                index = self.load_expr(key.acc[0], key.acc[1], 4)
            out = [f"ve{pc} = {index}", f"# scaled indexes of site {pc}"]
            if self.r0_live(pc):
                base = (RID_STATIC + mi) << REGION_SHIFT
                scaled = f"ve{pc}" if m.value_size == 1 else f"ve{pc} * {m.value_size}"
                out.append(f"r0 = {base} + {scaled} if ve{pc} < {m.max_entries} else 0")
                if m.value_size != 1:
                    out[-1] = (f"r0 = {base} + {scaled_index(pc, m.value_size)} "
                               f"if ve{pc} < {m.max_entries} else 0")
                    self.scales_needed.add((pc, m.value_size))
            return out
        key_bytes = self.read_arg(pc, key)
        if type(m) is HashMap:
            out = [f"vb{pc} = H{mi}.get({key_bytes})"]
        else:
            assert isinstance(m, (LruHashMap, HashMap))
            out = [f"_f = M{mi}.bpf_lookup({key_bytes})",
                   f"vb{pc} = None if _f is None else _f[0]"]
        # every value found is mapped (as the interpreter does), so region numbers agree
        out.append(f"r0 = 0 if vb{pc} is None else addreg(vb{pc})")
        return out
