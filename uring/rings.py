"""The SQ ring and the CQ rings: single-producer/single-consumer queues over shared memory.

Each class is a *view*: it holds no queue state of its own, only the buffer and the offsets
:class:`~uring.ring_memory.RegionLayout` computed, so the application and the engine (in this
process or in another one mapping the same memfd) can each build their own view and still
agree.  Indices are free-running u32 counters; an entry lives at ``index & ring_mask``.

Who writes what (as in io_uring):

* SQ: the application writes SQEs and ``tail``; the engine reads them and writes ``head``.
* CQ: the engine writes CQEs and ``tail``; the consumer (the application, or a BPF program
  through ``bpf_io_uring_reap_cqe``) reads them and writes ``head``.  One consumer per CQ.

Memory ordering.  Every head and tail is loaded and stored as one aligned 32-bit access,
through a native ``memoryview`` of 32-bit words over the region's rings (``words[i]`` is a
single 4-byte ``memcpy``).  ``struct.pack_into`` is not fit for the indices: it zeroes its
target before writing the value, so a reader in another process can see a tail of 0, or a
head of 0 that makes a CQ look full (measured: a counter written with ``pack_into`` in one
process reads as 0 thousands of times per million reads in another).  Entries are written
with ``pack_into`` -- nobody reads a slot while the producer owns it -- and only then is
the new ``tail`` stored; the consumer loads ``tail`` and only then loads entries below it
(and symmetrically for ``head``, which hands slots back to the producer).  The correctness of
that hand-off rests on the CPU not reordering stores with later stores, nor loads with later
loads, as seen by the other side.  x86-64 (TSO) guarantees exactly that, which is why these
rings are correct across threads and processes there.  On weakly ordered CPUs (arm64,
POWER) the tail store needs release semantics and the tail load acquire semantics (``stlr`` /
``ldar``, or a ``dmb`` on each side); Python cannot emit those, so a port would move the
index accesses into a tiny C helper or rely on a syscall between the two sides.  Within one
process, the GIL hand-off between threads is a full barrier and hides the problem.  The
region format is little-endian, so the word views need a little-endian host.
"""

from __future__ import annotations

import mmap
import struct
import sys

from uring.abi import CQE_SIZE, CQE_STRUCT, SQE_SIZE, SQE_STRUCT
from uring.ring_memory import (
    CQ_CQES,
    CQ_FLAGS,
    CQ_HEAD,
    CQ_OVERFLOW,
    CQ_RING_ENTRIES,
    CQ_TAIL,
    SQ_DROPPED,
    SQ_FLAGS,
    SQ_HEAD,
    SQ_RING_ENTRIES,
    SQ_TAIL,
    RegionLayout,
)
from uring.user_memory import UserMemory

_U32 = struct.Struct("<I")
_u32_unpack = _U32.unpack_from
_cqe_unpack = CQE_STRUCT.unpack_from
_cqe_pack = CQE_STRUCT.pack_into
_sqe_unpack = SQE_STRUCT.unpack_from
_M32 = 0xFFFFFFFF


