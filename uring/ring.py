"""The application side of a ring: queue SQEs, submit, wait for and reap CQEs on any CQ.

A :class:`Ring` writes SQEs into the shared SQ ring and reads CQEs from the shared CQ rings;
the only call that crosses to the engine is ``enter`` (and registration), exactly where a
liburing program calls ``io_uring_enter``/``io_uring_register``.  Typical use::

    ring = Ring.create(cq_entries=(256, 64), backend="auto")
    ring.queue(prep_nop(user_data=1))
    ring.submit(wait_nr=1)
    user_data, res, flags = ring.wait_cqe()

For an asyncio application, add :attr:`Ring.cq0_eventfd` to the loop and reap CQ 0 when it
becomes readable (start the engine thread with ``threaded=True`` or :meth:`Engine.start`).
"""

from __future__ import annotations

import contextlib
import os

from uring.abi import (
    BUF_SIZE,
    IORING_CQ_EVENTFD_DISABLED,
    IORING_SQ_CQ_OVERFLOW,
    SQE_SIZE,
    Cqe,
    Sqe,
)
from uring.buf_ring import BufRing
from uring.engine import Engine, EnvFactory
from uring.program import BpfProgram
from uring.rings import CompletionQueue, RingRegion
from uring.user_allocator import UserAllocator
from uring.user_memory import UserMemory

_M32 = 0xFFFFFFFF


class SubmissionQueueFull(RuntimeError):
    """No free SQ slot: submit what is queued (``Ring.submit``) before queueing more."""


