"""BPF maps: array, hash and LRU hash, reachable from programs and from Python.

Programs reach a map through helpers (``bpf_map_lookup_elem`` returns a pointer *into* the
map's storage, so a program updates a value in place); Python reaches it through the methods
below, which mirror the ``bpf(BPF_MAP_*)`` commands and raise ``OSError`` subclasses carrying
the same errno the syscall would (``FileNotFoundError`` for ENOENT, ``FileExistsError`` for
EEXIST, ...).  Keys and values are bytes of exactly ``key_size`` / ``value_size``; integer keys
and values are accepted as a convenience and packed little endian to that size.

Storage layout, which the VM relies on:

* an array map is one ``bytearray`` of ``max_entries * value_size`` bytes; element ``i`` lives
  at offset ``i * value_size`` (so a program can never reach a neighbouring element: every
  access is bounds-checked against the element, not the whole buffer);
* a hash map keeps one ``bytearray`` of ``value_size`` per element.

Maps are not locked: an object's maps are used by one engine thread at a time, and Python
callers on other threads must hand their work to that thread.
"""

from __future__ import annotations

import errno
import struct
from collections import OrderedDict
from collections.abc import Iterator

from uring.bpf.errors import MapError

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_LRU_HASH = 9

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

MAP_TYPE_NAMES = {
    BPF_MAP_TYPE_HASH: "hash",
    BPF_MAP_TYPE_ARRAY: "array",
    BPF_MAP_TYPE_LRU_HASH: "lru_hash",
}

#: Largest map the loader accepts, in bytes of values (keeps a typo from eating the machine).
MAX_MAP_BYTES = 1 << 30

_U32 = struct.Struct("<I")


def _oserror(code: int, message: str) -> OSError:
    return OSError(code, message)


class Map:
    """Common part of all map types: the definition and key/value coercion."""

    map_type: int = 0

    def __init__(self, name: str, key_size: int, value_size: int, max_entries: int,
                 flags: int = 0, *, frozen: bool = False) -> None:
        if key_size <= 0 or value_size <= 0 or max_entries <= 0:
            raise MapError(
                f"map {name!r}: key_size {key_size}, value_size {value_size} and "
                f"max_entries {max_entries} must all be > 0"
            )
        if value_size * max_entries > MAX_MAP_BYTES:
            raise MapError(
                f"map {name!r}: {value_size} x {max_entries} bytes exceeds the "
                f"{MAX_MAP_BYTES}-byte limit; lower max_entries"
            )
        self.name = name
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        #: Read-only for everyone after load (``.rodata``): programs fault on a store and the
        #: translator may fold its contents into the generated code.
        self.frozen = frozen

    @property
    def type_name(self) -> str:
        return MAP_TYPE_NAMES.get(self.map_type, str(self.map_type))

    def describe(self) -> str:
        return (f"{self.name}: {self.type_name} key {self.key_size}B value {self.value_size}B "
                f"max_entries {self.max_entries}" + (" frozen" if self.frozen else ""))

    def same_shape(self, other: Map) -> bool:
        return (self.map_type, self.key_size, self.value_size, self.max_entries) == (
            other.map_type, other.key_size, other.value_size, other.max_entries)

    def key(self, key: bytes | bytearray | memoryview | int) -> bytes:
        if isinstance(key, int):
            return key.to_bytes(self.key_size, "little")
        key = bytes(key)
        if len(key) != self.key_size:
            raise ValueError(f"map {self.name!r}: key of {len(key)} bytes, expected "
                             f"{self.key_size}")
        return key

    def value(self, value: bytes | bytearray | memoryview | int) -> bytes:
        if isinstance(value, int):
            return value.to_bytes(self.value_size, "little")
        value = bytes(value)
        if len(value) != self.value_size:
            raise ValueError(f"map {self.name!r}: value of {len(value)} bytes, expected "
                             f"{self.value_size}")
        return value

    # -- the program side: raw bytes in, (buffer, offset) / 0 / -errno out ------------------

    def bpf_lookup(self, key: bytes) -> tuple[bytearray, int] | None:
        raise NotImplementedError

    def bpf_update(self, key: bytes, value: bytes, flags: int) -> int:
        raise NotImplementedError

    def bpf_delete(self, key: bytes) -> int:
        raise NotImplementedError

    # -- the Python side ---------------------------------------------------------------------

    def lookup_view(self, key: bytes | int) -> memoryview | None:
        """A writable view of the stored value (zero copy), or ``None`` when absent."""
        found = self.bpf_lookup(self.key(key))
        if found is None:
            return None
        buf, off = found
        return memoryview(buf)[off:off + self.value_size]

    def lookup(self, key: bytes | int) -> bytes | None:
        """A copy of the value stored under ``key``, or ``None``."""
        view = self.lookup_view(key)
        return None if view is None else bytes(view)

    def lookup_int(self, key: bytes | int, *, signed: bool = False) -> int | None:
        """The value as a little-endian integer (convenient for counters)."""
        value = self.lookup(key)
        return None if value is None else int.from_bytes(value, "little", signed=signed)

    def update(self, key: bytes | int, value: bytes | int, flags: int = BPF_ANY) -> None:
        if flags not in (BPF_ANY, BPF_NOEXIST, BPF_EXIST):
            raise _oserror(errno.EINVAL, f"map {self.name!r}: update flags {flags} invalid")
        if self.frozen:
            raise _oserror(errno.EPERM, f"map {self.name!r} is frozen (read-only data)")
        rc = self.bpf_update(self.key(key), self.value(value), flags)
        if rc:
            raise _oserror(-rc, f"map {self.name!r}: update failed")

    def delete(self, key: bytes | int) -> None:
        rc = self.bpf_delete(self.key(key))
        if rc:
            raise _oserror(-rc, f"map {self.name!r}: delete failed")

    def keys(self) -> Iterator[bytes]:
        raise NotImplementedError

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key in list(self.keys()):
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (bytes, bytearray, memoryview, int)):
            return False
        return self.lookup_view(key) is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class ArrayMap(Map):
    """Fixed array of zero-initialised values indexed by a u32 key; elements never vanish."""

    map_type = BPF_MAP_TYPE_ARRAY

    def __init__(self, name: str, key_size: int, value_size: int, max_entries: int,
                 flags: int = 0, *, frozen: bool = False, initial: bytes | None = None) -> None:
        super().__init__(name, key_size, value_size, max_entries, flags, frozen=frozen)
        if key_size != 4:
            raise MapError(f"array map {name!r}: key_size must be 4 (a u32 index), "
                           f"got {key_size}")
        self.data = bytearray(value_size * max_entries)
        if initial:
            self.data[:len(initial)] = initial

    def index(self, key: bytes) -> int:
        return _U32.unpack(key)[0]

    def bpf_lookup(self, key: bytes) -> tuple[bytearray, int] | None:
        i = _U32.unpack(key)[0]
        if i >= self.max_entries:
            return None
        return self.data, i * self.value_size

    def bpf_update(self, key: bytes, value: bytes, flags: int) -> int:
        i = _U32.unpack(key)[0]
        if i >= self.max_entries:
            return -errno.E2BIG
        if flags == BPF_NOEXIST:
            return -errno.EEXIST
        off = i * self.value_size
        self.data[off:off + self.value_size] = value
        return 0

    def bpf_delete(self, key: bytes) -> int:
        return -errno.EINVAL

    def keys(self) -> Iterator[bytes]:
        for i in range(self.max_entries):
            yield _U32.pack(i)

    def __len__(self) -> int:
        return self.max_entries


