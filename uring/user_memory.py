"""User memory: the part of the shared region that SQEs and BPF programs address by pointer.

An SQE points at its timespec, msghdr or data buffer with a *user address*; a BPF program
receives one in ``ctx.user_data``.  User addresses are ``USER_ADDR_BASE + offset`` into the
user-memory part of the region, so they mean the same thing in every process that maps the
region, wherever its mapping lands.  Address 0 and any range that is not entirely inside
user memory fault (``-EFAULT``), as a bad pointer does in the kernel.

When the kernel itself must touch user memory (the ``io_uring`` backend, or a ``sendmsg``
issued through libc), :meth:`UserMemory.real_address` translates a user address into this
process's real address of the same byte.
"""

from __future__ import annotations

import ctypes
import struct

from uring.abi import EFAULT

#: User address of the first byte of user memory.  Non-zero so that NULL faults, and above
#: 2**32 so that a pointer truncated to 32 bits faults instead of aliasing valid memory.
USER_ADDR_BASE = 0x1_0000_0000

_U64 = struct.Struct("<Q")
_TIMESPEC = struct.Struct("<qq")


class UserMemoryFault(Exception):
    """A user address range that is not inside user memory (the engine posts ``-EFAULT``)."""

    errno = EFAULT

    def __init__(self, addr: int, length: int, size: int) -> None:
        super().__init__(
            f"user address {addr:#x}+{length} is outside user memory "
            f"[{USER_ADDR_BASE:#x}, {USER_ADDR_BASE + size:#x})"
        )
        self.addr = addr
        self.length = length


class UserMemory:
    """Bounds-checked access to user memory by user address."""

    __slots__ = ("view", "size", "base", "_pin", "_real_base")

    def __init__(self, view: memoryview, base: int = USER_ADDR_BASE) -> None:
        if view.readonly:
            raise ValueError("user memory must be writable")
        self.view = view
        self.size = len(view)
        self.base = base
        self._pin: ctypes.Array | None = None
        self._real_base = 0

    # -- translation --------------------------------------------------------------------------

    def offset(self, addr: int, length: int) -> int:
        """Offset into user memory of ``[addr, addr+length)``; raises :class:`UserMemoryFault`."""
        off = addr - self.base
        if off < 0 or length < 0 or off + length > self.size:
            raise UserMemoryFault(addr, length, self.size)
        return off

    def contains(self, addr: int, length: int) -> bool:
        off = addr - self.base
        return off >= 0 and length >= 0 and off + length <= self.size

    def address_of(self, offset: int) -> int:
        """User address of byte ``offset`` of user memory."""
        if not 0 <= offset <= self.size:
            raise ValueError(f"offset {offset} outside user memory of {self.size} bytes")
        return self.base + offset

    def real_address(self, addr: int, length: int = 0) -> int:
        """This process's real address of user address ``addr`` (range-checked).

        The first call pins the buffer (a ctypes view of it), so it can no longer be resized
        or released until :meth:`release`.
        """
        off = self.offset(addr, length)
        if self._pin is None:
            self._pin = (ctypes.c_char * self.size).from_buffer(self.view)
            self._real_base = ctypes.addressof(self._pin)
        return self._real_base + off

    @property
    def real_base(self) -> int:
        """Real address of user address ``base`` (pins the buffer, see :meth:`real_address`)."""
        if self._pin is None:
            self.real_address(self.base, 0)
        return self._real_base

    def release(self) -> None:
        """Drop the pin taken by :meth:`real_address` (call only once the kernel is done)."""
        self._pin = None
        self._real_base = 0

    # -- access -------------------------------------------------------------------------------

    def read(self, addr: int, length: int) -> bytes:
        off = self.offset(addr, length)
        return bytes(self.view[off:off + length])

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        off = self.offset(addr, n)
        self.view[off:off + n] = data

    def view_at(self, addr: int, length: int) -> memoryview:
        """A writable window on ``[addr, addr+length)`` (no copy)."""
        off = self.offset(addr, length)
        return self.view[off:off + length]

    def read_u64(self, addr: int) -> int:
        return _U64.unpack_from(self.view, self.offset(addr, 8))[0]

    def write_u64(self, addr: int, value: int) -> None:
        _U64.pack_into(self.view, self.offset(addr, 8), value)

    def read_timespec(self, addr: int) -> tuple[int, int]:
        """``struct __kernel_timespec`` at ``addr`` as ``(tv_sec, tv_nsec)``."""
        return _TIMESPEC.unpack_from(self.view, self.offset(addr, 16))

    def write_timespec(self, addr: int, seconds: float) -> None:
        """Store ``seconds`` (non-negative) as a ``__kernel_timespec`` at ``addr``."""
        ns = round(seconds * 1_000_000_000)
        _TIMESPEC.pack_into(self.view, self.offset(addr, 16), ns // 1_000_000_000,
                            ns % 1_000_000_000)
