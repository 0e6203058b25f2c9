"""The engine side for VM tests, shared by the eBPF runtime suite.

:class:`RecordingEnv` is an honest test double of the engine side: it implements every
``BpfEnv`` method with real semantics over its own user memory, CQ lists and SQE list, and
records each call, so VM tests can compare what two execution paths did without a ring.
The conformance examples run on the real engine instead (``test_examples_*``).

:func:`recording_offload_helpers` is the offload program type with the crypto-shim helpers
answered by the same double, so the offload programs get the same differential treatment.
Random inputs reach mostly their validation paths; their deep paths run with the real shim,
on both execution paths, under ``tests/offload``.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

from quic_offload.shim_helpers import PROGRAM_TYPE, offload_helpers
from uring.bpf import HelperRegistry, HelperSpec, io_uring_helpers

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ROOT / "bpf_programs"
USER_BASE = 1 << 40
MODES = ("interpreter", "translator")


class RecordingEnv:
    """Engine side for VM tests: real helper semantics, every call recorded."""

    def __init__(self, user_size: int = 4096, n_cqs: int = 3, seed: int = 1) -> None:
        self.user = bytearray(user_size)
        self.cqs: list[list[tuple[int, int, int]]] = [[] for _ in range(n_cqs)]
        self.sqes: list[bytes] = []
        self.calls: list[tuple] = []
        self.clock = 1_000_000
        self.rng = random.Random(seed)

    def _user(self, ptr: int, n: int) -> int | None:
        off = ptr - USER_BASE
        return off if off >= 0 and off + n <= len(self.user) else None

    def submit(self, sqe: bytes) -> int:
        self.calls.append(("submit", bytes(sqe)))
        self.sqes.append(bytes(sqe))
        return 0

    def emit_cqe(self, cq_idx: int, user_data: int, res: int, flags: int) -> int:
        self.calls.append(("emit_cqe", cq_idx, user_data, res, flags))
        if not 0 <= cq_idx < len(self.cqs):
            return -22
        self.cqs[cq_idx].append((user_data, res, flags))
        return 0

    def reap_cqe(self, cq_idx: int, out: memoryview) -> int:
        self.calls.append(("reap_cqe", cq_idx))
        if not 0 <= cq_idx < len(self.cqs):
            return -22
        if not self.cqs[cq_idx]:
            return -2
        out[:16] = struct.pack("<QiI", *self.cqs[cq_idx].pop(0))
        return 0

    def copy_to_user(self, user_ptr: int, data: bytes) -> int:
        self.calls.append(("copy_to_user", user_ptr, bytes(data)))
        off = self._user(user_ptr, len(data))
        if off is None:
            return -14
        self.user[off:off + len(data)] = data
        return 0

    def copy_from_user(self, dst: memoryview, user_ptr: int) -> int:
        self.calls.append(("copy_from_user", user_ptr, len(dst)))
        off = self._user(user_ptr, len(dst))
        if off is None:
            dst[:] = bytes(len(dst))
            return -14
        dst[:] = self.user[off:off + len(dst)]
        return 0

    def ktime_get_ns(self) -> int:
        self.clock += 1000
        self.calls.append(("ktime_get_ns", self.clock))
        return self.clock

    def get_prandom_u32(self) -> int:
        value = self.rng.getrandbits(32)
        self.calls.append(("get_prandom_u32", value))
        return value

    def shim_call(self, name: str, args: tuple) -> int:
        """A crypto-shim helper: recorded; a buffer it may write gets pseudo-random bytes; the
        result is an error, 0, 1 or a plausible packet length, chosen pseudo-randomly."""
        recorded: list[object] = []
        for arg in args:
            if isinstance(arg, memoryview):
                arg[:] = self.rng.randbytes(len(arg))
                recorded.append(("buffer", len(arg)))
            else:
                recorded.append(bytes(arg) if isinstance(arg, (bytes, bytearray)) else arg)
        value = self.rng.choice((-22, -14, 0, 1, self.rng.randrange(21, 1300)))
        self.calls.append((name, tuple(recorded), value))
        return value


def _answered_by_double(name: str):
    def impl(env: RecordingEnv, *args: object) -> int:
        return env.shim_call(name, args)
    return impl


def recording_offload_helpers() -> HelperRegistry:
    """The offload program type, its shim helpers (same IDs and argument kinds) answered by
    :meth:`RecordingEnv.shim_call`."""
    base = io_uring_helpers()
    shim = [HelperSpec(spec.id, spec.name, spec.args, _answered_by_double(spec.name))
            for spec in offload_helpers() if spec.id not in base]
    return base.extended(PROGRAM_TYPE, *shim)