class HashMap(Map):
    """Hash map of up to ``max_entries`` elements; inserting into a full map fails (E2BIG)."""

    map_type = BPF_MAP_TYPE_HASH

    def __init__(self, name: str, key_size: int, value_size: int, max_entries: int,
                 flags: int = 0, *, frozen: bool = False) -> None:
        super().__init__(name, key_size, value_size, max_entries, flags, frozen=frozen)
        self.elements: dict[bytes, bytearray] = {}

    def bpf_lookup(self, key: bytes) -> tuple[bytearray, int] | None:
        value = self.elements.get(key)
        return None if value is None else (value, 0)

    def _insert_room(self) -> bool:
        return len(self.elements) < self.max_entries

    def bpf_update(self, key: bytes, value: bytes, flags: int) -> int:
        current = self.elements.get(key)
        if current is not None:
            if flags == BPF_NOEXIST:
                return -errno.EEXIST
            current[:] = value
            self._touch(key)
            return 0
        if flags == BPF_EXIST:
            return -errno.ENOENT
        if not self._insert_room():
            return -errno.E2BIG
        self.elements[key] = bytearray(value)
        return 0

    def bpf_delete(self, key: bytes) -> int:
        if self.elements.pop(key, None) is None:
            return -errno.ENOENT
        return 0

    def _touch(self, key: bytes) -> None:
        pass

    def keys(self) -> Iterator[bytes]:
        return iter(list(self.elements))

    def __len__(self) -> int:
        return len(self.elements)


class LruHashMap(HashMap):
    """Hash map that evicts the least recently used element instead of failing when full.

    Recency is updated by program lookups and updates, as the kernel's LRU map does (its
    per-CPU approximations aside).
    """

    map_type = BPF_MAP_TYPE_LRU_HASH

    def __init__(self, name: str, key_size: int, value_size: int, max_entries: int,
                 flags: int = 0, *, frozen: bool = False) -> None:
        super().__init__(name, key_size, value_size, max_entries, flags, frozen=frozen)
        self.elements: OrderedDict[bytes, bytearray] = OrderedDict()

    def bpf_lookup(self, key: bytes) -> tuple[bytearray, int] | None:
        value = self.elements.get(key)
        if value is None:
            return None
        self.elements.move_to_end(key)
        return value, 0

    def _insert_room(self) -> bool:
        if len(self.elements) >= self.max_entries:
            self.elements.popitem(last=False)
        return True

    def _touch(self, key: bytes) -> None:
        self.elements.move_to_end(key)


MAP_CLASSES: dict[int, type[Map]] = {
    BPF_MAP_TYPE_ARRAY: ArrayMap,
    BPF_MAP_TYPE_HASH: HashMap,
    BPF_MAP_TYPE_LRU_HASH: LruHashMap,
}


def create_map(name: str, map_type: int, key_size: int, value_size: int, max_entries: int,
               flags: int = 0) -> Map:
    """Build a map from a definition, rejecting types this runtime does not implement."""
    cls = MAP_CLASSES.get(map_type)
    if cls is None:
        known = ", ".join(f"{t} ({n})" for t, n in MAP_TYPE_NAMES.items())
        raise MapError(f"map {name!r}: type {map_type} not supported (supported: {known})")
    return cls(name, key_size, value_size, max_entries, flags)
