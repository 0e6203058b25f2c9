"""The prototype's ``pingpong`` example, compiled: ``ping`` (waits on CQ 1) and ``pong``
(waits on CQ 2) bounce a counter, each re-run by the other's emitted CQE, from the NOP that
serves the first ball until 20; both requests then complete on CQ 0."""

from __future__ import annotations

import struct
from collections.abc import Callable

from uring.abi import prep_bpf, prep_nop
from uring.ring import Ring

LIMIT = 20
SIDE = struct.Struct("<IiII")  # struct side_state { u32 runs; s32 last; u32 answered; pad }


def test_pingpong_reaches_twenty(ring: Ring, load_example: Callable[[str], object]) -> None:
    obj = load_example("pingpong")
    ring.register_bpf(10, obj.programs["ping"])  # type: ignore[attr-defined]
    ring.register_bpf(11, obj.programs["pong"])  # type: ignore[attr-defined]
    ring.queue(prep_bpf(10, user_data=0x9196))
    ring.queue(prep_bpf(11, user_data=0x9095))
    ring.queue(prep_nop(user_data=0xBA11, cq_idx=1))  # the first ball: res 0 on CQ 1
    ring.submit(2, timeout=10)
    assert sorted((c.user_data, c.res) for c in ring.reap_cqes()) == [(0x9095, 0), (0x9196, 0)]
    sides = obj.maps["pingpong_sides"]  # type: ignore[attr-defined]
    ping = SIDE.unpack(sides.lookup(0))
    pong = SIDE.unpack(sides.lookup(1))
    assert ping[2] + pong[2] == LIMIT       # values 1..20 were each answered once
    assert (ping[1], pong[1]) == (LIMIT, LIMIT - 1)
    assert ring.engine.stats.bpf_rearms == ping[0] + pong[0] - 2
    assert ring.cq_ready(1) == ring.cq_ready(2) == 0
