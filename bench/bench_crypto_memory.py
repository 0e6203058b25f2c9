"""Bytes per key-table slot: cold (keys only) against warm (live cipher contexts).

Each measurement installs ``--slots`` connections in a fresh child process and reports:

* Python heap per slot, from tracemalloc (what the slot's own objects take);
* resident memory per slot, from /proc/self/statm (includes OpenSSL's cipher contexts,
  which tracemalloc cannot see because they are allocated outside Python);
* for "warm", every slot also sealed one PING and opened one packet, so both of its
  directions hold AEAD and header-protection contexts (``warm_slots=None``).

The engine's budget is 1 KiB per parked connection in total; the cold figure is what a
parked connection costs here, the warm one what each of the ``warm_slots`` most recently
used slots adds.  Bounded: one pass over ``--slots`` slots per child.

    python bench/bench_crypto_memory.py [--slots 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tracemalloc

from quic_offload.crypto import CipherSuite, KeyTable

SUITES = {
    "aes128": CipherSuite.AES_128_GCM_SHA256,
    "aes256": CipherSuite.AES_256_GCM_SHA384,
    "chacha20": CipherSuite.CHACHA20_POLY1305_SHA256,
}
DCID = bytes(8)


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(suite_name: str, warm: bool, slots: int, trace: bool) -> float:
    """Runs in the child: install ``slots`` slots and report the growth per slot, of the
    traced Python heap (``trace``) or of resident memory (without tracemalloc, whose own
    bookkeeping would inflate it)."""
    suite = SUITES[suite_name]
    size = 48 if suite == CipherSuite.AES_256_GCM_SHA384 else 32
    send_secrets = [os.urandom(size) for _ in range(slots)]
    recv_secret = os.urandom(size)
    table = KeyTable(slots, warm_slots=None if warm else 0)
    peer = KeyTable(1, warm_slots=0)
    peer.install(0, suite, recv_secret, send_secrets[0])
    incoming = peer.seal_ping(0, DCID, 0, None)
    gc.collect()
    rss_before = resident_bytes()
    if trace:
        tracemalloc.start()
    for slot in range(slots):
        # every slot gets the same receive secret so one peer packet opens in all of them
        table.install(slot, suite, send_secrets[slot], recv_secret)
        if warm:
            table.seal_ping(slot, DCID, 0, None)
            table.open_datagram(slot, incoming, dcid_len=8, largest_pn=-1)
    assert table.warm_slot_count() == (slots if warm else 0)
    if trace:
        heap = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return heap / slots
    gc.collect()
    return (resident_bytes() - rss_before) / slots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=20_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        suite_name, mode, what = args.child
        print(json.dumps(measure(suite_name, mode == "warm", args.slots, what == "heap")))
        return

    print(f"{args.slots} slots per measurement, each in a fresh process")
    print(f"  {'suite':9s} {'mode':5s} {'heap B/slot':>12s} {'RSS B/slot':>11s}")
    for suite_name in SUITES:
        for mode in ("cold", "warm"):
            results = {}
            for what in ("heap", "rss"):
                output = subprocess.run(
                    [sys.executable, __file__, "--slots", str(args.slots), "--child",
                     suite_name, mode, what],
                    check=True, capture_output=True, text=True, timeout=300,
                ).stdout  # fmt: skip
                results[what] = json.loads(output)
            print(f"  {suite_name:9s} {mode:5s} {results['heap']:12.0f} {results['rss']:11.0f}")


if __name__ == "__main__":
    main()