class Ring:
    """Application side of one ring (SQ + CQs + user memory) bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        region = engine.region
        self.region = region
        self.layout = region.layout
        self._view = region.view
        sq = region.sq()
        self._sq = sq
        self._sq_entries = sq.entries
        self._sq_mask = sq.mask
        self._words = region.words  # ring indices: one aligned 32-bit access each
        self._sq_head_word = sq.head_word
        self._sq_tail_word = sq.tail_word
        self._sqes_off = self.layout.sqes_off
        self._sq_tail = sq.tail()
        self._queued = 0
        self.cqs: list[CompletionQueue] = [region.cq(i) for i in
                                           range(len(self.layout.cq_entries))]
        self.user: UserMemory = region.user_memory()
        self.alloc = UserAllocator(self.user)
        self._buf_rings: dict[int, BufRing] = {}

    @classmethod
    def create(
        cls,
        *,
        sq_entries: int = 256,
        cq_entries: tuple[int, ...] | list[int] = (512,),
        user_memory: int = 1 << 20,
        backend: str = "auto",
        threaded: bool = False,
        env_factory: EnvFactory | None = None,
        wait_batch_us: int = 0,
    ) -> Ring:
        """A new region, an engine on ``backend`` and the ring over them (``wait_batch_us``:
        see :meth:`Engine.start`)."""
        region = RingRegion.create(sq_entries, cq_entries, user_memory)
        engine = Engine(region, backend, env_factory=env_factory, wait_batch_us=wait_batch_us)
        if threaded:
            engine.start()
        return cls(engine)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def backend(self) -> str:
        return self.engine.backend.name

    @property
    def n_cqs(self) -> int:
        return len(self.cqs)

    # -- SQ -----------------------------------------------------------------------------------

    def sq_space_left(self) -> int:
        head = self._words[self._sq_head_word]
        return self._sq_entries - ((self._sq_tail - head) & _M32)

    def queue(self, sqe: Sqe) -> None:
        """Write ``sqe`` into the next free SQ slot (not yet visible to the engine)."""
        self._slot_check()
        sqe.pack_into(self._view, self._sqes_off + (self._sq_tail & self._sq_mask) * SQE_SIZE)
        self._sq_tail = (self._sq_tail + 1) & _M32
        self._queued += 1

    def queue_bytes(self, sqe: bytes) -> None:
        """Queue a pre-packed 64-byte SQE (the fast path for hot loops)."""
        self._slot_check()
        off = self._sqes_off + (self._sq_tail & self._sq_mask) * SQE_SIZE
        self._view[off:off + SQE_SIZE] = sqe
        self._sq_tail = (self._sq_tail + 1) & _M32
        self._queued += 1

    def _slot_check(self) -> None:
        head = self._words[self._sq_head_word]
        if (self._sq_tail - head) & _M32 >= self._sq_entries:
            raise SubmissionQueueFull(
                f"SQ full ({self._sq_entries} entries queued or in the engine); call submit()")

    def submit(self, wait_nr: int = 0, cq_idx: int = 0, timeout: float | None = None) -> int:
        """Publish the queued SQEs and enter the engine; optionally wait for ``wait_nr`` CQEs
        on CQ ``cq_idx``.  Returns the number submitted (``-ETIME`` if a pure wait timed out)."""
        n = self._queued
        if n:
            self._words[self._sq_tail_word] = self._sq_tail
            self._queued = 0
        return self.engine.enter(n, wait_nr, cq_idx, timeout)

    # -- CQs ----------------------------------------------------------------------------------

    def cq_ready(self, cq_idx: int = 0) -> int:
        """CQEs waiting in CQ ``cq_idx``'s ring."""
        return self.cqs[cq_idx].ready()

    def peek_cqe(self, cq_idx: int = 0) -> Cqe | None:
        """The oldest CQE of ``cq_idx`` without consuming it."""
        raw = self.cqs[cq_idx].peek()
        if raw is None and cq_idx == 0 and self._flush_overflow():
            raw = self.cqs[0].peek()
        return None if raw is None else Cqe(*raw)

    def cqe_seen(self, cq_idx: int = 0, n: int = 1) -> None:
        """Consume ``n`` CQEs obtained with :meth:`peek_cqe`."""
        self.cqs[cq_idx].advance(n)
        if cq_idx == 0:
            self._flush_overflow()

    def reap_cqe(self, cq_idx: int = 0) -> Cqe | None:
        """Consume and return the oldest CQE of ``cq_idx``, or ``None``."""
        raw = self.cqs[cq_idx].pop()
        if cq_idx == 0 and self._flush_overflow() and raw is None:
            raw = self.cqs[0].pop()
        return None if raw is None else Cqe(*raw)

    def reap_raw(self, cq_idx: int = 0, limit: int = 1 << 32) -> list[tuple[int, int, int]]:
        """Consume up to ``limit`` CQEs as ``(user_data, res, flags)`` tuples (no objects)."""
        out = self.cqs[cq_idx].pop_many(limit)
        if cq_idx == 0 and self._flush_overflow() and len(out) < limit:
            out.extend(self.cqs[0].pop_many(limit - len(out)))
        return out

    def reap_cqes(self, cq_idx: int = 0, limit: int = 1 << 32) -> list[Cqe]:
        return [Cqe(*raw) for raw in self.reap_raw(cq_idx, limit)]

    def wait_cqe(self, cq_idx: int = 0, timeout: float | None = None) -> Cqe | None:
        """Consume the oldest CQE of ``cq_idx``, waiting up to ``timeout`` seconds for one."""
        return next(iter(self.wait_cqes(1, cq_idx, timeout)), None)

    def wait_cqes(self, n: int, cq_idx: int = 0, timeout: float | None = None) -> list[Cqe]:
        """Wait until ``n`` CQEs are on ``cq_idx`` (or ``timeout``), then consume up to ``n``."""
        if self.cqs[cq_idx].ready() < n:
            self.submit(n, cq_idx, timeout)
        return self.reap_cqes(cq_idx, n)

    def _flush_overflow(self) -> bool:
        """If CQEs wait on CQ 0's overflow list, let the engine move them in (like liburing's
        flush when ``IORING_SQ_CQ_OVERFLOW`` is set).  ``True`` if it was needed."""
        if self._sq.flags() & IORING_SQ_CQ_OVERFLOW:
            self.engine.enter(0, 0)
            return True
        return False

    @property
    def cq0_eventfd(self) -> int:
        """An eventfd that becomes readable when CQ 0 gains CQEs (enables notifications)."""
        cq = self.cqs[0]
        flags = cq.flags()
        if flags & IORING_CQ_EVENTFD_DISABLED:
            cq.set_flags(flags & ~IORING_CQ_EVENTFD_DISABLED)
        return self.engine.cq_eventfds[0]

    def drain_cq0_eventfd(self) -> None:
        """Reset the eventfd counter (call before reaping, in the eventfd reader)."""
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self.engine.cq_eventfds[0])

    # -- registration -------------------------------------------------------------------------

    def register_bpf(self, slot: int, program: BpfProgram) -> None:
        self.engine.register_bpf(slot, program)

    def unregister_bpf(self, slot: int) -> BpfProgram:
        return self.engine.unregister_bpf(slot)

    def setup_buf_ring(self, bgid: int, entries: int, buf_size: int) -> BufRing:
        """Allocate a provided-buffer ring and ``entries`` buffers of ``buf_size`` bytes in
        user memory, hand every buffer to it and register it as group ``bgid``."""
        ring_addr = self.alloc.alloc(entries * BUF_SIZE, 64)
        buffers = [self.alloc.alloc(buf_size, 64, zero=False) for _ in range(entries)]
        ring = BufRing(self.user, ring_addr, entries, bgid, buffers, buf_size)
        for bid, addr in enumerate(buffers):
            ring.add(addr, buf_size, bid)
        ring.publish()
        self.engine.register_buf_ring(bgid, ring_addr, entries)
        self._buf_rings[bgid] = ring
        return ring

    def buf_ring(self, bgid: int) -> BufRing:
        return self._buf_rings[bgid]

    def unregister_buf_ring(self, bgid: int) -> None:
        self.engine.unregister_buf_ring(bgid)
        self._buf_rings.pop(bgid, None)

    # -- user memory conveniences -------------------------------------------------------------

    def timespec(self, seconds: float) -> int:
        """Allocate a ``__kernel_timespec`` holding ``seconds``; returns its user address."""
        addr = self.alloc.alloc(16, 16)
        self.user.write_timespec(addr, seconds)
        return addr


__all__ = ["Ring", "SubmissionQueueFull"]
