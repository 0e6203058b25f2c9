"""The C structs SQEs point at, as they sit in user memory: sockaddr, iovec, msghdr.

Pointers inside these structs (``msg_name``, ``msg_iov``, ``iov_base``, ...) are user
addresses, like every pointer an SQE carries.  :class:`UserMsg` bundles the usual set for one
datagram (msghdr + one iovec + address + data buffer) so callers do not hand-assemble it.
"""

from __future__ import annotations

import socket
import struct

from uring.abi import (
    IOVEC_SIZE,
    IOVEC_STRUCT,
    MSGHDR_OFF_CONTROLLEN,
    MSGHDR_OFF_FLAGS,
    MSGHDR_OFF_NAMELEN,
    MSGHDR_SIZE,
    MSGHDR_STRUCT,
    RECVMSG_OUT_SIZE,
    RECVMSG_OUT_STRUCT,
)
from uring.user_allocator import UserAllocator
from uring.user_memory import UserMemory

SOCKADDR_IN_SIZE = 16
SOCKADDR_IN6_SIZE = 28
#: Room for any address family this project uses (``struct sockaddr_in6``), rounded up.
SOCKADDR_MAX = 32

_SIN = struct.Struct("<H2s4s8x")
_SIN6 = struct.Struct("<H2s4s16sI")
_FAMILY = struct.Struct("<H")


class SockaddrError(ValueError):
    """Bytes that are not a sockaddr_in/sockaddr_in6, or an address that cannot be encoded."""


def encode_sockaddr(address: tuple) -> bytes:
    """``(host, port)`` or ``(host, port, flowinfo, scope_id)`` as sockaddr_in / sockaddr_in6."""
    host, port = address[0], address[1]
    if ":" in host:
        flowinfo = address[2] if len(address) > 2 else 0
        scope_id = address[3] if len(address) > 3 else 0
        return _SIN6.pack(socket.AF_INET6, port.to_bytes(2, "big"), flowinfo.to_bytes(4, "big"),
                          socket.inet_pton(socket.AF_INET6, host), scope_id)
    try:
        packed = socket.inet_aton(host)
    except OSError as exc:
        raise SockaddrError(f"cannot encode address {address!r}: {exc}") from None
    return _SIN.pack(socket.AF_INET, port.to_bytes(2, "big"), packed)


def decode_sockaddr(data: bytes | memoryview) -> tuple:
    """The inverse of :func:`encode_sockaddr`: ``(host, port)`` or the 4-tuple for IPv6."""
    if len(data) < 2:
        raise SockaddrError(f"sockaddr of {len(data)} bytes is too short")
    family = _FAMILY.unpack_from(data)[0]
    if family == socket.AF_INET and len(data) >= SOCKADDR_IN_SIZE:
        _, port, addr = _SIN.unpack_from(data)
        return socket.inet_ntoa(addr), int.from_bytes(port, "big")
    if family == socket.AF_INET6 and len(data) >= SOCKADDR_IN6_SIZE:
        _, port, flow, addr, scope = _SIN6.unpack_from(data)
        return (socket.inet_ntop(socket.AF_INET6, addr), int.from_bytes(port, "big"),
                int.from_bytes(flow, "big"), scope)
    raise SockaddrError(f"unsupported sockaddr (family {family}, {len(data)} bytes)")


def write_iovecs(mem: UserMemory, addr: int, iovecs: list[tuple[int, int]]) -> None:
    """Store ``[(iov_base, iov_len), ...]`` as a ``struct iovec`` array at ``addr``."""
    view = mem.view
    off = mem.offset(addr, IOVEC_SIZE * len(iovecs))
    for i, (base, length) in enumerate(iovecs):
        IOVEC_STRUCT.pack_into(view, off + i * IOVEC_SIZE, base, length)


def write_msghdr(
    mem: UserMemory, addr: int, *, name: int = 0, namelen: int = 0, iov: int = 0,
    iovlen: int = 0, control: int = 0, controllen: int = 0, flags: int = 0,
) -> None:
    """Store a ``struct msghdr`` at ``addr`` (pointers are user addresses)."""
    MSGHDR_STRUCT.pack_into(mem.view, mem.offset(addr, MSGHDR_SIZE), name, namelen, iov, iovlen,
                            control, controllen, flags)


def read_msghdr(mem: UserMemory, addr: int) -> tuple[int, int, int, int, int, int, int]:
    """``(name, namelen, iov, iovlen, control, controllen, flags)`` of the msghdr at ``addr``."""
    return MSGHDR_STRUCT.unpack_from(mem.view, mem.offset(addr, MSGHDR_SIZE))


