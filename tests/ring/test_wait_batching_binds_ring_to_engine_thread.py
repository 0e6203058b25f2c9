"""With ``wait_batch_us`` the engine thread binds the io_uring backend to itself (a kernel
ring with deferred task work, entered only by that thread): I/O submitted from the
application thread still completes, and stop() releases the bound ring on the thread's way
out -- in-flight operations included -- after which the engine refuses to be driven and
closes cleanly.  On the portable backend the option changes nothing."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable

import pytest

from uring.abi import prep_nop, prep_recvmsg
from uring.engine import EngineClosed
from uring.ring import Ring
from uring.user_structs import UserMsg


def started_ring(make_ring: Callable[..., Ring], backend: str) -> Ring:
    """A threaded ring with wait batching, once its thread has had the chance to bind."""
    ring = make_ring(threaded=True, wait_batch_us=500)
    ring.queue(prep_nop(user_data=1))
    ring.submit(1, timeout=5)  # the thread binds before its first pass
    assert ring.reap_cqe().user_data == 1
    if backend == "io_uring" and not ring.engine.thread_bound:
        pytest.skip("this kernel lacks deferred task work or minimum wait times")
    assert ring.engine.thread_bound == (backend == "io_uring")
    return ring


def test_io_from_the_application_thread_completes(
        make_ring: Callable[..., Ring], udp_pair: tuple[socket.socket, socket.socket],
        backend: str) -> None:
    rx, tx = udp_pair
    ring = started_ring(make_ring, backend)
    msg = UserMsg(ring.alloc, 64)
    for i in range(20):
        ring.queue(prep_recvmsg(rx.fileno(), msg.msghdr, user_data=100 + i))
        ring.submit()
        tx.sendto(b"x" * (i + 1), rx.getsockname())
        assert ring.submit(1, timeout=5) != -errno.ETIME, f"datagram {i} never completed"
        cqe = ring.reap_cqe()
        assert (cqe.user_data, cqe.res) == (100 + i, i + 1)


def test_stop_releases_a_bound_backend_with_io_in_flight(
        make_ring: Callable[..., Ring], udp_pair: tuple[socket.socket, socket.socket],
        backend: str) -> None:
    rx, _tx = udp_pair
    ring = started_ring(make_ring, backend)
    if not ring.engine.thread_bound:
        pytest.skip("only a bound backend goes with the engine thread")
    msg = UserMsg(ring.alloc, 64)
    ring.queue(prep_recvmsg(rx.fileno(), msg.msghdr, user_data=7))  # nothing will arrive
    ring.submit()
    ring.queue(prep_nop(user_data=8))
    ring.submit(1, timeout=5)  # the receive is in the kernel by now

    ring.engine.stop()  # must not hang on the receive
    assert ring.engine.backend.ring.closed
    with pytest.raises(EngineClosed, match="close"):
        ring.submit(1, timeout=1)
    with pytest.raises(EngineClosed, match="new engine"):
        ring.engine.start()
    ring.close()
    assert ring.engine.closed


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_close_after_the_bound_thread_crashed(make_ring: Callable[..., Ring], backend: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """A bug that kills the engine thread leaves a ring no other thread may enter: close()
    still releases it, and says what happened instead of failing on the kernel's EEXIST."""
    ring = started_ring(make_ring, backend)
    if not ring.engine.thread_bound:
        pytest.skip("only a bound backend goes with the engine thread")
    engine = ring.engine

    def crash() -> None:
        raise RuntimeError("injected engine bug")

    engine._progress = crash  # type: ignore[method-assign]
    engine.ring_doorbell()
    engine._thread.join(5)
    assert not engine._thread.is_alive()
    with caplog.at_level(logging.ERROR, "uring"):
        ring.close()
    assert engine.backend.ring.closed
    assert "bound_ring_closed_by_other_thread" in caplog.text


def test_a_kernel_without_deferred_task_work_keeps_the_ordinary_ring(
        make_ring: Callable[..., Ring], backend: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if backend != "io_uring":
        pytest.skip("io_uring only")
    from uring.abi import IORING_SETUP_DEFER_TASKRUN
    from uring.backends import io_uring as backend_module
    from uring.backends.kernel_ring import KernelRing, KernelRingError

    def old_kernel_ring(entries: int, cq_entries: int = 0, flags: int = 0) -> KernelRing:
        if flags & IORING_SETUP_DEFER_TASKRUN:  # what io_uring_setup says before Linux 6.1
            raise KernelRingError(errno.EINVAL, "io_uring_setup failed: Invalid argument")
        return KernelRing(entries, cq_entries, flags)

    monkeypatch.setattr(backend_module, "KernelRing", old_kernel_ring)
    ring = make_ring(threaded=True, wait_batch_us=500)
    ring.queue(prep_nop(user_data=3))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().user_data == 3
    assert not ring.engine.thread_bound
    ring.engine.stop()  # an unbound engine can be driven again after stop()
    ring.queue(prep_nop(user_data=4))
    ring.submit(1, timeout=5)
    assert ring.reap_cqe().user_data == 4
