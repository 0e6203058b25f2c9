"""Helper registry: which helpers a program type offers, their argument kinds and code.

A helper is described the way the kernel's ``bpf_func_proto`` does it: one kind per argument
register R1..R5 and a kind for the return value.  The VM (both execution paths) uses the
kinds to turn registers into Python values *before* calling the implementation:

==============  =====================================================  =====================
kind            the register must hold                                 the implementation gets
==============  =====================================================  =====================
``ANYTHING``    any value                                              the u64 value (``int``)
``CTX``         the context pointer (exactly)                          the ctx ``bytearray``
``MEM``         a pointer to readable memory; the next arg is its size ``bytes`` (a copy)
``MEM_WRITE``   a pointer to writable memory; the next arg is its size writable ``memoryview``
``SIZE``        the byte size of the preceding memory argument         (nothing: it is the
                                                                       length of that value)
``MAP``         a map (``ld_imm64`` of a map)                          the :class:`Map`
``MAP_KEY``     a pointer to ``key_size`` readable bytes               ``bytes``
``MAP_VALUE``   a pointer to ``value_size`` readable bytes             ``bytes``
``CALLBACK``    a function (``ld_imm64`` of a static function)         ``callable(*args)->int``
==============  =====================================================  =====================

Every pointer is bounds-checked first; a bad pointer aborts the run (``EFAULT``), so an
implementation only ever sees valid Python objects.  Implementations are called as
``impl(env, *values)`` and return an ``int`` (negative errno on failure; the VM stores it as
u64), or, for ``MAP_VALUE_OR_NULL`` returns, ``(buffer, offset)`` / ``None``.

Adding helpers for a new program type is one :meth:`HelperRegistry.extended` call plus one
``BPF_HELPER`` line in a header; the verifier then accepts exactly the IDs of the registry
the object is loaded with.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from uring.abi import (
    CQE_SIZE,
    SQE_SIZE,
    BPF_FUNC_copy_to_user,
    BPF_FUNC_io_uring_emit_cqe,
    BPF_FUNC_io_uring_reap_cqe,
    BPF_FUNC_io_uring_submit,
)
from uring.bpf.isa import MASK32, to_signed32
from uring.bpf.maps import BPF_EXIST, Map

BPF_FUNC_map_lookup_elem = 1
BPF_FUNC_map_update_elem = 2
BPF_FUNC_map_delete_elem = 3
BPF_FUNC_ktime_get_ns = 5
BPF_FUNC_get_prandom_u32 = 7
BPF_FUNC_copy_from_user = 148
BPF_FUNC_loop = 181

#: bpf_loop's limit on nr_loops, as in Linux.
BPF_MAX_LOOPS = 1 << 23


class Arg(enum.Enum):
    ANYTHING = "anything"
    CTX = "ctx"
    MEM = "mem"
    MEM_WRITE = "mem_write"
    SIZE = "size"
    MAP = "map"
    MAP_KEY = "map_key"
    MAP_VALUE = "map_value"
    CALLBACK = "callback"


class Ret(enum.Enum):
    INTEGER = "integer"
    MAP_VALUE_OR_NULL = "map_value_or_null"


@dataclass(frozen=True)
class HelperSpec:
    """One helper: ID, name, argument kinds for R1.. and the implementation."""

    id: int
    name: str
    args: tuple[Arg, ...]
    impl: Callable[..., object]
    ret: Ret = Ret.INTEGER
    doc: str = ""
    runs_code: bool = field(init=False)

    def __post_init__(self) -> None:
        if len(self.args) > 5:
            raise ValueError(f"helper {self.name}: at most 5 arguments (R1..R5)")
        for i, kind in enumerate(self.args):
            if kind is Arg.SIZE and (i == 0 or self.args[i - 1] not in (Arg.MEM, Arg.MEM_WRITE)):
                raise ValueError(f"helper {self.name}: SIZE arg {i + 1} must follow a MEM arg")
            if kind in (Arg.MEM, Arg.MEM_WRITE) and (
                i + 1 >= len(self.args) or self.args[i + 1] is not Arg.SIZE
            ):
                raise ValueError(f"helper {self.name}: MEM arg {i + 1} needs a SIZE after it")
            if kind in (Arg.MAP_KEY, Arg.MAP_VALUE) and Arg.MAP not in self.args[:i]:
                raise ValueError(f"helper {self.name}: {kind.value} arg needs a MAP arg first")
        if self.ret is Ret.MAP_VALUE_OR_NULL and Arg.MAP not in self.args:
            raise ValueError(f"helper {self.name}: a map-value return needs a MAP argument")
        object.__setattr__(self, "runs_code", Arg.CALLBACK in self.args)


class HelperRegistry:
    """The helpers of one program type, by ID."""

    def __init__(self, program_type: str, specs: tuple[HelperSpec, ...] = ()) -> None:
        self.program_type = program_type
        self._specs: dict[int, HelperSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: HelperSpec) -> None:
        if spec.id in self._specs:
            raise ValueError(
                f"helper ID {spec.id} already registered as {self._specs[spec.id].name} "
                f"for program type {self.program_type}"
            )
        self._specs[spec.id] = spec

    def extended(self, program_type: str, *specs: HelperSpec) -> HelperRegistry:
        """A new registry with these helpers added to this one's (this one is unchanged)."""
        return HelperRegistry(program_type, (*self._specs.values(), *specs))

    def get(self, helper_id: int) -> HelperSpec | None:
        return self._specs.get(helper_id)

    def name_of(self, helper_id: int) -> str | None:
        spec = self._specs.get(helper_id)
        return spec.name if spec else None

    def __contains__(self, helper_id: object) -> bool:
        return helper_id in self._specs

    def __iter__(self) -> Iterator[HelperSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.id))

    def __len__(self) -> int:
        return len(self._specs)


