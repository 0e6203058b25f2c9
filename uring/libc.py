"""The system calls the engine makes through ctypes, returning ``-errno`` like the kernel does.

Both backends hand the kernel structs whose pointers are real addresses of user memory (see
:mod:`uring.kernel_memory`), so data lands directly where the application asked for it; the
Python ``socket``/``os`` wrappers would copy and re-encode instead.  Every wrapper returns the
syscall's result or a negative errno, which is exactly what a CQE carries.
"""

from __future__ import annotations

import ctypes
import ctypes.util

SYS_io_uring_setup = 425
SYS_io_uring_enter = 426
SYS_io_uring_register = 427

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_get_errno = ctypes.get_errno

_c_int = ctypes.c_int
_c_long = ctypes.c_long
_c_void_p = ctypes.c_void_p
_c_size_t = ctypes.c_size_t
_c_ssize_t = ctypes.c_ssize_t
_c_int64 = ctypes.c_int64

_sendmsg = _libc.sendmsg
_sendmsg.argtypes = [_c_int, _c_void_p, _c_int]
_sendmsg.restype = _c_ssize_t

_recvmsg = _libc.recvmsg
_recvmsg.argtypes = [_c_int, _c_void_p, _c_int]
_recvmsg.restype = _c_ssize_t

_read = _libc.read
_read.argtypes = [_c_int, _c_void_p, _c_size_t]
_read.restype = _c_ssize_t

_write = _libc.write
_write.argtypes = [_c_int, _c_void_p, _c_size_t]
_write.restype = _c_ssize_t

_pread = _libc.pread64
_pread.argtypes = [_c_int, _c_void_p, _c_size_t, _c_int64]
_pread.restype = _c_ssize_t

_pwrite = _libc.pwrite64
_pwrite.argtypes = [_c_int, _c_void_p, _c_size_t, _c_int64]
_pwrite.restype = _c_ssize_t

_syscall = _libc.syscall
_syscall.argtypes = [_c_long] * 7
_syscall.restype = _c_long


#: the bare ctypes ``sendmsg``: -1 on failure, errno in ``ctypes.get_errno()`` (hot paths)
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
