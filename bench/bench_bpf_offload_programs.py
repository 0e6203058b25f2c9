"""The VM on the real offload programs: keepalive and rx runs recorded live, replayed alone.

N synthetic connections are parked in an embedded engine whose peer ACKs every PING (the
setup of ``bench_offload_engine.py``).  Over a steady-state window every run of the
``keepalive`` and ``rx`` programs is recorded (:mod:`uring.bpf.run_trace`): the maps once,
then each run's ctx and each engine-side call with its answer (CQEs reaped, the clock,
bytes copied from user memory, what the crypto shim returned).  The recording is then
replayed in this thread, alone, on both execution paths: the same runs over the same maps,
the engine side answered from the trace -- so the times are the VM's own (helper calls
cost a list lookup here; the real seal/open costs are ``bench_crypto_seal_open.py``'s).
Replays are checked on the way: each path must make exactly the recorded calls, and both
must leave identical maps.

Prints per program: runs and instructions per round trip, us per round trip, ns per executed
instruction, the fixed cost of an empty run, and the translator's speed-up, side by side.

    python bench/bench_bpf_offload_programs.py [--connections 200] [--window 2]
        [--repeat 5] [--backend portable] [--save FILE | --trace FILE] [--cold]
"""

from __future__ import annotations

import argparse
import pickle
import time
from pathlib import Path

import quic_offload.offload_programs as offload_programs
from quic_offload.shim_helpers import offload_helpers
from quic_offload.synthetic_peer import SyntheticHarness
from uring.bpf import load_object
from uring.bpf.run_trace import ReplayEnv, RunTrace, TraceRecorder, map_contents, replay_helpers

PROGRAM_DIR = Path(__file__).resolve().parents[1] / "bpf_programs"
PROGRAMS = ("keepalive", "rx")


def record(connections: int, window: float, backend: str) -> tuple[RunTrace, int]:
    """A trace of every keepalive and rx run over ``window`` seconds, and the round trips
    (PINGs acknowledged) it covers."""
    real = offload_programs.offload_helpers
    offload_programs.offload_helpers = lambda: TraceRecorder.helpers(real())
    try:
        harness = SyntheticHarness(backend, mode="translator", tick=0.02)
    finally:
        offload_programs.offload_helpers = real
    try:
        for _ in range(connections):
            harness.park(interval=1.0, idle_timeout=30.0)
        harness.poll(1.5, answer=True)  # all parked, keepalives flowing
        loaded = harness.offload.programs
        recorder = TraceRecorder(loaded.maps)
        for name in PROGRAMS:
            loaded.programs[name].run = recorder.wrap_run(name, loaded.programs[name].run)
        recorder.start()
        harness.poll(window, answer=True)
        trace = recorder.stop()
        harness.poll(0.05)  # let an in-flight run finish before reading the result
    finally:
        harness.close()
    before = trace_stat(trace, "acks_received")
    return trace, stat_after(loaded, "acks_received") - before


def trace_stat(trace: RunTrace, name: str) -> int:
    from quic_offload.offload_abi import QoStats
    return getattr(QoStats.from_bytes(trace.maps["qo_stats_map"]), name)


def stat_after(loaded, name: str) -> int:  # noqa: ANN001
    return getattr(loaded.stats(), name)


class Replay:
    """The two programs loaded for one path, with their own maps, ready to replay."""

    def __init__(self, mode: str) -> None:
        helpers = replay_helpers(offload_helpers())
        maps = None
        self.programs = {}
        for name in PROGRAMS:
            obj = load_object(PROGRAM_DIR / f"{name}.bpf.o", helpers=helpers, mode=mode,
                              maps=maps)
            maps = obj.maps if maps is None else maps
            self.programs[name] = obj.programs[name]
        self.maps = maps
        self.env = ReplayEnv()
        self.fast_env = ReplayEnv(check=False)

    def run_all(self, trace: RunTrace, *, check: bool = False, cold: bool = False
                ) -> dict[str, float]:
        """Replay every run once (checking every call, or not: then an engine call costs
        about a list index); seconds spent per program.  ``cold``: before each run, touch
        enough other memory to evict the CPU caches, as the engine's and the rest of the
        process's work between two runs does in a live engine (not timed)."""
        trace.restore(self.maps)
        spent = dict.fromkeys(PROGRAMS, 0.0)
        env = self.env if check else self.fast_env
        clock = time.perf_counter
        for i, run in enumerate(trace.runs):
            prog = self.programs[run.program]
            ctx = bytearray(run.ctx)
            env.begin(run, f"run {i} ({run.program})")
            if cold:
                evict_caches()
            t0 = clock()
            prog.run(ctx, env)
            spent[run.program] += clock() - t0
            env.end()
        return spent

    def count(self, trace: RunTrace) -> dict[str, int]:
        """Instructions executed per program over the trace (reference interpreter)."""
        trace.restore(self.maps)
        total = dict.fromkeys(PROGRAMS, 0)
        for run in trace.runs:
            prog = self.programs[run.program]
            self.env.begin(run)
            prog.interpreter.run(bytearray(run.ctx), self.env)
            self.env.end()
            total[run.program] += prog.interpreter.last_count
        return total


