"""The application side of the offload: lay out user memory, park, reclaim, read CQ 0.

Everything between the application and the engine goes through the ring: SQEs in (BPF
requests for ``adopt``/``reclaim``, the sockets' multishot receives, the long-lived ``rx``
and ``keepalive`` requests) and CQEs out on CQ 0.  The application never touches the
engine's maps, so the same client works against an engine on a thread of this process or in
another process that maps the same region.

CQ 0 carries four kinds of completions, told apart by ``user_data``:

* ``QO_TAG_DATAGRAM | fd`` -- a datagram for a connection the engine does not hold, in a
  provided buffer; delivered to the socket's ``on_datagram`` callback, then the buffer goes
  back to the engine through the return ring;
* ``QO_TAG_WAKE | slot`` -- a parked connection needs the application (``res`` is the
  :class:`~quic_offload.offload_abi.WakeReason`), possibly with the datagram that caused it;
* a park record's address -- ``adopt`` or ``reclaim`` finished (its outcome is in the record);
* the configuration block's address -- ``rx`` or ``keepalive`` ended (only at shutdown);
* ``TAG_CANCEL | fd`` -- a socket's receive was cancelled (:meth:`OffloadClient.remove_socket`).

The client is not thread-safe: call it from one thread (the application's event loop).
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quic_offload.offload_abi import (
    CONFIG_MAGIC,
    CQ_APP,
    CQ_RX,
    MAX_CONNS,
    SNAPSHOT_MAGIC,
    TAG_DATAGRAM,
    TAG_SHIFT,
    TAG_WAKE,
    VALUE_MASK,
    WRITEBACK_MAGIC,
    QoConfig,
    QoKeys,
    QoParkRecord,
    QoSendSlot,
    QoSnapshot,
    QoWriteback,
    WakeReason,
    offset_of,
)
from quic_offload.offload_programs import PROGRAM_SLOTS
from uring.abi import (
    IORING_ASYNC_CANCEL_ALL,
    IORING_ASYNC_CANCEL_FD,
    IORING_CQE_BUFFER_SHIFT,
    IORING_CQE_F_BUFFER,
    Sqe,
    prep_bpf,
    prep_cancel,
    prep_recvmsg_multishot,
)
from uring.buf_ring import BufRing
from uring.ring import Ring, SubmissionQueueFull
from uring.user_structs import decode_sockaddr, write_msghdr

log = logging.getLogger(__name__)

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_RECVMSG_OUT = struct.Struct("<IIII")
#: user_data tag of the client's own socket-removal cancels (beside the programs' tags).
TAG_CANCEL = 0x82
_RECORD_SIZE = ctypes.sizeof(QoParkRecord)
_SNAPSHOT_SIZE = ctypes.sizeof(QoSnapshot)
_WRITEBACK_SIZE = ctypes.sizeof(QoWriteback)
_KEYS_SIZE = ctypes.sizeof(QoKeys)
_KEYS_OFF = offset_of(QoParkRecord, "keys")
_STATUS_OFF = offset_of(QoSnapshot, "status")
_SEND_SLOT_SIZE = ctypes.sizeof(QoSendSlot)
#: Longest the client waits for the engine to make room in a full SQ (seconds).
_SQ_FULL_WAIT = 5.0
#: Room for the peer address in each receive buffer (a sockaddr_in6, rounded up).
NAME_CAP = 32


class OffloadError(RuntimeError):
    """The engine refused an offload operation; the message says which and why."""


@dataclass(frozen=True)
class OffloadGeometry:
    """Sizes of the shared structures, fixed when the client starts.

    ``tick`` is the timer-wheel granularity (PINGs go out at most one tick early), and the
    engine wakes once per tick while anything is parked.  ``host_cid_len`` is the length of
    the connection IDs this endpoint issues (aioquic's ``connection_id_length``).
    ``wait_batch`` (seconds; io_uring backend on kernels with deferred task work) lets the
    engine thread gather completions for up to that long per wait instead of waking for
    each datagram: less CPU under load, at most that much added latency for a datagram or
    an application request.  0 wakes for every completion.
    """

    tick: float = 0.02
    wait_batch: float = 0.0005
    buffers: int = 512
    buffer_size: int = 2048
    send_slots: int = 1024
    max_parked: int = 4096
    host_cid_len: int = 8
    ack_delay_exponent: int = 3

    def user_memory_size(self) -> int:
        """User memory the layout needs (rounded up generously for alignment)."""
        fixed = (4096 + self.buffers * (16 + self.buffer_size + 2) + 8
                 + self.send_slots * _SEND_SLOT_SIZE)
        return fixed + self.max_parked * (_RECORD_SIZE + 16) + (64 << 10)

    def check(self) -> None:
        for name in ("buffers", "send_slots"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"{name}={value}: must be a power of two")
        if not 0 < self.max_parked <= MAX_CONNS:
            raise ValueError(f"max_parked={self.max_parked}: must be 1..{MAX_CONNS}")
        if not 1 <= self.host_cid_len <= 20:
            raise ValueError(f"host_cid_len={self.host_cid_len}: must be 1..20")
        if self.tick <= 0:
            raise ValueError(f"tick={self.tick}: must be positive")
        if not 0 <= self.wait_batch < min(self.tick, 0.1):
            raise ValueError(f"wait_batch={self.wait_batch}: must be 0 (wake for every "
                             f"completion) or shorter than both tick and 0.1 s")
        if self.buffer_size < 1200 + 16 + NAME_CAP:
            raise ValueError(f"buffer_size={self.buffer_size}: too small for a QUIC datagram")


Address = tuple[Any, ...]
DatagramCallback = Callable[[bytes, Address], None]


class ParkedConnection:
    """The application's handle on one connection the engine keeps (or is asked to keep).

    ``state`` goes ``adopting`` → ``parked`` → (``woken``) → ``reclaiming`` → ``returned``
    (or ``adopting`` → ``refused``).  Callbacks run on the client's thread.
    """

    __slots__ = ("slot", "park_id", "record", "state", "wake_reason", "on_parked", "on_wake",
                 "on_reclaimed", "context")

    def __init__(self, slot: int, park_id: int, record: int) -> None:
        self.slot = slot
        self.park_id = park_id
        #: user address of the park record while adopt or reclaim is in flight, else 0
        self.record = record
        self.state = "adopting"
        self.wake_reason: WakeReason | None = None
        self.on_parked: Callable[[ParkedConnection, int], None] | None = None
        self.on_wake: Callable[[ParkedConnection, WakeReason, bytes | None,
                                Address | None], None] | None = None
        self.on_reclaimed: Callable[[ParkedConnection, QoWriteback, QoKeys], None] | None = None
        self.context: Any = None

    def __repr__(self) -> str:
        return f"<ParkedConnection slot={self.slot} state={self.state}>"


class OffloadClient:
    """Application side of one offload ring."""

    def __init__(self, ring: Ring, geometry: OffloadGeometry | None = None) -> None:
        self.ring = ring
        self.geometry = geometry or OffloadGeometry()
        self.geometry.check()
        if ring.n_cqs < 4:
            raise ValueError(f"an offload ring needs 4 CQs, this one has {ring.n_cqs}")
        self._mem = ring.user
        self._view = ring.user.view
        self._base = ring.user.base
        self._sockets: dict[int, DatagramCallback] = {}
        self._by_slot: dict[int, ParkedConnection] = {}
        self._by_record: dict[int, ParkedConnection] = {}
        self._free_slots = deque(range(self.geometry.max_parked))
        self._park_ids = itertools.count(1)
        self._removals: dict[int, Callable[[], None]] = {}
        self._started = False
        self.config_addr = 0
        #: Counters of what this client saw on CQ 0 (the engine's own are in its maps).
        self.counters: dict[str, int] = {
            "datagrams": 0, "wakes": 0, "parked": 0, "park_refused": 0, "reclaimed": 0,
            "other_cqes": 0,
        }

    # -- setup --------------------------------------------------------------------------------

    def start(self) -> None:
        """Lay out user memory, hand the buffers to the engine and start ``rx``/``keepalive``."""
        if self._started:
            return
        g = self.geometry
        alloc = self.ring.alloc
        config_addr = alloc.alloc(ctypes.sizeof(QoConfig), 64)
        tick_ts = self.ring.timespec(g.tick)
        # the multishot receive's msghdr: only its name/control sizes shape each buffer, but
        # the name pointer must be valid all the same
        recv_msghdr = alloc.alloc(64 + NAME_CAP, 64)
        write_msghdr(self._mem, recv_msghdr, name=recv_msghdr + 64, namelen=NAME_CAP)
        ring_addr = alloc.alloc(g.buffers * 16, 64)
        buf_base = alloc.alloc(g.buffers * g.buffer_size, 64, zero=False)
        self._buf_ring = BufRing(self._mem, ring_addr, g.buffers, 0,
                                 [buf_base + i * g.buffer_size for i in range(g.buffers)],
                                 g.buffer_size)
        for bid in range(g.buffers):
            self._buf_ring.add(buf_base + bid * g.buffer_size, g.buffer_size, bid)
        self._buf_ring.publish()
        self.ring.engine.register_buf_ring(0, ring_addr, g.buffers)
        self._return_ring = alloc.alloc(8 + 2 * g.buffers, 64)
        self._return_tail = 0
        send_base = alloc.alloc(g.send_slots * _SEND_SLOT_SIZE, 64)
        for i in range(g.send_slots):
            slot_addr = send_base + i * _SEND_SLOT_SIZE
            slot = QoSendSlot()
            slot.msg_name = slot_addr + offset_of(QoSendSlot, "name")
            slot.msg_iov = slot_addr + offset_of(QoSendSlot, "iov_base")
            slot.msg_iovlen = 1
            slot.iov_base = slot_addr + offset_of(QoSendSlot, "packet")
            self._write(slot_addr, bytes(slot))
        cfg = QoConfig(
            magic=CONFIG_MAGIC, buf_base=buf_base, buf_ring=ring_addr,
            return_ring=self._return_ring, recv_msghdr=recv_msghdr, send_base=send_base,
            tick_ts=tick_ts, tick_ns=int(g.tick * 1e9), buf_size=g.buffer_size,
            buf_count=g.buffers, return_entries=g.buffers, send_slots=g.send_slots,
            send_slot_size=_SEND_SLOT_SIZE, name_cap=NAME_CAP, bgid=0,
            host_cid_len=g.host_cid_len, ack_delay_exponent=g.ack_delay_exponent,
        )
        self._write(config_addr, bytes(cfg))
        self.config_addr = config_addr
        self._buf_base = buf_base
        self._recv_msghdr = recv_msghdr
        self._submit(prep_bpf(PROGRAM_SLOTS["rx"], config_addr, cq_idx=CQ_APP),
                     prep_bpf(PROGRAM_SLOTS["keepalive"], config_addr, cq_idx=CQ_APP))
        self._started = True
        log.info("event=offload_started tick_ms=%.1f buffers=%d send_slots=%d max_parked=%d",
                 g.tick * 1e3, g.buffers, g.send_slots, g.max_parked)

    def stop(self) -> None:
        """Cancel every socket receive and the long-lived requests (parked connections stay
        in the engine; reclaim them first if the application is to keep them)."""
        if not self._started:
            return
        for fd in list(self._sockets):
            self.remove_socket(fd)
        self._submit(prep_cancel(self.config_addr, IORING_ASYNC_CANCEL_ALL))
        self._started = False

    # -- sockets ------------------------------------------------------------------------------

    def add_socket(self, fd: int, on_datagram: DatagramCallback) -> None:
        """Let the engine read ``fd``: datagrams it does not keep reach ``on_datagram``."""
        if fd in self._sockets:
            raise ValueError(f"socket fd {fd} is already offloaded")
        self._sockets[fd] = on_datagram
        self._submit(prep_recvmsg_multishot(fd, self._recv_msghdr, 0, user_data=fd,
                                            cq_idx=CQ_RX))

    def remove_socket(self, fd: int, on_removed: Callable[[], None] | None = None) -> None:
        """Stop reading ``fd``: its multishot receive and any send in flight are cancelled,
        then ``on_removed`` runs -- only from then on may the socket be closed, or the engine
        could still be using its descriptor."""
        if self._sockets.pop(fd, None) is None:
            if on_removed is not None:
                on_removed()
            return
        sqe = prep_cancel(0, IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL,
                          (TAG_CANCEL << TAG_SHIFT) | fd, cq_idx=CQ_APP)
        sqe.fd = fd
        if on_removed is not None:
            self._removals[fd] = on_removed
        self._submit(sqe)

    # -- park / reclaim -----------------------------------------------------------------------

    def park(self, snapshot: QoSnapshot, keys: QoKeys) -> ParkedConnection:
        """Hand a connection to the engine; the handle's ``on_parked(handle, status)`` runs
        when ``adopt`` finished (status 0, or -errno when the engine refused)."""
        if not self._started:
            raise OffloadError("park() before start()")
        if not self._free_slots:
            raise OffloadError(
                f"all {self.geometry.max_parked} slots are in use; raise max_parked")
        slot = self._free_slots.popleft()
        park_id = next(self._park_ids) & 0xFFFFFFFF
        snapshot.magic = SNAPSHOT_MAGIC
        snapshot.slot = slot
        snapshot.park_id = park_id
        snapshot.status = 1  # adopt overwrites it
        record = self._new_record(bytes(snapshot))
        self._write(record + _KEYS_OFF, bytes(keys))
        handle = ParkedConnection(slot, park_id, record)
        self._by_slot[slot] = handle
        self._by_record[record] = handle
        self._submit(prep_bpf(PROGRAM_SLOTS["adopt"], record, cq_idx=CQ_APP))
        return handle

    def _new_record(self, snapshot: bytes) -> int:
        """A park record in user memory, for the one request about to use it."""
        record = self.ring.alloc.alloc(_RECORD_SIZE, 64)
        self._write(record, snapshot)
        return record

    def _drop_record(self, handle: ParkedConnection) -> None:
        """Wipe and free the handle's record (it may have held key material)."""
        self._by_record.pop(handle.record, None)
        self._wipe(handle.record, _RECORD_SIZE)
        self.ring.alloc.free(handle.record)
        handle.record = 0

    def reclaim(self, handle: ParkedConnection) -> None:
        """Ask for a connection back; ``on_reclaimed(handle, writeback, keys)`` runs when the
        engine has written its state back.  Idempotent while a reclaim is in flight."""
        if handle.state in ("reclaiming", "returned", "refused"):
            return
        if handle.state == "adopting":
            raise OffloadError(f"slot {handle.slot}: reclaim while adopt is still running")
        handle.state = "reclaiming"
        handle.record = self._new_record(bytes(QoSnapshot(
            magic=SNAPSHOT_MAGIC, slot=handle.slot, park_id=handle.park_id)))
        self._by_record[handle.record] = handle
        self._submit(prep_bpf(PROGRAM_SLOTS["reclaim"], handle.record, cq_idx=CQ_APP))

    @property
    def parked_count(self) -> int:
        return sum(1 for h in self._by_slot.values() if h.state == "parked")

    # -- CQ 0 ---------------------------------------------------------------------------------

    def fileno(self) -> int:
        """The eventfd to watch: readable when CQ 0 has entries (then call :meth:`poll`)."""
        return self.ring.cq0_eventfd

    def poll(self) -> int:
        """Reap and dispatch every CQE on CQ 0; returns how many were handled."""
        self.ring.drain_cq0_eventfd()
        handled = 0
        while True:
            batch = self.ring.reap_raw(CQ_APP, 256)
            if not batch:
                break
            for user_data, res, flags in batch:
                self._dispatch(user_data, res, flags)
            handled += len(batch)
        if self._return_dirty:
            self._publish_returns()
        return handled

    _return_dirty = False

    def _dispatch(self, user_data: int, res: int, flags: int) -> None:
        tag = user_data >> TAG_SHIFT
        if tag == TAG_DATAGRAM:
            self.counters["datagrams"] += 1
            fd = user_data & VALUE_MASK
            payload, addr = self._take_datagram(flags)
            callback = self._sockets.get(fd)
            if payload is not None and callback is not None:
                callback(payload, addr)
            return
        if tag == TAG_CANCEL:
            callback = self._removals.pop(user_data & VALUE_MASK, None)
            if callback is not None:
                callback()
            return
        if tag == TAG_WAKE:
            self.counters["wakes"] += 1
            slot = user_data & VALUE_MASK
            payload, addr = self._take_datagram(flags)
            handle = self._by_slot.get(slot)
            try:
                reason = WakeReason(res)
            except ValueError:
                reason = WakeReason.ERROR
            if handle is None:
                log.warning("event=wake_for_unknown_slot slot=%d reason=%s", slot, reason.name)
                return
            if handle.state == "parked":
                handle.state = "woken"
            handle.wake_reason = reason
            if handle.on_wake is not None:
                handle.on_wake(handle, reason, payload, addr)
            return
        handle = self._by_record.get(user_data)
        if handle is None:
            self.counters["other_cqes"] += 1
            if user_data != self.config_addr or res != -125:
                log.info("event=unexpected_cqe user_data=%#x res=%d flags=%#x",
                         user_data, res, flags)
            return
        if handle.state == "adopting":
            self._adopted(handle)
        elif handle.state == "reclaiming":
            self._reclaimed(handle)

    def _adopted(self, handle: ParkedConnection) -> None:
        status = _U32.unpack_from(self._view, self._off(handle.record) + _STATUS_OFF)[0]
        status = status - (1 << 32) if status & 0x80000000 else status
        # the record has done its job (and its key block may still hold secrets if adopt
        # failed before installing them): wipe and free it
        self._drop_record(handle)
        if status == 0:
            handle.state = "parked"
            self.counters["parked"] += 1
        else:
            handle.state = "refused"
            self.counters["park_refused"] += 1
            self._release(handle)
            log.info("event=park_refused slot=%d status=%d", handle.slot, status)
        if handle.on_parked is not None:
            handle.on_parked(handle, status)

    def _reclaimed(self, handle: ParkedConnection) -> None:
        off = self._off(handle.record)
        writeback = QoWriteback.from_bytes(self._view[off:off + _WRITEBACK_SIZE])
        keys = QoKeys.from_bytes(self._view[off + _KEYS_OFF:off + _KEYS_OFF + _KEYS_SIZE])
        self._drop_record(handle)
        handle.state = "returned"
        self._release(handle)
        if writeback.magic != WRITEBACK_MAGIC or writeback.status != 0:
            log.warning("event=reclaim_failed slot=%d status=%d", handle.slot, writeback.status)
        self.counters["reclaimed"] += 1
        try:
            if handle.on_reclaimed is not None:
                handle.on_reclaimed(handle, writeback, keys)
        finally:
            ctypes.memset(ctypes.addressof(keys), 0, _KEYS_SIZE)

    def _release(self, handle: ParkedConnection) -> None:
        self._by_slot.pop(handle.slot, None)
        self._free_slots.append(handle.slot)

    # -- provided buffers ---------------------------------------------------------------------

    def _take_datagram(self, flags: int) -> tuple[bytes | None, Address | None]:
        """Copy the datagram out of its provided buffer and give the buffer back."""
        if not flags & IORING_CQE_F_BUFFER:
            return None, None
        bid = flags >> IORING_CQE_BUFFER_SHIFT
        off = self._off(self._buf_base) + bid * self.geometry.buffer_size
        view = self._view
        namelen, _controllen, payloadlen, _msg_flags = _RECVMSG_OUT.unpack_from(view, off)
        addr = decode_sockaddr(view[off + 16:off + 16 + min(namelen, NAME_CAP)]) if namelen \
            else None
        start = off + 16 + NAME_CAP
        payload = bytes(view[start:start + payloadlen])
        self._return_buffer(bid)
        return payload, addr

    def _return_buffer(self, bid: int) -> None:
        off = self._off(self._return_ring)
        _U16.pack_into(self._view, off + 8 + 2 * (self._return_tail & (self.geometry.buffers - 1)),
                       bid)
        self._return_tail = (self._return_tail + 1) & 0xFFFFFFFF
        self._return_dirty = True

    def _publish_returns(self) -> None:
        _U32.pack_into(self._view, self._off(self._return_ring) + 4, self._return_tail)
        self._return_dirty = False

    # -- submission ---------------------------------------------------------------------------

    def _submit(self, *sqes: Sqe) -> None:
        """Queue and submit ``sqes``.  A full SQ means the engine is behind (a burst of parks):
        wait for it to make room, briefly and boundedly, rather than lose a request."""
        for sqe in sqes:
            try:
                self.ring.queue(sqe)
            except SubmissionQueueFull:
                self.ring.submit()
                deadline = time.monotonic() + _SQ_FULL_WAIT
                while self.ring.sq_space_left() == 0:
                    if time.monotonic() > deadline:
                        raise OffloadError(
                            f"the engine consumed no submission for {_SQ_FULL_WAIT}s "
                            f"(SQ of {self.ring.layout.sq_entries} entries full); is it running?"
                        ) from None
                    time.sleep(0.0002)
                self.ring.queue(sqe)
        self.ring.submit()

    # -- user memory --------------------------------------------------------------------------

    def _off(self, addr: int) -> int:
        return addr - self._base

    def _write(self, addr: int, data: bytes) -> None:
        off = self._mem.offset(addr, len(data))
        self._view[off:off + len(data)] = data

    def _wipe(self, addr: int, size: int) -> None:
        self._write(addr, bytes(size))

