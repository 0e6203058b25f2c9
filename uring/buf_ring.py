"""Provided-buffer rings in user memory: the application adds buffers, the engine takes them.

The ring has the kernel's format (``struct io_uring_buf`` entries, the u16 tail stored in the
``resv`` field of entry 0) and lives in user memory, so the same ring works for both
backends and across processes.  The consumer's head is private to the engine, as it is to the
kernel: the application learns which buffer a completion used from the buffer ID in the CQE
flags (``IORING_CQE_F_BUFFER``, ID in the upper 16 bits) and hands it back with
:meth:`BufRing.recycle` when done.

The tail is loaded and stored as one aligned 16-bit access (a native ``memoryview`` word),
and entries are written without their ``resv`` field, so the tail in entry 0's ``resv`` is
never overwritten by an entry nor seen half-written by a consumer in another process
(``struct.pack_into`` zeroes its target before writing the value).
"""

from __future__ import annotations

import struct
import sys

from uring.abi import BUF_RING_TAIL_OFFSET, BUF_SIZE, BUF_STRUCT
from uring.user_memory import UserMemory

#: The kernel's limit on entries of one provided-buffer ring.
MAX_BUF_RING_ENTRIES = 1 << 15

_buf_unpack = BUF_STRUCT.unpack_from
#: ``struct io_uring_buf`` without ``resv`` (entry 0's ``resv`` is the ring's tail)
_buf_head_pack = struct.Struct("<QIH").pack_into


def tail_word(mem: UserMemory, ring_off: int) -> memoryview:
    """The ring's u16 tail as a one-element native view (a single aligned load or store)."""
    if sys.byteorder != "little":
        raise RuntimeError("provided-buffer rings are little-endian and their tail is accessed "
                           "as a native 16-bit word: this needs a little-endian host")
    off = ring_off + BUF_RING_TAIL_OFFSET
    return mem.view[off:off + 2].cast("H")


class BufRingError(ValueError):
    """A provided-buffer ring that cannot be used as described."""


def check_buf_ring(mem: UserMemory, ring_addr: int, entries: int) -> int:
    """Validate a ring's geometry; returns its offset in user memory."""
    if entries < 1 or entries > MAX_BUF_RING_ENTRIES or entries & (entries - 1):
        raise BufRingError(
            f"buffer ring of {entries} entries; use a power of two up to {MAX_BUF_RING_ENTRIES}"
        )
    if not mem.contains(ring_addr, entries * BUF_SIZE):
        raise BufRingError(
            f"buffer ring at {ring_addr:#x} ({entries} entries) is not inside user memory"
        )
    if ring_addr % BUF_SIZE:
        raise BufRingError(f"buffer ring at {ring_addr:#x} is not {BUF_SIZE}-byte aligned; "
                           f"allocate it with alignment {BUF_SIZE} or more")
    return mem.offset(ring_addr, entries * BUF_SIZE)


class BufRing:
    """Application side of one provided-buffer ring: add buffers, publish the tail."""

    __slots__ = ("mem", "ring_addr", "entries", "mask", "bgid", "buf_addrs", "buf_size",
                 "_ring_off", "_tail", "_tail_word")

    def __init__(self, mem: UserMemory, ring_addr: int, entries: int, bgid: int,
                 buf_addrs: list[int] | None = None, buf_size: int = 0) -> None:
        self._ring_off = check_buf_ring(mem, ring_addr, entries)
        self.mem = mem
        self.ring_addr = ring_addr
        self.entries = entries
        self.mask = entries - 1
        self.bgid = bgid
        self.buf_addrs = buf_addrs or []
        self.buf_size = buf_size
        self._tail_word = tail_word(mem, self._ring_off)
        self._tail = self._tail_word[0]

    def add(self, addr: int, length: int, bid: int) -> None:
        """Queue one buffer (not visible to the engine until :meth:`publish`)."""
        # resv is left alone: in entry 0 it is the shared tail
        _buf_head_pack(self.mem.view, self._ring_off + (self._tail & self.mask) * BUF_SIZE,
                       addr, length, bid)
        self._tail = (self._tail + 1) & 0xFFFF

    def publish(self) -> None:
        """Make every buffer added so far visible to the engine (stores the tail)."""
        self._tail_word[0] = self._tail

    def recycle(self, bid: int) -> None:
        """Hand buffer ``bid`` (of the buffers this ring was set up with) back, and publish."""
        self.add(self.buf_addrs[bid], self.buf_size, bid)
        self.publish()

    def buffer(self, bid: int) -> int:
        """User address of buffer ``bid``."""
        return self.buf_addrs[bid]

    def read(self, bid: int, length: int) -> bytes:
        return self.mem.read(self.buf_addrs[bid], length)


class BufRingConsumer:
    """Engine side of one provided-buffer ring: take the next buffer, in ring order."""

    __slots__ = ("mem", "ring_addr", "entries", "mask", "bgid", "head", "ring_off",
                 "tail_word")

    def __init__(self, mem: UserMemory, ring_addr: int, entries: int, bgid: int) -> None:
        #: offset of the ring in user memory (entry ``i`` at ``ring_off + (i & mask) * 16``)
        self.ring_off = check_buf_ring(mem, ring_addr, entries)
        #: the tail the producer publishes, as a one-element view (``tail_word[0]``)
        self.tail_word = tail_word(mem, self.ring_off)
        self.mem = mem
        self.ring_addr = ring_addr
        self.entries = entries
        self.mask = entries - 1
        self.bgid = bgid
        # private head: start where the application's tail is now (entries already published
        # before registration count as available, as in the kernel)
        self.head = 0

    def tail(self) -> int:
        return self.tail_word[0]

    def available(self) -> int:
        return (self.tail() - self.head) & 0xFFFF

    def peek(self) -> tuple[int, int, int] | None:
        """The next buffer as ``(addr, len, bid)`` without taking it; ``None`` when dry."""
        if self.tail() == self.head:
            return None
        addr, length, bid, _ = _buf_unpack(self.mem.view,
                                           self.ring_off + (self.head & self.mask) * BUF_SIZE)
        return addr, length, bid

    def entry(self, index: int) -> tuple[int, int, int]:
        """Ring entry at free-running index ``index`` as ``(addr, len, bid)``."""
        addr, length, bid, _ = _buf_unpack(self.mem.view,
                                           self.ring_off + (index & self.mask) * BUF_SIZE)
        return addr, length, bid

    def consume(self) -> None:
        """Take the buffer :meth:`peek` returned."""
        self.head = (self.head + 1) & 0xFFFF
