"""SQE flags the engine does not implement (fixed files, drain) and opcodes it does not know
fail the request with -EINVAL instead of being silently misread."""

from __future__ import annotations

import pytest

from uring.abi import (
    EINVAL,
    IORING_OP_FSYNC,
    IOSQE_FIXED_FILE,
    IOSQE_IO_DRAIN,
    Sqe,
    prep_nop,
)
from uring.ring import Ring


@pytest.mark.parametrize("flag", [IOSQE_FIXED_FILE, IOSQE_IO_DRAIN, 1 << 7])
def test_unsupported_sqe_flags_are_einval(ring: Ring, flag: int) -> None:
    ring.queue(prep_nop(user_data=1, flags=flag))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, -EINVAL)]


@pytest.mark.parametrize("opcode", [IORING_OP_FSYNC, 0x7F, 0xFF])
def test_unknown_or_unimplemented_opcodes_are_einval(ring: Ring, opcode: int) -> None:
    ring.queue(Sqe(opcode, user_data=2))
    ring.submit(1, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(2, -EINVAL)]
