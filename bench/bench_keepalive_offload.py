"""Keepalive offload against plain aioquic: CPU per keepalive round trip, app wake-ups.

Two sides run one after the other in this process, against the same peer, at the same
keepalive interval:

* **A, offload** -- N aioquic clients connected with ``quic_offload.aioquic.connect``; once
  all are parked, the embedded engine alone PINGs each one every interval and processes the
  peer's ACKs;
* **B, plain aioquic** -- N clients connected with ``aioquic.asyncio.connect``, each calling
  ``protocol.ping()`` every interval from an asyncio task (aioquic has no keepalive of its
  own), staggered over the interval as the engine's jitter spreads its PINGs.

The peer is a plain aioquic echo server in a separate process (``quic-offload demo --serve
--offload none``), so its CPU is not counted.  For each side, over a ``--window`` of steady
state, the script measures:

* process CPU (``getrusage(RUSAGE_SELF)``, user + system, every thread) divided by the PINGs
  acknowledged in the window (A: the engine's ``acks_received``; B: ``ping()`` calls that
  returned);
* per-thread CPU from ``/proc/self/task/<tid>/schedstat`` (nanoseconds on CPU): the engine
  thread (A) and the event-loop thread (both);
* app wake-ups: entries from the event loop into a connection's protocol --
  ``datagram_received``, ``_handle_timer`` and ``transmit`` of an instrumented protocol
  subclass, nested calls counted once -- plus, for A, calls the loop made into a parked
  connection (the adapter's ``events_while_parked``); reported per connection-hour at the
  measured interval and scaled to a 15 s keepalive.

It prints a table and the ratios B/A; the project's goal is at least 10x less CPU than
aioquic's path and 0 app wake-ups.  Bounded: at most ``--connections`` connections, every
wait has a timeout, the peer is stopped at the end (and stops by itself after its own
duration), all traffic stays on 127.0.0.1.

    python bench/bench_keepalive_offload.py [--connections 200] [--interval 1.0]
        [--window 10] [--backend auto|io_uring|portable] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.asyncio import connect as plain_connect
from aioquic.quic.configuration import QuicConfiguration

from quic_offload.aioquic import OffloadPolicy, OffloadRuntime, controller_of
from quic_offload.aioquic import connect as offload_connect
from quic_offload.aioquic.quiescence import park_blockers
from quic_offload.offload_client import OffloadGeometry

ALPN = "quic-offload-echo"
#: Setup steps (peer start, all connections up, all parked) give up after this long.
SETUP_TIMEOUT = 60.0
CONNECT_CONCURRENCY = 32
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
REFERENCE_INTERVAL = 15.0
#: Seconds the engine's cost with a single parked connection is measured for.
FLOOR_WINDOW = 3.0


# -- measuring ----------------------------------------------------------------------------------


class CountingProtocol(QuicConnectionProtocol):
    """aioquic's protocol, counting entries from the event loop into the connection.

    ``datagram_received``, ``_handle_timer`` and ``transmit`` are the three ways the loop
    runs a connection's code; a call made from inside another one (``datagram_received``
    calling ``transmit``) is the same wake-up and is not counted again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wakeups = 0
        self._depth = 0

    def _enter(self) -> None:
        if self._depth == 0:
            self.wakeups += 1
        self._depth += 1

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        self._enter()
        try:
            super().datagram_received(data, addr)
        finally:
            self._depth -= 1

    def _handle_timer(self) -> None:
        self._enter()
        try:
            super()._handle_timer()
        finally:
            self._depth -= 1

    def transmit(self) -> None:
        self._enter()
        try:
            super().transmit()
        finally:
            self._depth -= 1


def thread_cpu_ns(native_id: int) -> int:
    """Nanoseconds thread ``native_id`` of this process has spent on a CPU."""
    with open(f"/proc/self/task/{native_id}/schedstat") as f:
        return int(f.read().split()[0])


