"""Fixtures of the ring-engine suite: every test runs once per backend through
``make_ring``, which builds on the top-level ``backend`` fixture."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from uring.program import BpfProgram
from uring.ring import Ring


def _import_programs() -> object:
    """Load the stand-in programs under a name no other test directory can shadow."""
    name = "ring_suite_programs"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("programs.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_programs = _import_programs()

@pytest.fixture
def make_ring(backend: str) -> Iterator[Callable[..., Ring]]:
    """Factory for rings on the current backend; every ring is closed after the test."""
    rings: list[Ring] = []

    def make(**kwargs: object) -> Ring:
        kwargs.setdefault("backend", backend)
        ring = Ring.create(**kwargs)  # type: ignore[arg-type]
        rings.append(ring)
        return ring

    yield make
    for ring in rings:
        ring.close()


@pytest.fixture
def ring(make_ring: Callable[..., Ring]) -> Ring:
    """A ring with CQ 0 (64 entries) and two extra CQs (16 entries each)."""
    return make_ring(cq_entries=(64, 16, 16))


@pytest.fixture
def udp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two UDP sockets bound to 127.0.0.1: ``(receiver, sender)``."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx.bind(("127.0.0.1", 0))
    yield rx, tx
    rx.close()
    tx.close()


@pytest.fixture
def load_program() -> Callable[[str], BpfProgram]:
    """``load_program(name)``: the program the BPF tests register.  Today the hand-written
    stand-ins of ``programs.py``; pointing the suite at compiled programs changes only this."""
    return _programs.load  # type: ignore[attr-defined]


@pytest.fixture(params=("translator", "interpreter"))
def vm_mode(request: pytest.FixtureRequest) -> str:
    """Both execution paths of the eBPF runtime run the compiled examples."""
    return request.param


@pytest.fixture
def load_example(vm_mode: str) -> Callable[[str], object]:
    """``load_example(name)``: the compiled ``bpf_programs/examples/<name>.bpf.o``, loaded
    and verified by the eBPF runtime (a ``uring.bpf.BpfObject``)."""
    import bpf_programs
    from uring.bpf import load_object

    examples = Path(bpf_programs.__file__).parent / "examples"

    def load(name: str) -> object:
        return load_object(examples / f"{name}.bpf.o", mode=vm_mode)  # type: ignore[arg-type]

    return load
