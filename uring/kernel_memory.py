"""Engine-owned copies of the structs the kernel reads, with real pointers into user memory.

The application's msghdr holds user addresses, which mean nothing to the kernel.  Before a
``sendmsg``/``recvmsg`` (issued through libc by the portable backend, or as an SQE by the
io_uring backend) the engine builds a kernel-facing msghdr and iovec array here whose pointers
are this process's real addresses of the same user-memory bytes, so data moves directly
between the socket and user memory.  These copies live in engine memory, never in the shared
region, and stay allocated until the request's final completion (for multishot: the CQE
without ``IORING_CQE_F_MORE``) because the kernel may read them until then.

:class:`KernelArena` hands out fixed-size slots from a few large ctypes buffers so the hot
path does not allocate; a msghdr with more iovecs than fit a slot gets a buffer of its own.

:class:`InlineSendMsgs` serves sends that complete inside the call that issues them (a
``sendmsg`` that succeeds at once): the kernel has stopped reading the copy when the call
returns, so one copy per user msghdr is kept and reused for as long as the user's msghdr and
its iovec hold the same values -- checked on every send with one ``unpack_from``.
"""

from __future__ import annotations

import ctypes
import struct

from uring.abi import (
    EFAULT,
    EMSGSIZE,
    IOVEC_SIZE,
    MSGHDR_OFF_CONTROLLEN,
    MSGHDR_OFF_FLAGS,
    MSGHDR_OFF_NAMELEN,
    MSGHDR_SIZE,
    MSGHDR_STRUCT,
)
from uring.user_memory import UserMemory

#: Bytes per arena slot: a msghdr plus twelve iovecs.
SLOT_SIZE = 256
SLOT_IOVECS = (SLOT_SIZE - MSGHDR_SIZE) // IOVEC_SIZE
_SLOTS_PER_CHUNK = 1024
#: The kernel's limit on iovecs per msghdr (UIO_MAXIOV).
UIO_MAXIOV = 1024

_msghdr_unpack = MSGHDR_STRUCT.unpack_from
_msghdr_pack = MSGHDR_STRUCT.pack_into
#: a msghdr directly followed by its single iovec, packed in one call
MSGHDR_IOV1_STRUCT = _MSGHDR_IOV1 = struct.Struct(MSGHDR_STRUCT.format + "QQ")
_msghdr_iov1_pack = _MSGHDR_IOV1.pack_into
_msghdr_iov1_unpack = _MSGHDR_IOV1.unpack_from
_iovec_unpack = struct.Struct("<QQ").unpack_from
_iovecs_cache: dict[int, struct.Struct] = {}
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")


def _iovecs_struct(n: int) -> struct.Struct:
    s = _iovecs_cache.get(n)
    if s is None:
        s = _iovecs_cache[n] = struct.Struct("<" + "QQ" * n)
    return s


