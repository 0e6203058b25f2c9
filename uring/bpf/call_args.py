"""Helper calls: registers in, checked Python values to the implementation, R0 out.

Shared by both execution paths so that a helper sees exactly the same arguments, and a bad
argument aborts with exactly the same error, whichever path runs the program.  The
translator inlines the common cases (a stack buffer of constant size, a constant map) and
calls :func:`call_helper` for the rest.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from uring.bpf.helpers import Arg, HelperSpec, Ret
from uring.bpf.isa import MASK64
from uring.bpf.maps import ArrayMap, Map
from uring.bpf.memory import (
    CTX_BASE,
    OFFSET_MASK,
    REGION_SHIFT,
    RID_FUNCTION,
    RID_MAP_HANDLE,
    RID_STATIC,
    RunState,
)

#: Builds the Python callable a CALLBACK argument becomes: (state, function start pc,
#: call-site pc) -> callable(*args) -> int.
CallbackFactory = Callable[[RunState, int, int], Callable[..., int]]


def map_of(st: RunState, pc: int, maps: list[Map], spec: HelperSpec, argno: int,
           value: int) -> tuple[int, Map]:
    index = value & OFFSET_MASK
    if value >> REGION_SHIFT != RID_MAP_HANDLE or index >= len(maps):
        raise st.misuse(pc, f"{spec.name} arg {argno}: expected a map, got "
                            f"{st.describe(value)}")
    return index, maps[index]


def map_value_pointer(st: RunState, index: int, m: Map,
                      found: tuple[bytearray, int] | None) -> int:
    """The address a program gets for a value a map handed out (0 for NULL)."""
    if found is None:
        return 0
    buf, off = found
    if isinstance(m, ArrayMap):
        return ((RID_STATIC + index) << REGION_SHIFT) + off
    return st.add_region(buf) + off


def call_helper(st: RunState, pc: int, spec: HelperSpec, regs: tuple[int, ...],
                maps: list[Map], callbacks: set[int], make_callback: CallbackFactory) -> int:
    """Run helper ``spec`` with R1.. = ``regs``; returns the new R0 (u64)."""
    args: list[object] = []
    kinds = spec.args
    current_map: Map | None = None
    map_index = 0
    for i, kind in enumerate(kinds):
        v = regs[i]
        if kind is Arg.ANYTHING:
            args.append(v)
        elif kind is Arg.MEM:
            args.append(st.read_bytes(pc, v, regs[i + 1]))
        elif kind is Arg.MEM_WRITE:
            args.append(st.write_view(pc, v, regs[i + 1]))
        elif kind is Arg.SIZE:
            continue
        elif kind is Arg.CTX:
            if v != CTX_BASE:
                raise st.misuse(pc, f"{spec.name} arg {i + 1}: expected the ctx pointer, got "
                                    f"{st.describe(v)}")
            args.append(st.ctx)
        elif kind is Arg.MAP:
            map_index, current_map = map_of(st, pc, maps, spec, i + 1, v)
            args.append(current_map)
        elif kind is Arg.MAP_KEY:
            assert current_map is not None
            args.append(st.read_bytes(pc, v, current_map.key_size))
        elif kind is Arg.MAP_VALUE:
            assert current_map is not None
            args.append(st.read_bytes(pc, v, current_map.value_size))
        elif kind is Arg.CALLBACK:
            target = v & OFFSET_MASK
            if v >> REGION_SHIFT != RID_FUNCTION or target not in callbacks:
                raise st.misuse(pc, f"{spec.name} arg {i + 1}: expected a callback function, "
                                    f"got {st.describe(v)}")
            args.append(make_callback(st, target, pc))
        else:  # pragma: no cover - every Arg kind is handled above
            raise st.misuse(pc, f"{spec.name}: unhandled argument kind {kind}", errno.ENOSYS)
    result = spec.impl(st.env, *args)
    if spec.ret is Ret.MAP_VALUE_OR_NULL:
        assert current_map is not None
        return map_value_pointer(st, map_index, current_map, result)  # type: ignore[arg-type]
    return result & MASK64  # type: ignore[operator]
