"""Record program runs against a live engine, replay them later on either execution path.

A run's outcome depends on three things: the maps, the ctx and what the engine side answers
to each helper call (a CQE reaped, the clock, bytes copied from user memory, a packet the
crypto shim opened).  :class:`TraceRecorder` captures the maps once, then every run's ctx
and every engine-side call with its answer and the bytes it wrote into program memory.
:class:`ReplayEnv` plays those answers back, and checks on the way that the replaying
program makes exactly the recorded calls with exactly the recorded arguments.

So a workload seen once on a real ring (with sockets, timers and real crypto) can be
re-run deterministically, alone, in one thread, as often as needed: a benchmark of the VM
on the programs' real paths (``bench/bench_bpf_offload_programs.py``), and a differential
check that the translator and the interpreter make the same calls and leave the same maps
on those paths.

Which calls are "engine-side": the :class:`~uring.program.BpfEnv` methods the standard
helpers reach (``submit``, ``emit_cqe``, ``reap_cqe``, ``copy_to_user``, ``copy_from_user``,
``ktime_get_ns``, ``get_prandom_u32``) and every helper of the registry that is not a
standard one (a program type's own helpers, such as a crypto shim).  Map helpers and
``bpf_loop`` work on program-visible state only and are not recorded: replaying them is
running them.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from uring.bpf.helpers import HelperRegistry, HelperSpec
from uring.bpf.inline_helpers import is_standard
from uring.bpf.maps import ArrayMap, HashMap, Map

#: The engine methods the standard helpers call (see :class:`uring.program.BpfEnv`).
ENV_METHODS = ("submit", "emit_cqe", "reap_cqe", "copy_to_user", "copy_from_user",
               "ktime_get_ns", "get_prandom_u32")


class ReplayMismatch(AssertionError):
    """The replaying program made a call the recording does not have at that point."""


@dataclass(frozen=True)
class EngineCall:
    """One engine-side call: its name, its arguments (ints and bytes; a writable buffer
    argument as ``("out", length)``), its result, and what it wrote into each buffer."""

    name: str
    args: tuple
    result: int
    written: tuple[bytes, ...] = ()

    @property
    def outs(self) -> tuple[tuple[int, bytes], ...]:
        """(argument position, bytes written) of each buffer argument."""
        where = [i for i, a in enumerate(self.args) if isinstance(a, tuple)]
        return tuple(zip(where, self.written, strict=True))


@dataclass
class RecordedRun:
    program: str
    ctx: bytes
    calls: list[EngineCall] = field(default_factory=list)


@dataclass
class RunTrace:
    """The maps as they were before the first run, then the runs in order (and the maps
    after the last one, once a wrapped run has started after recording stopped)."""

    maps: dict[str, object]
    runs: list[RecordedRun] = field(default_factory=list)
    final: dict[str, object] | None = None

    def restore(self, maps: Mapping[str, Map]) -> None:
        """Put ``maps`` (by name) back into the recorded starting state, in place, so code
        that holds the maps' storage (translated programs do) sees the change."""
        for name, saved in self.maps.items():
            restore_map(maps[name], saved)


def snapshot_map(m: Map) -> object:
    if isinstance(m, ArrayMap):
        return bytes(m.data)
    assert isinstance(m, HashMap)
    return [(k, bytes(v)) for k, v in m.elements.items()]  # (LRU order kept)


def restore_map(m: Map, saved: object) -> None:
    if isinstance(m, ArrayMap):
        m.data[:] = saved  # type: ignore[index]
        return
    assert isinstance(m, HashMap)
    m.elements.clear()
    for k, v in saved:  # type: ignore[attr-defined]
        m.elements[k] = bytearray(v)


def _normalise(args: Iterable[object]) -> tuple[tuple, list[memoryview]]:
    out: list[object] = []
    buffers: list[memoryview] = []
    for a in args:
        if isinstance(a, memoryview):
            out.append(("out", len(a)))
            buffers.append(a)
        elif isinstance(a, (bytes, bytearray)):
            out.append(bytes(a))
        else:
            out.append(a)
    return tuple(out), buffers


class _RecordingProxy:
    """Stands in for the engine's env during a recorded run: the engine methods record,
    everything else (what a program type's own helpers use) is the real env's."""

    def __init__(self, env: object, recorder: TraceRecorder) -> None:
        self._env = env
        self._recorder = recorder
        for name in ENV_METHODS:
            method = getattr(env, name, None)
            if method is not None:
                setattr(self, name, self._recording(name, method))

    def _recording(self, name: str, method: Callable[..., int]) -> Callable[..., int]:
        def call(*args: object) -> int:
            return self._recorder.call(name, method, args)
        return call

    def __getattr__(self, name: str) -> object:
        return getattr(self._env, name)


