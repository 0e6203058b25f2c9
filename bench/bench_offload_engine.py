"""Engine CPU per keepalive round trip, and where it goes.

N synthetic connections are parked in an embedded engine; a synthetic peer (its own key
table, real UDP sockets on loopback, in this process but outside the engine thread) answers
every PING with an ACK.  Over a steady-state window the benchmark measures the engine
thread's own CPU time (``/proc/self/task/<tid>/schedstat``, nanoseconds) and divides it by
the PINGs acknowledged in the window: that is the engine's cost of one keepalive round trip
(seal + send a PING, receive + open the ACK, the policy around both).  It then repeats the
window with the programs and shim helpers timed one by one, to split that cost into:

* ``keepalive`` / ``rx`` -- the two programs' runs (VM time, helper calls included);
* ``seal`` / ``open`` -- the crypto-shim helpers inside them;
* the rest -- the ring engine: the SENDMSG, the multishot receive, the tick's TIMEOUT, CQEs.

All of these are the engine thread's CPU time (its scheduler statistics and its CPU clock),
so waits for the GIL do not count.  The last line shows how much more one warm seal costs
right after the thread slept: the engine sleeps between ticks, and on a virtual machine that
price is paid on every wake-up.

It prints both execution paths (translator, interpreter) side by side, with the goal the
project set: a keepalive round trip at >= 10x less CPU than aioquic's own (~200-300 us per
side on this kind of machine), i.e. <= 20-30 us.  Bounded in time and count; loopback only.

With several ``--wait-batch`` values (ms) the translator row is repeated for each, so the
engine's wait batching (``OffloadGeometry.wait_batch``) can be compared in one run.

    python bench/bench_offload_engine.py [--connections 200] [--interval 1.0] [--window 4]
        [--backend auto|io_uring|portable] [--modes translator,interpreter]
        [--wait-batch 0,0.5,1]
"""

from __future__ import annotations

import argparse
import collections
import threading
import time
from collections.abc import Callable
from typing import Any

from quic_offload.synthetic_peer import SyntheticHarness


def engine_thread_ns() -> int:
    for thread in threading.enumerate():
        if thread.name.startswith("uring-engine"):
            with open(f"/proc/self/task/{thread.native_id}/schedstat") as f:
                return int(f.read().split()[0])
    raise RuntimeError("no engine thread running")


class Timers:
    """Wall time spent in wrapped callables (the engine thread is the only caller)."""

    def __init__(self) -> None:
        self.ns: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.thread_time_ns  # CPU of the calling thread: waits for the GIL do not count

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ns[name] += clock() - start
                self.calls[name] += 1
        return timed


def instrument(harness: SyntheticHarness, timers: Timers) -> None:
    programs = harness.offload.programs.programs
    for name in ("keepalive", "rx"):
        programs[name].run = timers.wrap(name, programs[name].run)
    keys = harness.offload.ring.engine.env.keys
    for method, label in (("seal_ping", "seal"), ("seal_ack", "seal"),
                          ("open_datagram", "open")):
        setattr(keys, method, timers.wrap(label, getattr(keys, method)))


def measure(backend: str, mode: str, connections: int, interval: float,
            window: float, wait_batch: float) -> dict[str, float]:
    harness = SyntheticHarness(backend, mode=mode, tick=0.02, wait_batch=wait_batch)
    try:
        for _ in range(connections):
            # parking many takes a while with no peer answering yet: do not let the
            # first unanswered PINGs wake anyone
            harness.park(interval=interval, idle_timeout=max(30.0, 10 * interval),
                         unresponsive_after=200)
        harness.poll(1.5 * interval, answer=True)  # all parked, keepalives flowing

        before, cpu0 = harness.stats(), engine_thread_ns()
        harness.poll(window, answer=True)
        after, cpu1 = harness.stats(), engine_thread_ns()
        trips = after["acks_received"] - before["acks_received"]
        result = {"round_trips": trips, "engine_us": (cpu1 - cpu0) / 1e3 / max(trips, 1),
                  "ticks": after["ticks"] - before["ticks"],
                  "late_ms": after["late_ping_ns_max"] / 1e6}

        timers = Timers()
        instrument(harness, timers)
        before = harness.stats()
        harness.poll(window, answer=True)
        after = harness.stats()
        trips = max(after["acks_received"] - before["acks_received"], 1)
        for name in ("keepalive", "rx", "seal", "open"):
            result[name] = timers.ns[name] / 1e3 / trips
        return result
    finally:
        harness.close()


