"""Fixtures of the eBPF runtime suite (shared values live in ``recording_env.py``; the
``backend`` fixture comes from the top-level ``conftest.py``)."""

from __future__ import annotations

import pytest
from recording_env import MODES


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param
