"""Engine cost of the ring work around one keepalive round trip, without the eBPF runtime.

Two stand-in programs in plain Python drive a threaded engine the way the offload programs
do, so that the number printed is the ring engine's own cost and not the VM's:

* ``tick`` is re-armed by a one-tick TIMEOUT on CQ 1; each run reaps CQ 1 and CQ 3, sets the
  length of the next send slots (as the seal helper does) and submits a few SENDMSGs with
  ``IOSQE_CQE_SKIP_SUCCESS`` (failures would land on CQ 3);
* ``rx`` waits on CQ 2 for the completions of a multishot RECVMSG with provided buffers,
  reaps them and gives every buffer back.

The datagrams go from one loopback socket to another, both served by the engine, so each
datagram is one round trip's worth of ring work: a send, a receive completion and a share of
a tick.  Engine-thread CPU comes from ``/proc/self/task/<tid>/schedstat``; the programs' own
CPU is timed and subtracted.  Two shapes, each beside a floor measured in the same run:

* ``hot``: no timer -- ``rx`` posts on CQ 1 as soon as a tick's 16 datagrams are in, so the
  engine never sleeps: the code's cost with warm caches (the TIMEOUT is left out);
  floor: a plain loop doing the same two syscalls per datagram (``sendto`` + ``recv_into``);
* ``paced``: a 20 ms tick with 4 datagrams per tick, the shape of 200 connections pinging
  every second (``bench_offload_engine.py``'s default) -- here every tick wakes the engine
  from sleep, and waking a sleeping thread has a CPU cost of its own; floor: a thread that
  sleeps to the same deadlines and makes the same syscalls.

Bounded by ``--datagrams`` and ``--max-seconds``; loopback only.

    python bench/bench_ring_keepalive_path.py [--datagrams 20000] [--backends portable,io_uring]
"""

from __future__ import annotations

import argparse
import struct
import threading
import time

from loopback_udp import udp_pair

from uring.abi import (
    IORING_CQE_F_BUFFER,
    IORING_CQE_F_MORE,
    IOSQE_CQE_SKIP_SUCCESS,
    prep_bpf,
    prep_recvmsg_multishot,
    prep_sendmsg,
    prep_timeout,
)
from uring.backends import io_uring_available
from uring.buf_ring import BufRing
from uring.program import BpfEnv
from uring.ring import Ring
from uring.user_structs import UserMsg

PAYLOAD = b"k" * 48
SLOTS = 64
_CQE = struct.Struct("<QiI")
_U64 = struct.Struct("<Q")


class TickProgram:
    """Sends ``per_tick`` datagrams per run until ``total`` are out, re-armed by a TIMEOUT."""

    name = "bench_tick"

    def __init__(self, sends: list[bytes], iov_len_addrs: list[int], timeout_sqe: bytes | None,
                 per_tick: int, total: int, rx: RxProgram) -> None:
        self.rx = rx
        self.sends = sends
        self.iov_len_addrs = iov_len_addrs
        self.timeout_sqe = timeout_sqe
        self.per_tick = per_tick
        self.left = total
        self.seq = 0
        self.failed = 0
        self.out = memoryview(bytearray(16))

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        out = self.out
        while env.reap_cqe(1, out) == 0:
            pass
        while env.reap_cqe(3, out) == 0:
            self.failed += 1
        if self.left <= 0:
            return 0
        for _ in range(min(self.per_tick, self.left)):
            i = self.seq % SLOTS
            # a packet's length changes from send to send, as sealed packets' lengths do
            env.copy_to_user(self.iov_len_addrs[i], _U64.pack(len(PAYLOAD) - (self.seq & 7)))
            env.submit(self.sends[i])
            self.seq += 1
            self.left -= 1
        self.rx.expected = self.seq
        if self.timeout_sqe is not None:
            env.submit(self.timeout_sqe)
        struct.pack_into("<II", ctx, 8, 1, 1)
        return 0


class RxProgram:
    """Reaps the multishot receive's completions on CQ 2 and returns their buffers."""

    name = "bench_rx"

    def __init__(self, buf_ring: BufRing, recv_sqe: bytes, closed_loop: bool) -> None:
        self.buf_ring = buf_ring
        self.recv_sqe = recv_sqe
        self.closed_loop = closed_loop
        self.received = 0
        self.expected = 0
        self.out = memoryview(bytearray(16))

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        out = self.out
        while env.reap_cqe(2, out) == 0:
            _, res, flags = _CQE.unpack(out)
            if flags & IORING_CQE_F_BUFFER:
                self.buf_ring.recycle(flags >> 16)
                if res > 0:
                    self.received += 1
            if not flags & IORING_CQE_F_MORE and res != -125:  # ended (not cancelled): re-arm
                env.submit(self.recv_sqe)
        if self.closed_loop and self.received == self.expected:
            env.emit_cqe(1, 0, 0, 0)  # everything sent has arrived: the next tick may run
        struct.pack_into("<II", ctx, 8, 1, 2)
        return 0


def timed_run(program: TickProgram | RxProgram, totals: dict[str, int]) -> None:
    clock = time.thread_time_ns
    inner = program.run

    def run(ctx: bytearray, env: BpfEnv) -> int:
        start = clock()
        try:
            return inner(ctx, env)
        finally:
            totals["programs"] += clock() - start
    program.run = run  # type: ignore[method-assign]


