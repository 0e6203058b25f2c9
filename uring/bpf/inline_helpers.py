"""Direct engine calls for the standard helpers, so translated code skips a Python frame.

The helper registry calls ``impl(env, *checked_args)``, and the standard implementations of
the io_uring program type are thin: they check a size or mask an argument and forward to one
:class:`~uring.program.BpfEnv` method.  When the translator has resolved a call site's
arguments at translation time (constant sizes, the ctx pointer, memory in a known region),
it emits that method call itself -- same method, same arguments, same order -- so both
execution paths make identical engine calls.  A registry that replaces an implementation
(same helper ID, another function) is never inlined.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from uring.abi import (
    CQE_SIZE,
    SQE_SIZE,
    BPF_FUNC_copy_to_user,
    BPF_FUNC_io_uring_emit_cqe,
    BPF_FUNC_io_uring_reap_cqe,
    BPF_FUNC_io_uring_submit,
)
from uring.bpf.helpers import (
    BPF_FUNC_copy_from_user,
    BPF_FUNC_get_prandom_u32,
    BPF_FUNC_ktime_get_ns,
    BPF_FUNC_loop,
    HelperSpec,
    io_uring_helpers,
)
from uring.bpf.isa import MASK32, MASK64, to_signed32

_STANDARD = {spec.id: spec.impl for spec in io_uring_helpers()}


def is_standard(spec: HelperSpec) -> bool:
    """Whether ``spec`` runs the standard implementation of its helper ID."""
    return _STANDARD.get(spec.id) is spec.impl


def is_standard_loop(spec: HelperSpec) -> bool:
    """Whether ``spec`` is the standard ``bpf_loop``: it calls ``callback(i, ctx)`` with
    ``0 <= i < nr_loops <= BPF_MAX_LOOPS`` and ``ctx`` its third argument, nothing else."""
    return spec.id == BPF_FUNC_loop and is_standard(spec)


@dataclass(frozen=True)
class ArgCode:
    """One resolved helper argument: its Python expression, and what is known about it."""

    expr: str
    #: a constant value (ANYTHING arguments), else None
    const: int | None = None
    #: an upper bound of the value (ANYTHING arguments), else None
    hi: int | None = None
    #: the byte size of a memory argument when it is a constant, else None
    size: int | None = None


@dataclass(frozen=True)
class DirectCall:
    """``env.<method>(*args)``, or a constant result when the helper rejects its arguments
    without reaching the engine."""

    method: str | None
    args: tuple[str, ...] = ()
    #: the result is already a u32 (no 64-bit mask needed)
    u32: bool = False
    constant: int | None = None


def _u32(a: ArgCode) -> str:
    if a.const is not None:
        return str(a.const & MASK32)
    if a.hi is not None and a.hi <= MASK32:
        return a.expr
    return f"({a.expr} & 0xFFFFFFFF)"


def _s32(a: ArgCode) -> str:
    if a.const is not None:
        return str(to_signed32(a.const))
    return f"to_signed32({a.expr})"


def direct_call(spec: HelperSpec, args: list[ArgCode]) -> DirectCall | None:
    """The engine call a standard helper makes for these arguments (the ctx argument and
    SIZE arguments are not in ``args``), or None when it is not a standard helper."""
    if not is_standard(spec):
        return None
    hid = spec.id
    if hid == BPF_FUNC_ktime_get_ns:
        return DirectCall("ktime_get_ns")
    if hid == BPF_FUNC_get_prandom_u32:
        return DirectCall("get_prandom_u32", u32=True)
    if hid == BPF_FUNC_copy_from_user:
        return DirectCall("copy_from_user", (args[0].expr, args[1].expr))
    if hid == BPF_FUNC_copy_to_user:
        return DirectCall("copy_to_user", (args[0].expr, args[1].expr))
    if hid == BPF_FUNC_io_uring_submit:
        if args[0].size is None:
            return None  # a size known only at run time: the helper checks it
        if args[0].size != SQE_SIZE:
            return DirectCall(None, constant=-errno.EINVAL & MASK64)
        return DirectCall("submit", (args[0].expr,))
    if hid == BPF_FUNC_io_uring_emit_cqe:
        cq, user_data, res, flags = args
        return DirectCall("emit_cqe", (_u32(cq), user_data.expr, _s32(res), _u32(flags)))
    if hid == BPF_FUNC_io_uring_reap_cqe:
        cq, out = args
        if out.size is None:
            return None
        if out.size < CQE_SIZE:
            return DirectCall(None, constant=-errno.EINVAL & MASK64)
        view = out.expr if out.size == CQE_SIZE else f"{out.expr}[:{CQE_SIZE}]"
        return DirectCall("reap_cqe", (_u32(cq), view))
    return None
