"""Fixtures shared by every suite.

``backend`` runs a test once per ring backend; the io_uring run is skipped, with the
reason (``-ra`` prints it), only where the kernel refuses ``io_uring_setup``.
"""

from __future__ import annotations

import pytest

from uring.backends import io_uring_available

BACKENDS = ("portable", "io_uring")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "io_uring":
        ok, reason = io_uring_available()
        if not ok:
            pytest.skip(f"io_uring backend unavailable here: {reason}")
    return request.param
