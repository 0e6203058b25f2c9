"""Fixtures of the eBPF runtime suite (shared values live in ``recording_env.py``)."""

from __future__ import annotations

import pytest
from recording_env import MODES

from uring.backends import io_uring_available


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=("portable", "io_uring"))
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "io_uring":
        ok, reason = io_uring_available()
        if not ok:
            pytest.skip(f"io_uring backend unavailable here: {reason}")
    return request.param