def wake_penalty(ops: int = 600) -> tuple[float, float]:
    """Thread CPU of one warm ``seal_ping`` back to back, and right after a 1 ms sleep: an
    engine that sleeps between ticks pays the second price on this machine."""
    import os

    from quic_offload.crypto import KeyTable

    keys = KeyTable(1)
    keys.install(0, "AES_128_GCM_SHA256", os.urandom(32), os.urandom(32))
    dcid, pn = os.urandom(8), 1
    costs = []
    for gap in (0.0, 0.001):
        total = 0
        for _ in range(ops):
            if gap:
                time.sleep(gap)
            start = time.thread_time_ns()
            keys.seal_ping(0, dcid, pn, pn - 1)
            total += time.thread_time_ns() - start
            pn += 1
        costs.append(total / ops / 1e3)
    return costs[0], costs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=4.0)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--modes", default="translator,interpreter")
    parser.add_argument("--wait-batch", default="0.5",
                        help="comma-separated wait batches in ms to compare (translator "
                             "only; io_uring backend; 0 = wake for every completion)")
    args = parser.parse_args()
    if not 1 <= args.connections <= 2000 or not 0.1 <= args.window <= 60:
        parser.error("--connections 1..2000, --window 0.1..60 s")
    batches = [float(ms) / 1e3 for ms in args.wait_batch.split(",")]
    if not all(0 <= b < 0.02 for b in batches):
        parser.error("--wait-batch values in ms, 0..20 (less than the 20 ms tick)")

    print(f"{args.connections} parked connections, keepalive every {args.interval} s, "
          f"{args.window} s windows, backend {args.backend}")
    print(f"{'path':12s} {'round trips':>11s} {'engine us/rt':>13s} {'keepalive':>10s} "
          f"{'rx':>8s} {'(seal)':>8s} {'(open)':>8s} {'ring+rest':>10s} {'late ms':>8s}")
    rows = {}
    runs = [(mode, batches[0]) for mode in args.modes.split(",")]
    if "translator" in args.modes.split(","):
        runs += [("translator", b) for b in batches[1:]]
    for mode, batch in runs:
        r = measure(args.backend, mode, args.connections, args.interval, args.window, batch)
        label = mode if batch == batches[0] else f"{mode} {batch * 1e3:g}ms"
        rows[label] = r
        rest = r["engine_us"] - r["keepalive"] - r["rx"]
        print(f"{label:12s} {r['round_trips']:11d} {r['engine_us']:13.1f} "
              f"{r['keepalive']:10.1f} {r['rx']:8.1f} {r['seal']:8.1f} {r['open']:8.1f} "
              f"{rest:10.1f} {r['late_ms']:8.1f}")
    if len(batches) > 1:
        print(f"(first rows: wait batch {batches[0] * 1e3:g} ms)")
    if "translator" in rows and "interpreter" in rows:
        t, i = rows["translator"], rows["interpreter"]
        print(f"interpreter / translator: {i['engine_us'] / t['engine_us']:.1f}x per round "
              f"trip, programs {(i['keepalive'] + i['rx']) / (t['keepalive'] + t['rx']):.1f}x")
    hot, after_sleep = wake_penalty()
    print(f"wake-up penalty here: seal_ping {hot:.1f} us back to back, {after_sleep:.1f} us "
          f"right after a 1 ms sleep ({after_sleep / hot:.1f}x; both timed with the thread's "
          f"CPU clock)")
    best = min(r["engine_us"] for r in rows.values())
    print(f"against aioquic's ~200-300 us per side: {200 / best:.1f}-{300 / best:.1f}x less "
          f"CPU (goal: >= 10x)")


if __name__ == "__main__":
    main()
