"""Every run of a BPF request starts from a zeroed ctx with user_data copied from the SQE,
and CQEs the program itself emits into the CQ it waits on trigger its re-run."""

from __future__ import annotations

import struct
from collections.abc import Callable

from uring.abi import prep_bpf
from uring.program import BpfProgram
from uring.ring import Ring

LoadProgram = Callable[[str], BpfProgram]


RUNS = 5


def test_each_run_sees_a_fresh_ctx(load_program: LoadProgram, ring: Ring) -> None:
    ring.register_bpf(5, load_program("ctx_recorder"))
    args = ring.alloc.alloc(16 + 24 * RUNS)
    ring.user.write(args, struct.pack("<IIII", 0, RUNS, 1, 0))
    ring.queue(prep_bpf(5, user_data=args))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().res == 0
    runs = struct.unpack_from("<I", ring.user.read(args, 4))[0]
    assert runs == RUNS
    log = [struct.unpack_from("<QQQ", ring.user.read(args + 16 + 24 * i, 24))
           for i in range(RUNS)]
    assert log == [(args, 0, 0)] * RUNS
    assert ring.engine.stats.bpf_rearms == RUNS - 1
