"""Maps as Python sees them: bpf(BPF_MAP_*)-like lookup/update/delete/iterate with errnos."""

from __future__ import annotations

import pytest

from uring.bpf import ArrayMap, HashMap, LruHashMap
from uring.bpf.errors import MapError
from uring.bpf.maps import BPF_EXIST, BPF_NOEXIST, create_map


def test_array_map_elements_exist_and_cannot_be_deleted() -> None:
    m = ArrayMap("a", 4, 8, 3)
    assert m.lookup(0) == bytes(8) and m.lookup(3) is None
    m.update(2, 77)
    assert m.lookup_int(2) == 77 and len(m) == 3
    with pytest.raises(OSError) as info:
        m.delete(1)
    assert info.value.errno == 22
    with pytest.raises(FileExistsError):
        m.update(1, 1, BPF_NOEXIST)
    assert [k for k, _ in m.items()] == [b"\0\0\0\0", b"\1\0\0\0", b"\2\0\0\0"]


def test_hash_map_create_replace_delete_and_full() -> None:
    m = HashMap("h", 8, 4, 2)
    m.update(1, 10)
    with pytest.raises(FileNotFoundError):
        m.update(2, 20, BPF_EXIST)
    m.update(2, 20, BPF_NOEXIST)
    with pytest.raises(OSError) as info:
        m.update(3, 30)
    assert info.value.errno == 7  # E2BIG: full
    m.update(1, 11)
    assert m.lookup_int(1) == 11 and 2 in m and 3 not in m
    m.delete(2)
    with pytest.raises(FileNotFoundError):
        m.delete(2)
    assert dict(m.items()) == {(1).to_bytes(8, "little"): (11).to_bytes(4, "little")}


def test_lru_hash_evicts_least_recently_used() -> None:
    m = LruHashMap("l", 4, 4, 2)
    m.update(1, 1)
    m.update(2, 2)
    assert m.bpf_lookup((1).to_bytes(4, "little")) is not None  # 1 is now most recent
    m.update(3, 3)
    assert 2 not in m and 1 in m and 3 in m


def test_lookup_view_is_zero_copy_and_sizes_are_checked() -> None:
    m = ArrayMap("a", 4, 8, 2)
    m.lookup_view(1)[0] = 9
    assert m.lookup_int(1) == 9
    with pytest.raises(ValueError):
        m.update(0, b"short")


def test_bad_definitions_are_refused() -> None:
    with pytest.raises(MapError, match="type 6 not supported"):
        create_map("x", 6, 4, 4, 1)
    with pytest.raises(MapError, match="key_size must be 4"):
        ArrayMap("x", 8, 4, 1)
    with pytest.raises(MapError, match="must all be > 0"):
        HashMap("x", 4, 0, 1)


def test_frozen_map_refuses_python_updates() -> None:
    m = ArrayMap(".rodata", 4, 4, 1, frozen=True, initial=b"\x0b\0\0\0")
    assert m.lookup_int(0) == 11
    with pytest.raises(PermissionError):
        m.update(0, 1)
