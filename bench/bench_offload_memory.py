"""Engine memory per parked connection.

Parks N hand-made connections in an embedded engine (no peers: one shared peer address, long
keepalive interval, so nothing is sent during the measurement) and reports what parking them
added, per connection:

* Python heap (``tracemalloc``, all threads): the key table's slot, the CID index entry, the
  reset-token bookkeeping, the application-side handle;
* RSS (``/proc/self/statm``), which also sees the pages of preallocated map storage that
  parking touched;
* the fixed, preallocated part: the ``qo_conns`` array (472 bytes for each of 16384 slots)
  and user memory (buffers, send slots), for reference.

A parked connection's key slot holds only key bytes; a slot that keeps being used gets live
cipher contexts (several KiB, bounded by the key table's warm set) -- see
``bench/bench_crypto_memory.py`` for that side.  The project's goal is <= 1 KiB per parked
connection.  Bounded in count and time; loopback only.

    python bench/bench_offload_memory.py [--connections 2000] [--backend auto]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import resource
import socket
import time
import tracemalloc

from quic_offload.embedded import start_embedded_offload
from quic_offload.offload_abi import QoCid, QoConn, QoKeys, QoRange, QoSnapshot
from quic_offload.offload_client import OffloadGeometry
from uring.user_structs import encode_sockaddr


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def settle(client, handles, timeout: float = 60.0) -> None:  # noqa: ANN001
    """Poll CQ 0 until no park is still in flight (bounded)."""
    deadline = time.monotonic() + timeout
    while any(h.state == "adopting" for h in handles) and time.monotonic() < deadline:
        time.sleep(0.005)
        client.poll()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    if not 1 <= args.connections <= 16000:
        parser.error("--connections 1..16000")

    offload = start_embedded_offload(OffloadGeometry(max_parked=16000), backend=args.backend)
    client = offload.client
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    peer = encode_sockaddr(("127.0.0.1", 9))  # never sent to: the interval is long
    try:
        client.add_socket(sock.fileno(), lambda data, addr: None)
        gc.collect()
        tracemalloc.start()
        heap0, rss0 = tracemalloc.get_traced_memory()[0], rss_bytes()
        now = time.monotonic_ns()
        handles = []
        for _ in range(args.connections):
            snap = QoSnapshot(sock_fd=sock.fileno(), role=1, unresponsive_after=3,
                              next_pn=10, largest_acked=9, largest_received=5,
                              largest_received_ns=now, last_receive_ns=now, last_send_ns=now,
                              interval_ns=600 * 10**9, idle_timeout_ns=3600 * 10**9,
                              pto_ns=10**8, n_ranges=1)
            snap.ranges[0] = QoRange(5, 5)
            snap.host_cid = QoCid.of(os.urandom(8))
            snap.dcid = QoCid.of(os.urandom(8))
            snap.peer_addr_len = len(peer)
            ctypes.memmove(snap.peer_addr, peer, len(peer))
            keys = QoKeys(suite=0x1301, secret_len=32, version=1, next_pn=10)
            ctypes.memmove(keys.send_secret, os.urandom(32), 32)
            ctypes.memmove(keys.recv_secret, os.urandom(32), 32)
            handles.append(client.park(snap, keys))
            if len(handles) % 256 == 0:  # tracemalloc slows the engine: let it keep up
                settle(client, handles)
        settle(client, handles)
        parked = sum(h.state == "parked" for h in handles)
        gc.collect()
        heap1, rss1 = tracemalloc.get_traced_memory()[0], rss_bytes()
        tracemalloc.stop()
        n = max(parked, 1)
        conns_map = len(offload.programs.maps["qo_conns"].data)
        print(f"{parked}/{args.connections} connections parked (backend {offload.backend})")
        print(f"  Python heap per parked connection : {(heap1 - heap0) / n:8.0f} B")
        print(f"  RSS per parked connection         : {(rss1 - rss0) / n:8.0f} B "
              f"(includes map pages first touched)")
        print(f"  preallocated qo_conns map         : {conns_map / 1024:8.0f} KiB "
              f"({ctypes.sizeof(QoConn)} B x {conns_map // ctypes.sizeof(QoConn)} slots)")
        print(f"  user memory of the ring           : "
              f"{offload.ring.user.size / 1024:8.0f} KiB (buffers, send slots, records)")
        print("  goal                              :     1024 B per parked connection")
    finally:
        offload.close()
        sock.close()


if __name__ == "__main__":
    main()
