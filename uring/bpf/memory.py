"""The sandbox's address space: regions, pointer encoding and checked access.

A program never sees a host address.  Every pointer it holds is a 64-bit value
``(region << 32) | offset``: the region number picks an entry of the run's region table
(the context, a stack frame, a map's storage, ...), the offset is a byte offset inside it.
Arithmetic on pointers is plain integer arithmetic, comparisons with NULL work (region 0 is
never mapped), and an offset that runs off either end of a region decodes to an offset
outside it (or to a neighbouring region number at an offset beyond 4 GiB), which every
access rejects.

Each access is checked against the *element* it points into, not only the region: an array
map is one region, but a pointer into element ``i`` can only reach element ``i``'s bytes.

The interpreter decodes every access through :func:`load` / :func:`store`; the translator
does so only where it cannot prove statically which region a register points into (see
``docs/bpf-runtime.md``).  Both raise the same errors, so both execution paths fail at the
same instruction with the same message.
"""

from __future__ import annotations

import errno
import struct

from uring.bpf.isa import MAX_CALL_FRAMES, STACK_SIZE
from uring.program import BpfRunError

REGION_SHIFT = 32
OFFSET_MASK = (1 << REGION_SHIFT) - 1

#: Region numbers with a fixed meaning.  Regions 1 and 2 hold no memory: their "offset" is a
#: map index or an instruction index, so a map handle or a function can be passed around and
#: compared but never dereferenced.
RID_NULL = 0
RID_MAP_HANDLE = 1
RID_FUNCTION = 2
RID_CTX = 3
RID_STACK = 4  # frame d uses region RID_STACK + d
RID_STATIC = RID_STACK + MAX_CALL_FRAMES  # maps of the object, in object order

MAP_HANDLE_BASE = RID_MAP_HANDLE << REGION_SHIFT
FUNCTION_BASE = RID_FUNCTION << REGION_SHIFT
CTX_BASE = RID_CTX << REGION_SHIFT


def stack_base(depth: int) -> int:
    """Address of the lowest byte of frame ``depth``'s stack (R10 is this + STACK_SIZE)."""
    return (RID_STACK + depth) << REGION_SHIFT


#: One region: (buffer, element size, writable).
Region = tuple[bytearray, int, bool]

_PACK = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"),
         8: struct.Struct("<Q")}
_UNPACK_FROM = {n: s.unpack_from for n, s in _PACK.items()}
_PACK_INTO = {n: s.pack_into for n, s in _PACK.items()}