class SubmissionQueue:
    """View of the SQ ring: ``head``/``tail`` counters, flags and the SQE array."""

    __slots__ = ("buf", "words", "entries", "mask", "head_word", "tail_word", "_flags_word",
                 "_dropped_word", "_sqes_off")

    def __init__(self, buf: bytearray | memoryview, layout: RegionLayout,
                 words: memoryview | None = None) -> None:
        self.buf = buf
        #: the region's 32-bit words (``words[head_word]`` is the head, one aligned access)
        self.words = words if words is not None else index_words(buf, layout)
        off = layout.sq_off
        self.entries = _u32_unpack(buf, off + SQ_RING_ENTRIES)[0]
        if self.entries != layout.sq_entries:
            raise ValueError(f"SQ ring header says {self.entries} entries, layout "
                             f"{layout.sq_entries}")
        self.mask = self.entries - 1
        self.head_word = (off + SQ_HEAD) >> 2
        self.tail_word = (off + SQ_TAIL) >> 2
        self._flags_word = (off + SQ_FLAGS) >> 2
        self._dropped_word = (off + SQ_DROPPED) >> 2
        self._sqes_off = layout.sqes_off

    def head(self) -> int:
        return self.words[self.head_word]

    def tail(self) -> int:
        return self.words[self.tail_word]

    def set_head(self, value: int) -> None:
        self.words[self.head_word] = value & _M32

    def set_tail(self, value: int) -> None:
        self.words[self.tail_word] = value & _M32

    def flags(self) -> int:
        return self.words[self._flags_word]

    def set_flags(self, value: int) -> None:
        self.words[self._flags_word] = value & _M32

    def dropped(self) -> int:
        return self.words[self._dropped_word]

    def add_dropped(self, n: int) -> None:
        self.words[self._dropped_word] = (self.dropped() + n) & _M32

    def sqe_offset(self, index: int) -> int:
        """Byte offset of the SQE that ring index ``index`` refers to."""
        return self._sqes_off + (index & self.mask) * SQE_SIZE

    def read_sqe(self, index: int) -> tuple:
        """The SQE at ring index ``index`` as the :data:`~uring.abi.SQE_STRUCT` tuple."""
        return _sqe_unpack(self.buf, self._sqes_off + (index & self.mask) * SQE_SIZE)


class CompletionQueue:
    """View of one CQ ring: ``head``/``tail``, ``overflow`` (dropped CQEs), flags, CQEs."""

    __slots__ = ("buf", "words", "index", "entries", "mask", "head_word", "tail_word",
                 "_overflow_word", "_flags_word", "_cqes_off")

    def __init__(self, buf: bytearray | memoryview, layout: RegionLayout, index: int,
                 words: memoryview | None = None) -> None:
        self.buf = buf
        self.words = words if words is not None else index_words(buf, layout)
        self.index = index
        off = layout.cq_offs[index]
        self.entries = _u32_unpack(buf, off + CQ_RING_ENTRIES)[0]
        if self.entries != layout.cq_entries[index]:
            raise ValueError(f"CQ {index} ring header says {self.entries} entries, layout "
                             f"{layout.cq_entries[index]}")
        self.mask = self.entries - 1
        self.head_word = (off + CQ_HEAD) >> 2
        self.tail_word = (off + CQ_TAIL) >> 2
        self._overflow_word = (off + CQ_OVERFLOW) >> 2
        self._flags_word = (off + CQ_FLAGS) >> 2
        self._cqes_off = off + CQ_CQES

    # -- both sides ---------------------------------------------------------------------------

    def head(self) -> int:
        return self.words[self.head_word]

    def tail(self) -> int:
        return self.words[self.tail_word]

    def ready(self) -> int:
        """CQEs posted and not yet reaped."""
        words = self.words
        return (words[self.tail_word] - words[self.head_word]) & _M32

    def flags(self) -> int:
        return self.words[self._flags_word]

    def set_flags(self, value: int) -> None:
        self.words[self._flags_word] = value & _M32

    def overflow(self) -> int:
        """CQEs the producer dropped because this CQ was full."""
        return self.words[self._overflow_word]

    # -- producer (the engine) ----------------------------------------------------------------

    def push(self, user_data: int, res: int, flags: int) -> bool:
        """Append one CQE; ``False`` (and nothing written) when the CQ is full."""
        words = self.words
        tail = words[self.tail_word]
        if (tail - words[self.head_word]) & _M32 >= self.entries:
            return False
        _cqe_pack(self.buf, self._cqes_off + (tail & self.mask) * CQE_SIZE, user_data, res,
                  flags)
        words[self.tail_word] = (tail + 1) & _M32
        return True

    def count_dropped(self) -> None:
        self.words[self._overflow_word] = (self.overflow() + 1) & _M32

    # -- consumer -----------------------------------------------------------------------------

    def peek(self) -> tuple[int, int, int] | None:
        """The oldest unreaped CQE as ``(user_data, res, flags)``, left in place."""
        words = self.words
        head = words[self.head_word]
        if head == words[self.tail_word]:
            return None
        return _cqe_unpack(self.buf, self._cqes_off + (head & self.mask) * CQE_SIZE)

    def advance(self, n: int = 1) -> None:
        """Hand ``n`` reaped slots back to the producer."""
        self.words[self.head_word] = (self.head() + n) & _M32

    def pop(self) -> tuple[int, int, int] | None:
        """Reap the oldest CQE, or ``None`` when the CQ is empty."""
        words = self.words
        head = words[self.head_word]
        if head == words[self.tail_word]:
            return None
        cqe = _cqe_unpack(self.buf, self._cqes_off + (head & self.mask) * CQE_SIZE)
        words[self.head_word] = (head + 1) & _M32
        return cqe

    def pop_into(self, out: memoryview | bytearray) -> bool:
        """Reap the oldest CQE by copying its 16 bytes into ``out``; ``False`` when empty."""
        words = self.words
        head = words[self.head_word]
        if head == words[self.tail_word]:
            return False
        off = self._cqes_off + (head & self.mask) * CQE_SIZE
        out[0:CQE_SIZE] = self.buf[off:off + CQE_SIZE]
        words[self.head_word] = (head + 1) & _M32
        return True

    def pop_many(self, limit: int = 1 << 32) -> list[tuple[int, int, int]]:
        """Reap up to ``limit`` CQEs, oldest first."""
        words = self.words
        head = words[self.head_word]
        n = min((words[self.tail_word] - head) & _M32, limit)
        if not n:
            return []
        mask = self.mask
        base = self._cqes_off
        buf = self.buf
        out = [_cqe_unpack(buf, base + ((head + i) & mask) * CQE_SIZE) for i in range(n)]
        words[self.head_word] = (head + n) & _M32
        return out


