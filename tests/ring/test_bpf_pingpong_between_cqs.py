"""The prototype's ``pingpong`` example: two BPF requests bounce a counter through CQ 1 and
CQ 2, each re-run by the other's CQE, until it reaches 20; both then complete on CQ 0."""

from __future__ import annotations

import struct
from collections.abc import Callable

from uring.abi import prep_bpf
from uring.program import BpfProgram
from uring.ring import Ring

LoadProgram = Callable[[str], BpfProgram]


LIMIT = 20
ARGS = struct.Struct("<IIIIiIII")


def test_pingpong_reaches_twenty(load_program: LoadProgram, ring: Ring) -> None:
    ring.register_bpf(10, load_program("pingpong"))
    ping = ring.alloc.alloc(ARGS.size)
    pong = ring.alloc.alloc(ARGS.size)
    ring.user.write(ping, ARGS.pack(1, 2, LIMIT, 1, 0, 0, 0, 0))  # reads CQ 1, writes CQ 2
    ring.user.write(pong, ARGS.pack(2, 1, LIMIT, 0, 0, 0, 0, 0))  # reads CQ 2, writes CQ 1
    ring.queue(prep_bpf(10, user_data=pong))  # the waiting side first
    ring.queue(prep_bpf(10, user_data=ping))
    ring.submit(2, timeout=10)
    assert sorted(c.user_data for c in ring.reap_cqes()) == sorted([ping, pong])
    a = ARGS.unpack(ring.user.read(ping, ARGS.size))
    b = ARGS.unpack(ring.user.read(pong, ARGS.size))
    assert a[5] + b[5] == LIMIT + 1  # every value 0..20 was emitted exactly once
    assert max(a[4], b[4]) == LIMIT  # one side saw the final value
    assert ring.engine.stats.bpf_rearms >= LIMIT - 1
