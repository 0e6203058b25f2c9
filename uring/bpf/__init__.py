"""The eBPF runtime: load clang-built BPF objects and run their programs in a sandbox.

Split the way uBPF splits it, one concern per module:

* :mod:`~uring.bpf.isa` and :mod:`~uring.bpf.disasm` — the instruction set and its text form;
* :mod:`~uring.bpf.elf_loader` — ELF sections, maps, globals, relocations, subprograms;
* :mod:`~uring.bpf.verifier` — load-time rules (not the kernel's abstract interpreter);
* :mod:`~uring.bpf.memory` — the sandbox's address space and checked accesses;
* :mod:`~uring.bpf.maps` — array, hash and LRU hash maps;
* :mod:`~uring.bpf.helpers` and :mod:`~uring.bpf.call_args` — the helper registry of a
  program type and how registers become helper arguments;
* :mod:`~uring.bpf.interpreter` — the reference execution path;
* :mod:`~uring.bpf.analysis` and :mod:`~uring.bpf.translator` — the fast path: verified
  programs turned into Python source once at load time;
* :mod:`~uring.bpf.bpf_object` — :func:`load_object`, tying it together.
"""

from uring.bpf.bpf_object import DEFAULT_BUDGET, BpfObject, LoadedProgram, load_object
from uring.bpf.errors import BpfLoadError, BpfRunError, ElfFormatError, MapError, VerifierError
from uring.bpf.helpers import Arg, HelperRegistry, HelperSpec, Ret, io_uring_helpers
from uring.bpf.maps import ArrayMap, HashMap, LruHashMap, Map

__all__ = [
    "DEFAULT_BUDGET",
    "Arg",
    "ArrayMap",
    "BpfLoadError",
    "BpfObject",
    "BpfRunError",
    "ElfFormatError",
    "HashMap",
    "HelperRegistry",
    "HelperSpec",
    "LoadedProgram",
    "LruHashMap",
    "Map",
    "MapError",
    "Ret",
    "VerifierError",
    "io_uring_helpers",
    "load_object",
]
