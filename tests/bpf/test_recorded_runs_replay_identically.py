"""Runs recorded against an engine replay exactly, on both paths; a different call is caught.

A program that reaps CQEs, copies from user memory, reads the clock, draws randoms, emits a
CQE and updates an array map runs three times against a recording engine double, under a
:class:`~uring.bpf.run_trace.TraceRecorder`.  Replaying the trace -- maps restored, every
engine answer played back -- must make the recorded calls in order and leave the maps the
recorded runs left, through the interpreter and the translator alike; a program that makes
another call than the recorded one fails the replay, naming the call.
"""

from __future__ import annotations

import struct

import pytest
from insn_builder import I, exit_, ld_imm64, mov64, verified
from recording_env import USER_BASE, RecordingEnv

from uring.bpf import ArrayMap, io_uring_helpers, isa
from uring.bpf.interpreter import Interpreter
from uring.bpf.run_trace import ReplayEnv, ReplayMismatch, TraceRecorder, map_contents
from uring.bpf.translator import translate

MOVX = isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X
ADDK = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_K
ADDX = isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X
DW, W = isa.BPF_MEM | isa.BPF_DW, isa.BPF_MEM | isa.BPF_W


def call(helper: int) -> I:
    return I(isa.OP_CALL, 0, 0, 0, helper)


def program(emit_cq: int = 0) -> list:
    # reap a CQE of CQ 1 into r10-16; r7 = its res + *(u32 *)user + ktime + prandom;
    # arr[0] += r7; emit (emit_cq, r7, 0, 0); return r7
    return [I(MOVX, 6, 1),
            I(MOVX, 1, 6), mov64(2, 1), I(MOVX, 3, 10), I(ADDK, 3, 0, 0, -16), mov64(4, 16),
            call(166), I(isa.BPF_LDX | W, 7, 10, -8),
            I(MOVX, 1, 10), I(ADDK, 1, 0, 0, -24), mov64(2, 4), *ld_imm64(3, USER_BASE + 4),
            call(148), I(isa.BPF_LDX | W, 2, 10, -24), I(ADDX, 7, 2),
            call(5), I(ADDX, 7, 0), call(7), I(ADDX, 7, 0),
            I(isa.BPF_ST | W, 10, 0, -28, 0), I(MOVX, 2, 10), I(ADDK, 2, 0, 0, -28),
            I(isa.OP_LD_IMM64, 1, isa.BPF_PSEUDO_MAP_FD, 0, 0), I(0), call(1),
            I(isa.BPF_JMP | isa.BPF_JEQ | isa.BPF_K, 0, 0, 3, 0),
            I(isa.BPF_LDX | DW, 2, 0, 0), I(ADDX, 2, 7), I(isa.BPF_STX | DW, 0, 2, 0),
            I(MOVX, 1, 6), mov64(2, emit_cq), I(MOVX, 3, 7), mov64(4, 0), mov64(5, 0),
            call(165), I(MOVX, 0, 7), exit_()]


def arr() -> ArrayMap:
    m = ArrayMap("arr", 4, 8, 2)
    m.data[:] = bytes(range(16))
    return m


def record() -> tuple:
    helpers = io_uring_helpers()
    maps = [arr()]
    live = translate(verified(program(), maps), maps, helpers, 10_000)
    env = RecordingEnv(seed=5)
    env.user[:8] = struct.pack("<II", 7, 1234)
    env.cqs[1].extend([(1, 40, 0), (2, 50, 0)])
    recorder = TraceRecorder({"arr": maps[0]})
    run = recorder.wrap_run("p", live.run)
    run(bytearray(16), env)  # before start(): not recorded
    recorder.start()
    for _ in range(3):
        run(bytearray(16), env)
    return recorder.stop(), map_contents({"arr": maps[0]})


@pytest.mark.parametrize("mode", ["interpreter", "translator"])
def test_replay_makes_the_recorded_calls_and_leaves_the_recorded_maps(mode) -> None:
    trace, after = record()
    assert len(trace.runs) == 3
    assert [c.name for c in trace.runs[0].calls] == [
        "reap_cqe", "copy_from_user", "ktime_get_ns", "get_prandom_u32", "emit_cqe"]
    assert trace.runs[2].calls[0].result == -2  # the CQ ran dry on the third run
    helpers = io_uring_helpers()
    maps = [arr()]
    maps[0].data[:] = bytes(16)  # whatever they hold, the replay restores the recording's
    prog = verified(program(), maps)
    run = (Interpreter(prog, maps, helpers, 10_000).run if mode == "interpreter"
           else translate(prog, maps, helpers, 10_000).run)
    trace.restore({"arr": maps[0]})
    for check in (True, False):
        trace.restore({"arr": maps[0]})
        env = ReplayEnv(check=check)
        for r in trace.runs:
            env.begin(r)
            run(bytearray(r.ctx), env)
            env.end()
        assert map_contents({"arr": maps[0]}) == after


def test_a_different_call_fails_the_replay() -> None:
    trace, _ = record()
    helpers = io_uring_helpers()
    maps = [arr()]
    other = translate(verified(program(emit_cq=2), maps), maps, helpers, 10_000)
    trace.restore({"arr": maps[0]})
    env = ReplayEnv()
    env.begin(trace.runs[0])
    with pytest.raises(ReplayMismatch, match=r"call 4 is emit_cqe\(2, .*recorded emit_cqe\(0"):
        other.run(bytearray(trace.runs[0].ctx), env)