# ------------------------------------------------------------------------------------------
# Implementations.  `env` is the engine's BpfEnv (uring.program).
# ------------------------------------------------------------------------------------------


def _map_lookup(env: object, m: Map, key: bytes) -> tuple[bytearray, int] | None:
    return m.bpf_lookup(key)


def _map_update(env: object, m: Map, key: bytes, value: bytes, flags: int) -> int:
    if flags > BPF_EXIST:
        return -errno.EINVAL
    if m.frozen:
        return -errno.EPERM
    return m.bpf_update(key, value, flags)


def _map_delete(env: object, m: Map, key: bytes) -> int:
    if m.frozen:
        return -errno.EPERM
    return m.bpf_delete(key)


def _ktime_get_ns(env: object) -> int:
    return env.ktime_get_ns()  # type: ignore[attr-defined]


def _get_prandom_u32(env: object) -> int:
    return env.get_prandom_u32() & MASK32  # type: ignore[attr-defined]


def _copy_from_user(env: object, dst: memoryview, user_ptr: int) -> int:
    return env.copy_from_user(dst, user_ptr)  # type: ignore[attr-defined]


def _copy_to_user(env: object, user_ptr: int, src: bytes) -> int:
    return env.copy_to_user(user_ptr, src)  # type: ignore[attr-defined]


def _loop(env: object, nr_loops: int, callback: Callable[..., int], cb_ctx: int,
          flags: int) -> int:
    if flags:
        return -errno.EINVAL
    if nr_loops > BPF_MAX_LOOPS:
        return -errno.E2BIG
    for i in range(nr_loops):
        if callback(i, cb_ctx):
            return i + 1
    return nr_loops


def _io_uring_submit(env: object, ctx: bytearray, sqe: bytes) -> int:
    if len(sqe) != SQE_SIZE:
        return -errno.EINVAL
    return env.submit(sqe)  # type: ignore[attr-defined]


def _io_uring_emit_cqe(env: object, ctx: bytearray, cq_idx: int, user_data: int, res: int,
                       flags: int) -> int:
    return env.emit_cqe(cq_idx & MASK32, user_data, to_signed32(res),  # type: ignore
                        flags & MASK32)


def _io_uring_reap_cqe(env: object, ctx: bytearray, cq_idx: int, out: memoryview) -> int:
    if len(out) < CQE_SIZE:
        return -errno.EINVAL
    return env.reap_cqe(cq_idx & MASK32, out[:CQE_SIZE])  # type: ignore[attr-defined]


A = Arg
MAP_HELPERS = (
    HelperSpec(BPF_FUNC_map_lookup_elem, "bpf_map_lookup_elem", (A.MAP, A.MAP_KEY),
               _map_lookup, Ret.MAP_VALUE_OR_NULL, "pointer to the value under key, or NULL"),
    HelperSpec(BPF_FUNC_map_update_elem, "bpf_map_update_elem",
               (A.MAP, A.MAP_KEY, A.MAP_VALUE, A.ANYTHING), _map_update,
               doc="create or replace (flags BPF_ANY / BPF_NOEXIST / BPF_EXIST)"),
    HelperSpec(BPF_FUNC_map_delete_elem, "bpf_map_delete_elem", (A.MAP, A.MAP_KEY),
               _map_delete, doc="remove key; -ENOENT if absent, -EINVAL on arrays"),
)
BASE_HELPERS = (
    *MAP_HELPERS,
    HelperSpec(BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns", (), _ktime_get_ns,
               doc="the engine's monotonic clock, ns"),
    HelperSpec(BPF_FUNC_get_prandom_u32, "bpf_get_prandom_u32", (), _get_prandom_u32,
               doc="pseudo-random u32"),
    HelperSpec(BPF_FUNC_copy_from_user, "bpf_copy_from_user", (A.MEM_WRITE, A.SIZE, A.ANYTHING),
               _copy_from_user, doc="fill dst from user memory"),
    HelperSpec(BPF_FUNC_loop, "bpf_loop", (A.ANYTHING, A.CALLBACK, A.ANYTHING, A.ANYTHING),
               _loop, doc="call callback(i, ctx) up to nr_loops times"),
)
IO_URING_HELPERS = (
    HelperSpec(BPF_FUNC_io_uring_submit, "bpf_io_uring_submit", (A.CTX, A.MEM, A.SIZE),
               _io_uring_submit, doc="queue one 64-byte SQE"),
    HelperSpec(BPF_FUNC_io_uring_emit_cqe, "bpf_io_uring_emit_cqe",
               (A.CTX, A.ANYTHING, A.ANYTHING, A.ANYTHING, A.ANYTHING), _io_uring_emit_cqe,
               doc="post (user_data, res, flags) on CQ cq_idx"),
    HelperSpec(BPF_FUNC_io_uring_reap_cqe, "bpf_io_uring_reap_cqe",
               (A.CTX, A.ANYTHING, A.MEM_WRITE, A.SIZE), _io_uring_reap_cqe,
               doc="pop the oldest CQE of CQ cq_idx; -ENOENT when empty"),
    HelperSpec(BPF_FUNC_copy_to_user, "bpf_copy_to_user", (A.ANYTHING, A.MEM, A.SIZE),
               _copy_to_user, doc="write src to user memory"),
)
del A

#: Name of the program type whose registry :func:`io_uring_helpers` returns.
IO_URING_PROGRAM_TYPE = "io_uring"


def io_uring_helpers() -> HelperRegistry:
    """A fresh registry of the ``io_uring`` program type (BPF requests)."""
    return HelperRegistry(IO_URING_PROGRAM_TYPE, (*BASE_HELPERS, *IO_URING_HELPERS))
