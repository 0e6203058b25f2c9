"""Backends: how the engine's operations reach the operating system.

* :mod:`uring.backends.io_uring` -- a real kernel io_uring instance;
* :mod:`uring.backends.portable` -- non-blocking syscalls, epoll and a timer heap, for places
  where io_uring is blocked (containers with the default seccomp profile).

:func:`open_backend` with ``"auto"`` picks ``io_uring`` when ``io_uring_setup`` works and logs
one line saying which backend it chose and why.
"""

from __future__ import annotations

import logging

from uring.backends.base import Backend, BackendUnavailable

log = logging.getLogger("uring.backends")

BACKEND_NAMES = ("auto", "io_uring", "portable")


def open_backend(name: str = "auto") -> Backend:
    """A new backend instance: ``"io_uring"``, ``"portable"`` or ``"auto"``."""
    if name == "portable":
        from uring.backends.portable import PortableBackend

        return PortableBackend()
    if name == "io_uring":
        from uring.backends.io_uring import IoUringBackend

        return IoUringBackend()
    if name == "auto":
        from uring.backends.io_uring import IoUringBackend

        try:
            backend: Backend = IoUringBackend()
        except BackendUnavailable as exc:
            from uring.backends.portable import PortableBackend

            log.info("event=backend_selected backend=portable reason=%r", str(exc))
            return PortableBackend()
        log.info("event=backend_selected backend=io_uring reason='io_uring_setup succeeded'")
        return backend
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


def io_uring_available() -> tuple[bool, str]:
    """Whether the io_uring backend can run here, with the reason when it cannot."""
    from uring.backends.io_uring import probe

    return probe()


__all__ = ["BACKEND_NAMES", "Backend", "BackendUnavailable", "io_uring_available",
           "open_backend"]
