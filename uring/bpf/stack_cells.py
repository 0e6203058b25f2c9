"""Stack bytes kept in Python locals ("cells") by the translator, and when the buffer catches up.

A frame's 512-byte stack is a ``bytearray`` that the sandbox's checked routines, helpers and
other frames can reach.  Most of what a program does with it, though, is spill registers and
fill structs field by field at constant offsets from R10 -- and an ``unpack_from`` on the
buffer costs ~60 ns where a local costs ~5 ns.  So the translator keeps such bytes in locals
and treats the buffer as a copy that is only brought up to date where something could look
at it:

* a **cell** is a run of promoted bytes of 1, 2, 4 or 8 bytes, naturally aligned; every
  direct access (a load or store at a constant R10 offset, known at translation time) covers
  whole cells, so a load is a local (or an ``|`` of a few) and a store an assignment;
* a helper that *reads* stack memory gets ``struct.pack`` of the cells when they cover its
  range, otherwise the covered cells are **flushed** (written into the buffer) first;
* before anything that may read the buffer through a pointer the analysis cannot place
  (a generic checked load, a helper call on the slow path, a callee or callback that does
  such loads, a stale-frame read after a subprogram returned) the **dirty** cells -- written
  since the last flush -- are flushed; after anything that may write it, the cells are
  **reloaded** from the buffer;
* a forward pass knows cells that hold a constant (the stack starts zeroed), so reads use the
  literal, and a backward liveness pass drops stores no read can observe.

The translator describes what every instruction does to its frame's stack
(:class:`StackEffect`); :class:`StackPlan` picks the cells and answers, per instruction, what
to flush, what to reload, which cells are constant and which stores are dead.  A frame whose
stack is indexed with a variable offset, or written through a pointer the analysis cannot
place, is used as memory rather than as variables: nothing is promoted there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from uring.bpf.isa import STACK_SIZE

#: Cell sizes, largest first; a cell is aligned to its size.
CELL_SIZES = (8, 4, 2, 1)
#: ``struct`` format letter of a cell size (standard sizes, little endian with ``<``).
CELL_FORMAT = {1: "B", 2: "H", 4: "I", 8: "Q"}

Range = tuple[int, int]  # (offset from R10, size in bytes)


@dataclass
class StackEffect:
    """What one instruction does to its own frame's stack, as the translator emits it."""

    #: direct loads at a constant R10 offset that are in bounds
    loads: list[Range] = field(default_factory=list)
    #: direct stores at a constant R10 offset that are in bounds: (offset, size, value if it
    #: is the same on every run, else None)
    stores: list[tuple[int, int, int | None]] = field(default_factory=list)
    #: direct accesses that must work on the buffer itself (atomics)
    pinned: list[Range] = field(default_factory=list)
    #: ranges a helper reads / writes through a pointer placed in this frame (a helper
    #: that reads a range cells cover whole gets them packed, with no flush)
    reads: list[Range] = field(default_factory=list)
    writes: list[Range] = field(default_factory=list)
    #: ranges read from the buffer itself (a load or a helper argument at a variable offset
    #: or of a variable size): the cells there are flushed first
    flushes: list[Range] = field(default_factory=list)
    #: may read / write any stack byte through a pointer the analysis cannot place
    reads_any: bool = False
    writes_any: bool = False
    #: an access to this frame at an offset that is not constant, or a store through a
    #: pointer the analysis cannot place: the frame is used as memory, nothing is promoted
    memory_like: bool = False
    #: the function returns here
    exits: bool = False
    #: a guarded access: its slow path (taken only when the pointer left its region) may
    #: read any stack byte, so the dirty cells count as read here -- the translator writes
    #: them back on that path itself
    guarded: bool = False


def _mask(size: int) -> int:
    return (1 << (8 * size)) - 1