_JUNK = bytearray(32 << 20)


def evict_caches() -> None:
    """Write one byte per cache line of 32 MiB: more than this machine's caches hold."""
    junk = _JUNK
    junk[::64] = bytes(len(junk[::64]))


def answering_cost(trace: RunTrace, repeat: int) -> float:
    """Seconds the replay's engine side spends answering the trace's calls (part of every
    measured run, not the VM's work)."""
    env = ReplayEnv(check=False)
    scratch = memoryview(bytearray(4096))
    runs = [(run, [(getattr(env, c.name, None),
                    tuple(scratch[:a[1]] if isinstance(a, tuple) else a for a in c.args))
                   for c in run.calls]) for run in trace.runs]
    best = float("inf")
    for _ in range(repeat):
        spent = 0.0
        for run, calls in runs:
            env.begin(run)
            t0 = time.perf_counter()
            for method, args in calls:
                if method is None:  # a program type's own helper: answered the same way
                    env.answer("", args)
                else:
                    method(*args)
            spent += time.perf_counter() - t0
        best = min(best, spent)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", default="portable")
    parser.add_argument("--trace", type=Path,
                        help="replay this recording (made by a run with --save) instead of "
                             "recording a new one, to compare changes on the same runs")
    parser.add_argument("--save", type=Path, help="also write the recording here")
    parser.add_argument("--cold", action="store_true",
                        help="also replay with the CPU caches evicted before each run (a live "
                             "engine does other work between runs)")
    args = parser.parse_args()
    if not 1 <= args.connections <= 2000 or not 0.2 <= args.window <= 30:
        parser.error("--connections 1..2000, --window 0.2..30 s")

    if args.trace:
        with args.trace.open("rb") as f:
            trace, trips = pickle.load(f)  # noqa: S301 - a file this script wrote
    else:
        trace, trips = record(args.connections, args.window, args.backend)
    if args.save:
        with args.save.open("wb") as f:
            pickle.dump((trace, trips), f)
    trips = max(trips, 1)
    runs = {p: sum(r.program == p for r in trace.runs) for p in PROGRAMS}
    source = (f"recording {args.trace}" if args.trace else
              f"{args.connections} parked connections, {args.window} s recorded")
    print(f"{source}: {len(trace.runs)} runs "
          f"({', '.join(f'{runs[p]} {p}' for p in PROGRAMS)}), {trips} round trips; "
          f"replayed best of {args.repeat}")
    replays = {mode: Replay(mode) for mode in ("interpreter", "translator")}
    insns = replays["interpreter"].count(trace)
    results: dict[str, dict[str, float]] = {}
    finals = {}
    for mode, replay in replays.items():
        replay.run_all(trace, check=True)  # the calls are the recorded ones, in order
        best = dict.fromkeys(PROGRAMS, float("inf"))
        for _ in range(args.repeat if mode == "translator" else max(1, args.repeat // 2)):
            spent = replay.run_all(trace)
            best = {p: min(best[p], spent[p]) for p in PROGRAMS}
        results[mode] = best
        finals[mode] = map_contents(replay.maps)
    if finals["interpreter"] != finals["translator"]:
        raise SystemExit("the two paths left different maps")

    print(f"{'program':10s} {'insns/rt':>9s} {'path':12s} {'us/rt':>8s} {'us/run':>8s} "
          f"{'ns/insn':>8s}")
    for p in PROGRAMS:
        for mode in ("interpreter", "translator"):
            secs = results[mode][p]
            print(f"{p:10s} {insns[p] / trips:9.0f} {mode:12s} {secs / trips * 1e6:8.2f} "
                  f"{secs / max(runs[p], 1) * 1e6:8.2f} {secs / max(insns[p], 1) * 1e9:8.1f}")
    total = {m: sum(results[m].values()) for m in results}
    print(f"keepalive + rx per round trip: translator {total['translator'] / trips * 1e6:.2f} us, "
          f"interpreter {total['interpreter'] / trips * 1e6:.2f} us "
          f"({total['interpreter'] / total['translator']:.1f}x)")
    if args.cold:
        for mode, replay in replays.items():
            best = dict.fromkeys(PROGRAMS, float("inf"))
            for _ in range(max(1, args.repeat // 2)):
                spent = replay.run_all(trace, cold=True)
                best = {p: min(best[p], spent[p]) for p in PROGRAMS}
            print(f"  caches evicted before each run, {mode}: "
                  + ", ".join(f"{p} {best[p] / trips * 1e6:.2f}" for p in PROGRAMS)
                  + f" us/rt (together {sum(best.values()) / trips * 1e6:.2f})")
    answers = answering_cost(trace, args.repeat) / trips * 1e6
    calls = sum(len(r.calls) for r in trace.runs) / trips
    print(f"  of which the replay answering {calls:.1f} engine calls: {answers:.2f} us "
          f"(translator without it: {total['translator'] / trips * 1e6 - answers:.2f} us)")


if __name__ == "__main__":
    main()
