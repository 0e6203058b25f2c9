"""The prototype's ``counting`` example: a BPF request re-armed by a timeout 11 times runs
12 times, each run from a fresh ctx, and the engine counts runs and re-arms (the prototype
used 200 ms timeouts; 20 ms keep the test short and change nothing else)."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from uring.abi import ETIME, prep_bpf
from uring.program import BpfProgram
from uring.ring import Ring

LoadProgram = Callable[[str], BpfProgram]


REARMS = 11


def test_counting_rearms_eleven_times(load_program: LoadProgram, ring: Ring) -> None:
    ring.register_bpf(1, load_program("counting"))
    ts = ring.timespec(0.02)
    args = ring.alloc.alloc(24)
    ring.user.write(args, struct.pack("<QIIII", ts, 0, REARMS, 1, 0))
    start = time.monotonic()
    ring.queue(prep_bpf(1, user_data=args, cq_idx=2))
    ring.submit(1, cq_idx=2, timeout=10)
    elapsed = time.monotonic() - start
    assert [(c.user_data, c.res) for c in ring.reap_cqes(2)] == [(args, 0)]
    _, runs, _, _, reaped = struct.unpack("<QIIII", ring.user.read(args, 24))
    assert runs == REARMS + 1
    assert reaped == REARMS
    stats = ring.engine.stats
    assert (stats.bpf_runs, stats.bpf_rearms, stats.bpf_completed) == (REARMS + 1, REARMS, 1)
    assert elapsed >= REARMS * 0.02
    assert ring.cq_ready(1) == 0  # every timeout CQE was reaped by the program
    assert stats.cqes_posted[1] == REARMS


def test_timeout_cqes_reach_cq1_with_etime(load_program: LoadProgram, ring: Ring) -> None:
    ring.register_bpf(1, load_program("counting"))
    ts = ring.timespec(0.001)
    args = ring.alloc.alloc(24)
    ring.user.write(args, struct.pack("<QIIII", ts, 0, 1, 1, 0))
    ring.queue(prep_bpf(1, user_data=args))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().res == 0
    # the one timeout's CQE was reaped by the program; its result was -ETIME
    assert ring.engine.stats.cqes_posted[1] == 1
    assert ETIME == 62
