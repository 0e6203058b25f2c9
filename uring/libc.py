"""The system calls the engine makes through ctypes, returning ``-errno`` like the kernel does.

Both backends hand the kernel structs whose pointers are real addresses of user memory (see
:mod:`uring.kernel_memory`), so data lands directly where the application asked for it; the
Python ``socket``/``os`` wrappers would copy and re-encode instead.  Every wrapper returns the
syscall's result or a negative errno, which is exactly what a CQE carries.

Calls that cannot block (``MSG_DONTWAIT`` sends and receives, an ``io_uring_enter`` that
does not wait) keep the interpreter lock.  Releasing it around a call of a microsecond buys
nothing and costs a hand-over: while another thread of the process runs Python -- the
application's event loop on a busy server -- getting the lock back takes until that thread's
switch interval ends (up to 5 ms; 0.5 ms per call on average, measured), and the engine
would pay that on every packet.  Calls that wait (``io_uring_enter`` with a wait, file I/O)
release it, as they must.
"""

from __future__ import annotations

import ctypes
import ctypes.util

SYS_io_uring_setup = 425
SYS_io_uring_enter = 426
SYS_io_uring_register = 427

_LIBC_NAME = ctypes.util.find_library("c") or None
#: functions that release the interpreter lock during the call (they may wait)
_libc = ctypes.CDLL(_LIBC_NAME, use_errno=True)
#: the same functions keeping the interpreter lock (they never wait)
_libc_held = ctypes.PyDLL(_LIBC_NAME, use_errno=True)
_get_errno = ctypes.get_errno

_c_int = ctypes.c_int
_c_long = ctypes.c_long
_c_void_p = ctypes.c_void_p
_c_size_t = ctypes.c_size_t
_c_ssize_t = ctypes.c_ssize_t
_c_int64 = ctypes.c_int64


def _fn(lib: ctypes.CDLL, name: str, argtypes: list, restype: type) -> ctypes._CFuncPtr:
    """A typed libc function from ``lib`` (``_libc`` releases the lock, ``_libc_held`` not)."""
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = restype
    return fn


_FD_BUF_LEN = [_c_int, _c_void_p, _c_size_t]
_FD_BUF_LEN_OFF = [_c_int, _c_void_p, _c_size_t, _c_int64]
_FD_MSGHDR_FLAGS = [_c_int, _c_void_p, _c_int]

# sendmsg/recvmsg: every caller passes MSG_DONTWAIT
_sendmsg = _fn(_libc_held, "sendmsg", _FD_MSGHDR_FLAGS, _c_ssize_t)
_recvmsg = _fn(_libc_held, "recvmsg", _FD_MSGHDR_FLAGS, _c_ssize_t)
# file I/O may block
_read = _fn(_libc, "read", _FD_BUF_LEN, _c_ssize_t)
_write = _fn(_libc, "write", _FD_BUF_LEN, _c_ssize_t)
_pread = _fn(_libc, "pread64", _FD_BUF_LEN_OFF, _c_ssize_t)
_pwrite = _fn(_libc, "pwrite64", _FD_BUF_LEN_OFF, _c_ssize_t)
# eventfds are non-blocking
_write_held = _fn(_libc_held, "write", _FD_BUF_LEN, _c_ssize_t)
_read_held = _fn(_libc_held, "read", _FD_BUF_LEN, _c_ssize_t)
#: ``syscall`` for calls that may wait (an ``io_uring_enter`` waiting for completions)
_syscall = _fn(_libc, "syscall", [_c_long] * 7, _c_long)
#: ``syscall`` for calls that return at once (an ``io_uring_enter`` without a wait)
syscall_nowait = _fn(_libc_held, "syscall", [_c_long] * 7, _c_long)

#: the 8-byte counter increment every eventfd signal writes (never modified)
_ONE = ctypes.c_uint64(1)
_ONE_ADDR = ctypes.addressof(_ONE)


#: the bare ctypes ``sendmsg`` (keeps the interpreter lock; pass ``MSG_DONTWAIT``): -1 on
#: failure, errno in ``ctypes.get_errno()`` (hot paths)
raw_sendmsg = _sendmsg


def sendmsg(fd: int, msghdr: int, flags: int) -> int:
    ret = _sendmsg(fd, msghdr, flags)
    return ret if ret >= 0 else -_get_errno()


def recvmsg(fd: int, msghdr: int, flags: int) -> int:
    ret = _recvmsg(fd, msghdr, flags)
    return ret if ret >= 0 else -_get_errno()


def read(fd: int, buf: int, nbytes: int, offset: int) -> int:
    """``pread`` at ``offset``, or ``read`` at the file position when ``offset`` is -1."""
    ret = _read(fd, buf, nbytes) if offset == -1 else _pread(fd, buf, nbytes, offset)
    return ret if ret >= 0 else -_get_errno()


def write(fd: int, buf: int, nbytes: int, offset: int) -> int:
    """``pwrite`` at ``offset``, or ``write`` at the file position when ``offset`` is -1."""
    ret = _write(fd, buf, nbytes) if offset == -1 else _pwrite(fd, buf, nbytes, offset)
    return ret if ret >= 0 else -_get_errno()


def io_uring_setup(entries: int, params: int) -> int:
    ret = _syscall(SYS_io_uring_setup, entries, params, 0, 0, 0, 0)
    return ret if ret >= 0 else -_get_errno()


def io_uring_enter(fd: int, to_submit: int, min_complete: int, flags: int, arg: int = 0,
                   argsz: int = 0) -> int:
    ret = _syscall(SYS_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz)
    return ret if ret >= 0 else -_get_errno()


def io_uring_register(fd: int, opcode: int, arg: int, nr_args: int) -> int:
    ret = _syscall(SYS_io_uring_register, fd, opcode, arg, nr_args, 0, 0)
    return ret if ret >= 0 else -_get_errno()


def eventfd_signal(fd: int) -> int:
    """Add 1 to a non-blocking eventfd's counter, keeping the interpreter lock (unlike
    ``os.eventfd_write``); 0 or ``-errno``."""
    ret = _write_held(fd, _ONE_ADDR, 8)
    return 0 if ret >= 0 else -_get_errno()


def eventfd_drain(fd: int) -> int:
    """Read and reset a non-blocking eventfd's counter, keeping the interpreter lock; the
    counter's value, or ``-errno`` (``-EAGAIN`` when it was zero)."""
    value = ctypes.c_uint64()
    ret = _read_held(fd, ctypes.addressof(value), 8)
    return value.value if ret >= 0 else -_get_errno()
