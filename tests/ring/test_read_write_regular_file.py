"""READ and WRITE on regular files move bytes between the file and user memory at the given
offset (or the file position for -1); a short read is reported, and fails a link.  A READ
from a pipe waits until the pipe has data."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from uring.abi import EBADF, ECANCELED, EFAULT, IOSQE_IO_LINK, prep_nop, prep_read, prep_write
from uring.ring import Ring

CURRENT = (1 << 64) - 1


@pytest.fixture
def tmpfd() -> Iterator[int]:
    fd, path = tempfile.mkstemp()
    os.unlink(path)
    yield fd
    os.close(fd)


def test_write_then_read_back_at_offsets(ring: Ring, tmpfd: int) -> None:
    src = ring.alloc.alloc(64)
    ring.user.write(src, b"abcdefgh" * 8)
    ring.queue(prep_write(tmpfd, src, 64, 100, user_data=1, flags=IOSQE_IO_LINK))
    dst = ring.alloc.alloc(16)
    ring.queue(prep_read(tmpfd, dst, 16, 108, user_data=2))
    ring.submit(2, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, 64), (2, 16)]
    assert ring.user.read(dst, 16) == b"abcdefghabcdefgh"
    assert os.pread(tmpfd, 8, 100) == b"abcdefgh"


def test_offset_minus_one_uses_and_advances_the_file_position(ring: Ring, tmpfd: int) -> None:
    src = ring.alloc.alloc(4)
    ring.user.write(src, b"1234")
    for i in range(3):
        ring.queue(prep_write(tmpfd, src, 4, CURRENT, user_data=i, flags=IOSQE_IO_LINK))
    ring.queue(prep_nop(user_data=9))
    ring.submit(4, timeout=5)
    assert [c.res for c in ring.reap_cqes()] == [4, 4, 4, 0]
    assert os.lseek(tmpfd, 0, os.SEEK_CUR) == 12
    assert os.pread(tmpfd, 100, 0) == b"1234" * 3


def test_short_read_is_reported_and_breaks_the_link(ring: Ring, tmpfd: int) -> None:
    os.pwrite(tmpfd, b"0123456789", 0)
    dst = ring.alloc.alloc(100)
    ring.queue(prep_read(tmpfd, dst, 100, 0, user_data=1, flags=IOSQE_IO_LINK))
    ring.queue(prep_nop(user_data=2))
    ring.submit(2, timeout=5)
    assert [(c.user_data, c.res) for c in ring.reap_cqes()] == [(1, 10), (2, -ECANCELED)]
    assert ring.user.read(dst, 10) == b"0123456789"


def test_bad_buffer_and_bad_fd(ring: Ring, tmpfd: int) -> None:
    ring.queue(prep_read(tmpfd, ring.user.base + ring.user.size - 4, 16, 0, user_data=1))
    ring.queue(prep_write(-1, ring.alloc.alloc(4), 4, 0, user_data=2))
    ring.submit(2, timeout=5)
    assert sorted((c.user_data, c.res) for c in ring.reap_cqes()) == [(1, -EFAULT),
                                                                      (2, -EBADF)]


def test_read_from_a_pipe_waits_for_data(ring: Ring) -> None:
    r, w = os.pipe()
    try:
        dst = ring.alloc.alloc(16)
        ring.queue(prep_read(r, dst, 16, CURRENT, user_data=1))
        ring.submit()
        ring.submit(1, timeout=0.05)
        assert ring.cq_ready() == 0
        os.write(w, b"through a pipe")
        cqe = ring.wait_cqe(timeout=5)
        assert cqe is not None and (cqe.user_data, cqe.res) == (1, 14)
        assert ring.user.read(dst, 14) == b"through a pipe"
    finally:
        os.close(r)
        os.close(w)
