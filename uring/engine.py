"""The engine: the "kernel side" of the rings.

It consumes SQEs from the SQ ring (and from BPF programs), turns them into requests, runs
them through the ops and the backend, and posts CQEs on the CQ each request named.  It owns:

* the dispatcher and link chains (:mod:`uring.requests`, :mod:`uring.ops`);
* the CQs: CQ 0 keeps an overflow list and never loses a CQE; extra CQs drop and count;
* CQ watches: BPF requests waiting for ``wait_nr`` CQEs and TIMEOUTs waiting for a count;
* the timers of TIMEOUT and LINK_TIMEOUT requests (:mod:`uring.timer_heap`);
* the BPF program table (100 slots) and the helper environment programs call;
* the provided-buffer rings registered by the application;
* the backend (``io_uring`` or ``portable``) that performs the I/O.

Everything it needs from the application is in the shared region plus file descriptors (the
doorbell eventfd, one eventfd per CQ), so the same engine can later run in another process.

Two ways to drive it.  *Synchronously*: :meth:`Engine.enter` does the work on the caller's
thread, like ``io_uring_enter`` does in the caller's context.  *Threaded*: after
:meth:`Engine.start` the engine runs on its own thread and ``enter`` only rings the doorbell
and waits on the CQ's eventfd (like ``IORING_SETUP_SQPOLL``).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import os
import select
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from uring import libc, ops
from uring.abi import (
    BPF_MAX_PROGRAMS,
    EALREADY,
    EBUSY,
    ECANCELED,
    EEXIST,
    EINVAL,
    ENOENT,
    ETIME,
    IORING_CQ_EVENTFD_DISABLED,
    IORING_OP_ASYNC_CANCEL,
    IORING_OP_LINK_TIMEOUT,
    IORING_OP_MSG_RING,
    IORING_OP_NOP,
    IORING_OP_SENDMSG,
    IORING_SQ_CQ_OVERFLOW,
    IOSQE_ASYNC,
    IOSQE_BUFFER_SELECT,
    IOSQE_CQE_SKIP_SUCCESS,
    IOSQE_IO_HARDLINK,
    IOSQE_IO_LINK,
    SQE_SIZE,
    SQE_STRUCT,
)
from uring.backends import Backend, open_backend
from uring.bpf_env import EngineBpfEnv
from uring.buf_ring import BufRingConsumer, BufRingError
from uring.engine_stats import EngineStats
from uring.kernel_memory import InlineSendMsgs, KernelArena, KernelStructError
from uring.program import BpfEnv, BpfProgram
from uring.requests import (
    DONE,
    ISSUED,
    LINK_FLAGS,
    RUNNING,
    WAIT_BPF,
    WAIT_IO,
    WAIT_NONE,
    WAIT_TIMER,
    ChainBuilder,
    Request,
)
from uring.rings import CompletionQueue, RingRegion, SubmissionQueue
from uring.timer_heap import TimerHeap

log = logging.getLogger("uring.engine")

_M32 = 0xFFFFFFFF
_sqe_unpack = SQE_STRUCT.unpack_from
_monotonic_ns = time.monotonic_ns
_heappush = heapq.heappush
#: SQE flags the engine implements (FIXED_FILE and IO_DRAIN are refused with -EINVAL).
_SUPPORTED_SQE_FLAGS = (IOSQE_IO_LINK | IOSQE_IO_HARDLINK | IOSQE_ASYNC
                        | IOSQE_CQE_SKIP_SUCCESS | IOSQE_BUFFER_SELECT)
_UNSUPPORTED_SQE_FLAGS = ~_SUPPORTED_SQE_FLAGS
#: SQE flags that send a SENDMSG down the normal path rather than the inline one: all but
#: CQE_SKIP_SUCCESS.  IOSQE_ASYNC asks io_uring not to try inline, so it counts too.
_NOT_INLINE_SEND = ~IOSQE_CQE_SKIP_SUCCESS
#: Ops that finish immediately and need not be findable by ASYNC_CANCEL.
_UNTRACKED = frozenset({IORING_OP_NOP, IORING_OP_MSG_RING, IORING_OP_ASYNC_CANCEL})
#: While engine-side work keeps coming (BPF re-runs), poll the backend every this many passes.
_BUSY_POLL_EVERY = 32
#: Longest a threaded ``enter`` sleeps before re-checking its CQ (covers a missed wake-up).
_WAIT_SLICE_S = 0.010

EnvFactory = Callable[["Engine"], BpfEnv]


class RegistrationError(OSError):
    """A program or buffer-ring registration was refused; ``errno`` says why (EBUSY, ...)."""


class EngineClosed(RuntimeError):
    """The engine was closed; create a new ring."""


# ---------------------------------------------------------------------------------------------
# Registry of live engines in this process, for MSG_RING (targets are named by ring fd)
# ---------------------------------------------------------------------------------------------

_registry: dict[int, weakref.ref[Engine]] = {}
_registry_lock = threading.Lock()


def engine_for_fd(fd: int) -> Engine | None:
    """The live engine of this process whose ring fd is ``fd``, if any."""
    with _registry_lock:
        ref = _registry.get(fd)
    engine = ref() if ref is not None else None
    return engine if engine is not None and not engine.closed else None


class Engine:
    """Kernel side of one ring: dispatcher, CQs, program table, helpers, backend."""

    def __init__(
        self,
        region: RingRegion,
        backend: str | Backend = "auto",
        *,
        env_factory: EnvFactory | None = None,
        max_helper_queue: int = 4096,
        wait_batch_us: int = 0,
    ) -> None:
        self.region = region
        self.layout = region.layout
        self.mem = region.user_memory()
        self.sq: SubmissionQueue = region.sq()
        self._sq_buf = region.view
        self._words = region.words  # ring indices: one aligned 32-bit access each
        self._sq_head_word = self.sq.head_word
        self._sq_tail_word = self.sq.tail_word
        self._sq_mask = self.layout.sq_entries - 1
        self._sqes_off = self.layout.sqes_off
        self.cqs: list[CompletionQueue] = [region.cq(i) for i in range(len(self.layout.cq_entries))]
        self.n_cqs = len(self.cqs)
        self._cq0 = self.cqs[0]
        self.arena = KernelArena()
        self.stats = EngineStats(self.n_cqs)
        self.max_helper_queue = max_helper_queue
        self.closed = False

        self._lock = threading.RLock()
        self._overflow: deque[tuple[int, int, int]] = deque()
        self._dirty = 0
        self._seq = [0] * self.n_cqs                  # counted CQEs per CQ (TIMEOUT counts)
        self._ready_watch: list[list] = [[] for _ in range(self.n_cqs)]
        self._seq_watch: list[list] = [[] for _ in range(self.n_cqs)]
        self._watched = [False] * self.n_cqs
        self._watch_seq = itertools.count()
        self._by_user_data: dict[int, Request | list[Request]] = {}
        self._issue_queue: deque[Request] = deque()
        self._issuing = False
        self._rerun: deque[Request] = deque()
        self.in_bpf = False
        self._inbox: deque[tuple[int, int, int]] = deque()
        self._control: deque[list] = deque()
        self.programs: list[BpfProgram | None] = [None] * BPF_MAX_PROGRAMS
        self.buf_groups: dict[int, BufRingConsumer] = {}
        self.timers = TimerHeap()
        self._inline_sends = InlineSendMsgs(self.mem, self.arena)

        # file descriptors: the doorbell (also this ring's identity for MSG_RING) and one
        # eventfd per CQ, signalled when the CQ gains entries unless its
        # IORING_CQ_EVENTFD_DISABLED flag is set
        self.ring_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.cq_eventfds = [os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                            for _ in range(self.n_cqs)]

        self.backend: Backend = open_backend(backend) if isinstance(backend, str) else backend
        self.backend.bind(self, self.mem, self.arena)
        self.backend.add_wakeup_fd(self.ring_fd, self._drain_doorbell)
        self._try_sendmsg = self.backend.try_sendmsg
        self._backend_flushes = self.backend.defers_work
        self.env: BpfEnv = (env_factory or EngineBpfEnv)(self)
        if not callable(getattr(self.env, "take_submissions", None)):
            raise TypeError(f"env_factory produced {type(self.env).__name__}, which lacks "
                            f"take_submissions(); subclass uring.bpf_env.EngineBpfEnv")

        self._handlers = ops.HANDLERS
        self._fire_timer = functools.partial(ops.timeout.on_timer, self)
        self._completers = ops.COMPLETERS
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._rung = False  # set when the doorbell is drained; the thread then looks again
        #: > 0: the engine thread binds the backend to itself and gathers completions for up
        #: to this long per wait (see :meth:`start`)
        self.wait_batch_us = wait_batch_us
        #: the backend went with the engine thread: it was bound to it and closed by it
        self._backend_gone = False
        self.thread_bound = False
        with _registry_lock:
            _registry[self.ring_fd] = weakref.ref(self)
        log.info("event=engine_created ring_fd=%d backend=%s sq=%d cqs=%s user_memory=%d",
                 self.ring_fd, self.backend.name, self.layout.sq_entries,
                 list(self.layout.cq_entries), self.layout.user_memory_size)

    # =========================================================================================
    # Application-facing entry points
    # =========================================================================================

    @property
    def threaded(self) -> bool:
        return self._thread is not None

    def enter(self, to_submit: int = 0, min_complete: int = 0, cq_idx: int = 0,
              timeout: float | None = None) -> int:
        """Submit up to ``to_submit`` SQEs and wait until CQ ``cq_idx`` holds ``min_complete``
        CQEs (or ``timeout`` seconds pass).

        Returns the number of SQEs consumed, like ``io_uring_enter``; when nothing was
        submitted and the wait timed out, ``-ETIME``.
        """
        if self.closed:
            raise EngineClosed("enter() on a closed engine")
        self._check_backend("enter()")
        if not 0 <= cq_idx < self.n_cqs:
            raise ValueError(f"cq_idx {cq_idx} out of range ({self.n_cqs} CQs registered)")
        if self._thread is not None and threading.current_thread() is not self._thread:
            return self._enter_threaded(to_submit, min_complete, cq_idx, timeout)
        timed_out = False
        with self._lock:
            submitted = self._consume_sq(to_submit) if to_submit else 0
            self._progress()
            if min_complete and self._cq_count(cq_idx) < min_complete:
                deadline = None if timeout is None else time.monotonic_ns() + int(timeout * 1e9)
                busy_passes = 0
                while self._cq_count(cq_idx) < min_complete:
                    if self._rerun or self._inbox or self._control:
                        # engine-side work is queued: do it, and look at the backend (a
                        # syscall) only every few passes so I/O is still served
                        busy_passes += 1
                        if busy_passes % _BUSY_POLL_EVERY == 0:
                            self.backend.wait(0)
                        self._progress()
                        if deadline is not None and time.monotonic_ns() >= deadline:
                            timed_out = self._cq_count(cq_idx) < min_complete
                            break
                        continue
                    if deadline is None:
                        wait_ns: int | None = None
                    else:
                        wait_ns = deadline - time.monotonic_ns()
                        if wait_ns <= 0:
                            timed_out = True
                            break
                    self._wait(wait_ns)
                    self._progress()
            if self._dirty:
                self._signal()
        if submitted:
            return submitted
        return -ETIME if timed_out else 0

    def start(self) -> None:
        """Run the engine on its own thread from now on.

        With ``wait_batch_us`` set, the thread first binds the backend to itself (io_uring:
        a ring with deferred task work that only this thread may enter, see
        :meth:`Backend.bind_to_thread`).  Completions then no longer interrupt the thread one
        by one; each wait gathers them for up to ``wait_batch_us``.  That binding lasts for
        the engine's life: :meth:`stop` releases the backend on the thread's way out, so the
        engine can only be closed afterwards, not driven again."""
        self._check_backend("start()")
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._thread_main, daemon=True,
                                        name=f"uring-engine-{self.ring_fd}")
        self._thread.start()
        log.info("event=engine_thread_started ring_fd=%d backend=%s", self.ring_fd,
                 self.backend.name)

    def _check_backend(self, what: str) -> None:
        """Refuse to drive an engine whose backend left with its thread (see :meth:`start`)."""
        if self._backend_gone:
            raise EngineClosed(f"{what} after stop() on an engine whose backend was bound to "
                               f"its thread (wait_batch_us) and released with it; close it "
                               f"and create a new engine")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the engine thread; the engine can then be driven synchronously again --
        unless the thread had bound the backend to itself (see :meth:`start`): then the
        backend is released with the thread, and only :meth:`close` is left."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self.ring_doorbell()
        thread.join(timeout)
        if thread.is_alive():
            frame = sys._current_frames().get(thread.ident or 0)
            where = "".join(traceback.format_stack(frame)[-6:]) if frame is not None else "?"
            log.error("event=engine_thread_stuck ring_fd=%d thread=%s", self.ring_fd,
                      thread.name)
            raise RuntimeError(f"engine thread {thread.name} did not stop within {timeout}s; "
                               f"it is at:\n{where}")
        self._thread = None
        log.info("event=engine_thread_stopped ring_fd=%d", self.ring_fd)

    def close(self) -> None:
        """Stop the thread, drop every in-flight operation and release all resources."""
        if self.closed:
            return
        self.stop()
        with self._lock:
            self.closed = True
            with _registry_lock:
                _registry.pop(self.ring_fd, None)
            self.backend.close()
            for fd in [self.ring_fd, *self.cq_eventfds]:
                os.close(fd)
            self.mem.release()
        log.info("event=engine_closed ring_fd=%d", self.ring_fd)

    def ring_doorbell(self) -> None:
        """Wake the engine (thread, or a synchronous caller blocked in :meth:`enter`)."""
        libc.eventfd_signal(self.ring_fd)  # fails only if closed or saturated: both moot

    # -- registration ---------------------------------------------------------------------

    def register_bpf(self, slot: int, program: BpfProgram) -> None:
        """Put ``program`` in table slot ``slot`` (0..99); a taken slot raises EBUSY."""
        if not isinstance(program, BpfProgram):
            raise TypeError(f"{program!r} does not implement BpfProgram (name, run(ctx, env))")

        def register() -> None:
            if not 0 <= slot < BPF_MAX_PROGRAMS:
                raise RegistrationError(
                    EINVAL, f"BPF slot {slot} out of range (0..{BPF_MAX_PROGRAMS - 1})")
            if self.programs[slot] is not None:
                raise RegistrationError(
                    EBUSY, f"BPF slot {slot} already holds program "
                           f"{self.programs[slot].name!r}; unregister it first")
            self.programs[slot] = program
            log.info("event=bpf_registered slot=%d program=%s", slot, program.name)

        self._call(register)

    def unregister_bpf(self, slot: int) -> BpfProgram:
        """Empty slot ``slot``; requests already running it keep their program."""

        def unregister() -> BpfProgram:
            if not 0 <= slot < BPF_MAX_PROGRAMS or self.programs[slot] is None:
                raise RegistrationError(ENOENT, f"BPF slot {slot} holds no program")
            program = self.programs[slot]
            self.programs[slot] = None
            log.info("event=bpf_unregistered slot=%d program=%s", slot, program.name)
            return program

        return self._call(unregister)

    def register_buf_ring(self, bgid: int, ring_addr: int, entries: int) -> None:
        """Register the provided-buffer ring at user address ``ring_addr`` as group ``bgid``."""

        def register() -> None:
            if bgid in self.buf_groups:
                raise RegistrationError(EEXIST, f"buffer group {bgid} is already registered")
            if not 0 <= bgid <= 0xFFFF:
                raise RegistrationError(EINVAL, f"buffer group {bgid} out of range (0..65535)")
            try:
                group = BufRingConsumer(self.mem, ring_addr, entries, bgid)
            except BufRingError as exc:
                raise RegistrationError(EINVAL, str(exc)) from None
            self.backend.buf_ring_register(group)
            self.buf_groups[bgid] = group
            log.info("event=buf_ring_registered bgid=%d entries=%d", bgid, entries)

        self._call(register)

    def unregister_buf_ring(self, bgid: int) -> None:
        def unregister() -> None:
            group = self.buf_groups.pop(bgid, None)
            if group is None:
                raise RegistrationError(ENOENT, f"buffer group {bgid} is not registered")
            self.backend.buf_ring_unregister(group)

        self._call(unregister)

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` where engine state may be touched: inline, or on the engine thread."""
        if self.closed:
            raise EngineClosed("engine is closed")
        self._check_backend("this call")
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            with self._lock:
                return fn()
        box: list = [fn, None, None, threading.Event()]
        self._control.append(box)
        self.ring_doorbell()
        if not box[3].wait(10.0):
            raise RuntimeError("engine thread did not answer within 10s")
        if box[2] is not None:
            raise box[2]
        return box[1]

    # =========================================================================================
    # Engine loop pieces
    # =========================================================================================

    def _thread_main(self) -> None:
        try:
            if self.wait_batch_us:
                with self._lock:
                    self.thread_bound = self.backend.bind_to_thread(self.wait_batch_us)
                log.info("event=engine_wait_batching ring_fd=%d bound=%s batch_us=%d",
                         self.ring_fd, self.thread_bound, self.wait_batch_us)
            busy_passes = 0
            words = self._words
            head_word = self._sq_head_word
            tail_word = self._sq_tail_word
            with self._lock:
                while not self._stopping:
                    self._rung = False
                    if words[tail_word] != words[head_word]:
                        self._consume_sq(_M32)
                    self._progress()
                    if self._dirty:
                        self._signal()
                    # a doorbell drained during this pass (a flush can dispatch its wakeup)
                    # may have been the only notice of new work or of stop(): look again
                    # rather than sleep on it
                    if not (self._rung or self._rerun or self._inbox or self._control
                            or words[tail_word] != words[head_word]):
                        self._wait(None)
                        busy_passes = 0
                    else:
                        busy_passes += 1
                        if busy_passes % _BUSY_POLL_EVERY == 0:
                            self.backend.wait(0)
                # leave nothing half-done for a synchronous caller
                self._consume_sq(_M32)
                self._progress()
                self._signal()
                if self.thread_bound:
                    # no other thread may drive a bound backend: release it from here
                    self._backend_gone = True
                    self.backend.close()
        except Exception:  # pragma: no cover - a bug; make it visible
            log.exception("event=engine_thread_crashed ring_fd=%d", self.ring_fd)
            raise

    def _drain_doorbell(self) -> None:
        self._rung = True
        libc.eventfd_drain(self.ring_fd)

    def _enter_threaded(self, to_submit: int, min_complete: int, cq_idx: int,
                        timeout: float | None) -> int:
        if to_submit or self.sq.flags() & IORING_SQ_CQ_OVERFLOW:
            self.ring_doorbell()
        timed_out = False
        if min_complete:
            timed_out = not self._wait_cq(cq_idx, min_complete, timeout)
        if to_submit:
            return to_submit
        return -ETIME if timed_out else 0

    def _wait_cq(self, cq_idx: int, min_complete: int, timeout: float | None) -> bool:
        """Wait (from an application thread) for ``min_complete`` CQEs on ``cq_idx``."""
        cq = self.cqs[cq_idx]
        flags = cq.flags()
        if flags & IORING_CQ_EVENTFD_DISABLED:
            cq.set_flags(flags & ~IORING_CQ_EVENTFD_DISABLED)
        fd = self.cq_eventfds[cq_idx]
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ready = cq.ready()
            if ready >= min_complete:
                return True
            if cq_idx == 0 and self._overflow and ready < cq.entries:
                self.ring_doorbell()
            if self._thread is None:
                # the engine thread went away: finish synchronously
                return self.enter(0, min_complete, cq_idx, timeout) != -ETIME
            slice_s = _WAIT_SLICE_S
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                slice_s = min(slice_s, remaining)
            if poller.poll(slice_s * 1000):
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(fd)

    def _progress(self) -> None:
        """Do every piece of work that needs no waiting."""
        if self._control or self._inbox or self._rerun or self._overflow:
            self._progress_slow()
        if self._backend_flushes:
            self.backend.flush()
        heap = self.timers.heap
        if heap:
            now = _monotonic_ns()
            if heap[0][0] <= now:
                self.timers.expire(now, self._fire_timer)

    def _wait(self, timeout_ns: int | None) -> None:
        """Block in the backend until I/O arrives, the earliest timer is due or ``timeout_ns``
        passes; then fire the timers that are due."""
        timers = self.timers
        deadline = timers.next_deadline()
        if deadline is not None:
            until = deadline - _monotonic_ns()
            if timeout_ns is None or until < timeout_ns:
                timeout_ns = until if until > 0 else 0
        self.backend.wait(timeout_ns)
        if deadline is not None:
            timers.expire(_monotonic_ns(), self._fire_timer)

    def _progress_slow(self) -> None:
        if self._control:
            self._run_control()
        if self._inbox:
            inbox = self._inbox
            while inbox:
                self._post(0, *inbox.popleft())
                self.stats.msg_ring_delivered += 1
        if self._rerun:
            rerun = self._rerun
            for _ in range(len(rerun)):
                ops.bpf.run(self, rerun.popleft())
        if self._overflow:
            self._flush_overflow()

    def _run_control(self) -> None:
        while self._control:
            box = self._control.popleft()
            try:
                box[1] = box[0]()
            except BaseException as exc:  # handed back to the caller's thread
                box[2] = exc
            box[3].set()

    def _signal(self) -> None:
        dirty = self._dirty
        if not dirty:
            return
        self._dirty = 0
        cqs = self.cqs
        while dirty:  # highest dirty CQ first; one pass per CQ that gained entries
            idx = dirty.bit_length() - 1
            dirty ^= 1 << idx
            if not cqs[idx].flags() & IORING_CQ_EVENTFD_DISABLED:
                libc.eventfd_signal(self.cq_eventfds[idx])

    # =========================================================================================
    # Submission
    # =========================================================================================

    def _consume_sq(self, to_submit: int) -> int:
        buf = self._sq_buf
        words = self._words
        head = words[self._sq_head_word]
        n = (words[self._sq_tail_word] - head) & _M32
        if n > to_submit:
            n = to_submit
        if not n:
            return 0
        mask = self._sq_mask
        base = self._sqes_off
        if n == 1:
            sqes = [_sqe_unpack(buf, base + (head & mask) * SQE_SIZE)]
        else:
            sqes = [_sqe_unpack(buf, base + ((head + i) & mask) * SQE_SIZE) for i in range(n)]
        words[self._sq_head_word] = (head + n) & _M32  # the slots are free again
        self.stats.sqes_consumed += n
        self.submit_batch(sqes)
        return n

    def submit_batch(self, sqes: list[tuple]) -> None:
        """Dispatch SQE tuples as one submission batch (links may span them)."""
        chain: ChainBuilder | None = None
        outer = self._issuing
        self._issuing = True
        queue = self._issue_queue
        n_cqs = self.n_cqs
        try:
            for sqe in sqes:
                opcode = sqe[0]
                flags = sqe[1]
                if chain is None and not flags & LINK_FLAGS and opcode != IORING_OP_LINK_TIMEOUT:
                    if opcode == IORING_OP_SENDMSG and not flags & _NOT_INLINE_SEND \
                            and not sqe[2] and sqe[12] < n_cqs and self._send_inline(sqe):
                        continue
                    self._issue(Request(sqe))
                else:
                    req = Request(sqe)
                    if chain is None:
                        chain = ChainBuilder()
                    ready = chain.add(req, opcode == IORING_OP_LINK_TIMEOUT)
                    if ready is not None:
                        self._issue(ready)
                while queue:
                    self._issue(queue.popleft())
            if chain is not None:
                leftover = chain.close()
                if leftover is not None:
                    self._issue(leftover)
                while queue:
                    self._issue(queue.popleft())
        finally:
            self._issuing = outer

    def _send_inline(self, sqe: tuple) -> bool:
        """A SENDMSG outside any chain, sent right here as io_uring's inline issue does: no
        request object, no tracking -- there is nothing left to find or cancel once the
        call returns.  ``False`` when the socket is not ready (issue it normally)."""
        try:
            msghdr = self._inline_sends.kernel_msghdr(sqe[5])
        except KernelStructError as exc:
            self._post(sqe[12], sqe[8], -exc.errno, 0)
            return True
        res = self._try_sendmsg(sqe[3], msghdr, sqe[7])
        if res is None:
            return False
        if res < 0 or not sqe[1] & IOSQE_CQE_SKIP_SUCCESS:
            self._post(sqe[12], sqe[8], res, 0)
        return True

    def _issue_soon(self, req: Request) -> None:
        """Issue ``req`` now, or right after the issue in progress (keeps the stack flat)."""
        self._issue_queue.append(req)
        if not self._issuing:
            self.drain_issue_queue()

    def drain_issue_queue(self) -> None:
        """Issue everything queued, even from inside another issue (a BPF run dispatching the
        SQEs its program submitted must see them issued before its request settles)."""
        outer = self._issuing
        self._issuing = True
        try:
            queue = self._issue_queue
            while queue:
                self._issue(queue.popleft())
        finally:
            self._issuing = outer

    def _issue(self, req: Request) -> None:
        req.state = ISSUED
        handler = self._handlers.get(req.opcode)
        if handler is None or req.cq_idx >= self.n_cqs or req.prep_error \
                or req.flags & _UNSUPPORTED_SQE_FLAGS:
            self._refuse(req)
            return
        if req.link_timeout is not None:
            ops.timeout.arm_link_timeout(self, req.link_timeout)
        handler(self, req)
        # still in flight: make it findable by ASYNC_CANCEL (ops that must be findable while
        # their handler runs, like BPF, track themselves earlier)
        if req.state != DONE and not req.tracked and req.opcode not in _UNTRACKED:
            self._track(req)

    def _refuse(self, req: Request) -> None:
        """Fail a request that cannot be issued, with the error the first problem calls for."""
        if req.cq_idx >= self.n_cqs:
            self.stats.invalid_cq_idx += 1
            log.warning("event=invalid_cq_idx cq_idx=%d n_cqs=%d user_data=%d", req.cq_idx,
                        self.n_cqs, req.user_data)
            req.cq_idx = 0
            self.complete(req, -EINVAL)
        elif req.prep_error:
            self.complete(req, -req.prep_error)
        else:  # unsupported SQE flags, or an opcode nobody handles
            self.complete(req, -EINVAL)

    # -- tracking for ASYNC_CANCEL ------------------------------------------------------------

    def track(self, req: Request) -> None:
        """Make ``req`` findable by ASYNC_CANCEL from now on."""
        if not req.tracked:
            self._track(req)

    def _track(self, req: Request) -> None:
        req.tracked = True
        table = self._by_user_data
        ud = req.user_data
        cur = table.get(ud)
        if cur is None:
            table[ud] = req
        elif isinstance(cur, list):
            cur.append(req)
        else:
            table[ud] = [cur, req]

    def _untrack(self, req: Request) -> None:
        req.tracked = False
        table = self._by_user_data
        ud = req.user_data
        cur = table.get(ud)
        if cur is req:
            del table[ud]
        elif isinstance(cur, list):
            cur.remove(req)
            if len(cur) == 1:
                table[ud] = cur[0]

    def find_requests(self, match: Callable[[Request], bool] | None = None,
                      user_data: int | None = None) -> list[Request]:
        """In-flight requests with ``user_data`` (or all matching ``match``), oldest first."""
        if user_data is not None:
            cur = self._by_user_data.get(user_data)
            found = [] if cur is None else (list(cur) if isinstance(cur, list) else [cur])
        else:
            found = []
            for cur in self._by_user_data.values():
                found.extend(cur if isinstance(cur, list) else [cur])
        if match is not None:
            found = [r for r in found if match(r)]
        return found

    # =========================================================================================
    # Completion
    # =========================================================================================

    def on_io_done(self, req: Request, res: int, cflags: int) -> None:
        """Backend callback: an operation finished."""
        self._completers.get(req.opcode, ops.complete_plain)(self, req, res, cflags)

    def on_io_more(self, req: Request, res: int, cflags: int) -> None:
        """Backend callback: one result of a multishot operation."""
        if req.state != DONE:
            self._post(req.cq_idx, req.user_data, res, cflags)

    def on_timer(self, req: Request) -> None:
        """Backend callback: a timer expired."""
        ops.timeout.on_timer(self, req)

    def complete(self, req: Request, res: int, cflags: int = 0, *, failed: bool | None = None,
                 counted: bool = True) -> None:
        """Final completion of ``req``: post its CQE, then settle its link chain."""
        if req.state == DONE:
            return
        req.state = DONE
        req.wait = WAIT_NONE
        if failed is None:
            failed = res < 0
        req.failed = failed
        if req.tracked:
            self._untrack(req)
        if failed or not req.flags & IOSQE_CQE_SKIP_SUCCESS:
            self._post(req.cq_idx, req.user_data, res, cflags, counted)
        if req.link_timeout is not None or req.link is not None:
            self._settle_links(req, failed)

    def _settle_links(self, req: Request, failed: bool) -> None:
        """After ``req`` completed: stop its link timeout, then start or cancel the rest of
        its chain."""
        lt = req.link_timeout
        if lt is not None:
            req.link_timeout = None
            if lt.state != DONE:
                if lt.state == ISSUED:
                    self.timers.cancel(lt)
                self.complete(lt, -ECANCELED, failed=False, counted=False)
        nxt = req.link
        if nxt is not None:
            req.link = None
            if failed and not req.flags & IOSQE_IO_HARDLINK:
                self._cancel_chain(nxt)
            else:
                self._issue_soon(nxt)

    def _cancel_chain(self, req: Request | None) -> None:
        while req is not None:
            nxt = req.link
            req.link = None
            req.state = DONE
            req.failed = True
            self._post(req.cq_idx if req.cq_idx < self.n_cqs else 0, req.user_data, -ECANCELED,
                       0)
            lt = req.link_timeout
            if lt is not None:
                req.link_timeout = None
                lt.state = DONE
                self._post(lt.cq_idx if lt.cq_idx < self.n_cqs else 0, lt.user_data,
                           -ECANCELED, 0)
            req = nxt

    def cancel_request(self, target: Request, done: Callable[[int], None]) -> None:
        """Cancel an in-flight request: it completes ``-ECANCELED``; ``done`` gets 0,
        ``-EALREADY`` (running now, cannot be stopped) or ``-ENOENT`` (already finished)."""
        if target.state == RUNNING:
            done(-EALREADY)
            return
        if target.state != ISSUED:
            done(-ENOENT)
            return
        wait = target.wait
        if wait == WAIT_IO:
            self.backend.cancel(target, done)
        elif wait == WAIT_TIMER:
            self.timers.cancel(target)
            self.complete(target, -ECANCELED)
            done(0)
        elif wait == WAIT_BPF:
            target.watch = None  # drops its CQ watch (checked lazily)
            self.complete(target, -ECANCELED)
            done(0)
        else:
            done(-EALREADY)

    # -- CQ posting -----------------------------------------------------------------------

    def post_cqe(self, cq_idx: int, user_data: int, res: int, flags: int) -> bool:
        """Post a CQE that belongs to no request (helpers, MSG_RING); ``False`` if dropped."""
        return self._post(cq_idx, user_data, res, flags)

    def post_cqe_uncounted(self, cq_idx: int, user_data: int, res: int, flags: int) -> bool:
        """Post a CQE that TIMEOUT counts ignore (an expiry, as in the kernel)."""
        return self._post(cq_idx, user_data, res, flags, False)

    def _post(self, cq_idx: int, user_data: int, res: int, flags: int,
              counted: bool = True) -> bool:
        stats = self.stats
        if cq_idx == 0:
            if self._overflow or not self._cq0.push(user_data, res, flags):
                self._overflow.append((user_data, res, flags))
                stats.cq0_overflowed += 1
                if len(self._overflow) > stats.cq0_overflow_max:
                    stats.cq0_overflow_max = len(self._overflow)
                sq = self.sq
                sq.set_flags(sq.flags() | IORING_SQ_CQ_OVERFLOW)
        elif not self.cqs[cq_idx].push(user_data, res, flags):
            self.cqs[cq_idx].count_dropped()
            stats.cq_dropped[cq_idx] += 1
            return False
        stats.cqes_posted[cq_idx] += 1
        self._dirty |= 1 << cq_idx
        if counted:
            self._seq[cq_idx] += 1
        if self._watched[cq_idx]:
            self._check_watches(cq_idx)
        return True

    def _flush_overflow(self) -> None:
        overflow = self._overflow
        push = self._cq0.push
        moved = False
        while overflow:
            if not push(*overflow[0]):
                break
            overflow.popleft()
            moved = True
        if moved:
            self._dirty |= 1
        if not overflow:
            sq = self.sq
            sq.set_flags(sq.flags() & ~IORING_SQ_CQ_OVERFLOW)

    def reap_cqe(self, cq_idx: int) -> tuple[int, int, int] | None:
        """Consume the oldest CQE of ``cq_idx`` on the engine side (``bpf_io_uring_reap_cqe``)."""
        cqe = self.cqs[cq_idx].pop()
        if cq_idx == 0 and self._overflow:
            self._flush_overflow()
        return cqe

    def after_cq0_reap(self) -> None:
        """The engine side took a CQE from CQ 0: room for the overflow list, if any."""
        if self._overflow:
            self._flush_overflow()

    def cq_count(self, cq_idx: int) -> int:
        """Unreaped CQEs of ``cq_idx`` (CQ 0 includes its overflow list)."""
        return self._cq_count(cq_idx)

    def _cq_count(self, cq_idx: int) -> int:
        if cq_idx == 0:
            return self._cq0.ready() + len(self._overflow)
        return self.cqs[cq_idx].ready()

    # -- CQ watches -----------------------------------------------------------------------

    def watch_ready(self, cq_idx: int, threshold: int, req: Request) -> None:
        """Re-run BPF request ``req`` once CQ ``cq_idx`` holds ``threshold`` unreaped CQEs
        (checked now, and whenever a CQE is posted there)."""
        if self._cq_count(cq_idx) >= threshold:
            req.watch = None
            self._rerun.append(req)
            return
        entry = [threshold, next(self._watch_seq), req]
        req.watch = entry
        _heappush(self._ready_watch[cq_idx], entry)
        self._watched[cq_idx] = True

    def watch_count(self, cq_idx: int, count: int, req: Request) -> None:
        """Call the TIMEOUT count hook once ``count`` more counted CQEs reach ``cq_idx``."""
        entry = [self._seq[cq_idx] + count, next(self._watch_seq), req]
        req.watch = entry
        heapq.heappush(self._seq_watch[cq_idx], entry)
        self._watched[cq_idx] = True

    def _check_watches(self, cq_idx: int) -> None:
        heap = self._ready_watch[cq_idx]
        if heap:
            ready = self._cq_count(cq_idx)
            while heap and heap[0][0] <= ready:
                entry = heapq.heappop(heap)
                req = entry[2]
                if req.watch is entry and req.state == ISSUED:
                    req.watch = None
                    self._rerun.append(req)
            while heap and (heap[0][2].watch is not heap[0] or heap[0][2].state == DONE):
                heapq.heappop(heap)
        seq_heap = self._seq_watch[cq_idx]
        if seq_heap:
            seq = self._seq[cq_idx]
            while seq_heap and seq_heap[0][0] <= seq:
                entry = heapq.heappop(seq_heap)
                req = entry[2]
                if req.state == ISSUED and req.watch is entry:
                    req.watch = None
                    ops.timeout.on_count_reached(self, req)
        self._watched[cq_idx] = bool(heap or seq_heap)

    # -- MSG_RING target side --------------------------------------------------------------

    def deliver_message(self, user_data: int, res: int, flags: int) -> None:
        """Post ``(user_data, res, flags)`` on CQ 0 of this engine, from any thread."""
        if self._lock.acquire(blocking=False):
            try:
                if not self.closed:
                    self._post(0, user_data, res, flags)
                    self.stats.msg_ring_delivered += 1
                    self._signal()
            finally:
                self._lock.release()
            return
        self._inbox.append((user_data, res, flags))
        self.ring_doorbell()

    # -- misc -----------------------------------------------------------------------------

    def now_ns(self) -> int:
        """The engine's clock (CLOCK_MONOTONIC), shared by timeouts and BPF programs."""
        return time.monotonic_ns()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("threaded" if self._thread else "sync")
        return f"Engine(ring_fd={self.ring_fd}, backend={self.backend.name}, {state})"


__all__ = ["Engine", "EngineClosed", "RegistrationError", "engine_for_fd"]