def index_words(buf: bytearray | memoryview, layout: RegionLayout) -> memoryview:
    """The region's header and rings as native 32-bit words, for single-access indices."""
    if sys.byteorder != "little":
        raise RuntimeError("the ring region is little-endian and its indices are accessed as "
                           "native 32-bit words: this needs a little-endian host")
    return memoryview(buf)[:layout.user_off].cast("B").cast("I")


class RingRegion:
    """A shared region (``bytearray`` or ``mmap``) and its layout: the SQ, the CQs, user memory.

    :meth:`create` lays out a new region; :meth:`attach` opens one another party created
    (for instance a memfd received over a Unix socket), reading the layout from its header.
    """

    def __init__(self, buffer: bytearray | mmap.mmap, layout: RegionLayout) -> None:
        self.buffer = buffer
        self.layout = layout
        self.view = memoryview(buffer).cast("B")
        self.words = index_words(self.view, layout)
        self._user_memory: UserMemory | None = None

    @classmethod
    def create(cls, sq_entries: int = 256, cq_entries: tuple[int, ...] | list[int] = (512,),
               user_memory_size: int = 1 << 20,
               buffer: bytearray | mmap.mmap | None = None) -> RingRegion:
        layout = RegionLayout.compute(sq_entries, cq_entries, user_memory_size)
        if buffer is None:
            buffer = bytearray(layout.total_size)
        layout.write_header(buffer)
        return cls(buffer, layout)

    @classmethod
    def attach(cls, buffer: bytearray | mmap.mmap) -> RingRegion:
        return cls(buffer, RegionLayout.read_header(buffer))

    def sq(self) -> SubmissionQueue:
        return SubmissionQueue(self.view, self.layout, self.words)

    def cq(self, index: int) -> CompletionQueue:
        if not 0 <= index < len(self.layout.cq_entries):
            raise IndexError(f"cq_idx {index} out of range ({len(self.layout.cq_entries)} CQs)")
        return CompletionQueue(self.view, self.layout, index, self.words)

    def user_memory(self) -> UserMemory:
        """The user-memory part (one shared object per region, so pins are shared too)."""
        if self._user_memory is None:
            start = self.layout.user_off
            self._user_memory = UserMemory(
                self.view[start:start + self.layout.user_memory_size])
        return self._user_memory