def process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def engine_thread() -> threading.Thread:
    threads = [t for t in threading.enumerate() if t.name.startswith("uring-engine-")]
    if len(threads) != 1:
        raise RuntimeError(f"expected one engine thread, found {[t.name for t in threads]}")
    return threads[0]


@dataclass
class Snapshot:
    wall: float
    process_cpu: float
    loop_thread_ns: int
    engine_thread_ns: int | None
    round_trips: int
    wakeups: int


@dataclass
class SideResult:
    name: str
    connections: int
    window: float
    round_trips: int
    process_cpu_s: float
    loop_thread_s: float
    engine_thread_s: float | None
    wakeups: int
    #: Engine CPU (seconds per second) with one connection parked: its fixed cost.
    engine_floor_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def per_round_trip_us(self, seconds: float | None) -> float | None:
        if seconds is None or not self.round_trips:
            return None
        return seconds / self.round_trips * 1e6

    def engine_marginal_us(self) -> float | None:
        """Engine CPU per round trip beyond its fixed cost (the slope with more PINGs)."""
        if self.engine_thread_s is None or self.engine_floor_rate is None:
            return None
        if not self.round_trips or self.connections < 2:
            return None
        extra = self.engine_thread_s - self.engine_floor_rate * self.window
        return extra / self.round_trips * 1e6

    @property
    def wakeups_per_connection_hour(self) -> float:
        return self.wakeups / (self.connections * self.window / 3600)


def take(snapshot_round_trips: Callable[[], int], snapshot_wakeups: Callable[[], int],
         engine: threading.Thread | None) -> Snapshot:
    return Snapshot(
        wall=time.monotonic(), process_cpu=process_cpu_s(),
        loop_thread_ns=thread_cpu_ns(threading.get_native_id()),
        engine_thread_ns=thread_cpu_ns(engine.native_id) if engine and engine.native_id
        else None,
        round_trips=snapshot_round_trips(), wakeups=snapshot_wakeups())


def difference(name: str, connections: int, a: Snapshot, b: Snapshot) -> SideResult:
    return SideResult(
        name=name, connections=connections, window=b.wall - a.wall,
        round_trips=b.round_trips - a.round_trips,
        process_cpu_s=b.process_cpu - a.process_cpu,
        loop_thread_s=(b.loop_thread_ns - a.loop_thread_ns) / 1e9,
        engine_thread_s=(None if a.engine_thread_ns is None or b.engine_thread_ns is None
                         else (b.engine_thread_ns - a.engine_thread_ns) / 1e9),
        wakeups=b.wakeups - a.wakeups)


# -- the peer -----------------------------------------------------------------------------------


@contextlib.contextmanager
def peer_process(idle_timeout: float, interval: float, max_seconds: float) -> Any:
    """A plain aioquic echo server in its own process; yields its port."""
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "quic_offload", "demo", "--serve", "127.0.0.1:0",
             "--offload", "none", "--alpn", ALPN, "--idle-timeout", str(idle_timeout),
             "--interval", str(interval), "--duration", str(max_seconds)],
            stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + SETUP_TIMEOUT
            port = None
            while port is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"peer did not start: {log.read()[-2000:]}")
                time.sleep(0.05)
                log.seek(0)
                match = LISTENING.search(log.read())
                port = int(match.group(1)) if match else None
            yield port
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# -- the two sides ------------------------------------------------------------------------------


def client_configuration(idle_timeout: float) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN],
                               idle_timeout=idle_timeout)
    config.verify_mode = False  # the peer's certificate is a throwaway self-signed one
    return config


async def open_clients(stack: contextlib.AsyncExitStack, count: int,
                       connect: Callable[[], Any],
                       on_connected: Callable[[CountingProtocol], None] | None = None,
                       ) -> list[CountingProtocol]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> CountingProtocol:
        async with gate:
            protocol = await asyncio.wait_for(stack.enter_async_context(connect()),
                                              SETUP_TIMEOUT)
        assert isinstance(protocol, CountingProtocol)
        if on_connected is not None:
            on_connected(protocol)
        return protocol

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_all(protocols: list[CountingProtocol], timeout: float) -> None:
    """Close every connection at once (the exit stack would otherwise close them one by one,
    each waiting out its closing period)."""
    for protocol in protocols:
        protocol.close()
    await asyncio.wait([asyncio.ensure_future(p.wait_closed()) for p in protocols],
                       timeout=timeout)


