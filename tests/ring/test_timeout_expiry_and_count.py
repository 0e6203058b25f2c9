"""TIMEOUT: relative and absolute deadlines expire with -ETIME, a count completes it with 0
once enough other CQEs arrived, ETIME_SUCCESS and MULTISHOT behave as in the kernel, and bad
SQEs fail with -EINVAL/-EFAULT."""

from __future__ import annotations

import time

import pytest

from uring.abi import (
    EFAULT,
    EINVAL,
    ETIME,
    IORING_CQE_F_MORE,
    IORING_TIMEOUT_ABS,
    IORING_TIMEOUT_BOOTTIME,
    IORING_TIMEOUT_ETIME_SUCCESS,
    IORING_TIMEOUT_MULTISHOT,
    IORING_TIMEOUT_REALTIME,
    IOSQE_CQE_SKIP_SUCCESS,
    IOSQE_IO_LINK,
    Sqe,
    prep_nop,
    prep_timeout,
)
from uring.ring import Ring


def test_relative_timeout_expires_with_etime_not_before_its_time(ring: Ring) -> None:
    ts = ring.timespec(0.05)
    start = time.monotonic()
    ring.queue(prep_timeout(ts, user_data=1))
    ring.submit(1, timeout=5)
    elapsed = time.monotonic() - start
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, -ETIME)]
    assert elapsed >= 0.05


@pytest.mark.parametrize(
    ("flag", "clock"),
    [(0, time.CLOCK_MONOTONIC), (IORING_TIMEOUT_BOOTTIME, time.CLOCK_BOOTTIME),
     (IORING_TIMEOUT_REALTIME, time.CLOCK_REALTIME)],
)
def test_absolute_timeout_on_each_clock(ring: Ring, flag: int, clock: int) -> None:
    ts = ring.alloc.alloc(16)
    deadline = time.clock_gettime_ns(clock) + 40_000_000
    ring.user.write(ts, deadline.to_bytes(16, "little"))  # placeholder, rewritten below
    ring.user.write(ts, (deadline // 10**9).to_bytes(8, "little")
                    + (deadline % 10**9).to_bytes(8, "little"))
    start = time.monotonic()
    ring.queue(prep_timeout(ts, op_flags=IORING_TIMEOUT_ABS | flag, user_data=2))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(2, -ETIME)]
    assert time.monotonic() - start >= 0.035


def test_count_completes_the_timeout_with_zero(ring: Ring) -> None:
    ts = ring.timespec(30)
    ring.queue(prep_timeout(ts, count=3, user_data=9))
    ring.submit()
    for i in range(3):
        ring.queue(prep_nop(user_data=i))
    ring.submit(4, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(0, 0), (1, 0), (2, 0), (9, 0)]


def test_count_ignores_cqes_of_expired_timeouts_and_other_cqs(ring: Ring) -> None:
    ts_long = ring.timespec(30)
    ts_short = ring.timespec(0.01)
    ring.queue(prep_timeout(ts_long, count=2, user_data=9))
    ring.queue(prep_timeout(ts_short, user_data=8))        # expires: must not count
    ring.queue(prep_nop(user_data=7, cq_idx=1))             # other CQ: must not count
    ring.submit()
    ring.submit(1, timeout=5)
    assert [c.user_data for c in ring.reap_cqes()] == [8]
    ring.queue(prep_nop(user_data=1))
    ring.queue(prep_nop(user_data=2))
    ring.submit(3, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, 0), (2, 0), (9, 0)]


def test_etime_success_keeps_the_link_going_and_honours_skip(ring: Ring) -> None:
    ts = ring.timespec(0.01)
    ring.queue(prep_timeout(ts, op_flags=IORING_TIMEOUT_ETIME_SUCCESS, user_data=1,
                            flags=IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS))
    ring.queue(prep_nop(user_data=2))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(2, 0)]


def test_plain_expiry_breaks_the_link(ring: Ring) -> None:
    ts = ring.timespec(0.01)
    ring.queue(prep_timeout(ts, user_data=1, flags=IOSQE_IO_LINK))
    ring.queue(prep_nop(user_data=2))
    ring.submit(2, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, -ETIME), (2, -125)]


def test_multishot_timeout_fires_count_times_with_more(ring: Ring) -> None:
    ts = ring.timespec(0.01)
    ring.queue(prep_timeout(ts, count=3, op_flags=IORING_TIMEOUT_MULTISHOT, user_data=5))
    ring.submit(3, timeout=5)
    got = [(c.user_data, c.res, c.flags & IORING_CQE_F_MORE) for c in ring.reap_cqes()]
    assert got == [(5, -ETIME, IORING_CQE_F_MORE), (5, -ETIME, IORING_CQE_F_MORE),
                   (5, -ETIME, 0)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"len": 2}, -EINVAL),
        ({"op_flags": IORING_TIMEOUT_BOOTTIME | IORING_TIMEOUT_REALTIME}, -EINVAL),
        ({"op_flags": IORING_TIMEOUT_ABS | IORING_TIMEOUT_MULTISHOT}, -EINVAL),
        ({"op_flags": 1 << 20}, -EINVAL),
        ({"addr": 0}, -EFAULT),
    ],
)
def test_invalid_timeout_sqes(ring: Ring, change: dict, expected: int) -> None:
    sqe: Sqe = prep_timeout(ring.timespec(1), user_data=3)
    for key, value in change.items():
        setattr(sqe, key, value)
    ring.queue(sqe)
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(3, expected)]


def test_negative_timespec_is_invalid(ring: Ring) -> None:
    ts = ring.alloc.alloc(16)
    ring.user.write(ts, (-1).to_bytes(8, "little", signed=True) + bytes(8))
    ring.queue(prep_timeout(ts, user_data=4))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(4, -EINVAL)]
