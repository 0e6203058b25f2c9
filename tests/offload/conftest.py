"""Fixtures of the offload suite: a self-signed certificate, the scenario kit, a synthetic
peer harness (``backend`` comes from the top-level conftest)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from quic_offload.self_signed import write_self_signed
from quic_offload.synthetic_peer import SyntheticHarness


def _load(name: str, filename: str) -> object:
    """Import a helper module of this directory under a name no other suite can shadow."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_load("offload_scenario", "scenario.py")




@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_self_signed(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def harness(backend: str):
    """An embedded engine with a synthetic peer kit (closed after the test)."""
    h = SyntheticHarness(backend)
    yield h
    h.close()
