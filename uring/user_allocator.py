"""Carving user memory into pieces: the application's allocator for timespecs, msghdrs, buffers.

Only the application allocates; the engine never does, it just follows pointers.  The
allocator's bookkeeping therefore lives in the application's process and never in the shared
region.  First fit over a sorted free list with coalescing: allocation happens at setup and
park/resume time, not per datagram, so simplicity beats speed here.
"""

from __future__ import annotations

import bisect

from uring.user_memory import UserMemory


class UserMemoryExhausted(MemoryError):
    """No free range of user memory is large enough; create the region with more user memory."""


class UserAllocator:
    """First-fit allocator over one :class:`~uring.user_memory.UserMemory`."""

    def __init__(self, memory: UserMemory, reserved: int = 0) -> None:
        self.memory = memory
        # sorted, non-overlapping, non-adjacent free ranges as parallel lists (start, length)
        self._starts: list[int] = [reserved] if memory.size > reserved else []
        self._lengths: list[int] = [memory.size - reserved] if memory.size > reserved else []
        self._allocated: dict[int, int] = {}

    @property
    def free_bytes(self) -> int:
        return sum(self._lengths)

    def alloc(self, size: int, align: int = 16, *, zero: bool = True) -> int:
        """Reserve ``size`` bytes aligned to ``align``; returns their user address."""
        if size <= 0:
            raise ValueError(f"allocation size {size} must be positive")
        if align <= 0 or align & (align - 1):
            raise ValueError(f"alignment {align} must be a power of two")
        for i, (start, length) in enumerate(zip(self._starts, self._lengths, strict=True)):
            aligned = (start + align - 1) & ~(align - 1)
            pad = aligned - start
            if pad + size > length:
                continue
            del self._starts[i], self._lengths[i]
            end = start + length
            if pad:
                self._insert(start, pad)
            if aligned + size < end:
                self._insert(aligned + size, end - aligned - size)
            self._allocated[aligned] = size
            if zero:
                self.memory.view[aligned:aligned + size] = bytes(size)
            return self.memory.address_of(aligned)
        raise UserMemoryExhausted(
            f"no free range of {size} bytes (align {align}) in user memory of "
            f"{self.memory.size} bytes ({self.free_bytes} free); create the ring with more "
            f"user memory"
        )

    def free(self, addr: int) -> None:
        """Return an allocation made by :meth:`alloc`."""
        off = addr - self.memory.base
        size = self._allocated.pop(off, None)
        if size is None:
            raise ValueError(f"user address {addr:#x} was not allocated here (or freed twice)")
        self._insert(off, size)

    def _insert(self, start: int, length: int) -> None:
        i = bisect.bisect_left(self._starts, start)
        # merge with the following range
        if i < len(self._starts) and start + length == self._starts[i]:
            length += self._lengths[i]
            del self._starts[i], self._lengths[i]
        # merge with the preceding range
        if i > 0 and self._starts[i - 1] + self._lengths[i - 1] == start:
            self._lengths[i - 1] += length
            return
        self._starts.insert(i, start)
        self._lengths.insert(i, length)
