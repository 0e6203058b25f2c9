"""Where everything lives in the shared region: header, SQ ring, SQE array, CQ rings, user memory.

One contiguous buffer holds every piece of state that the application and the engine share,
so the same layout works for a ``bytearray`` in one process and for an ``mmap`` of a memfd
that a separate engine process maps (possibly at another address).  The region starts with a
small self-describing header; :meth:`RegionLayout.read_header` recovers the whole layout from
it, so a process that only receives the memory can find the rings.

Layout (every part 64-byte aligned, user memory page aligned)::

    0        header   magic, version, sizes of the SQ, of each CQ and of user memory
    sq_off   SQ ring  head, tail, ring_mask, ring_entries, flags, dropped
    sqes_off SQE array (sq_entries x 64 bytes)
    cq_offs  one CQ ring per completion queue: header (head, tail, ring_mask, ring_entries,
             overflow, flags) then its CQE array (entries x 16 bytes)
    user_off user memory (what SQEs and programs address by pointer)

Unlike the kernel's ring, the SQ has no index array: SQE ``i`` of the ring is slot
``i & ring_mask`` (the kernel's ``IORING_SETUP_NO_SQARRAY`` arrangement).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

from uring.abi import CQE_SIZE, IORING_CQ_EVENTFD_DISABLED, SQE_SIZE

#: First eight bytes of every region; the version follows it.
REGION_MAGIC = b"QORING\x00\x01"
REGION_VERSION = 1
#: Completion queues a region may carry (CQ 0 plus fifteen extra ones).
MAX_CQS = 16
#: Largest SQ or CQ (the kernel's limits are 32768 SQ and 65536 CQ entries).
MAX_RING_ENTRIES = 1 << 16

_ALIGN = 64
_PAGE = mmap.PAGESIZE

# magic, version, sq_entries, n_cqs, user_memory_size, total_size, cq_entries[MAX_CQS]
_HEADER = struct.Struct(f"<8sIIIxxxxQQ{MAX_CQS}I")

#: Byte offsets inside the SQ ring header.
SQ_HEAD = 0
SQ_TAIL = 4
SQ_RING_MASK = 8
SQ_RING_ENTRIES = 12
SQ_FLAGS = 16
SQ_DROPPED = 20
SQ_HEADER_SIZE = _ALIGN

#: Byte offsets inside each CQ ring header; the CQE array starts at ``CQ_CQES``.
CQ_HEAD = 0
CQ_TAIL = 4
CQ_RING_MASK = 8
CQ_RING_ENTRIES = 12
CQ_OVERFLOW = 16
CQ_FLAGS = 20
CQ_CQES = _ALIGN


class RegionLayoutError(ValueError):
    """The requested sizes are unusable, or a buffer does not hold a valid region."""


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _check_entries(what: str, entries: int) -> None:
    if entries < 1 or entries > MAX_RING_ENTRIES or entries & (entries - 1):
        raise RegionLayoutError(
            f"{what} has {entries} entries; use a power of two between 1 and {MAX_RING_ENTRIES}"
        )


@dataclass(frozen=True, slots=True)
class RegionLayout:
    """Sizes and byte offsets of every part of a shared ring region."""

    sq_entries: int
    cq_entries: tuple[int, ...]
    user_memory_size: int
    sq_off: int
    sqes_off: int
    cq_offs: tuple[int, ...]
    user_off: int
    total_size: int

    @classmethod
    def compute(
        cls, sq_entries: int, cq_entries: tuple[int, ...] | list[int], user_memory_size: int
    ) -> RegionLayout:
        """Lay out a region for an SQ of ``sq_entries``, one CQ per ``cq_entries`` item and
        ``user_memory_size`` bytes of user memory."""
        cq_entries = tuple(cq_entries)
        _check_entries("the SQ", sq_entries)
        if not 1 <= len(cq_entries) <= MAX_CQS:
            raise RegionLayoutError(
                f"{len(cq_entries)} CQs requested; a region carries 1 to {MAX_CQS}"
            )
        for idx, entries in enumerate(cq_entries):
            _check_entries(f"CQ {idx}", entries)
        if user_memory_size < 0:
            raise RegionLayoutError(f"user memory size {user_memory_size} is negative")
        offset = _align(_HEADER.size, _ALIGN)
        sq_off = offset
        sqes_off = sq_off + SQ_HEADER_SIZE
        offset = _align(sqes_off + sq_entries * SQE_SIZE, _ALIGN)
        cq_offs = []
        for entries in cq_entries:
            cq_offs.append(offset)
            offset = _align(offset + CQ_CQES + entries * CQE_SIZE, _ALIGN)
        user_off = _align(offset, _PAGE)
        total = _align(user_off + user_memory_size, _PAGE)
        return cls(
            sq_entries, cq_entries, user_memory_size, sq_off, sqes_off, tuple(cq_offs), user_off,
            total,
        )

    def write_header(self, buf: bytearray | memoryview | mmap.mmap) -> None:
        """Write the header and the constant ring fields (masks and sizes) into ``buf``."""
        if len(buf) < self.total_size:
            raise RegionLayoutError(
                f"buffer of {len(buf)} bytes is smaller than the region ({self.total_size} bytes)"
            )
        cqs = list(self.cq_entries) + [0] * (MAX_CQS - len(self.cq_entries))
        _HEADER.pack_into(
            buf, 0, REGION_MAGIC, REGION_VERSION, self.sq_entries, len(self.cq_entries),
            self.user_memory_size, self.total_size, *cqs,
        )
        struct.pack_into(
            "<IIIIII", buf, self.sq_off, 0, 0, self.sq_entries - 1, self.sq_entries, 0, 0
        )
        # CQ eventfd notifications start disabled: whoever waits on a CQ's eventfd enables them
        for off, entries in zip(self.cq_offs, self.cq_entries, strict=True):
            struct.pack_into("<IIIIII", buf, off, 0, 0, entries - 1, entries, 0,
                             IORING_CQ_EVENTFD_DISABLED)

    @classmethod
    def read_header(cls, buf: bytes | bytearray | memoryview | mmap.mmap) -> RegionLayout:
        """Recover the layout of a region another party created in ``buf``."""
        if len(buf) < _HEADER.size:
            raise RegionLayoutError(f"buffer of {len(buf)} bytes is too small for a ring region")
        magic, version, sq_entries, n_cqs, user_size, total, *cqs = _HEADER.unpack_from(buf, 0)
        if magic != REGION_MAGIC:
            raise RegionLayoutError(f"not a ring region (magic {magic!r})")
        if version != REGION_VERSION:
            raise RegionLayoutError(
                f"ring region version {version}, this code reads version {REGION_VERSION}"
            )
        if not 1 <= n_cqs <= MAX_CQS:
            raise RegionLayoutError(f"ring region header claims {n_cqs} CQs")
        layout = cls.compute(sq_entries, tuple(cqs[:n_cqs]), user_size)
        if layout.total_size != total or len(buf) < total:
            raise RegionLayoutError(
                f"ring region header says {total} bytes, layout needs {layout.total_size}, "
                f"buffer has {len(buf)}"
            )
        return layout
