"""``auto`` picks io_uring exactly when io_uring_setup works and logs one line saying which
backend it chose and why; unknown names are refused."""

from __future__ import annotations

import logging

import pytest

from uring.backends import io_uring_available, open_backend


def test_auto_matches_the_probe_and_logs_its_choice(caplog: pytest.LogCaptureFixture) -> None:
    ok, reason = io_uring_available()
    with caplog.at_level(logging.INFO, logger="uring.backends"):
        backend = open_backend("auto")
    try:
        assert backend.name == ("io_uring" if ok else "portable")
        lines = [r.getMessage() for r in caplog.records if "backend_selected" in r.getMessage()]
        assert len(lines) == 1
        assert f"backend={backend.name}" in lines[0]
        assert "reason=" in lines[0]
        if not ok:
            assert reason.split(":")[0] in lines[0]
    finally:
        backend.close()


def test_unknown_backend_name_is_refused() -> None:
    with pytest.raises(ValueError, match="choose one of auto, io_uring, portable"):
        open_backend("epoll")
