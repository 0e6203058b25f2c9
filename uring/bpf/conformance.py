"""The 2021 BPF-requests prototype's examples, run on a real ring as conformance checks.

Each example loads its compiled object from ``bpf_programs/examples/``, sets up a ring and
its argument block in user memory, submits the BPF request(s), waits for them to complete
and compares what happened with what must happen.  Used by the test suite (every example on
every backend through both execution paths) and by ``quic-offload bpf run-example NAME``.
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from uring.abi import Cqe, prep_bpf, prep_nop
from uring.bpf.bpf_object import BpfObject, load_object
from uring.ring import Ring

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "bpf_programs" / "examples"


def example_path(name: str) -> Path:
    return EXAMPLES_DIR / f"{name}.bpf.o"


@dataclass
class ExampleResult:
    """What one example run produced and whether it matched expectations."""

    name: str
    backend: str
    mode: str
    facts: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def expect(self, what: str, got: object, want: object) -> None:
        self.facts[what] = got
        if got != want:
            self.problems.append(f"{what}: got {got!r}, expected {want!r}")

    def summary(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        lines = [f"example {self.name} backend={self.backend} mode={self.mode}: {verdict} "
                 f"({self.seconds:.2f} s)"]
        lines += [f"  {k} = {v!r}" for k, v in self.facts.items()]
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def _wait_completions(ring: Ring, user_data: set[int], timeout: float) -> list[Cqe]:
    """Collect CQ 0 until every ``user_data`` in the set has completed (or time runs out)."""
    seen: list[Cqe] = []
    pending = set(user_data)
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ring.submit(1, 0, min(left, 0.5))
        for cqe in ring.reap_cqes(0):
            seen.append(cqe)
            pending.discard(cqe.user_data)
    return seen


def _load(name: str, mode: str) -> BpfObject:
    return load_object(example_path(name), mode=mode)  # type: ignore[arg-type]


def run_test(backend: str, mode: str) -> ExampleResult:
    """``test``: emit on CQ 0 and 1, reap both, queue a NOP, wait once; 29 -> 31; two runs."""
    r = ExampleResult("test", backend, mode)
    obj = _load("test", mode)
    with Ring.create(cq_entries=(64, 16), backend=backend) as ring:
        r.backend = ring.backend
        ring.register_bpf(0, obj.programs["test"])
        args = ring.alloc.alloc(48)
        ring.user.write(args, struct.pack("<IIIi", 29, 0, 0, 0) + bytes(32))
        ring.queue(prep_bpf(0, user_data=args))
        seen = _wait_completions(ring, {args}, 10.0)
        a_in, out, runs, submit_res = struct.unpack("<IIIi", ring.user.read(args, 16))
        reaped = [struct.unpack("<QiI", ring.user.read(args + 16 + 16 * i, 16)) for i in (0, 1)]
        r.expect("cq0", [(c.user_data, c.res) for c in seen], [(0x7E570002, 0), (args, 0)])
        r.expect("runs", runs, 2)
        r.expect("in -> out", (a_in, out), (29, 31))
        r.expect("reaped from CQ 0 and CQ 1", reaped, [(0x7E570000, 1, 0), (0x7E570001, 2, 0)])
        r.expect("submit result", submit_res, 0)
        r.expect("CQ 1 left over", ring.cq_ready(1), 0)
    return r


def run_counting(backend: str, mode: str, interval: float = 0.2,
                 limit: int = 11) -> ExampleResult:
    """``counting``: re-armed by ``interval`` TIMEOUTs on CQ 1, stops after ``limit`` runs."""
    r = ExampleResult("counting", backend, mode)
    obj = _load("counting", mode)
    with Ring.create(cq_entries=(64, 16), backend=backend) as ring:
        r.backend = ring.backend
        ring.register_bpf(0, obj.programs["counting"])
        ts = ring.timespec(interval)
        args = ring.alloc.alloc(16)
        ring.user.write(args, struct.pack("<QII", ts, limit, 1))
        start = time.monotonic()
        ring.queue(prep_bpf(0, user_data=args))
        seen = _wait_completions(ring, {args}, limit * interval + 10.0)
        elapsed = time.monotonic() - start
        stats = obj.maps["counting_stats"]
        r.expect("completion", [(c.user_data, c.res) for c in seen], [(args, 0)])
        r.expect("runs counted in the map", stats.lookup_int(0), limit)
        r.expect("timeouts reaped", stats.lookup_int(1), limit - 1)
        r.expect("timeouts expired with -ETIME", stats.lookup_int(2), limit - 1)
        r.facts["seconds"] = round(elapsed, 3)
        if elapsed < (limit - 1) * interval * 0.95:
            r.problems.append(f"finished after {elapsed:.3f} s, before {limit - 1} timeouts "
                              f"of {interval} s could expire")
    return r


def run_pingpong(backend: str, mode: str) -> ExampleResult:
    """``pingpong``: two requests bounce a counter through CQ 1 and CQ 2 up to 20."""
    r = ExampleResult("pingpong", backend, mode)
    obj = _load("pingpong", mode)
    with Ring.create(cq_entries=(64, 16, 16), backend=backend) as ring:
        r.backend = ring.backend
        ring.register_bpf(0, obj.programs["ping"])
        ring.register_bpf(1, obj.programs["pong"])
        ring.queue(prep_nop(0xBA11, cq_idx=1))
        ring.queue(prep_bpf(0, user_data=1))
        ring.queue(prep_bpf(1, user_data=2))
        seen = _wait_completions(ring, {1, 2}, 10.0)
        sides = obj.maps["pingpong_sides"]
        ping = struct.unpack("<IiII", sides.lookup(0) or bytes(16))
        pong = struct.unpack("<IiII", sides.lookup(1) or bytes(16))
        r.expect("completions", sorted((c.user_data, c.res) for c in seen), [(1, 0), (2, 0)])
        r.expect("last counter seen by ping", ping[1], 20)
        r.expect("last counter seen by pong", pong[1], 19)
        r.expect("answers", (ping[2], pong[2]), (10, 10))
        r.facts["runs (ping, pong)"] = (ping[0], pong[0])
        r.expect("CQ 1 and CQ 2 drained", (ring.cq_ready(1), ring.cq_ready(2)), (0, 0))
    return r


def run_write_file(backend: str, mode: str, blocks: int = 16, chunk: int = 16384,
                   depth: int = 4) -> ExampleResult:
    """``write_file``: ``blocks`` x ``chunk`` bytes at queue depth ``depth``."""
    r = ExampleResult("write_file", backend, mode)
    obj = _load("write_file", mode)
    with tempfile.TemporaryDirectory() as tmp, Ring.create(
        cq_entries=(64, 16), backend=backend, user_memory=max(1 << 20, 2 * blocks * chunk)
    ) as ring:
        r.backend = ring.backend
        ring.register_bpf(0, obj.programs["write_file"])
        payload = b"".join(bytes([0x41 + i % 26]) * chunk for i in range(blocks))
        buf = ring.alloc.alloc(len(payload), 4096)
        ring.user.write(buf, payload)
        path = os.path.join(tmp, "out.bin")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            args = ring.alloc.alloc(32)
            ring.user.write(args, struct.pack("<iIQIIII", fd, chunk, buf, blocks, depth, 1, 0))
            ring.queue(prep_bpf(0, user_data=args))
            seen = _wait_completions(ring, {args}, 20.0)
        finally:
            os.close(fd)
        with open(path, "rb") as f:
            written = f.read()
        state = struct.unpack("<6I", obj.maps["write_file_state"].lookup(0) or bytes(24))
        r.expect("completion", [(c.user_data, c.res) for c in seen], [(args, 0)])
        r.expect("file size", len(written), len(payload))
        r.expect("file content matches", written == payload, True)
        r.expect("blocks submitted / reaped", (state[0], state[2]), (blocks, blocks))
        r.expect("in flight at the end", state[1], 0)
        r.expect("highest in-flight count", state[3], min(depth, blocks))
        r.expect("short or failed writes", state[4], 0)
        r.facts["runs"] = state[5]
    return r


EXAMPLES: dict[str, Callable[[str, str], ExampleResult]] = {
    "test": run_test,
    "counting": run_counting,
    "pingpong": run_pingpong,
    "write_file": run_write_file,
}


def run_example(name: str, backend: str = "auto", mode: str = "translator") -> ExampleResult:
    """Run example ``name`` and return its result (``result.ok`` tells the verdict)."""
    if name not in EXAMPLES:
        raise KeyError(f"no example {name!r}; examples: {', '.join(EXAMPLES)}")
    start = time.monotonic()
    result = EXAMPLES[name](backend, mode)
    result.seconds = time.monotonic() - start
    return result