class UserMsg:
    """One msghdr with a single iovec, an address slot and a data buffer, in user memory.

    For SENDMSG fill it with :meth:`set_datagram`; for RECVMSG read :meth:`received` after
    the CQE (its ``res`` is the payload length).  For multishot RECVMSG the msghdr only sizes
    the name and control areas of each provided buffer (see :func:`parse_recvmsg_out`).
    """

    __slots__ = ("mem", "msghdr", "iov", "name", "buf", "capacity", "control", "controllen")

    def __init__(self, allocator: UserAllocator, capacity: int = 2048,
                 controllen: int = 0) -> None:
        self.mem = allocator.memory
        self.capacity = capacity
        self.controllen = controllen
        self.msghdr = allocator.alloc(MSGHDR_SIZE + IOVEC_SIZE + SOCKADDR_MAX, 16)
        self.iov = self.msghdr + MSGHDR_SIZE
        self.name = self.iov + IOVEC_SIZE
        self.buf = allocator.alloc(max(capacity, 1), 16) if capacity else 0
        self.control = allocator.alloc(controllen, 16) if controllen else 0
        self.reset()

    def reset(self, namelen: int = SOCKADDR_MAX) -> None:
        """Re-arm for a receive: full capacity, room for any address, no flags."""
        write_iovecs(self.mem, self.iov, [(self.buf, self.capacity)])
        write_msghdr(self.mem, self.msghdr, name=self.name, namelen=namelen, iov=self.iov,
                     iovlen=1 if self.capacity else 0, control=self.control,
                     controllen=self.controllen)

    def set_datagram(self, payload: bytes, address: tuple | None) -> None:
        """Prepare a send of ``payload`` to ``address`` (``None``: connected socket)."""
        if len(payload) > self.capacity:
            raise ValueError(f"payload of {len(payload)} bytes exceeds the {self.capacity}-byte "
                             f"buffer")
        self.mem.write(self.buf, payload)
        write_iovecs(self.mem, self.iov, [(self.buf, len(payload))])
        if address is None:
            namelen = 0
        else:
            sa = encode_sockaddr(address)
            self.mem.write(self.name, sa)
            namelen = len(sa)
        write_msghdr(self.mem, self.msghdr, name=self.name if namelen else 0, namelen=namelen,
                     iov=self.iov, iovlen=1, control=self.control if self.controllen else 0,
                     controllen=self.controllen)

    def received(self, nbytes: int) -> tuple[bytes, tuple | None, int]:
        """``(payload, peer address or None, msg_flags)`` after a RECVMSG returned ``nbytes``."""
        _, namelen, _, _, _, _, flags = read_msghdr(self.mem, self.msghdr)
        payload = self.mem.read(self.buf, min(nbytes, self.capacity))
        peer = decode_sockaddr(self.mem.read(self.name, namelen)) if namelen else None
        return payload, peer, flags

    def msg_field(self, which: str) -> int:
        """``namelen``, ``controllen`` or ``flags`` as the last RECVMSG left them."""
        off = {"namelen": MSGHDR_OFF_NAMELEN, "controllen": MSGHDR_OFF_CONTROLLEN,
               "flags": MSGHDR_OFF_FLAGS}[which]
        return struct.unpack_from("<i" if which == "flags" else "<I", self.mem.view,
                                  self.mem.offset(self.msghdr + off, 8))[0]


def parse_recvmsg_out(
    data: bytes | memoryview, namelen: int, controllen: int
) -> tuple[tuple | None, bytes, bytes, int, int]:
    """Split one multishot-RECVMSG buffer into ``(peer, control, payload, payloadlen, flags)``.

    ``namelen``/``controllen`` are the values of the msghdr submitted with the request (they
    fix where each part starts); ``payloadlen`` is the number of payload bytes in the buffer
    (``MSG_TRUNC`` in ``flags`` when the datagram did not fit).
    """
    out_namelen, out_controllen, payloadlen, flags = RECVMSG_OUT_STRUCT.unpack_from(data, 0)
    name_off = RECVMSG_OUT_SIZE
    control_off = name_off + namelen
    payload_off = control_off + controllen
    peer = None
    if out_namelen:
        peer = decode_sockaddr(bytes(data[name_off:name_off + min(out_namelen, namelen)]))
    control = bytes(data[control_off:control_off + min(out_controllen, controllen)])
    payload = bytes(data[payload_off:payload_off + payloadlen])
    return peer, control, payload, payloadlen, flags