def all_parked(protocols: list[CountingProtocol]) -> bool:
    controllers = [controller_of(p) for p in protocols]
    return all(c is not None and c.state == "parked" for c in controllers)


def died_before_parking(protocol: CountingProtocol) -> bool:
    """A connection that closed before its first park: with many handshakes at once the
    peer process can fall behind by more than the short idle timeout used here."""
    c = controller_of(protocol)
    return (c is not None and c.parks == 0 and c.state == "active"
            and c.quic._state.name in ("CLOSING", "DRAINING", "TERMINATED"))


def all_parked_or_lost(protocols: list[CountingProtocol]) -> bool:
    return all(died_before_parking(p) or (c := controller_of(p)) is not None
               and c.state == "parked" for p in protocols)


def park_states(protocols: list[CountingProtocol]) -> str:
    """How many connections are in each adapter state, and why the first few that are not
    parked are not (for a setup that times out)."""
    controllers = [controller_of(p) for p in protocols]
    states = collections.Counter(c.state if c is not None else "not offloaded"
                                 for c in controllers)
    text = ", ".join(f"{n} {state}" for state, n in states.most_common())
    for c in [c for c in controllers if c is not None and c.state != "parked"][:3]:
        text += (f"; one {c.state}: quic {c.quic._state.name}, blockers "
                 f"{park_blockers(c.quic)}, parks {c.parks}, resumes {c.resumes}, last wake "
                 f"{c.last_wake.name if c.last_wake else None}")
    return text