class TraceRecorder:
    """Records runs of some programs while an engine runs them.

    Load the programs with :meth:`helpers` (the program type's registry with its own
    helpers wrapped), wrap each program's ``run`` with :meth:`wrap_run`, then call
    :meth:`start` and later :meth:`stop`.  Recording begins at the start of the first
    wrapped run after :meth:`start` -- on the engine's thread, between runs -- which is
    when the maps are captured.
    """

    def __init__(self, maps: Mapping[str, Map]) -> None:
        self._maps = maps
        self._wanted = False
        self.trace: RunTrace | None = None
        self._current: RecordedRun | None = None

    @staticmethod
    def helpers(registry: HelperRegistry) -> HelperRegistry:
        """``registry`` with every non-standard helper's calls recorded (when recording)."""
        specs = [spec if is_standard(spec) else
                 dataclasses.replace(spec, impl=_recorded_impl(spec))
                 for spec in registry]
        return HelperRegistry(registry.program_type, tuple(specs))

    def start(self) -> None:
        self._wanted = True

    def stop(self) -> RunTrace:
        """End the recording (the run in progress, if any, is the last one recorded; the
        next wrapped run that starts records the maps as :attr:`RunTrace.final`)."""
        self._wanted = False
        if self.trace is None:
            raise RuntimeError("no run happened while recording")
        return self.trace

    def wrap_run(self, name: str, run: Callable[[bytearray, object], object]
                 ) -> Callable[[bytearray, object], object]:
        proxies: dict[int, _RecordingProxy] = {}

        def recorded(ctx: bytearray, env: object) -> object:
            if not self._wanted:
                trace = self.trace
                if trace is not None and trace.final is None:
                    trace.final = {n: snapshot_map(m) for n, m in self._maps.items()}
                return run(ctx, env)
            if self.trace is None:
                self.trace = RunTrace({n: snapshot_map(m) for n, m in self._maps.items()})
            proxy = proxies.get(id(env))
            if proxy is None or proxy._env is not env:
                proxy = proxies[id(env)] = _RecordingProxy(env, self)
            self._current = RecordedRun(name, bytes(ctx))
            self.trace.runs.append(self._current)
            try:
                return run(ctx, proxy)
            finally:
                self._current = None
        return recorded

    def call(self, name: str, fn: Callable[..., int], args: tuple) -> int:
        result = fn(*args)
        if self._current is not None:
            norm, buffers = _normalise(args)
            self._current.calls.append(
                EngineCall(name, norm, result, tuple(bytes(b) for b in buffers)))
        return result


def _recorded_impl(spec: HelperSpec) -> Callable[..., object]:
    impl = spec.impl

    def recorded(env: object, *args: object) -> object:
        if isinstance(env, _RecordingProxy):
            return env._recorder.call(spec.name, lambda *a: impl(env, *a), args)
        return impl(env, *args)
    return recorded


def replay_helpers(registry: HelperRegistry) -> HelperRegistry:
    """``registry`` with every non-standard helper answered from the trace by
    :class:`ReplayEnv` (argument kinds unchanged, so programs translate the same way)."""
    specs = [spec if is_standard(spec) else
             dataclasses.replace(spec, impl=_replayed_impl(spec.name))
             for spec in registry]
    return HelperRegistry(registry.program_type, tuple(specs))


def _replayed_impl(name: str) -> Callable[..., object]:
    def replayed(env: ReplayEnv, *args: object) -> object:
        return env.answer(name, args)
    return replayed


class ReplayEnv:
    """The engine side of a replay: answers each call with the recorded result (writing
    the recorded bytes into buffer arguments) after checking it is the recorded call.

    ``check=False`` skips the check (a replay already checked once, timed again): each
    call then costs about a list index, so a benchmark measures the program, not this."""

    def __init__(self, *, check: bool = True) -> None:
        self._calls: list[EngineCall] = []
        self._fast: list[tuple[int, tuple[tuple[int, bytes], ...]]] = []
        self._next = 0
        self._where = ""
        if not check:
            self.answer = self._answer_unchecked  # type: ignore[method-assign]
            for name in ENV_METHODS:  # one call per engine call, no name to pass around
                setattr(self, name, self._unchecked)

    def begin(self, run: RecordedRun, where: str = "") -> None:
        self._calls = run.calls
        self._fast = [(c.result, c.outs) for c in run.calls]
        self._next = 0
        self._where = where or run.program

    def _answer_unchecked(self, name: str, args: tuple) -> int:
        return self._unchecked(*args)

    def _unchecked(self, *args: object) -> int:
        result, outs = self._fast[self._next]
        self._next += 1
        for i, data in outs:
            args[i][:] = data  # type: ignore[index]
        return result

    def end(self) -> None:
        if self._next != len(self._calls):
            raise ReplayMismatch(f"{self._where}: {len(self._calls) - self._next} recorded "
                                 f"calls not made (next: {self._calls[self._next]})")

    def answer(self, name: str, args: tuple) -> int:
        norm, buffers = _normalise(args)
        i = self._next
        if i >= len(self._calls):
            raise ReplayMismatch(f"{self._where}: call {i} {name}{norm} beyond the recording")
        call = self._calls[i]
        if call.name != name or call.args != norm:
            raise ReplayMismatch(f"{self._where}: call {i} is {name}{norm}, recorded "
                                 f"{call.name}{call.args}")
        self._next = i + 1
        for buf, data in zip(buffers, call.written, strict=True):
            buf[:] = data
        return call.result

    def submit(self, sqe: bytes) -> int:
        return self.answer("submit", (sqe,))

    def emit_cqe(self, cq_idx: int, user_data: int, res: int, flags: int) -> int:
        return self.answer("emit_cqe", (cq_idx, user_data, res, flags))

    def reap_cqe(self, cq_idx: int, out: memoryview) -> int:
        return self.answer("reap_cqe", (cq_idx, out))

    def copy_to_user(self, user_ptr: int, data: bytes) -> int:
        return self.answer("copy_to_user", (user_ptr, data))

    def copy_from_user(self, dst: memoryview, user_ptr: int) -> int:
        return self.answer("copy_from_user", (dst, user_ptr))

    def ktime_get_ns(self) -> int:
        return self.answer("ktime_get_ns", ())

    def get_prandom_u32(self) -> int:
        return self.answer("get_prandom_u32", ())


def map_contents(maps: Mapping[str, Map]) -> dict[str, object]:
    """Every map's contents, comparable between two loads of the same objects."""
    out: dict[str, object] = {}
    for name, m in maps.items():
        saved = snapshot_map(m)
        out[name] = saved if isinstance(m, ArrayMap) else OrderedDict(saved)  # type: ignore
    return out
