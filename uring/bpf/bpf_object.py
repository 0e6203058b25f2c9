"""Loading an object: ELF in, verified and runnable programs plus their maps out.

This is the runtime's front door (re-exported by :mod:`uring.bpf`)::

    obj = load_object("bpf_programs/examples/counting.bpf.o")
    prog = obj.programs["counting"]          # by function name (or obj.program("iouring"))
    engine.register_bpf(slot, prog)          # LoadedProgram satisfies uring.program.BpfProgram
    obj.maps["runs"].lookup_int(0)           # maps are reachable from Python

Maps are shared by every program of an object.  To share maps *between* objects (several
programs built separately that work on the same connection table), pass the first object's
maps when loading the second: ``load_object(path, maps=first.maps)``; a map whose name is
found there is reused (its definition must match), the rest are created.  Global-data maps
(``.data``, ``.rodata``, ``.bss``) always belong to their own object.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from uring.bpf.disasm import disassemble
from uring.bpf.elf_loader import read_object
from uring.bpf.errors import BpfLoadError, MapError
from uring.bpf.helpers import HelperRegistry, io_uring_helpers
from uring.bpf.interpreter import Interpreter
from uring.bpf.maps import ArrayMap, Map, create_map
from uring.bpf.translator import TranslatedProgram, translate
from uring.bpf.verifier import DEFAULT_MAX_INSNS, VerifiedProgram, verify

#: Instructions one run may execute before it is aborted with ELOOP.
DEFAULT_BUDGET = 1_000_000

Mode = Literal["translator", "interpreter"]
MODES = ("translator", "interpreter")


class LoadedProgram:
    """A verified program, runnable by the engine (it satisfies ``BpfProgram``).

    Both execution paths are built at load time; ``mode`` picks the one :meth:`run` uses,
    and :attr:`interpreter` stays available as the reference.
    """

    def __init__(self, verified: VerifiedProgram, maps: list[Map], helpers: HelperRegistry,
                 mode: Mode, budget: int) -> None:
        self.name = verified.name
        self.section = verified.section
        self.verified = verified
        self.maps = maps
        self.helpers = helpers
        self.mode = mode
        self.budget = budget
        self.interpreter = Interpreter(verified, maps, helpers, budget)
        self.translated: TranslatedProgram | None = None
        if mode == "translator":
            self.translated = translate(verified, maps, helpers, budget)
            self.run = self.translated.run  # type: ignore[method-assign]
        else:
            self.run = self.interpreter.run  # type: ignore[method-assign]

    def run(self, ctx: bytearray, env: object) -> int:  # replaced per instance in __init__
        raise NotImplementedError

    @property
    def log(self) -> list[str]:
        """The verifier's log for this program."""
        return self.verified.log

    def disassemble(self) -> list[str]:
        return disassemble(self.verified.insns, map_name=lambda i: self.maps[i].name,
                           helper_name=self.helpers.name_of)

    def translated_source(self) -> str:
        """The Python source the translator generated (translating now if needed)."""
        if self.translated is None:
            self.translated = translate(self.verified, self.maps, self.helpers, self.budget)
        return self.translated.source

    def __repr__(self) -> str:
        return (f"<LoadedProgram {self.name} section={self.section} "
                f"insns={len(self.verified.insns)} mode={self.mode}>")


class BpfObject:
    """The programs and maps of one loaded object."""

    def __init__(self, origin: str, programs: dict[str, LoadedProgram],
                 maps: dict[str, Map]) -> None:
        self.origin = origin
        self.programs = programs
        self.maps = maps

    def program(self, name: str) -> LoadedProgram:
        """A program by function name, or by section name when only one program has it."""
        if name in self.programs:
            return self.programs[name]
        matches = [p for p in self.programs.values() if p.section == name]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(f"{p.name} (section {p.section})" for p in self.programs.values())
        what = "several programs are in section" if matches else "no program named"
        raise KeyError(f"{self.origin}: {what} {name!r}; programs: {known}")

    def __repr__(self) -> str:
        return f"<BpfObject {self.origin} programs={list(self.programs)} maps={list(self.maps)}>"


def load_object(
    source: str | Path | bytes,
    *,
    helpers: HelperRegistry | None = None,
    mode: Mode = "translator",
    budget: int = DEFAULT_BUDGET,
    maps: Mapping[str, Map] | None = None,
    max_insns: int = DEFAULT_MAX_INSNS,
) -> BpfObject:
    """Load, verify and prepare every program of a BPF object.

    ``helpers`` is the program type's registry (default: the ``io_uring`` type); ``mode``
    picks the execution path; ``budget`` caps the instructions of one run; ``maps`` offers
    existing maps to share by name.  Raises :class:`~uring.bpf.errors.BpfLoadError`
    (``VerifierError`` for a rejected program).
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if budget <= 0:
        raise ValueError(f"budget {budget}: must be a positive instruction count")
    helpers = helpers if helpers is not None else io_uring_helpers()
    origin = source if isinstance(source, (str, Path)) else "<bytes>"
    image = read_object(source)
    shared = maps or {}
    map_list: list[Map] = []
    for d in image.maps:
        if d.is_global:
            m: Map = ArrayMap(d.name, 4, d.value_size, 1, frozen=d.frozen, initial=d.initial)
        else:
            m = create_map(d.name, d.map_type, d.key_size, d.value_size, d.max_entries, d.flags)
            existing = shared.get(d.name)
            if existing is not None:
                if not existing.same_shape(m):
                    raise MapError(f"{origin}: map {d.name!r} is shared but its definition "
                                   f"({m.describe()}) differs from the existing one "
                                   f"({existing.describe()})")
                m = existing
        map_list.append(m)
    shapes = [(m.name, m.value_size) for m in map_list]
    programs: dict[str, LoadedProgram] = {}
    for linked in image.programs:
        verified = verify(linked, shapes, helpers, max_insns=max_insns)
        if linked.name in programs:
            raise BpfLoadError(f"{origin}: two programs named {linked.name!r}")
        programs[linked.name] = LoadedProgram(verified, map_list, helpers, mode, budget)
    return BpfObject(str(origin), programs, {m.name: m for m in map_list})
