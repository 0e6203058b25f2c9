"""The SQ refuses more SQEs than it has slots until they are submitted, and buffer-ring
registration rejects bad geometry and duplicate group IDs with specific errnos."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from uring.abi import EEXIST, EINVAL, ENOENT, prep_nop
from uring.engine import RegistrationError
from uring.ring import Ring, SubmissionQueueFull


def test_sq_full_until_submitted(make_ring: Callable[..., Ring]) -> None:
    ring = make_ring(sq_entries=4)
    for i in range(4):
        ring.queue(prep_nop(user_data=i))
    assert ring.sq_space_left() == 0
    with pytest.raises(SubmissionQueueFull, match="call submit"):
        ring.queue(prep_nop(user_data=4))
    ring.submit(4, timeout=5)
    assert ring.sq_space_left() == 4
    ring.queue_bytes(prep_nop(user_data=4).pack())
    ring.submit(1, timeout=5)
    assert [c.user_data for c in ring.reap_cqes()] == [0, 1, 2, 3, 4]


def test_buf_ring_registration_errors(ring: Ring) -> None:
    ring.setup_buf_ring(bgid=1, entries=2, buf_size=32)
    with pytest.raises(RegistrationError) as dup:
        ring.setup_buf_ring(bgid=1, entries=2, buf_size=32)
    assert dup.value.errno == EEXIST
    with pytest.raises(RegistrationError) as geometry:
        ring.engine.register_buf_ring(2, ring.alloc.alloc(48), 3)
    assert geometry.value.errno == EINVAL
    with pytest.raises(RegistrationError) as outside:
        ring.engine.register_buf_ring(3, ring.user.base + ring.user.size, 2)
    assert outside.value.errno == EINVAL
    ring.unregister_buf_ring(1)
    with pytest.raises(RegistrationError) as missing:
        ring.unregister_buf_ring(1)
    assert missing.value.errno == ENOENT