class RunState:
    """Everything one run needs besides registers: regions, the engine, the budget.

    ``regions`` starts as a copy of the object's static regions (maps and globals), gets the
    context and stack frames, and grows when a hash-map lookup hands out a new value.
    ``count`` is the number of instructions executed so far (all frames); it is compared
    with ``budget`` at every taken backward jump and after every ``bpf_loop`` iteration.
    """

    __slots__ = ("program", "regions", "env", "ctx", "count", "budget", "region_names")

    def __init__(self, program: str, static_regions: list, region_names: list[str],
                 ctx: bytearray, env: object, budget: int) -> None:
        self.program = program
        self.regions: list = static_regions.copy()
        self.regions[RID_CTX] = (ctx, len(ctx), True)
        self.region_names = region_names
        self.env = env
        self.ctx = ctx
        self.count = 0
        self.budget = budget

    # -- errors -------------------------------------------------------------------------------

    def describe(self, addr: int) -> str:
        rid, off = addr >> REGION_SHIFT, addr & OFFSET_MASK
        if rid == RID_NULL:
            return f"NULL+{off}" if off else "NULL"
        if rid == RID_MAP_HANDLE:
            return f"map handle #{off}"
        if rid == RID_FUNCTION:
            return f"function at insn {off}"
        if rid == RID_CTX:
            return f"ctx+{off}"
        if RID_STACK <= rid < RID_STATIC:
            return f"stack(frame {rid - RID_STACK})+{off - STACK_SIZE}"
        if rid < len(self.region_names):
            return f"{self.region_names[rid]}+{off}"
        if rid < len(self.regions):
            return f"map value #{rid}+{off}"
        return f"{addr:#x} (unmapped)"

    def fault(self, pc: int, addr: int, size: int, write: bool, why: str = "") -> BpfRunError:
        kind = "write" if write else "read"
        region = self.region_at(addr)
        if not why:
            if region is None:
                why = "no memory there"
            elif write and not region[2]:
                why = "region is read-only"
            else:
                why = f"outside the {region[1]}-byte object"
        return BpfRunError(
            f"program {self.program!r}: insn {pc}: invalid {kind} of {size} bytes at "
            f"{self.describe(addr)} ({why})",
            errno.EFAULT,
        )

    def budget_exceeded(self, pc: int) -> BpfRunError:
        return BpfRunError(
            f"program {self.program!r}: insn {pc}: instruction budget of {self.budget} "
            f"exceeded ({self.count} executed; a runaway loop?)",
            errno.ELOOP,
        )

    def misuse(self, pc: int, message: str, code: int = errno.EINVAL) -> BpfRunError:
        return BpfRunError(f"program {self.program!r}: insn {pc}: {message}", code)

    # -- decoding -------------------------------------------------------------------------------

    def region_at(self, addr: int) -> Region | None:
        rid = addr >> REGION_SHIFT
        if rid < len(self.regions):
            return self.regions[rid]
        return None

    def locate(self, pc: int, addr: int, size: int, write: bool) -> tuple[bytearray, int]:
        """(buffer, offset) of a checked access of ``size`` bytes at ``addr``."""
        rid = addr >> REGION_SHIFT
        regions = self.regions
        if rid < len(regions):
            region = regions[rid]
            if region is not None:
                buf, es, writable = region
                off = addr & OFFSET_MASK
                if off + size <= len(buf) and off % es + size <= es and (writable or not write):
                    return buf, off
        raise self.fault(pc, addr, size, write)

    def load(self, pc: int, addr: int, size: int) -> int:
        buf, off = self.locate(pc, addr, size, False)
        return _UNPACK_FROM[size](buf, off)[0]

    def store(self, pc: int, addr: int, size: int, value: int) -> None:
        buf, off = self.locate(pc, addr, size, True)
        _PACK_INTO[size](buf, off, value & ((1 << (size * 8)) - 1))

    def read_bytes(self, pc: int, addr: int, size: int) -> bytes:
        if size == 0:
            return b""
        if size > OFFSET_MASK:
            raise self.fault(pc, addr, size, False, "size too large")
        buf, off = self.locate(pc, addr, size, False)
        return bytes(buf[off:off + size])

    def write_view(self, pc: int, addr: int, size: int) -> memoryview:
        if size == 0:
            return memoryview(bytearray(0))
        if size > OFFSET_MASK:
            raise self.fault(pc, addr, size, True, "size too large")
        buf, off = self.locate(pc, addr, size, True)
        return memoryview(buf)[off:off + size]

    def add_region(self, buf: bytearray) -> int:
        """Map a hash-map value for the rest of this run; returns its address."""
        self.regions.append((buf, len(buf), True))
        return (len(self.regions) - 1) << REGION_SHIFT


def static_regions(maps: list) -> tuple[list, list[str]]:
    """The region table every run of an object starts from, and region names for errors.

    Array maps (globals included) are mapped once, at ``RID_STATIC + map index``; hash maps
    get their slot too but no memory (their values are mapped per lookup).
    """
    regions: list = [None] * RID_STATIC
    names = ["NULL", "map handle", "function", "ctx"] + [
        f"stack(frame {d})" for d in range(MAX_CALL_FRAMES)]
    for m in maps:
        data = getattr(m, "data", None)
        if data is not None:
            regions.append((data, m.value_size, not m.frozen))
        else:
            regions.append(None)
        names.append(f"map {m.name} value")
    return regions, names
