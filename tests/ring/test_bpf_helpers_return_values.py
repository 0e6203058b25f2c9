"""Helper return values: emit_cqe -EINVAL for a bad CQ and -EOVERFLOW (dropped, counted) on
a full extra CQ; reap_cqe -EINVAL / -ENOENT; copy_to_user / copy_from_user -EFAULT (the
latter zero-fills); submit -EINVAL for a wrong size and -EBUSY once the engine's queue is
full; links span SQEs submitted in one run; ktime is monotonic."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from uring.abi import EBUSY, ECANCELED, EFAULT, EINVAL, ENOENT, EOVERFLOW, prep_bpf, prep_nop
from uring.program import BpfProgram
from uring.ring import Ring

LoadProgram = Callable[[str], BpfProgram]


def test_helper_probe(load_program: LoadProgram, make_ring: Callable[..., Ring]) -> None:
    ring = make_ring(cq_entries=(16, 4, 2))
    ring.register_bpf(0, load_program("helper_probe"))
    ring.queue(prep_nop(user_data=1, cq_idx=2))  # CQ 2 (2 entries) holds one CQE already
    ring.submit(1, cq_idx=2, timeout=5)
    args = ring.alloc.alloc(8 + 4 * 12 + 24)
    ring.user.write(args, struct.pack("<II", 2, 3))
    before = time.monotonic_ns()
    ring.queue(prep_bpf(0, user_data=args))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().res == 0
    out = struct.unpack("<12iQQII", ring.user.read(args + 8, 4 * 12 + 24))
    results, (t0, t1) = list(out[:12]), out[12:14]
    assert results == [-EINVAL, 0, -EOVERFLOW, -EINVAL, -ENOENT, -EINVAL, -EFAULT, -EFAULT,
                       -EFAULT, 0, -EINVAL, 0]
    assert before <= t0 <= t1 <= time.monotonic_ns()
    assert ring.engine.stats.cq_dropped[2] == 1
    assert [c.user_data for c in ring.reap_cqes(2)] == [2]


def test_submit_returns_ebusy_when_the_queue_is_full(load_program: LoadProgram, ring: Ring) -> None:
    ring.engine.max_helper_queue = 3
    ring.register_bpf(0, load_program("submit_many"))
    args = ring.alloc.alloc(8 + 4 * 5)
    ring.user.write(args, struct.pack("<II", 5, 1))
    ring.queue(prep_bpf(0, user_data=args))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().res == 0
    assert struct.unpack("<5i", ring.user.read(args + 8, 20)) == (0, 0, 0, -EBUSY, -EBUSY)
    assert [c.user_data for c in ring.reap_cqes(1)] == [1000, 1001, 1002]
    assert ring.engine.stats.helper_submit_rejected == 2


def test_link_spans_sqes_submitted_in_one_run(load_program: LoadProgram, ring: Ring) -> None:
    ring.register_bpf(0, load_program("submit_chain"))
    args = ring.alloc.alloc(8)
    ring.user.write(args, struct.pack("<iI", 0, 0))
    ring.queue(prep_bpf(0, user_data=args))
    ring.submit(4, timeout=5)
    got = {c.user_data: c.res for c in ring.reap_cqes()}
    assert got == {1: 0, 2: -EFAULT, 3: -ECANCELED, args: 0}


def test_emit_into_a_full_cq0_never_drops(load_program: LoadProgram,
                                          make_ring: Callable[..., Ring]) -> None:
    ring = make_ring(cq_entries=(4, 4))
    ring.register_bpf(0, load_program("emitter"))
    args = ring.alloc.alloc(8 + 4 * 10)
    ring.user.write(args, struct.pack("<II", 10, 0))
    ring.queue(prep_bpf(0, user_data=args, cq_idx=1))
    ring.submit(1, cq_idx=1, timeout=5)
    assert struct.unpack("<10i", ring.user.read(args + 8, 40)) == (0,) * 10
    got: list[tuple[int, int]] = []
    while len(got) < 10:
        batch = ring.reap_cqes()
        assert batch
        got.extend((c.user_data, c.res) for c in batch)
    assert got == [(2000 + i, i) for i in range(10)]
    assert ring.engine.stats.cq_dropped == [0, 0]
