"""Every run starts from a fresh run state, whichever path runs it and whatever the last did.

The translated program reuses its run-state objects (resetting them is cheaper than making
new ones), so this pins what must not leak from one run into the next: the regions a
hash-map lookup mapped (pointer values, hence region numbers, must repeat run after run),
the instruction count, the ctx and the engine -- also after a run that aborted.
"""

from __future__ import annotations

import struct

from insn_builder import I, exit_, mov64, verified
from recording_env import RecordingEnv

from uring.bpf import HashMap, io_uring_helpers, isa
from uring.bpf.interpreter import Interpreter
from uring.bpf.translator import translate
from uring.program import BpfRunError

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K


def program() -> list:
    # two hash lookups (keys 1 and 2); if ctx->wait_nr: fault by loading from NULL + 8;
    # return the second value's address (its region number shows through)
    look = [I(MOVX, 2, 10), I(ADDK, 2, 0, 0, -8),
            I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, 0), I(0),
            I(isa.OP_CALL, 0, 0, 0, 1)]
    return [I(MOVX, 6, 1), I(isa.BPF_ST | isa.BPF_MEM | isa.BPF_DW, 10, 0, -8, 1), *look,
            I(isa.BPF_ST | isa.BPF_MEM | isa.BPF_DW, 10, 0, -8, 2), *look, I(MOVX, 7, 0),
            I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, 2, 6, 8),
            I(isa.BPF_JMP | isa.BPF_JEQ | isa.BPF_K, 2, 0, 2, 0),
            mov64(3, 0), I(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_DW, 0, 3, 8),
            I(MOVX, 0, 7), exit_()]


def hash_map() -> HashMap:
    m = HashMap("h", 8, 8, 8)
    m.update(1, 10)
    m.update(2, 20)
    return m


def outcomes(run) -> list:
    out = []
    for wait_nr in (0, 1, 0, 0, 1, 0):
        ctx = bytearray(struct.pack("<QII", 0, wait_nr, 0))
        try:
            out.append(("ok", run(ctx, RecordingEnv())))
        except BpfRunError as exc:
            out.append(("error", str(exc), exc.errno))
    return out


def test_runs_repeat_identically_after_aborted_runs() -> None:
    helpers = io_uring_helpers()
    maps_a, maps_b = [hash_map()], [hash_map()]
    interp = Interpreter(verified(program(), maps_a), maps_a, helpers, 1000)
    fast = translate(verified(program(), maps_b), maps_b, helpers, 1000)
    a, b = outcomes(interp.run), outcomes(fast.run)
    assert a == b
    assert a[0] == a[2] == a[3] == a[5] and a[0][0] == "ok"
    assert a[1] == a[4] and a[1][0] == "error"
    assert "POOL" in fast.source  # the translated run reuses its run states
