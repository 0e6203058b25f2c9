"""What a non-blocking syscall costs the engine thread when it gives the interpreter lock away.

The engine calls ``sendmsg`` (``MSG_DONTWAIT``) for every packet it sends and a non-waiting
``io_uring_enter`` to submit.  Through ctypes such a call either keeps the interpreter lock
(``ctypes.PyDLL``, what :mod:`uring.libc` uses for calls that cannot block) or releases it
around the call (``ctypes.CDLL``, the default).  Releasing is harmless while no other thread
wants the lock, and ruinous when one does -- an application's event loop busy with other
work: getting the lock back then takes until that thread's switch interval ends.

Measured side by side in one run, wall microseconds per 40-byte ``sendmsg`` to a loopback
UDP socket, with the lock kept and with it released, first alone, then with a Python thread
beside it that never blocks (the worst case of a busy application).  Bounded: a fixed
number of calls per section (fewer in the slow one); loopback only.

    python bench/bench_gil_handover.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import ctypes
import socket
import threading
import time
from collections.abc import Callable

from loopback_udp import udp_pair

from uring import libc
from uring.user_structs import encode_sockaddr

MSG_DONTWAIT = 0x40


def releasing_sendmsg() -> Callable[[int, int, int], int]:
    """The same libc ``sendmsg``, through the lock-releasing ctypes flavour."""
    fn = ctypes.CDLL(libc._LIBC_NAME, use_errno=True).sendmsg  # noqa: SLF001
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    fn.restype = ctypes.c_ssize_t
    return fn


class Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def per_call_us(send: Callable[[int, int, int], int], fd: int, msghdr: int,
                calls: int) -> float:
    """Nothing else in the loop may release the lock: no draining (a full UDP receive
    buffer drops datagrams; the sender still succeeds)."""
    start = time.perf_counter()
    for _ in range(calls):
        if send(fd, msghdr, MSG_DONTWAIT) < 0:
            raise OSError(ctypes.get_errno(), "sendmsg failed")
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    if not 1000 <= args.calls <= 1_000_000:
        parser.error("--calls 1000..1000000")

    with udp_pair(rx_blocking=False) as (rx, tx, rx_address):
        run(args.calls, rx, tx, rx_address)


def run(calls: int, rx: socket.socket, tx: socket.socket, rx_address: tuple) -> None:
    payload = ctypes.create_string_buffer(40)
    iov = Iovec(ctypes.addressof(payload), 40)
    sockaddr = encode_sockaddr(rx_address)
    name = ctypes.create_string_buffer(sockaddr, len(sockaddr))
    hdr = Msghdr(ctypes.addressof(name), len(sockaddr), ctypes.addressof(iov), 1, None, 0, 0)
    msghdr = ctypes.addressof(hdr)
    flavours = {"kept": libc.raw_sendmsg, "released": releasing_sendmsg()}

    print("wall us per non-blocking sendmsg (40 bytes, loopback)")
    print(f"{'':34s}{'lock kept':>11s}{'released':>11s}{'released/kept':>15s}")
    busy_stop = threading.Event()

    def busy() -> None:
        n = 0
        while not busy_stop.is_set():
            n += 1

    for label, with_busy in (("alone", False), ("beside a busy Python thread", True)):
        worker = None
        if with_busy:
            worker = threading.Thread(target=busy, daemon=True)
            worker.start()
        try:
            kept = per_call_us(flavours["kept"], tx.fileno(), msghdr, calls)
            released = per_call_us(flavours["released"], tx.fileno(), msghdr,
                                   max(200, calls // 100) if with_busy else calls)
        finally:
            busy_stop.set()
            if worker is not None:
                worker.join()
            busy_stop.clear()
        print(f"{label:34s}{kept:11.2f}{released:11.2f}{released / kept:14.1f}x")


if __name__ == "__main__":
    main()