async def wait_until(condition: Callable[[], bool], timeout: float, what: str,
                     status: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = f" ({status()})" if status is not None else ""
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        await asyncio.sleep(0.05)


async def side_offload(args: argparse.Namespace, port: int, idle_timeout: float
                       ) -> SideResult:
    loop = asyncio.get_running_loop()
    runtime = OffloadRuntime(OffloadGeometry(max_parked=max(4096, args.connections + 64),
                                             wait_batch=args.wait_batch / 1e3),
                             backend=args.backend, loop=loop)
    policy = OffloadPolicy(park_after=0.5, keepalive_interval=args.interval)
    def connect() -> Any:
        return offload_connect("127.0.0.1", port,
                               configuration=client_configuration(idle_timeout),
                               create_protocol=CountingProtocol, policy=policy,
                               offload=runtime)

    try:
        async with contextlib.AsyncExitStack() as stack:
            # first one connection alone: what the engine costs while anything at all is
            # parked (its timer-wheel tick), to tell that apart from the cost per PING
            protocols = await open_clients(stack, 1, connect)
            await wait_until(lambda: all_parked(protocols), SETUP_TIMEOUT, "the first park")
            await asyncio.sleep(args.interval)
            engine = engine_thread()
            floor_window = min(args.window, FLOOR_WINDOW)
            start_ns = thread_cpu_ns(engine.native_id)
            await asyncio.sleep(floor_window)
            floor_rate = (thread_cpu_ns(engine.native_id) - start_ns) / 1e9 / floor_window
            protocols += await open_clients(stack, args.connections - 1, connect)
            await wait_until(lambda: all_parked_or_lost(protocols), SETUP_TIMEOUT,
                             "every connection to park",
                             lambda: f"{park_states(protocols)}; wakes so far "
                                     f"{dict(runtime.counters['wakes'])}")
            lost = [p for p in protocols if died_before_parking(p)]
            protocols = [p for p in protocols if not died_before_parking(p)]
            controllers = [controller_of(p) for p in protocols]
            await asyncio.sleep(args.interval)  # one full keepalive round before measuring

            def acked() -> int:
                return int(runtime.engine_stats()["acks_received"])

            def wakeups() -> int:
                return (sum(p.wakeups for p in protocols)
                        + runtime.counters["events_while_parked"])

            gc.collect()  # not the garbage of setup inside the window
            first = take(acked, wakeups, engine)
            await asyncio.sleep(args.window)
            last = take(acked, wakeups, engine)
            result = difference("offload", len(protocols), first, last)
            stats = runtime.engine_stats()
            result.engine_floor_rate = floor_rate
            result.extra = {
                "backend": runtime.backend,
                "died before parking": len(lost),
                "still parked": sum(c is not None and c.state == "parked"
                                    for c in controllers),
                "wakes": {k: v for k, v in stats["wakes"].items() if v},
                "late_ping_ms_max": round(stats["late_ping_ns_max"] / 1e6, 1),
                "pings_sent": stats["pings_sent"],
                # since the engine started (setup included): receive buffers that ran dry,
                # packets the engine could not send
                "buffers_starved": stats["buffers_starved"],
                "send_failed": stats["send_failed"],
            }
            await close_all(protocols + lost, 5.0)
            return result
    finally:
        runtime.close()


async def side_plain(args: argparse.Namespace, port: int, idle_timeout: float) -> SideResult:
    acked = 0
    died = 0
    rng = random.Random(1)

    async def keepalive(protocol: CountingProtocol) -> None:
        """What an aioquic application has to do itself: sleep, ping, repeat (started as soon
        as the connection is up, at a random phase, as the engine's jitter spreads PINGs)."""
        nonlocal acked, died
        await asyncio.sleep(rng.uniform(0, args.interval))
        while True:
            if protocol._closed.is_set():  # a ping on a closed connection never returns
                died += 1
                return
            try:
                await protocol.ping()
            except ConnectionError:
                died += 1
                return
            acked += 1
            await asyncio.sleep(args.interval)

    tasks: list[asyncio.Task[None]] = []

    def connect() -> Any:
        return plain_connect("127.0.0.1", port,
                             configuration=client_configuration(idle_timeout),
                             create_protocol=CountingProtocol)

    async with contextlib.AsyncExitStack() as stack:
        protocols = await open_clients(
            stack, args.connections, connect,
            on_connected=lambda p: tasks.append(asyncio.ensure_future(keepalive(p))))
        try:
            await asyncio.sleep(args.interval * 2)  # every task has pinged at least once
            gc.collect()
            first = take(lambda: acked, lambda: sum(p.wakeups for p in protocols), None)
            await asyncio.sleep(args.window)
            last = take(lambda: acked, lambda: sum(p.wakeups for p in protocols), None)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=5.0)
        result = difference("aioquic ping()", args.connections, first, last)
        result.extra = {"died": died,
                        "alive": sum(not p._closed.is_set() for p in protocols)}
        await close_all(protocols, 5.0)
        return result


# -- report -------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = "10.1f") -> str:
    return format(value, spec) if value is not None else format("-", ">" + spec.split(".")[0])


def ratio(b: float | None, a: float | None) -> str:
    if a is None or b is None:
        return ""
    if a == 0:
        return "     inf" if b else ""
    return f"{b / a:7.1f}x"


