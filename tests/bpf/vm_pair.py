"""Run one hand-built program through both execution paths and compare what they did."""

from __future__ import annotations

import re

from insn_builder import verified
from recording_env import USER_BASE, RecordingEnv

from uring.bpf import io_uring_helpers
from uring.bpf.helpers import HelperRegistry
from uring.bpf.interpreter import Interpreter
from uring.bpf.maps import Map
from uring.bpf.memory import RID_STACK
from uring.bpf.translator import translate
from uring.program import BpfRunError


def _outcome(fn, env: RecordingEnv) -> tuple:
    try:
        regs, state = fn()
    except BpfRunError as exc:
        return ("error", str(exc), exc.errno), env.calls
    frame = state.regions[RID_STACK]
    return ("ok", regs[0], list(regs[6:]), bytes(frame[0]) if frame else b"",
            state.count), env.calls


def run_outcome(fn, env: RecordingEnv, maps: list[Map]) -> tuple:
    """What one run did: its outcome (as in :func:`run_both`), the engine calls, then the
    user memory and the maps' bytes after it."""
    result, calls = _outcome(fn, env)
    return result, calls, bytes(env.user), [bytes(m.data) for m in maps]


def run_both(insns, *, functions=None, maps_factory=list,
             helpers: HelperRegistry | None = None, env_factory=RecordingEnv,
             ctx: bytes = b""):
    """(interpreter outcome, translator outcome, translated source, env of the translator
    run); each path gets its own fresh maps and env.  An outcome is R0, R6..R10, frame 0's
    stack and the instruction count (or the error), plus the engine calls made.  The ctx's
    ``user_data`` is the user memory base; ``ctx`` fills ``wait_nr`` / ``wait_idx``."""
    helpers = helpers or io_uring_helpers()
    maps_a: list[Map] = maps_factory()
    maps_b: list[Map] = maps_factory()
    env_a, env_b = env_factory(), env_factory()
    interp = Interpreter(verified(insns, maps_a, helpers, functions), maps_a, helpers,
                         100_000)
    fast = translate(verified(insns, maps_b, helpers, functions), maps_b, helpers, 100_000,
                     debug=True)
    ctx = USER_BASE.to_bytes(8, "little") + ctx.ljust(8, b"\0")
    a = _outcome(lambda: interp.run_state(bytearray(ctx), env_a), env_a)
    b = _outcome(lambda: fast.run(bytearray(ctx), env_b), env_b)
    a += ([bytes(getattr(m, "data", b"")) for m in maps_a], bytes(env_a.user))
    b += ([bytes(getattr(m, "data", b"")) for m in maps_b], bytes(env_b.user))
    return a, b, unlocalised(fast.source), env_b


def production_source(insns, *, functions=None, maps_factory=list,
                      helpers: HelperRegistry | None = None) -> str:
    """The source the default (non-debug) translation generates."""
    helpers = helpers or io_uring_helpers()
    maps: list[Map] = maps_factory()
    return unlocalised(translate(verified(insns, maps, helpers, functions), maps, helpers,
                                 100_000).source)


def unlocalised(source: str) -> str:
    """Translated source with module-level names that were loaded into locals (``LV8_0``
    for ``V8_0``, ...) written under their module names, for tests that look for code."""
    return re.sub(r"\bL(?=[A-Z])", "", source)
