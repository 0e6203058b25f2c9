"""IORING_OP_TIMEOUT and IORING_OP_LINK_TIMEOUT.

TIMEOUT (``addr`` -> ``__kernel_timespec``, ``len`` must be 1, ``off`` = count):

* completes ``-ETIME`` when the time passes (a failure, unless
  ``IORING_TIMEOUT_ETIME_SUCCESS``), or ``0`` once ``count`` other CQEs were posted on its CQ
  after it was queued (0: time only).  As in the kernel, CQEs of timeouts that *expired* do not
  count;
* ``IORING_TIMEOUT_ABS``: the timespec is a deadline on CLOCK_MONOTONIC, or on
  CLOCK_BOOTTIME / CLOCK_REALTIME with those flags (converted to the monotonic clock when
  armed);
* ``IORING_TIMEOUT_MULTISHOT``: fires every interval, posting ``-ETIME`` with
  ``IORING_CQE_F_MORE``; ``off`` is then the number of shots (0: until cancelled).  Each shot
  is re-armed one interval after it fired, as the kernel does, so a late shot delays the
  next ones rather than being followed by a burst.

LINK_TIMEOUT guards the request linked before it; it is armed when that request is issued
(see :mod:`uring.requests` for the outcome rules).  The expiry result is ``-ETIME`` when the
guarded request was cancelled, or the cancel's error (``-EALREADY``) when it could not be.
"""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from uring.abi import (
    EFAULT,
    EINVAL,
    ETIME,
    IORING_CQE_F_MORE,
    IORING_OP_LINK_TIMEOUT,
    IORING_TIMEOUT_ABS,
    IORING_TIMEOUT_BOOTTIME,
    IORING_TIMEOUT_ETIME_SUCCESS,
    IORING_TIMEOUT_MULTISHOT,
    IORING_TIMEOUT_REALTIME,
)
from uring.requests import DONE, ISSUED, RUNNING, WAIT_TIMER
from uring.user_memory import UserMemoryFault

if TYPE_CHECKING:
    from uring.engine import Engine
    from uring.requests import Request

_CLOCKS = IORING_TIMEOUT_BOOTTIME | IORING_TIMEOUT_REALTIME
_TIMEOUT_FLAGS = (IORING_TIMEOUT_ABS | _CLOCKS | IORING_TIMEOUT_ETIME_SUCCESS
                  | IORING_TIMEOUT_MULTISHOT)
_LINK_TIMEOUT_FLAGS = IORING_TIMEOUT_ABS | _CLOCKS
_timespec_unpack = struct.Struct("<qq").unpack_from


class _BadTimeout(Exception):
    def __init__(self, errno: int) -> None:
        self.errno = errno


class TimeoutState:
    """What an armed multishot TIMEOUT remembers between expiries."""

    __slots__ = ("flags", "interval_ns", "deadline_ns", "shots", "fired")

    def __init__(self, flags: int, interval_ns: int, deadline_ns: int, shots: int) -> None:
        self.flags = flags
        self.interval_ns = interval_ns
        self.deadline_ns = deadline_ns
        self.shots = shots
        self.fired = 0


def _deadline(engine: Engine, req: Request, allowed: int) -> tuple[int, int]:
    """``(deadline_ns on CLOCK_MONOTONIC, interval_ns)`` of a (link) timeout SQE."""
    flags = req.op_flags
    if req.len != 1 or flags & ~allowed or (flags & _CLOCKS) == _CLOCKS:
        raise _BadTimeout(EINVAL)
    if flags & IORING_TIMEOUT_MULTISHOT and flags & IORING_TIMEOUT_ABS:
        raise _BadTimeout(EINVAL)
    try:
        sec, nsec = engine.mem.read_timespec(req.addr)
    except UserMemoryFault:
        raise _BadTimeout(EFAULT) from None
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise _BadTimeout(EINVAL)
    ns = sec * 1_000_000_000 + nsec
    now = engine.now_ns()
    if not flags & IORING_TIMEOUT_ABS:
        return now + ns, ns
    if flags & IORING_TIMEOUT_REALTIME:
        return ns - time.clock_gettime_ns(time.CLOCK_REALTIME) + now, 0
    if flags & IORING_TIMEOUT_BOOTTIME:
        return ns - time.clock_gettime_ns(time.CLOCK_BOOTTIME) + now, 0
    return ns, 0


