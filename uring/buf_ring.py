"""Provided-buffer rings in user memory: the application adds buffers, the engine takes them.

The ring has the kernel's format (``struct io_uring_buf`` entries, the u16 tail stored in the
``resv`` field of entry 0) and lives in user memory, so the same ring works for both
backends and across processes.  The consumer's head is private to the engine, as it is to the
kernel: the application learns which buffer a completion used from the buffer ID in the CQE
flags (``IORING_CQE_F_BUFFER``, ID in the upper 16 bits) and hands it back with
:meth:`BufRing.recycle` when done.
"""

from __future__ import annotations

import struct

from uring.abi import BUF_RING_TAIL_OFFSET, BUF_SIZE, BUF_STRUCT
from uring.user_memory import UserMemory

#: The kernel's limit on entries of one provided-buffer ring.
MAX_BUF_RING_ENTRIES = 1 << 15

_U16 = struct.Struct("<H")
_buf_unpack = BUF_STRUCT.unpack_from
_buf_pack = BUF_STRUCT.pack_into


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
    return mem.offset(ring_addr, entries * BUF_SIZE)


class BufRing:
    """Application side of one provided-buffer ring: add buffers, publish the tail."""

    __slots__ = ("mem", "ring_addr", "entries", "mask", "bgid", "buf_addrs", "buf_size",
                 "_ring_off", "_tail")

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
        self._tail = _U16.unpack_from(mem.view, self._ring_off + BUF_RING_TAIL_OFFSET)[0]

    def add(self, addr: int, length: int, bid: int) -> None:
        """Queue one buffer (not visible to the engine until :meth:`publish`)."""
        off = self._ring_off + (self._tail & self.mask) * BUF_SIZE
        # the resv field of entry 0 is the shared tail: never overwrite it with an entry
        resv = _U16.unpack_from(self.mem.view, off + BUF_RING_TAIL_OFFSET)[0]
        _buf_pack(self.mem.view, off, addr, length, bid, resv)
        self._tail = (self._tail + 1) & 0xFFFF

    def publish(self) -> None:
        """Make every buffer added so far visible to the engine (stores the tail)."""
        _U16.pack_into(self.mem.view, self._ring_off + BUF_RING_TAIL_OFFSET, self._tail)

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

    __slots__ = ("mem", "ring_addr", "entries", "mask", "bgid", "head", "_ring_off")

    def __init__(self, mem: UserMemory, ring_addr: int, entries: int, bgid: int) -> None:
        self._ring_off = check_buf_ring(mem, ring_addr, entries)
        self.mem = mem
        self.ring_addr = ring_addr
        self.entries = entries
        self.mask = entries - 1
        self.bgid = bgid
        # private head: start where the application's tail is now (entries already published
        # before registration count as available, as in the kernel)
        self.head = 0

    def tail(self) -> int:
        return _U16.unpack_from(self.mem.view, self._ring_off + BUF_RING_TAIL_OFFSET)[0]

    def available(self) -> int:
        return (self.tail() - self.head) & 0xFFFF

    def peek(self) -> tuple[int, int, int] | None:
        """The next buffer as ``(addr, len, bid)`` without taking it; ``None`` when dry."""
        if self.tail() == self.head:
            return None
        addr, length, bid, _ = _buf_unpack(self.mem.view,
                                           self._ring_off + (self.head & self.mask) * BUF_SIZE)
        return addr, length, bid

    def entry(self, index: int) -> tuple[int, int, int]:
        """Ring entry at free-running index ``index`` as ``(addr, len, bid)``."""
        addr, length, bid, _ = _buf_unpack(self.mem.view,
                                           self._ring_off + (index & self.mask) * BUF_SIZE)
        return addr, length, bid

    def consume(self) -> None:
        """Take the buffer :meth:`peek` returned."""
        self.head = (self.head + 1) & 0xFFFF
