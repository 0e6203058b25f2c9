"""Both execution paths give identical results on every committed program.

Each program runs several times through the interpreter and through the translator on the
same random inputs (user memory, map contents, queued CQEs) and must leave identical return
values, callee-saved registers, instruction counts, contexts, maps, user memory and helper
call logs -- or abort with the identical error.  The offload programs run with their shim
helpers answered by the recording double.
"""

from __future__ import annotations

import random
import struct

import pytest
from recording_env import PROGRAMS, USER_BASE, RecordingEnv, recording_offload_helpers

from uring.bpf import HashMap, VerifierError, load_object
from uring.bpf.translator import translate
from uring.program import BpfRunError

OBJECTS = sorted(PROGRAMS.rglob("*.bpf.o"))


def load_pair(path):
    """The object loaded for each path: an io_uring program, or else an offload program
    whose shim helpers the recording double answers."""
    try:
        return load_object(path, mode="interpreter"), load_object(path, mode="translator")
    except VerifierError as exc:
        if exc.rule != "helper":
            raise
    helpers = recording_offload_helpers()
    return (load_object(path, mode="interpreter", helpers=helpers),
            load_object(path, mode="translator", helpers=helpers))


def seed_maps(obj, rng: random.Random) -> None:
    for m in obj.maps.values():
        if m.frozen:
            continue
        if isinstance(m, HashMap):
            for _ in range(m.max_entries // 2):
                m.update(rng.randbytes(m.key_size), rng.randbytes(m.value_size))
        else:
            m.data[:] = rng.randbytes(len(m.data))


def seed_env(env: RecordingEnv, rng: random.Random) -> None:
    env.user[:] = rng.randbytes(len(env.user))
    # keep loop bounds sane where programs read counts from their argument block
    struct.pack_into("<QIIiI", env.user, 0, USER_BASE + 64, rng.randrange(64), rng.randrange(300),
                     3, 1)
    for cq in env.cqs:
        cq.extend((rng.getrandbits(64), rng.randrange(-50, 70000), 0) for _ in range(3))


def outcome(fn):
    try:
        regs, st = fn()
    except BpfRunError as exc:
        return ("error", str(exc), exc.errno)
    return ("ok", regs[0], regs[6:11], st.count)


def maps_state(obj) -> dict:
    return {name: sorted(m.items()) for name, m in obj.maps.items()}


@pytest.mark.parametrize("path", OBJECTS, ids=[p.name for p in OBJECTS])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_paths_agree(path, seed: int) -> None:
    a, b = load_pair(path)
    for name, prog_a in a.programs.items():
        prog_b = b.programs[name]
        debug_b = translate(prog_b.verified, prog_b.maps, prog_b.helpers, prog_b.budget,
                            debug=True)
        rng_a, rng_b = random.Random(seed), random.Random(seed)
        seed_maps(a, rng_a)
        seed_maps(b, rng_b)
        env_a, env_b = RecordingEnv(seed=seed), RecordingEnv(seed=seed)
        seed_env(env_a, rng_a)
        seed_env(env_b, rng_b)
        for run in range(4):
            ctx_a = bytearray(struct.pack("<QII", USER_BASE, 0, 0))
            ctx_b = bytearray(ctx_a)
            got_a = outcome(lambda: prog_a.interpreter.run_state(ctx_a, env_a))  # noqa: B023
            got_b = outcome(lambda: debug_b.run(ctx_b, env_b))  # noqa: B023
            where = f"{path.name}:{name} run {run}"
            assert got_a == got_b, where
            assert ctx_a == ctx_b, where
            assert env_a.calls == env_b.calls, where
            assert env_a.user == env_b.user, where
            assert maps_state(a) == maps_state(b), where


@pytest.mark.parametrize("path", OBJECTS, ids=[p.name for p in OBJECTS])
def test_production_translation_agrees_on_r0_and_effects(path) -> None:
    """The non-debug translation (dead definitions removed) has the same effects."""
    a, b = load_pair(path)
    for name, prog_a in a.programs.items():
        rng_a, rng_b = random.Random(9), random.Random(9)
        seed_maps(a, rng_a)
        seed_maps(b, rng_b)
        env_a, env_b = RecordingEnv(seed=9), RecordingEnv(seed=9)
        seed_env(env_a, rng_a)
        seed_env(env_b, rng_b)
        for _ in range(3):
            ctx_a = bytearray(struct.pack("<QII", USER_BASE, 0, 0))
            ctx_b = bytearray(ctx_a)
            results = []
            for prog, ctx, env in ((prog_a, ctx_a, env_a), (b.programs[name], ctx_b, env_b)):
                try:
                    results.append(("ok", prog.run(ctx, env)))
                except BpfRunError as exc:
                    results.append(("error", str(exc), exc.errno))
            assert results[0] == results[1]
            assert (ctx_a, env_a.calls, env_a.user) == (ctx_b, env_b.calls, env_b.user)
            assert maps_state(a) == maps_state(b)