def issue_timeout(engine: Engine, req: Request) -> None:
    flags = req.op_flags
    if not flags and req.len == 1:
        # the common case, a relative single-shot timeout: read the timespec in place
        mem = engine.mem
        off = req.addr - mem.base
        if 0 <= off <= mem.size - 16:
            sec, nsec = _timespec_unpack(mem.view, off)
            if sec >= 0 and 0 <= nsec < 1_000_000_000:
                req.wait = WAIT_TIMER
                if req.off:
                    engine.watch_count(req.cq_idx, req.off, req)
                engine.timers.arm(req, engine.now_ns() + sec * 1_000_000_000 + nsec)
                return
    try:
        deadline, interval = _deadline(engine, req, _TIMEOUT_FLAGS)
    except _BadTimeout as exc:
        engine.complete(req, -exc.errno)
        return
    multishot = bool(flags & IORING_TIMEOUT_MULTISHOT)
    if multishot:
        req.io = TimeoutState(flags, interval, deadline, req.off)
    req.wait = WAIT_TIMER
    if req.off and not multishot:
        engine.watch_count(req.cq_idx, req.off, req)
    engine.timers.arm(req, deadline)


def on_count_reached(engine: Engine, req: Request) -> None:
    """Enough CQEs were posted: the TIMEOUT completes with 0 before its time."""
    engine.timers.cancel(req)
    engine.complete(req, 0)


def on_timer(engine: Engine, req: Request) -> None:
    """A (link) timeout's timer expired."""
    if req.state == DONE:
        return
    if req.opcode == IORING_OP_LINK_TIMEOUT:
        _link_timeout_fired(engine, req)
        return
    flags = req.op_flags
    if flags & IORING_TIMEOUT_MULTISHOT:
        state: TimeoutState = req.io  # type: ignore[assignment]
        state.fired += 1
        if not state.shots or state.fired < state.shots:
            engine.post_cqe_uncounted(req.cq_idx, req.user_data, -ETIME, IORING_CQE_F_MORE)
            # the next shot counts from now, as the kernel re-arms it: a late shot shifts the
            # ones after it instead of firing the missed ones back to back
            state.deadline_ns = engine.now_ns() + state.interval_ns
            engine.timers.arm(req, state.deadline_ns)
            return
    req.watch = None
    engine.complete(req, -ETIME, failed=not flags & IORING_TIMEOUT_ETIME_SUCCESS,
                    counted=False)


# -- LINK_TIMEOUT -------------------------------------------------------------------------------


def issue_link_timeout(engine: Engine, req: Request) -> None:
    """A LINK_TIMEOUT reaching the dispatcher on its own has nothing to guard."""
    engine.complete(req, -EINVAL)


def arm_link_timeout(engine: Engine, lt: Request) -> None:
    """Start ``lt``'s timer; called as the request it guards is issued."""
    try:
        deadline, _ = _deadline(engine, lt, _LINK_TIMEOUT_FLAGS)
    except _BadTimeout as exc:
        guarded = lt.guarded
        if guarded is not None:
            guarded.link_timeout = None
        lt.guarded = None
        lt.state = ISSUED
        engine.complete(lt, -exc.errno)
        return
    lt.state = ISSUED
    lt.wait = WAIT_TIMER
    engine.timers.arm(lt, deadline)


def _link_timeout_fired(engine: Engine, lt: Request) -> None:
    guarded = lt.guarded
    lt.guarded = None
    if guarded is None or guarded.state not in (ISSUED, RUNNING):
        engine.complete(lt, -ETIME, counted=False)
        return
    if guarded.link_timeout is lt:
        guarded.link_timeout = None
    lt.wait = 0

    def done(res: int) -> None:
        engine.complete(lt, -ETIME if res == 0 else res, counted=False)

    engine.cancel_request(guarded, done)
