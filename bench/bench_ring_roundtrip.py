"""Ring round trip and small-datagram SENDMSG, per backend, against plain socket.sendto.

Measured side by side in one run (same process, same machine state):

* NOP, one at a time: queue one SQE, enter, reap its CQE (the full round trip);
* NOP, batches of 256: queue 256, one enter, reap 256 (per-op cost when batched);
* SENDMSG of a 40-byte UDP datagram to 127.0.0.1, one per enter and in batches of 64 -- the
  engine sends it inline, as io_uring first tries to;
* the same batch with ``IOSQE_CQE_SKIP_SUCCESS`` (no CQE at all: the offload's keepalive
  sends), and with ``IOSQE_ASYNC``, which keeps the send off the inline path: on ``io_uring``
  it crosses the kernel ring, one SQE and one CQE per send;
* the floor: a plain ``socket.sendto`` loop sending the same datagram.

Prints microseconds per operation and the ratio to the floor.  Bounded: every section runs
a fixed number of operations (``--ops``) and stops early after ``--max-seconds``.

    python bench/bench_ring_roundtrip.py [--ops 20000] [--backends portable,io_uring]
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable

from loopback_udp import udp_pair

from uring.abi import IOSQE_ASYNC, IOSQE_CQE_SKIP_SUCCESS, prep_nop, prep_sendmsg
from uring.backends import io_uring_available
from uring.ring import Ring
from uring.user_structs import UserMsg

PAYLOAD = b"q" * 40


def timed(label: str, ops: int, max_seconds: float, step: Callable[[], int]) -> float:
    """Run ``step`` (which performs some operations and returns how many) until ``ops`` are
    done or ``max_seconds`` passed; returns microseconds per operation."""
    done = 0
    start = time.perf_counter()
    deadline = start + max_seconds
    while done < ops and time.perf_counter() < deadline:
        done += step()
    elapsed = time.perf_counter() - start
    per_op = elapsed / done * 1e6
    print(f"  {label:<40} {per_op:8.2f} us/op   ({done} ops)")
    return per_op


def drain(sock: socket.socket) -> int:
    got = 0
    try:
        while True:
            sock.recv(2048)
            got += 1
    except BlockingIOError:
        pass
    return got


def bench_backend(name: str, ops: int, max_seconds: float, dest: tuple,
                  tx: socket.socket, rx: socket.socket) -> dict[str, float]:
    results: dict[str, float] = {}
    with Ring.create(backend=name, sq_entries=256, cq_entries=(512,)) as ring:
        nop = prep_nop(user_data=1).pack()

        def nop_one() -> int:
            ring.queue_bytes(nop)
            ring.submit(1)
            ring.cqs[0].pop()
            return 1

        def nop_batch() -> int:
            for _ in range(256):
                ring.queue_bytes(nop)
            ring.submit(256)
            n = len(ring.reap_raw(0))
            assert n == 256, n
            return n

        results["nop_one"] = timed(f"{name}: NOP submit->reap, 1 per enter", ops,
                                   max_seconds, nop_one)
        results["nop_batch"] = timed(f"{name}: NOP submit->reap, batch of 256", ops * 4,
                                     max_seconds, nop_batch)

        msg = UserMsg(ring.alloc, 64)
        msg.set_datagram(PAYLOAD, dest)
        send = prep_sendmsg(tx.fileno(), msg.msghdr, user_data=2).pack()

        def send_one() -> int:
            ring.queue_bytes(send)
            ring.submit(1)
            cqe = ring.cqs[0].pop()
            assert cqe is not None and cqe[1] == 40, cqe
            return 1

        def send_batch() -> int:
            for _ in range(64):
                ring.queue_bytes(send)
            ring.submit(64)
            got = ring.reap_raw(0)
            assert len(got) == 64 and got[0][1] == 40, got[:1]
            drain(rx)
            return 64

        skip = prep_sendmsg(tx.fileno(), msg.msghdr, user_data=3,
                            flags=IOSQE_CQE_SKIP_SUCCESS).pack()

        def skip_batch() -> int:
            # No CQE comes back for a successful send, so a trailing NOP marks the end of
            # the batch (SQEs are processed in order) and the receiver confirms all 64.
            for _ in range(64):
                ring.queue_bytes(skip)
            ring.queue_bytes(nop)
            ring.submit(1)
            got = ring.reap_raw(0)
            assert len(got) == 1 and got[0][0] == 1, got
            received, deadline = drain(rx), time.monotonic() + 5
            while received < 64 and time.monotonic() < deadline:
                received += drain(rx)
            assert received == 64, received
            return 64

        async_send = prep_sendmsg(tx.fileno(), msg.msghdr, user_data=4,
                                  flags=IOSQE_ASYNC).pack()

        def async_batch() -> int:
            for _ in range(64):
                ring.queue_bytes(async_send)
            ring.submit(64, timeout=5)
            got = ring.reap_raw(0)
            assert len(got) == 64 and got[0][1] == 40, got[:1]
            drain(rx)
            return 64

        drain(rx)
        results["send_one"] = timed(f"{name}: SENDMSG 40 B, 1 per enter", ops, max_seconds,
                                    send_one)
        drain(rx)
        results["send_batch"] = timed(f"{name}: SENDMSG 40 B, batch of 64", ops, max_seconds,
                                      send_batch)
        drain(rx)
        results["skip_batch"] = timed(f"{name}: SENDMSG + SKIP_SUCCESS, batch of 64", ops,
                                      max_seconds, skip_batch)
        drain(rx)
        results["async_batch"] = timed(f"{name}: SENDMSG + ASYNC, batch of 64", ops,
                                       max_seconds, async_batch)
        drain(rx)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000, help="operations per section")
    parser.add_argument("--max-seconds", type=float, default=10.0,
                        help="stop a section after this long")
    parser.add_argument("--backends", default="portable,io_uring")
    args = parser.parse_args()

    with udp_pair(rx_blocking=False) as (rx, tx, dest):

        print("floor:")

        def sendto_one() -> int:
            tx.sendto(PAYLOAD, dest)
            return 1

        def sendto_batch() -> int:
            for _ in range(64):
                tx.sendto(PAYLOAD, dest)
            drain(rx)
            return 64

        drain(rx)
        floor_one = timed("socket.sendto 40 B loop", args.ops, args.max_seconds, sendto_one)
        drain(rx)
        floor_batch = timed("socket.sendto 40 B, 64 then drain", args.ops, args.max_seconds,
                            sendto_batch)
        drain(rx)

        table = {}
        for name in args.backends.split(","):
            if name == "io_uring":
                ok, reason = io_uring_available()
                if not ok:
                    print(f"{name}: skipped ({reason})")
                    continue
            print(f"{name}:")
            table[name] = bench_backend(name, args.ops, args.max_seconds, dest, tx, rx)

        print("\nratios (lower is better):")
        for name, r in table.items():
            print(f"  {name:<9} SENDMSG 1/enter vs sendto: {r['send_one'] / floor_one:5.2f}x   "
                  f"SENDMSG batch 64 vs sendto: {r['send_batch'] / floor_batch:5.2f}x   "
                  f"SKIP_SUCCESS batch vs sendto: {r['skip_batch'] / floor_batch:5.2f}x   "
                  f"ASYNC batch vs sendto: {r['async_batch'] / floor_batch:5.2f}x   "
                  f"NOP batch vs NOP single: {r['nop_batch'] / r['nop_one']:5.2f}x")
        if len(table) == 2:
            p, k = table["portable"], table["io_uring"]
            print(f"  io_uring / portable: NOP single {k['nop_one'] / p['nop_one']:.2f}x, "
                  f"NOP batch {k['nop_batch'] / p['nop_batch']:.2f}x, "
                  f"SENDMSG single {k['send_one'] / p['send_one']:.2f}x, "
                  f"SENDMSG batch {k['send_batch'] / p['send_batch']:.2f}x")


if __name__ == "__main__":
    main()
