"""The prototype's ``test`` example, compiled: the first run emits on CQ 0 and CQ 1, reaps
both back, submits a NOP to CQ 0 and waits for it; the NOP's CQE re-runs the request, whose
second run turns 29 into 31 in user memory before it completes."""

from __future__ import annotations

import struct
from collections.abc import Callable

from uring.abi import prep_bpf
from uring.ring import Ring

ARGS = struct.Struct("<IIIi QiI QiI")  # in, out, runs, submit_res, reaped[2]


def test_emit_reap_submit_and_rerun(ring: Ring, load_example: Callable[[str], object]) -> None:
    obj = load_example("test")
    ring.register_bpf(0, obj.programs["test"])  # type: ignore[attr-defined]
    args = ring.alloc.alloc(ARGS.size)
    ring.user.write(args, ARGS.pack(29, 0, 0, -1, 0, 0, 0, 0, 0, 0))
    ring.queue(prep_bpf(0, user_data=args))
    ring.submit(2, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(0x7E570002, 0), (args, 0)]
    a = ARGS.unpack(ring.user.read(args, ARGS.size))
    assert a[:4] == (29, 31, 2, 0)
    assert a[4:7] == (0x7E570000, 1, 0) and a[7:] == (0x7E570001, 2, 0)
    assert ring.engine.stats.bpf_runs == 2 and ring.cq_ready(1) == 0
