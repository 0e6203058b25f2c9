"""The engine's timers: deadlines on the monotonic clock, kept in a heap, earliest first.

TIMEOUT and LINK_TIMEOUT requests arm a timer here; the engine waits on its backend no
longer than the earliest deadline and fires what is due after each wait.  Both backends
share this one heap, so a timer costs a heap push and a pop whatever the backend -- no
kernel TIMEOUT, no ``TIMEOUT_REMOVE``, no per-timer file descriptor.

Cancelling only marks the entry dead (O(1)); dead entries are dropped when they reach the
top of the heap.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uring.requests import Request

_heappush = heapq.heappush
_heappop = heapq.heappop


class TimerHeap:
    """Armed timers, each ``[deadline_ns, sequence, request]`` (request ``None`` once dead).

    ``Request.timer`` points at the request's live entry, so a cancel finds it directly.
    """

    __slots__ = ("heap", "_seq")

    def __init__(self) -> None:
        self.heap: list[list] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self.heap)

    def arm(self, req: Request, deadline_ns: int) -> None:
        """Fire ``req`` once the monotonic clock reaches ``deadline_ns``."""
        entry = [deadline_ns, next(self._seq), req]
        req.timer = entry
        _heappush(self.heap, entry)

    def cancel(self, req: Request) -> bool:
        """Disarm ``req``'s timer; ``False`` if it already fired or was never armed."""
        entry = req.timer
        if entry is None:
            return False
        req.timer = None
        entry[2] = None
        return True

    def next_deadline(self) -> int | None:
        """The earliest live deadline, or ``None`` when nothing is armed."""
        heap = self.heap
        while heap:
            top = heap[0]
            if top[2] is not None:
                return top[0]
            _heappop(heap)
        return None

    def expire(self, now_ns: int, fire: Callable[[Request], None]) -> None:
        """Call ``fire(req)`` for every timer due at ``now_ns``, earliest first.  A timer that
        ``fire`` arms waits for the next call even when it is already due, so one call
        always ends (a multishot TIMEOUT with a zero interval fires once per engine pass)."""
        heap = self.heap
        if not heap or heap[0][0] > now_ns:
            return
        due = []
        while heap and heap[0][0] <= now_ns:
            entry = _heappop(heap)
            if entry[2] is not None:
                due.append(entry)
        for entry in due:
            req = entry[2]
            if req is None:
                continue  # cancelled by a timer that fired before it in this call
            entry[2] = None
            if req.timer is entry:
                req.timer = None
            fire(req)
