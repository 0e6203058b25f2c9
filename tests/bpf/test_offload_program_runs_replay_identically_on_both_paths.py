"""The offload programs' real runs replay identically through the interpreter and the
translator.

Synthetic connections are parked in an embedded engine (portable backend) whose peers ACK
every PING and PING the engine now and then (so ``rx`` ACKs, takes RTT samples and moves
the timer wheel), and every ``keepalive`` and ``rx`` run is recorded with its engine answers.
The recording is replayed from the same starting maps through both execution paths: each
must make exactly the recorded engine calls -- every SQE, CQE, copy and shim call byte for
byte -- and both must end with the maps the live runs left.  These are the paths the
programs take in production, which hand-made inputs rarely reach.
"""

from __future__ import annotations

import pytest

import quic_offload.offload_programs as offload_programs
from quic_offload.offload_programs import PROGRAM_DIR
from quic_offload.shim_helpers import offload_helpers
from quic_offload.synthetic_peer import SyntheticHarness
from uring.bpf import load_object
from uring.bpf.run_trace import ReplayEnv, TraceRecorder, map_contents, replay_helpers

PROGRAMS = ("keepalive", "rx")


def record(monkeypatch: pytest.MonkeyPatch):
    real = offload_programs.offload_helpers
    monkeypatch.setattr(offload_programs, "offload_helpers",
                        lambda: TraceRecorder.helpers(real()))
    harness = SyntheticHarness("portable", mode="translator", tick=0.02)
    try:
        conns = [harness.park(interval=0.3, idle_timeout=30.0) for _ in range(24)]
        harness.poll(0.5, answer=True)
        loaded = harness.offload.programs
        recorder = TraceRecorder(loaded.maps)
        for name in PROGRAMS:
            loaded.programs[name].run = recorder.wrap_run(name, loaded.programs[name].run)
        recorder.start()
        for i in range(4):
            for conn in conns[i::4]:
                harness.send(conn, ping=True)  # ack-eliciting: rx answers with an ACK
            harness.poll(0.3, answer=True)
        trace = recorder.stop()
        harness.poll(0.2)  # the next run records where the last recorded one left the maps
    finally:
        harness.close()
    assert trace.final is not None
    return trace, trace.final


def replay(trace, mode: str) -> dict:
    helpers = replay_helpers(offload_helpers())
    maps = None
    programs = {}
    for name in PROGRAMS:
        obj = load_object(PROGRAM_DIR / f"{name}.bpf.o", helpers=helpers, mode=mode, maps=maps)
        maps = obj.maps if maps is None else maps
        programs[name] = obj.programs[name]
    trace.restore(maps)
    env = ReplayEnv()
    for i, run in enumerate(trace.runs):
        env.begin(run, f"run {i} ({run.program}, {mode})")
        programs[run.program].run(bytearray(run.ctx), env)
        env.end()
    return map_contents(maps)


@pytest.mark.slow
def test_recorded_offload_runs_replay_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    trace, final = record(monkeypatch)
    names = {r.program for r in trace.runs}
    assert names == set(PROGRAMS), names
    calls = {c.name for r in trace.runs for c in r.calls}
    assert {"bpf_quic_seal", "bpf_quic_open", "submit", "reap_cqe"} <= calls
    by_mode = {mode: replay(trace, mode) for mode in ("interpreter", "translator")}
    assert by_mode["interpreter"] == by_mode["translator"]
    # the replay ends where the live runs did
    for name in ("qo_conns", "qo_wheel", "qo_engine_map", "qo_stats_map"):
        assert by_mode["translator"][name] == final[name], name
