"""The engine on its own thread: enter() only rings the doorbell and waits, CQ 0's eventfd
wakes an asyncio loop, registration is marshalled to the engine thread, CQ 0 overflow still
loses nothing, and after stop() the same ring runs synchronously again."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable

import pytest

from uring.abi import prep_bpf, prep_nop, prep_recvmsg, prep_timeout
from uring.program import BpfProgram
from uring.ring import Ring
from uring.user_structs import UserMsg

LoadProgram = Callable[[str], BpfProgram]


def test_submit_and_wait_from_the_application_thread(make_ring: Callable[..., Ring]) -> None:
    ring = make_ring(threaded=True)
    assert ring.engine.threaded
    for i in range(200):
        ring.queue(prep_nop(user_data=i))
        ring.submit(1, timeout=5)
        cqe = ring.reap_cqe()
        assert cqe is not None and cqe.user_data == i
    assert ring.engine._thread is not threading.current_thread()


def test_cq0_eventfd_wakes_an_asyncio_loop(make_ring: Callable[..., Ring],
                                           udp_pair: tuple[socket.socket, socket.socket]
                                           ) -> None:
    rx, tx = udp_pair
    ring = make_ring(threaded=True)
    msg = UserMsg(ring.alloc, 64)
    ring.queue(prep_recvmsg(rx.fileno(), msg.msghdr, user_data=5))
    ring.submit()

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        got: asyncio.Future = loop.create_future()

        def readable() -> None:
            ring.drain_cq0_eventfd()
            cqe = ring.reap_cqe()
            if cqe is not None and not got.done():
                got.set_result((cqe.user_data, cqe.res))

        loop.add_reader(ring.cq0_eventfd, readable)
        try:
            loop.call_later(0.02, tx.sendto, b"wake up", rx.getsockname())
            return await asyncio.wait_for(got, 5)
        finally:
            loop.remove_reader(ring.cq0_eventfd)

    assert asyncio.run(main()) == (5, 7)
    assert msg.received(7)[0] == b"wake up"


def test_registration_runs_on_the_engine_thread(
    load_program: LoadProgram, make_ring: Callable[..., Ring],
) -> None:
    ring = make_ring(threaded=True)
    ring.register_bpf(0, load_program("waiter"))
    args = ring.alloc.alloc(16)
    ring.user.write(args, struct.pack("<IIII", 0, 0, 0, 0))
    ring.queue(prep_bpf(0, user_data=args))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().res == 0
    with pytest.raises(OSError, match="already holds"):
        ring.register_bpf(0, load_program("waiter"))
    bufs = ring.setup_buf_ring(bgid=9, entries=4, buf_size=64)
    assert bufs.bgid == 9 and 9 in ring.engine.buf_groups


def test_cq0_overflow_loses_nothing_when_threaded(make_ring: Callable[..., Ring]) -> None:
    ring = make_ring(sq_entries=128, cq_entries=(8,), threaded=True)
    for i in range(100):
        ring.queue(prep_nop(user_data=i))
    ring.submit()
    got: list[int] = []
    for _ in range(1000):
        if len(got) == 100:
            break
        got.extend(c.user_data for c in ring.wait_cqes(1, timeout=5))
        got.extend(c.user_data for c in ring.reap_cqes())
    assert got == list(range(100))


def test_timeout_completes_and_stop_returns_to_synchronous_mode(
    make_ring: Callable[..., Ring],
) -> None:
    ring = make_ring(threaded=True)
    ring.queue(prep_timeout(ring.timespec(0.02), user_data=1))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().user_data == 1
    ring.engine.stop()
    assert not ring.engine.threaded
    ring.queue(prep_nop(user_data=2))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().user_data == 2


def test_stop_drained_by_a_flush_before_the_sleep_still_stops(
        make_ring: Callable[..., Ring]) -> None:
    """stop()'s doorbell can be read by a flush in the middle of a pass (io_uring delivers the
    wakeup as a CQE the flush dispatches), after the pass looked at the stop flag: the thread
    must look again instead of sleeping on a doorbell that will not ring twice."""
    ring = make_ring(threaded=True)
    engine = ring.engine
    if not engine._backend_flushes:
        pytest.skip("this backend drains the doorbell only while it waits")
    in_flush, rung = threading.Event(), threading.Event()
    original_flush, original_doorbell = engine.backend.flush, engine.ring_doorbell
    armed = True

    def flush() -> None:
        nonlocal armed
        if armed and threading.current_thread() is engine._thread:
            armed = False
            in_flush.set()
            assert rung.wait(5)
            kernel = engine.backend.ring  # type: ignore[attr-defined]
            for _ in range(500):  # the wakeup CQE is posted on this thread's syscall exit
                if kernel.cq_ready():
                    break
                threading.Event().wait(0.002)
        original_flush()

    def doorbell() -> None:
        original_doorbell()
        if in_flush.is_set():
            rung.set()

    engine.backend.flush = flush  # type: ignore[method-assign]
    engine.ring_doorbell = doorbell  # type: ignore[method-assign]
    original_doorbell()  # wake the thread for one pass, which stops inside its flush
    assert in_flush.wait(5)
    engine.stop(timeout=2)
    assert not engine.threaded
