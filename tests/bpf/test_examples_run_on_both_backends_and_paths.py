"""The 2021 prototype's examples (test, counting, pingpong, write_file), compiled from C,
reach their expected results on the real engine, on both backends, through both paths."""

from __future__ import annotations

import pytest

from uring.bpf.conformance import run_example


@pytest.mark.parametrize("name", ["test", "pingpong", "write_file"])
def test_example(name: str, backend: str, mode: str) -> None:
    result = run_example(name, backend, mode)
    assert result.ok, result.summary()


@pytest.mark.slow
def test_counting_is_rearmed_by_200ms_timeouts_11_times(backend: str, mode: str) -> None:
    result = run_example("counting", backend, mode)
    assert result.ok, result.summary()