class KernelArena:
    """Fixed-size slots of engine memory with stable real addresses.

    ``addresses[handle]`` is a slot's real address; hot paths index it directly.
    """

    __slots__ = ("_chunks", "_bases", "_views", "_free", "addresses")

    def __init__(self) -> None:
        self._chunks: list[ctypes.Array] = []
        self._bases: list[int] = []
        self._views: list[memoryview] = []
        self._free: list[int] = []
        self.addresses: list[int] = []

    def alloc(self) -> int:
        """A slot handle; its memory is at :meth:`address` and :meth:`view`."""
        if not self._free:
            chunk = (ctypes.c_char * (SLOT_SIZE * _SLOTS_PER_CHUNK))()
            first = len(self._chunks) * _SLOTS_PER_CHUNK
            base = ctypes.addressof(chunk)
            self._chunks.append(chunk)
            self._bases.append(base)
            self._views.append(memoryview(chunk).cast("B"))
            self.addresses.extend(base + i * SLOT_SIZE for i in range(_SLOTS_PER_CHUNK))
            self._free.extend(range(first + _SLOTS_PER_CHUNK - 1, first - 1, -1))
        return self._free.pop()

    def free(self, handle: int) -> None:
        self._free.append(handle)

    def address(self, handle: int) -> int:
        return self.addresses[handle]

    def view(self, handle: int) -> memoryview:
        """The slot's bytes (a window on the chunk; keep it short-lived)."""
        start = (handle % _SLOTS_PER_CHUNK) * SLOT_SIZE
        return self._views[handle // _SLOTS_PER_CHUNK][start:start + SLOT_SIZE]

    def chunk_view(self, handle: int) -> tuple[memoryview, int]:
        """``(chunk bytes, offset of the slot in them)`` for ``pack_into`` without slicing."""
        return (self._views[handle // _SLOTS_PER_CHUNK],
                (handle % _SLOTS_PER_CHUNK) * SLOT_SIZE)

    @property
    def slots_in_use(self) -> int:
        return len(self._chunks) * _SLOTS_PER_CHUNK - len(self._free)


class KernelStructError(Exception):
    """A user struct that cannot be turned into a kernel one; ``errno`` is what to post."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


class KernelMsg:
    """A kernel-facing msghdr (+ iovecs) mirroring one user msghdr; ``addr`` is its address."""

    __slots__ = ("addr", "user_msghdr", "namelen", "controllen", "_arena", "_handle", "_own")

    def __init__(self, addr: int, user_msghdr: int, namelen: int, controllen: int,
                 arena: KernelArena | None, handle: int, own: ctypes.Array | None) -> None:
        self.addr = addr
        self.user_msghdr = user_msghdr
        self.namelen = namelen
        self.controllen = controllen
        self._arena = arena
        self._handle = handle
        self._own = own

    def results(self) -> tuple[int, int, int]:
        """``(msg_namelen, msg_controllen, msg_flags)`` as the kernel left them."""
        addr = self.addr
        namelen = ctypes.c_uint32.from_address(addr + MSGHDR_OFF_NAMELEN).value
        controllen = ctypes.c_uint64.from_address(addr + MSGHDR_OFF_CONTROLLEN).value
        flags = ctypes.c_int32.from_address(addr + MSGHDR_OFF_FLAGS).value
        return namelen, controllen, flags

    def copy_back(self, mem: UserMemory) -> None:
        """Write the receive results into the user's msghdr, as ``recvmsg(2)`` would."""
        namelen, controllen, flags = self.results()
        view = mem.view
        off = self.user_msghdr - mem.base
        if off >= 0 and off + MSGHDR_SIZE <= mem.size:
            _U32.pack_into(view, off + MSGHDR_OFF_NAMELEN, namelen)
            struct.pack_into("<Q", view, off + MSGHDR_OFF_CONTROLLEN, controllen)
            _I32.pack_into(view, off + MSGHDR_OFF_FLAGS, flags)

    def release(self) -> None:
        """Give the memory back; only once the kernel can no longer touch it."""
        if self._arena is not None:
            self._arena.free(self._handle)
            self._arena = None
        self._own = None


def _rebase_name_and_control(mem: UserMemory, name: int, namelen: int, control: int,
                             controllen: int) -> tuple[int, int]:
    """The real addresses of a msghdr's name and control buffers (0 when their length is 0);
    ``-EFAULT`` when either reaches outside user memory."""
    base = mem.base
    size = mem.size
    if namelen:
        if name - base < 0 or name - base + namelen > size:
            raise KernelStructError(EFAULT, f"msg_name {name:#x}+{namelen} outside user memory")
        name += mem.real_base - base
    else:
        name = 0
    if controllen:
        if control - base < 0 or control - base + controllen > size:
            raise KernelStructError(
                EFAULT, f"msg_control {control:#x}+{controllen} outside user memory")
        control += mem.real_base - base
    else:
        control = 0
    return name, control


def build_kernel_msg(mem: UserMemory, arena: KernelArena, user_msghdr: int, *,
                     with_iov: bool = True) -> KernelMsg:
    """Mirror the user msghdr at ``user_msghdr`` into kernel-facing memory.

    Every pointer is range-checked against user memory (``-EFAULT`` otherwise) and rewritten
    to a real address.  ``with_iov=False`` (multishot receive) keeps only the name and control
    sizes, which is all the kernel uses from the msghdr in that mode.
    """
    base = mem.base
    size = mem.size
    off = user_msghdr - base
    if off < 0 or off + MSGHDR_SIZE > size:
        raise KernelStructError(EFAULT, f"msghdr at {user_msghdr:#x} is outside user memory")
    name, namelen, iov, iovlen, control, controllen, _flags = _msghdr_unpack(mem.view, off)
    name, control = _rebase_name_and_control(mem, name, namelen, control, controllen)
    if not with_iov:
        iovlen = 0
    if iovlen == 1:  # the common case: one buffer, packed with the msghdr in one call
        ioff = iov - base
        if ioff < 0 or ioff + IOVEC_SIZE > size:
            raise KernelStructError(EFAULT, f"msg_iov {iov:#x} outside user memory")
        ibase, ilen = _iovec_unpack(mem.view, ioff)
        handle = arena.alloc()
        kaddr = arena.addresses[handle]
        chunk, soff = arena.chunk_view(handle)
        try:
            _pack_msg1(chunk, soff, kaddr, mem, name, namelen, control, controllen, ibase, ilen)
        except KernelStructError:
            arena.free(handle)
            raise
        return KernelMsg(kaddr, user_msghdr, namelen, controllen, arena, handle, None)
    if iovlen > UIO_MAXIOV:
        raise KernelStructError(EMSGSIZE, f"msg_iovlen {iovlen} exceeds {UIO_MAXIOV}")
    iovecs: tuple = ()
    if iovlen:
        ioff = iov - base
        if ioff < 0 or ioff + iovlen * IOVEC_SIZE > size:
            raise KernelStructError(EFAULT, f"msg_iov {iov:#x} outside user memory")
        iovecs = _iovecs_struct(iovlen).unpack_from(mem.view, ioff)
        rebased = list(iovecs)
        for i in range(0, 2 * iovlen, 2):
            ibase = rebased[i] - base
            ilen = rebased[i + 1]
            if ilen:
                if ibase < 0 or ibase + ilen > size:
                    raise KernelStructError(
                        EFAULT, f"iov_base {rebased[i]:#x}+{ilen} outside user memory")
                rebased[i] += mem.real_base - base
            else:
                rebased[i] = 0
        iovecs = tuple(rebased)
    if iovlen <= SLOT_IOVECS:
        handle = arena.alloc()
        chunk, soff = arena.chunk_view(handle)
        kaddr = arena.addresses[handle]
        own = None
        owner: KernelArena | None = arena
    else:
        own = (ctypes.c_char * (MSGHDR_SIZE + iovlen * IOVEC_SIZE))()
        chunk, soff = memoryview(own).cast("B"), 0
        kaddr = ctypes.addressof(own)
        handle = -1
        owner = None
    kiov = kaddr + MSGHDR_SIZE if iovlen else 0
    _msghdr_pack(chunk, soff, name, namelen, kiov, iovlen, control, controllen, 0)
    if iovlen:
        _iovecs_struct(iovlen).pack_into(chunk, soff + MSGHDR_SIZE, *iovecs)
    return KernelMsg(kaddr, user_msghdr, namelen, controllen, owner, handle, own)


def _pack_msg1(chunk: memoryview, soff: int, kaddr: int, mem: UserMemory, name: int,
               namelen: int, control: int, controllen: int, ibase: int, ilen: int) -> None:
    """Pack a kernel msghdr with one iovec at ``chunk[soff:]`` (real address ``kaddr``);
    ``name`` and ``control`` are already real addresses (or 0), ``ibase`` is a user address."""
    if ilen:
        off = ibase - mem.base
        if off < 0 or off + ilen > mem.size:
            raise KernelStructError(EFAULT, f"iov_base {ibase:#x}+{ilen} outside user memory")
        ibase = mem.real_base + off
    else:
        ibase = 0
    _msghdr_iov1_pack(chunk, soff, name, namelen, kaddr + MSGHDR_SIZE, 1, control, controllen,
                      0, ibase, ilen)


class InlineSendMsgs:
    """Kernel msghdrs for sends that finish inside the issuing call, one per user msghdr.

    :meth:`kernel_msghdr` reads the user's msghdr together with the iovec right behind it
    (the layout :class:`~uring.user_structs.UserMsg` and the offload's send slots use) in one
    ``unpack_from``; when every field is what the cached copy was built from, the copy is
    returned as it is, otherwise it is rebuilt in place with the usual checks.  Any other
    layout gets a fresh copy per send.  The copy may be rewritten by the next call, so it is
    only for a ``sendmsg`` that returns before anything else runs -- never for an operation
    the kernel keeps.  At most ``capacity`` copies are kept (then the cache starts over).
    """

    __slots__ = ("mem", "arena", "capacity", "_entries", "_scratch")

    def __init__(self, mem: UserMemory, arena: KernelArena, capacity: int = 2048) -> None:
        self.mem = mem
        self.arena = arena
        self.capacity = capacity
        #: user msghdr address -> [user fields the copy was built from, real address, handle]
        self._entries: dict[int, list] = {}
        self._scratch: KernelMsg | None = None

    def kernel_msghdr(self, user_msghdr: int) -> int:
        """Real address of a kernel msghdr mirroring the one at ``user_msghdr``; raises
        :class:`KernelStructError` (``errno`` to post) for a bad pointer inside it."""
        mem = self.mem
        off = user_msghdr - mem.base
        entry = self._entries.get(user_msghdr)
        if off >= 0 and off + _MSGHDR_IOV1.size <= mem.size:
            fields = _msghdr_iov1_unpack(mem.view, off)
            if entry is not None and entry[0] == fields:
                return entry[1]
            if fields[3] == 1 and fields[2] == user_msghdr + MSGHDR_SIZE:
                return self._rebuild(user_msghdr, fields, entry)
        # another layout: a one-off copy, released on the next call
        if self._scratch is not None:
            self._scratch.release()
            self._scratch = None
        kmsg = build_kernel_msg(mem, self.arena, user_msghdr)
        self._scratch = kmsg
        return kmsg.addr

    def _rebuild(self, user_msghdr: int, fields: tuple, entry: list | None) -> int:
        mem = self.mem
        arena = self.arena
        name, namelen, _iov, _iovlen, control, controllen, _flags, ibase, ilen = fields
        name, control = _rebase_name_and_control(mem, name, namelen, control, controllen)
        if entry is None:
            if len(self._entries) >= self.capacity:
                self.clear()
            handle = arena.alloc()
            entry = [None, arena.addresses[handle], handle]
            self._entries[user_msghdr] = entry
        entry[0] = None  # not valid until packed
        chunk, soff = arena.chunk_view(entry[2])
        _pack_msg1(chunk, soff, entry[1], mem, name, namelen, control, controllen, ibase, ilen)
        entry[0] = fields
        return entry[1]

    def clear(self) -> None:
        """Forget every copy and give the memory back."""
        for entry in self._entries.values():
            self.arena.free(entry[2])
        self._entries.clear()
        if self._scratch is not None:
            self._scratch.release()
            self._scratch = None
