"""The engine's timer heap fires due timers earliest first, never a cancelled one (even one
cancelled by a timer that fired just before it), reports the earliest live deadline past
cancelled entries, and leaves a timer that a firing callback re-arms for the next call, so
one call always ends."""

from __future__ import annotations

from uring.abi import SQE_STRUCT, prep_timeout
from uring.requests import Request
from uring.timer_heap import TimerHeap


def _request(user_data: int) -> Request:
    return Request(SQE_STRUCT.unpack(prep_timeout(0, user_data=user_data).pack()))


def test_due_timers_fire_earliest_first_and_cancelled_ones_never() -> None:
    heap = TimerHeap()
    reqs = {ud: _request(ud) for ud in range(1, 6)}
    for ud, deadline in [(1, 300), (2, 100), (3, 200), (4, 150), (5, 900)]:
        heap.arm(reqs[ud], deadline)
    assert heap.cancel(reqs[2]) is True
    assert heap.cancel(reqs[2]) is False          # already disarmed
    assert heap.next_deadline() == 150            # the cancelled 100 is skipped
    fired: list[int] = []
    heap.expire(300, lambda req: fired.append(req.user_data))
    assert fired == [4, 3, 1]
    assert all(reqs[ud].timer is None for ud in (1, 3, 4))
    assert heap.cancel(reqs[1]) is False          # fired timers cannot be cancelled
    assert heap.next_deadline() == 900
    heap.expire(899, lambda req: fired.append(req.user_data))
    assert fired == [4, 3, 1]


def test_a_timer_rearmed_while_firing_waits_for_the_next_call() -> None:
    heap = TimerHeap()
    req = _request(7)
    heap.arm(req, 10)
    shots: list[int] = []

    def fire(r: Request) -> None:
        shots.append(r.user_data)
        heap.arm(r, 10)  # already due again: a zero-interval multishot timer

    heap.expire(20, fire)
    assert shots == [7]
    assert heap.next_deadline() == 10
    heap.expire(20, fire)
    assert shots == [7, 7]


def test_a_timer_cancelled_by_an_earlier_one_in_the_same_call_does_not_fire() -> None:
    heap = TimerHeap()
    first, second = _request(1), _request(2)
    heap.arm(first, 5)
    heap.arm(second, 6)
    fired: list[int] = []

    def fire(r: Request) -> None:
        fired.append(r.user_data)
        heap.cancel(second)

    heap.expire(10, fire)
    assert fired == [1]
