"""The prototype's ``write_file`` example: one BPF request keeps four WRITEs in flight
(never more) until the whole file is written, reaping their CQEs from CQ 1."""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable

from uring.abi import prep_bpf
from uring.program import BpfProgram
from uring.ring import Ring

LoadProgram = Callable[[str], BpfProgram]


ARGS = struct.Struct("<iIQIIIIIIII")
CHUNK = 512
TOTAL = 40
DEPTH = 4


def test_write_file_with_queue_depth_four(load_program: LoadProgram, ring: Ring) -> None:
    fd, path = tempfile.mkstemp()
    os.unlink(path)
    try:
        ring.register_bpf(20, load_program("write_file"))
        data = bytes((i * 7) & 0xFF for i in range(CHUNK * TOTAL))
        buf = ring.alloc.alloc(len(data))
        ring.user.write(buf, data)
        args = ring.alloc.alloc(ARGS.size)
        ring.user.write(args, ARGS.pack(fd, CHUNK, buf, TOTAL, 0, 0, 0, 0, 1, DEPTH, 0))
        ring.queue(prep_bpf(20, user_data=args))
        ring.submit(1, timeout=10)
        assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(args, 0)]
        _, _, _, _, nxt, inflight, done, max_inflight, _, _, errors = ARGS.unpack(
            ring.user.read(args, ARGS.size))
        assert (nxt, inflight, done, errors) == (TOTAL, 0, TOTAL, 0)
        assert max_inflight == DEPTH
        assert os.pread(fd, len(data) + 1, 0) == data
    finally:
        os.close(fd)
