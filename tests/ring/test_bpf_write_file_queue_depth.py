"""The prototype's ``write_file`` example, compiled: one BPF request keeps four WRITEs in
flight (never more) until the whole file is written, reaping their CQEs from CQ 1."""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable

from uring.abi import prep_bpf
from uring.ring import Ring

ARGS = struct.Struct("<iIQIIII")  # fd, chunk, buf, total, depth, cq, pad
STATE = struct.Struct("<6I")      # next, inflight, done, max_inflight, errors, runs
CHUNK = 512
TOTAL = 40
DEPTH = 4


def test_write_file_with_queue_depth_four(ring: Ring,
                                          load_example: Callable[[str], object]) -> None:
    fd, path = tempfile.mkstemp()
    os.unlink(path)
    try:
        obj = load_example("write_file")
        ring.register_bpf(20, obj.programs["write_file"])  # type: ignore[attr-defined]
        data = bytes((i * 7) & 0xFF for i in range(CHUNK * TOTAL))
        buf = ring.alloc.alloc(len(data))
        ring.user.write(buf, data)
        args = ring.alloc.alloc(ARGS.size)
        ring.user.write(args, ARGS.pack(fd, CHUNK, buf, TOTAL, DEPTH, 1, 0))
        ring.queue(prep_bpf(20, user_data=args))
        ring.submit(1, timeout=10)
        assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(args, 0)]
        nxt, inflight, done, max_inflight, errors, _runs = STATE.unpack(
            obj.maps["write_file_state"].lookup(0))  # type: ignore[attr-defined]
        assert (nxt, inflight, done, errors) == (TOTAL, 0, TOTAL, 0)
        assert max_inflight == DEPTH
        assert os.pread(fd, len(data) + 1, 0) == data
    finally:
        os.close(fd)