class StackPlan:
    """The cells of one function's frame and, per instruction, what keeps them coherent.

    ``pcs`` are the function's reachable instructions, ``successors(pc)`` their control-flow
    successors, ``effects`` what each does to the stack.  ``flush_at_exit`` says whether the
    frame's buffer can be looked at after the function returns (a stale frame read through a
    pointer, or the final stack a debug run reports).
    """

    def __init__(self, start: int, pcs: list[int], successors: Callable[[int], list[int]],
                 effects: dict[int, StackEffect], *, flush_at_exit: bool) -> None:
        self.start = start
        self.pcs = pcs
        self.successors = successors
        self.effects = effects
        self.flush_at_exit = flush_at_exit
        #: cells in address order: (offset from R10, size)
        self.cells: list[Range] = []
        self._cell_at: dict[int, int] = {}
        self._promoted: set[int] = set()
        self.const_in: dict[int, tuple[int | None, ...]] = {}
        self.flush: dict[int, int] = {}  # pc -> bit set of cells to write back before it
        self.dirty_in: dict[int, int] = {}  # pc -> cells whose local may differ from the buffer
        self.reload: dict[int, int] = {}  # pc -> bit set of cells to read back after it
        self.live_out: dict[int, int] = {}
        #: cells whose local may be read before anything assigned it (they start at 0)
        self.needs_init = 0
        if any(e.memory_like for e in effects.values()):
            return
        self._choose_cells()
        if self.cells:
            self._constants()
            self._dirty()
            self._liveness()
            self._first_reads()

    # -- choosing cells ------------------------------------------------------------------------

    def _choose_cells(self) -> None:
        direct: list[Range] = []
        boundaries: set[int] = set()
        pinned: set[int] = set()
        for e in self.effects.values():
            direct += e.loads
            direct += [(o, n) for o, n, _ in e.stores]
            for o, n in e.pinned:
                pinned.update(range(o, o + n))
            for o, n in (*e.reads, *e.writes, *e.flushes):
                boundaries.update((o, o + n))
        promoted = set()
        for o, n in direct:
            promoted.update(range(o, o + n))
        promoted -= pinned
        changed = True
        while changed:  # an access that is only partly promoted stays in the buffer entirely
            changed = False
            for o, n in direct:
                inside = [b in promoted for b in range(o, o + n)]
                if any(inside) and not all(inside):
                    promoted.difference_update(range(o, o + n))
                    changed = True
        for o, n in direct:
            if o in promoted:
                boundaries.update((o, o + n))
        self._promoted = promoted
        off = -STACK_SIZE
        while off < 0:
            if off not in promoted:
                off += 1
                continue
            end = off
            while end < 0 and end in promoted and (end == off or end not in boundaries):
                end += 1
            self._split(off, end)
            off = end

    def _split(self, start: int, end: int) -> None:
        """Cut [start, end) into naturally aligned cells of 8, 4, 2 or 1 bytes."""
        while start < end:
            for size in CELL_SIZES:
                if start % size == 0 and start + size <= end:
                    break
            self._cell_at[start] = len(self.cells)
            self.cells.append((start, size))
            start += size

    # -- queries -------------------------------------------------------------------------------

    def cells_for(self, off: int, size: int) -> list[int] | None:
        """Cells covering a direct access exactly, in address order, or None when the bytes
        stay in the buffer."""
        if off not in self._promoted:
            return None
        out = []
        pos = off
        while pos < off + size:
            c = self._cell_at[pos]
            out.append(c)
            pos += self.cells[c][1]
        return out

    def cells_in(self, off: int, size: int) -> list[int]:
        """Cells inside the range [off, off + size) (helper ranges start and end on cell
        boundaries)."""
        return [i for i, (o, _) in enumerate(self.cells) if off <= o < off + size]

    def covers(self, off: int, size: int) -> bool:
        """Whether cells hold every byte of the range (a helper can get them packed)."""
        return all(b in self._promoted for b in range(off, off + size))

    def constant(self, pc: int, cell: int) -> int | None:
        return self.const_in[pc][cell]

    def store_live(self, pc: int, cell: int) -> bool:
        return bool(self.live_out[pc] >> cell & 1)

    @staticmethod
    def bits(cells: Iterable[int]) -> int:
        out = 0
        for c in cells:
            out |= 1 << c
        return out

    def members(self, bits: int) -> list[int]:
        return [c for c in range(len(self.cells)) if bits >> c & 1]

    # -- data flow -----------------------------------------------------------------------------

    def _forward(self, entry: object, transfer: Callable[[int, object], object],
                 join: Callable[[object, object], object]) -> dict[int, object]:
        state_in: dict[int, object] = {self.start: entry}
        work = [self.start]
        while work:
            pc = work.pop()
            out = transfer(pc, state_in[pc])
            for nxt in self.successors(pc):
                old = state_in.get(nxt)
                new = out if old is None else join(old, out)
                if old is None or new != old:
                    state_in[nxt] = new
                    work.append(nxt)
        return state_in

    def _const_transfer(self, pc: int, state: object) -> object:
        values = list(state)  # type: ignore[call-overload]
        e = self.effects.get(pc)
        if e is None:
            return state
        for off, size, value in e.stores:
            cells = self.cells_for(off, size)
            if cells is None:
                continue
            for c in cells:
                o, n = self.cells[c]
                values[c] = None if value is None else value >> (8 * (o - off)) & _mask(n)
        for c in self._reloaded(e):
            values[c] = None
        return tuple(values)

    def _constants(self) -> None:
        def join(a: object, b: object) -> object:
            return tuple(x if x == y else None for x, y in zip(a, b, strict=True))  # type: ignore

        entry = tuple(0 for _ in self.cells)  # each frame's stack starts zeroed
        self.const_in = self._forward(entry, self._const_transfer, join)  # type: ignore

    def _reloaded(self, e: StackEffect) -> list[int]:
        if e.writes_any:
            return list(range(len(self.cells)))
        out: list[int] = []
        for o, n in e.writes:
            out += self.cells_in(o, n)
        return out

    def _needs_flush(self, e: StackEffect) -> int:
        if e.reads_any or e.writes_any or (e.exits and self.flush_at_exit):
            return (1 << len(self.cells)) - 1
        need = 0
        for o, n in e.reads:
            if not self.covers(o, n):
                need |= self.bits(self.cells_in(o, n))
        for o, n in (*e.writes, *e.flushes):
            need |= self.bits(self.cells_in(o, n))
        return need

    def _dirty(self) -> None:
        """Per cell: may the local differ from the buffer, and what the buffer holds if it
        is known (both start as "equal, zero"); a store of the value the buffer already
        holds leaves the cell clean."""
        Cell = tuple[bool, int | None]  # (dirty, buffer value if known)

        def transfer(pc: int, state: object) -> object:
            cells: list[Cell] = list(state)  # type: ignore[call-overload]
            e = self.effects.get(pc)
            if e is None:
                return state
            flush = self._flush_of(e, cells)
            consts = self.const_in[pc]
            for c in self.members(flush):
                cells[c] = (False, consts[c])
            for off, size, value in e.stores:
                for c in self.cells_for(off, size) or ():
                    o, n = self.cells[c]
                    v = None if value is None else value >> (8 * (o - off)) & _mask(n)
                    buf = cells[c][1]
                    cells[c] = (v is None or v != buf, buf)
            for c in self._reloaded(e):
                cells[c] = (False, None)
            return tuple(cells)

        def join(a: object, b: object) -> object:
            return tuple((x[0] or y[0], x[1] if x[1] == y[1] else None)
                         for x, y in zip(a, b, strict=True))  # type: ignore[call-overload]

        entry = tuple((False, 0) for _ in self.cells)
        state_in = self._forward(entry, transfer, join)
        for pc, state in state_in.items():
            self.dirty_in[pc] = self.bits(c for c, (dirty, _) in enumerate(state) if dirty)  # type: ignore
            e = self.effects.get(pc)
            if e is None:
                continue
            flush = self._flush_of(e, state)  # type: ignore[arg-type]
            if flush:
                self.flush[pc] = flush
            reload = self.bits(self._reloaded(e))
            if reload:
                self.reload[pc] = reload

    def _flush_of(self, e: StackEffect, cells: list | tuple) -> int:
        need = self._needs_flush(e)
        return self.bits(c for c in self.members(need) if cells[c][0])

    def _reads_locals(self, pc: int) -> int:
        """Cells whose local is read at ``pc`` (constant cells are read as literals)."""
        e = self.effects.get(pc)
        if e is None:
            return 0
        reads = self.flush.get(pc, 0)
        for off, size in e.loads:
            reads |= self.bits(self.cells_for(off, size) or ())
        for o, n in e.reads:
            if self.covers(o, n):
                reads |= self.bits(self.cells_in(o, n))
        if e.guarded:  # what its slow path writes back
            reads |= self.dirty_in.get(pc, 0)
        consts = self.const_in.get(pc)
        if consts is not None:
            for c in self.members(reads):
                if consts[c] is not None:
                    reads &= ~(1 << c)
        return reads

    def _liveness(self) -> None:
        live_in = dict.fromkeys(self.pcs, 0)
        reached = [pc for pc in self.pcs if pc in self.const_in]
        changed = True
        while changed:
            changed = False
            for pc in reversed(reached):
                out = 0
                for nxt in self.successors(pc):
                    out |= live_in.get(nxt, 0)
                self.live_out[pc] = out
                e = self.effects.get(pc)
                live = out
                if e is not None:
                    live &= ~self.reload.get(pc, 0)
                    for off, size, _ in e.stores:
                        live &= ~self.bits(self.cells_for(off, size) or ())
                    live |= self._reads_locals(pc)
                if live != live_in[pc]:
                    live_in[pc] = live
                    changed = True

    def _first_reads(self) -> None:
        """Which cells' locals may be read on some path before any store or reload assigns
        them (only those need the initial zero; a read of a cell still known to be zero
        uses the literal)."""
        everything = (1 << len(self.cells)) - 1

        def transfer(pc: int, assigned: object) -> object:
            e = self.effects.get(pc)
            if e is None:
                return assigned
            out = assigned | self.reload.get(pc, 0)  # type: ignore[operator]
            for off, size, _ in e.stores:
                out |= self.bits(self.cells_for(off, size) or ())
            return out

        assigned_in = self._forward(0, transfer, lambda a, b: a & b)  # type: ignore
        for pc, assigned in assigned_in.items():
            if pc in self.const_in:
                self.needs_init |= self._reads_locals(pc) & ~assigned & everything  # type: ignore
