"""The prototype's ``test`` example: a program emits one CQE and submits a NOP; both land
where asked, and the request completes with (user_data, 0) on its own CQ."""

from __future__ import annotations

import struct
from collections.abc import Callable

from uring.abi import prep_bpf
from uring.program import BpfProgram
from uring.ring import Ring

LoadProgram = Callable[[str], BpfProgram]


ARGS = struct.Struct("<IIQQii")


def test_emit_and_submit_from_a_program(load_program: LoadProgram, ring: Ring) -> None:
    ring.register_bpf(0, load_program("test"))
    args = ring.alloc.alloc(ARGS.size)
    ring.user.write(args, ARGS.pack(1, 0, 0xFEED, 0xBEEF, -1, -1))
    ring.queue(prep_bpf(0, user_data=args, cq_idx=2))
    ring.submit(1, cq_idx=2, timeout=5)
    ring.submit(1, cq_idx=0, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes(1)] == [(0xFEED, 42)]
    assert [(c.user_data, c.res) for c in ring.reap_cqes(0)] == [(0xBEEF, 0)]
    assert [(c.user_data, c.res) for c in ring.reap_cqes(2)] == [(args, 0)]
    assert ARGS.unpack(ring.user.read(args, ARGS.size))[4:] == (0, 0)
