"""Fixtures of the demo suite: ``backend`` is parametrized over both ring backends; the
io_uring run is skipped, with the reason, where the kernel refuses ``io_uring_setup``."""

from __future__ import annotations

import pytest

from uring.backends import io_uring_available


@pytest.fixture(params=("portable", "io_uring"))
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "io_uring":
        ok, reason = io_uring_available()
        if not ok:
            pytest.skip(f"io_uring backend unavailable here: {reason}")
    return request.param
