"""The prototype's ``counting`` example, compiled: a BPF request re-armed by a TIMEOUT 11
times runs 12 times, reaps every timeout's -ETIME CQE, and the engine counts the runs and
re-arms (the prototype used 200 ms timeouts; 20 ms keep the test short and change nothing
else)."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from uring.abi import prep_bpf
from uring.ring import Ring

REARMS = 11
ARGS = struct.Struct("<QII")  # struct counting_args { u64 ts_addr; u32 limit; u32 cq; }


def test_counting_rearms_eleven_times(ring: Ring, load_example: Callable[[str], object]) -> None:
    obj = load_example("counting")
    ring.register_bpf(1, obj.programs["counting"])  # type: ignore[attr-defined]
    args = ring.alloc.alloc(ARGS.size)
    ring.user.write(args, ARGS.pack(ring.timespec(0.02), REARMS + 1, 1))
    start = time.monotonic()
    ring.queue(prep_bpf(1, user_data=args, cq_idx=2))
    ring.submit(1, cq_idx=2, timeout=10)
    elapsed = time.monotonic() - start
    assert [(c.user_data, c.res) for c in ring.reap_cqes(2)] == [(args, 0)]
    counters = obj.maps["counting_stats"]  # type: ignore[attr-defined]
    runs, reaped, timed_out = (counters.lookup_int(i) for i in range(3))
    assert (runs, reaped, timed_out) == (REARMS + 1, REARMS, REARMS)
    stats = ring.engine.stats
    assert (stats.bpf_runs, stats.bpf_rearms, stats.bpf_completed) == (REARMS + 1, REARMS, 1)
    assert stats.cqes_posted[1] == REARMS and ring.cq_ready(1) == 0
    assert elapsed >= REARMS * 0.02