def engine_cpu_ns(ring: Ring) -> int:
    thread = ring.engine._thread
    assert thread is not None
    with open(f"/proc/self/task/{thread.native_id}/schedstat") as f:
        return int(f.read().split()[0])


def measure_engine(backend: str, tick: float, per_tick: int, datagrams: int,
                   max_seconds: float) -> dict[str, float]:
    with udp_pair() as (rx, tx, _), Ring.create(
            backend=backend, sq_entries=256, cq_entries=(64, 64, 1024, 64),
            user_memory=4 << 20) as ring:
        buf_ring = ring.setup_buf_ring(0, 512, 256)
        recv_msg = UserMsg(ring.alloc, 0)
        recv_sqe = prep_recvmsg_multishot(rx.fileno(), recv_msg.msghdr, 0, user_data=7,
                                          cq_idx=2).pack()
        sends, iov_lens = [], []
        for i in range(SLOTS):
            msg = UserMsg(ring.alloc, 64)
            msg.set_datagram(PAYLOAD, rx.getsockname())
            sends.append(prep_sendmsg(tx.fileno(), msg.msghdr, user_data=i, cq_idx=3,
                                      flags=IOSQE_CQE_SKIP_SUCCESS).pack())
            iov_lens.append(msg.iov + 8)
        timeout_sqe = (prep_timeout(ring.timespec(tick), user_data=9, cq_idx=1).pack()
                       if tick else None)
        rx_prog = RxProgram(buf_ring, recv_sqe, closed_loop=not tick)
        tick_prog = TickProgram(sends, iov_lens, timeout_sqe, per_tick, datagrams, rx_prog)
        totals = {"programs": 0}
        timed_run(tick_prog, totals)
        timed_run(rx_prog, totals)
        ring.register_bpf(0, tick_prog)
        ring.register_bpf(1, rx_prog)
        ring.engine.start()
        ring.queue_bytes(recv_sqe)
        ring.queue(prep_bpf(1, user_data=1))
        ring.submit()
        time.sleep(0.05)
        cpu0 = engine_cpu_ns(ring)
        start = time.perf_counter()
        ring.queue(prep_bpf(0, user_data=2))
        ring.submit()
        deadline = start + max_seconds
        while rx_prog.received < datagrams and time.perf_counter() < deadline:
            time.sleep(0.01)
        cpu = engine_cpu_ns(ring) - cpu0
        received = max(rx_prog.received, 1)
        engine_us = cpu / received / 1e3
        programs_us = totals["programs"] / received / 1e3
        ring.engine.stop()
        assert tick_prog.failed == 0, f"{tick_prog.failed} sends failed"
        return {"received": rx_prog.received, "engine": engine_us, "programs": programs_us,
                "ring": engine_us - programs_us}


def measure_floor(tick: float, per_tick: int, datagrams: int, max_seconds: float) -> float:
    """CPU per datagram of a thread making the same syscalls on the same schedule."""
    with udp_pair(rx_blocking=False) as (rx, tx, dest):
        buf = bytearray(256)
        result: list[float] = []

        def worker() -> None:
            cpu0 = time.thread_time_ns()
            done = 0
            stop = time.monotonic() + max_seconds
            next_tick = time.monotonic_ns()
            while done < datagrams and time.monotonic() < stop:
                if tick:
                    next_tick += int(tick * 1e9)
                    delay = next_tick - time.monotonic_ns()
                    if delay > 0:
                        time.sleep(delay / 1e9)
                n = min(per_tick, datagrams - done)
                for _ in range(n):
                    tx.sendto(PAYLOAD, dest)
                for _ in range(n):
                    rx.recv_into(buf)
                done += n
            result.append((time.thread_time_ns() - cpu0) / max(done, 1) / 1e3)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    return result[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datagrams", type=int, default=20_000, help="per hot measurement")
    parser.add_argument("--paced-datagrams", type=int, default=800,
                        help="per paced measurement (4 per 20 ms tick: 800 take 4 s)")
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--backends", default="portable,io_uring")
    args = parser.parse_args()
    if not 1 <= args.datagrams <= 1_000_000 or not 1 <= args.paced_datagrams <= 100_000:
        parser.error("--datagrams 1..1000000, --paced-datagrams 1..100000")

    shapes = [("hot", 0.0, 16, args.datagrams), ("paced", 0.02, 4, args.paced_datagrams)]
    backends = [b for b in args.backends.split(",")
                if b != "io_uring" or io_uring_available()[0]]
    print("engine-thread CPU per datagram (one send + one receive completion + a share of a "
          "tick), us")
    print(f"{'shape':6s} {'backend':9s} {'datagrams':>9s} {'engine':>8s} {'programs':>9s} "
          f"{'ring':>7s} {'floor':>7s} {'ring-floor':>10s}")
    for shape, tick, per_tick, count in shapes:
        floor = measure_floor(tick, per_tick, count, args.max_seconds)
        for backend in backends:
            r = measure_engine(backend, tick, per_tick, count, args.max_seconds)
            print(f"{shape:6s} {backend:9s} {r['received']:9d} {r['engine']:8.2f} "
                  f"{r['programs']:9.2f} {r['ring']:7.2f} {floor:7.2f} "
                  f"{r['ring'] - floor:10.2f}")


if __name__ == "__main__":
    main()