def report(args: argparse.Namespace, a: SideResult, b: SideResult, loop_name: str) -> None:
    print(f"\nkeepalive offload vs plain aioquic: {args.connections} connections, "
          f"{args.interval:g} s interval, {a.window:.1f}/{b.window:.1f} s windows, "
          f"{a.extra['backend']} backend, {loop_name}")
    print(f"{'':42}{'offload (A)':>14}{'aioquic (B)':>14}{'B/A':>10}")
    rows = [
        ("PING round trips acked in window", float(a.round_trips), float(b.round_trips),
         "14.0f", False),
        ("process CPU per round trip (us)", a.per_round_trip_us(a.process_cpu_s),
         b.per_round_trip_us(b.process_cpu_s), "14.1f", True),
        ("  engine thread (us)", a.per_round_trip_us(a.engine_thread_s), None, "14.1f",
         False),
        ("    beyond its fixed cost (us)", a.engine_marginal_us(), None, "14.1f", False),
        ("  engine, 1 parked connection (% core)",
         None if a.engine_floor_rate is None else a.engine_floor_rate * 100, None, "14.2f",
         False),
        ("  event-loop thread (us)", a.per_round_trip_us(a.loop_thread_s),
         b.per_round_trip_us(b.loop_thread_s), "14.1f", True),
        ("process CPU, % of one core", a.process_cpu_s / a.window * 100,
         b.process_cpu_s / b.window * 100, "14.2f", True),
        ("app wake-ups in window", float(a.wakeups), float(b.wakeups), "14.0f", False),
        ("app wake-ups per connection-hour", a.wakeups_per_connection_hour,
         b.wakeups_per_connection_hour, "14.0f", False),
        (f"  ... at a {REFERENCE_INTERVAL:g} s keepalive",
         a.wakeups_per_connection_hour * args.interval / REFERENCE_INTERVAL,
         b.wakeups_per_connection_hour * args.interval / REFERENCE_INTERVAL, "14.0f", False),
    ]
    for label, va, vb, spec, show_ratio in rows:
        print(f"{label:42}{fmt(va, spec)}{fmt(vb, spec)}{ratio(vb, va) if show_ratio else '':>10}")
    print(f"A: {a.extra}")
    print(f"B: {b.extra}")
    if a.extra["still parked"] != a.connections or b.extra["alive"] != b.connections:
        print("WARNING: not every connection stayed parked (A) or alive (B) through the "
              "window; the two sides did not do the same work")
    cpu_a = a.per_round_trip_us(a.process_cpu_s)
    cpu_b = b.per_round_trip_us(b.process_cpu_s)
    if cpu_a and cpu_b:
        met_cpu = cpu_b / cpu_a >= 10
        print(f"goal >= 10x less CPU per round trip than aioquic: "
              f"{'met' if met_cpu else 'NOT met'} ({cpu_b / cpu_a:.1f}x)")
    print(f"goal 0 app wake-ups while parked: {'met' if a.wakeups == 0 else 'NOT met'} "
          f"({a.wakeups})")


async def main_async(args: argparse.Namespace, port: int) -> tuple[SideResult, SideResult]:
    idle_timeout = max(3 * args.interval, 2.0)
    print(f"side A: {args.connections} offloaded clients, parking, then {args.window:g} s "
          "window ...", flush=True)
    a = await side_offload(args, port, idle_timeout)
    print(f"side B: {args.connections} plain aioquic clients pinging, then {args.window:g} s "
          "window ...", flush=True)
    b = await side_plain(args, port, idle_timeout)
    return a, b


def run_on_loop(loop_name: str, coro: Callable[[], Awaitable[Any]]) -> Any:
    if loop_name == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro())
    with asyncio.Runner() as runner:
        return runner.run(coro())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--interval", type=float, default=1.0, help="keepalive interval (s)")
    parser.add_argument("--window", type=float, default=10.0, help="measurement window (s)")
    parser.add_argument("--backend", choices=("auto", "io_uring", "portable"), default="auto")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--wait-batch", type=float, default=OffloadGeometry.wait_batch * 1e3,
                        help="engine wait batch in ms (0: wake for every completion)")
    args = parser.parse_args()
    if not 1 <= args.connections <= 2000:
        parser.error("--connections must be 1..2000")
    if not 0.1 <= args.interval <= 30:
        parser.error("--interval must be 0.1..30 seconds")
    if not 1 <= args.window <= 120:
        parser.error("--window must be 1..120 seconds")
    if not 0 <= args.wait_batch < 20:
        parser.error("--wait-batch must be 0..20 ms (shorter than the engine's tick)")
    budget = 2 * (args.window + 4 * args.interval + SETUP_TIMEOUT)
    with peer_process(max(3 * args.interval, 2.0), args.interval, budget) as port:
        a, b = run_on_loop(args.loop, lambda: main_async(args, port))
    report(args, a, b, args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
