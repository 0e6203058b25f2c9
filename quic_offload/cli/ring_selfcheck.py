"""``quic-offload selfcheck``: prove the ring engine works on this machine, one line per check.

Builds a ring on the chosen backend and runs a NOP, a TIMEOUT, a SENDMSG + RECVMSG pair over
loopback UDP, a BPF request driven by a tiny built-in program, and the compiled ``test``
example through the eBPF runtime.  Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import socket
import struct
import time
from collections.abc import Callable

from uring.abi import (
    BPF_CTX_STRUCT,
    ETIME,
    prep_bpf,
    prep_nop,
    prep_recvmsg,
    prep_sendmsg,
    prep_timeout,
)
from uring.backends import BACKEND_NAMES, io_uring_available
from uring.program import BpfEnv
from uring.ring import Ring
from uring.user_structs import UserMsg

#: Every wait of every check gives up after this long.
CHECK_TIMEOUT_S = 5.0


class SelfcheckFailure(Exception):
    """A check did not see what it expected; the message says what it saw."""


class EmitThenWait:
    """Built-in program: the first run emits a CQE on CQ 1 and waits for it, the second run
    reaps it and lets the request complete (so the check covers emit, wait, re-run, reap)."""

    name = "selfcheck_emit_then_wait"

    def run(self, ctx: bytearray, env: BpfEnv) -> int:
        user_data, _, _ = BPF_CTX_STRUCT.unpack_from(ctx)
        out = memoryview(bytearray(16))
        if env.reap_cqe(1, out) == 0:
            return 0  # second run: the CQE we emitted is back
        if env.emit_cqe(1, user_data, 7, 0) != 0:
            return 0
        struct.pack_into("<II", ctx, 8, 1, 1)  # wait_nr = 1 on CQ 1
        return 0


def _check_nop(ring: Ring) -> str:
    start = time.perf_counter()
    ring.queue(prep_nop(user_data=0x5E1F))
    ring.submit(1, timeout=CHECK_TIMEOUT_S)
    cqe = ring.reap_cqe()
    if cqe is None or (cqe.user_data, cqe.res) != (0x5E1F, 0):
        raise SelfcheckFailure(f"expected (0x5e1f, 0), got {cqe}")
    return f"round trip {(time.perf_counter() - start) * 1e6:.0f} us"


def _check_timeout(ring: Ring) -> str:
    start = time.monotonic()
    ring.queue(prep_timeout(ring.timespec(0.02), user_data=2))
    ring.submit(1, timeout=CHECK_TIMEOUT_S)
    elapsed = time.monotonic() - start
    cqe = ring.reap_cqe()
    if cqe is None or cqe.res != -ETIME:
        raise SelfcheckFailure(f"expected -ETIME after 20 ms, got {cqe}")
    if elapsed < 0.02:
        raise SelfcheckFailure(f"20 ms timeout expired after {elapsed * 1000:.1f} ms")
    return f"20 ms timeout expired after {elapsed * 1000:.1f} ms"


def _check_udp(ring: Ring) -> str:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        tx.bind(("127.0.0.1", 0))
        out, inbound = UserMsg(ring.alloc, 64), UserMsg(ring.alloc, 64)
        out.set_datagram(b"quic-offload selfcheck", rx.getsockname())
        ring.queue(prep_recvmsg(rx.fileno(), inbound.msghdr, user_data=3))
        ring.queue(prep_sendmsg(tx.fileno(), out.msghdr, user_data=4))
        ring.submit(2, timeout=CHECK_TIMEOUT_S)
        got = {c.user_data: c.res for c in ring.reap_cqes()}
        if got != {3: 22, 4: 22}:
            raise SelfcheckFailure(f"expected 22 bytes sent and received, got {got}")
        payload, peer, _ = inbound.received(22)
        if payload != b"quic-offload selfcheck" or peer != tx.getsockname():
            raise SelfcheckFailure(f"received {payload!r} from {peer}")
        return f"22 bytes 127.0.0.1:{tx.getsockname()[1]} -> 127.0.0.1:{rx.getsockname()[1]}"
    finally:
        rx.close()
        tx.close()


def _check_bpf(ring: Ring) -> str:
    ring.register_bpf(0, EmitThenWait())
    ring.queue(prep_bpf(0, user_data=0xB9F))
    ring.submit(1, timeout=CHECK_TIMEOUT_S)
    cqe = ring.reap_cqe()
    if cqe is None or (cqe.user_data, cqe.res) != (0xB9F, 0):
        raise SelfcheckFailure(f"expected (0xb9f, 0), got {cqe}")
    stats = ring.engine.stats
    if (stats.bpf_runs, stats.bpf_rearms) != (2, 1):
        raise SelfcheckFailure(f"expected 2 runs and 1 re-arm, got {stats.bpf_runs} runs, "
                               f"{stats.bpf_rearms} re-arms")
    return "built-in program: 2 runs, 1 re-arm through CQ 1"


def _check_bpf_vm(ring: Ring) -> str:
    from pathlib import Path

    import bpf_programs
    from uring.bpf import load_object

    path = Path(bpf_programs.__file__).parent / "examples" / "test.bpf.o"
    program = load_object(path).programs["test"]
    ring.register_bpf(1, program)
    args_struct = struct.Struct("<IIIi32x")
    args = ring.alloc.alloc(args_struct.size)
    ring.user.write(args, args_struct.pack(29, 0, 0, -1))
    ring.queue(prep_bpf(1, user_data=args))
    ring.submit(2, timeout=CHECK_TIMEOUT_S)
    got = [(c.user_data, c.res) for c in ring.reap_cqes()]
    _in, out, runs, _ = args_struct.unpack(ring.user.read(args, args_struct.size))
    if (args, 0) not in got or (out, runs) != (31, 2):
        raise SelfcheckFailure(f"compiled 'test' example: CQEs {got}, out={out}, runs={runs}")
    return f"compiled example 'test' ({len(program.verified.insns)} insns): 2 runs, 29 -> 31"


CHECKS: list[tuple[str, Callable[[Ring], str]]] = [
    ("nop", _check_nop),
    ("timeout", _check_timeout),
    ("sendmsg+recvmsg", _check_udp),
    ("bpf", _check_bpf),
    ("bpf-vm", _check_bpf_vm),
]


def run(args: argparse.Namespace) -> int:
    backend = args.backend
    if backend in ("auto", "io_uring"):
        ok, reason = io_uring_available()
        chosen = "io_uring" if ok else "portable"
        if backend == "io_uring" and not ok:
            print(f"FAIL backend          io_uring requested but unavailable: {reason}")
            return 1
        print(f"ok   backend          {chosen} ({reason})")
        backend = chosen
    else:
        print("ok   backend          portable (chosen on the command line)")
    try:
        ring = Ring.create(backend=backend, cq_entries=(64, 16), user_memory=1 << 16,
                           threaded=args.threaded)
    except Exception as exc:
        print(f"FAIL ring            {type(exc).__name__}: {exc}")
        return 1
    failures = 0
    with ring:
        mode = "threaded" if args.threaded else "synchronous"
        print(f"ok   ring             {ring.backend} backend, {mode} engine, "
              f"ring_fd={ring.engine.ring_fd}")
        for name, check in CHECKS:
            try:
                detail = check(ring)
            except Exception as exc:
                failures += 1
                print(f"FAIL {name:<16} {type(exc).__name__}: {exc}")
            else:
                print(f"ok   {name:<16} {detail}")
    print("selfcheck passed" if not failures else f"selfcheck failed: {failures} check(s)")
    return 0 if not failures else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "selfcheck", help="check that the ring engine works on this machine",
        description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=BACKEND_NAMES, default="auto",
                        help="ring backend to check (default: auto)")
    parser.add_argument("--threaded", action="store_true",
                        help="run the engine on its own thread")
    parser.set_defaults(func=run)
