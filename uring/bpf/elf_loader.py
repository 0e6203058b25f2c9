"""Read a clang-built BPF ELF object into linked, relocated programs and map definitions.

What the loader understands (clang 14, ``-target bpf``, with or without ``-g``):

* **Programs**: every global ``FUNC`` symbol in an executable section other than ``.text``;
  the section name is the program's section (``SEC("iouring")``), the symbol its name.
* **Subprograms** (bpf-to-bpf calls, ``bpf_loop`` callbacks): functions in ``.text`` (or in
  any code section) reached from a program.  Each program gets its own copy of the functions
  it reaches, appended after its own code, as libbpf does.
* **Maps**: the legacy convention, one ``struct bpf_map_def`` (five u32: type, key_size,
  value_size, max_entries, map_flags) per symbol in the section ``maps``.
* **Globals**: each non-empty ``.data*``, ``.rodata*`` and ``.bss*`` section becomes a
  one-element array map named after the section; ``.rodata*`` ones are frozen.
* **Relocations** (``R_BPF_64_64`` on ``ld_imm64``, ``R_BPF_64_32`` on calls): map symbols
  become ``BPF_PSEUDO_MAP_FD``, globals ``BPF_PSEUDO_MAP_VALUE`` (offset = the symbol's value
  plus the instruction's immediate: named globals relocate against their own symbol, static
  ones against the section symbol with the offset in the immediate), code symbols
  ``BPF_PSEUDO_FUNC`` / ``BPF_PSEUDO_CALL`` with instruction-relative immediates.  The
  relocation section of code section ``X`` is the ``SHT_REL`` section whose ``sh_info`` is
  ``X``'s index (clang names it ``.relX``).

Debug sections (``.BTF``, ``.BTF.ext``, ``.debug_*``) and their relocations are ignored.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from uring.bpf import isa
from uring.bpf.errors import ElfFormatError
from uring.bpf.isa import Insn

EM_BPF = 247
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
R_BPF_64_64 = 1
R_BPF_64_32 = 10
MAP_SECTION = "maps"
_MAP_DEF = struct.Struct("<5I")
_GLOBAL_PREFIXES = (".data", ".rodata", ".bss")
_IGNORED_DATA = ("license", "version")


@dataclass
class MapDef:
    """A map the object asks for (from ``maps`` or a global-data section)."""

    name: str
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    initial: bytes | None = None  # initial contents of a global-data section
    frozen: bool = False
    is_global: bool = False


@dataclass
class Function:
    """One function inside a linked program: ``insns[start:end]``."""

    name: str
    start: int
    end: int


@dataclass
class LinkedProgram:
    """A program with its subprograms appended and every relocation applied."""

    name: str
    section: str
    insns: list[Insn]
    functions: list[Function] = field(default_factory=list)


@dataclass
class ObjectImage:
    maps: list[MapDef]
    programs: list[LinkedProgram]


@dataclass
class _CodeSection:
    index: int
    name: str
    insns: list[Insn]
    # insn index -> (target section index, target insn index) for calls / function refs
    code_refs: dict[int, tuple[int, int]] = field(default_factory=dict)
    # functions by start insn: (name, start, end, is_global)
    functions: dict[int, tuple[str, int, int, bool]] = field(default_factory=dict)


def read_object(source: str | Path | bytes) -> ObjectImage:
    """Parse ``source`` (a path or the object's bytes) into an :class:`ObjectImage`."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, origin = bytes(source), "<bytes>"
    else:
        origin = str(source)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ElfFormatError(f"cannot read BPF object {origin}: {exc}") from exc
    try:
        return _Reader(ELFFile(io.BytesIO(data)), origin).read()
    except ELFError as exc:
        raise ElfFormatError(f"{origin}: not a valid ELF file ({exc})") from exc


class _Reader:
    def __init__(self, elf: ELFFile, origin: str) -> None:
        self.elf = elf
        self.origin = origin

    def fail(self, message: str) -> ElfFormatError:
        return ElfFormatError(f"{self.origin}: {message}")

    def read(self) -> ObjectImage:
        elf = self.elf
        if elf["e_machine"] != "EM_BPF" and elf.header["e_machine"] != EM_BPF:
            raise self.fail(f"machine is {elf['e_machine']}, not BPF; build with "
                            "clang -target bpf")
        if elf.elfclass != 64 or not elf.little_endian:
            raise self.fail("only 64-bit little-endian BPF objects are supported (bpfel)")
        self.sections = list(elf.iter_sections())
        symtabs = [s for s in self.sections if isinstance(s, SymbolTableSection)]
        if not symtabs:
            raise self.fail("no symbol table (was the object stripped?)")
        self.symbols = list(symtabs[0].iter_symbols())
        self.maps: list[MapDef] = []
        self.map_by_symbol: dict[tuple[int, int], int] = {}  # (section, offset) -> map index
        self.global_map: dict[int, int] = {}  # section index -> map index
        self._read_maps()
        self._read_globals()
        self.code: dict[int, _CodeSection] = {}
        for idx, sec in enumerate(self.sections):
            flags = sec["sh_flags"]
            if (sec["sh_type"] == "SHT_PROGBITS" and flags & SHF_EXECINSTR
                    and sec["sh_size"] > 0):
                self.code[idx] = _CodeSection(idx, sec.name, isa.decode(sec.data()))
        if not self.code:
            raise self.fail("no code sections (no function was compiled into a SEC())")
        self._read_functions()
        for sec in self.sections:
            if isinstance(sec, RelocationSection) and sec["sh_info"] in self.code:
                self._apply_relocations(self.code[sec["sh_info"]], sec)
        self._resolve_local_calls()
        programs = []
        for cs in self.code.values():
            if cs.name == ".text":
                continue
            for start, (name, _s, _e, is_global) in sorted(cs.functions.items()):
                if is_global:
                    programs.append(self._link(cs, start, name))
        if not programs:
            raise self.fail("no programs: put each entry function in a SEC(\"...\") section")
        return ObjectImage(self.maps, programs)

    # -- maps and globals ---------------------------------------------------------------------

    def _section_index(self, name: str) -> int | None:
        for idx, sec in enumerate(self.sections):
            if sec.name == name:
                return idx
        return None

    def _read_maps(self) -> None:
        idx = self._section_index(MAP_SECTION)
        if idx is None:
            return
        sec = self.sections[idx]
        data = sec.data()
        syms = sorted((s for s in self.symbols if s["st_shndx"] == idx
                       and s["st_info"]["type"] in ("STT_OBJECT", "STT_NOTYPE") and s.name),
                      key=lambda s: s["st_value"])
        for sym in syms:
            off = sym["st_value"]
            if off + _MAP_DEF.size > len(data):
                raise self.fail(f"map {sym.name!r}: definition truncated (need a 20-byte "
                                "struct bpf_map_def; use BPF_MAP())")
            mtype, ksize, vsize, entries, flags = _MAP_DEF.unpack_from(data, off)
            self.map_by_symbol[(idx, off)] = len(self.maps)
            self.maps.append(MapDef(sym.name, mtype, ksize, vsize, entries, flags))

    def _read_globals(self) -> None:
        for idx, sec in enumerate(self.sections):
            name = sec.name
            if not name.startswith(_GLOBAL_PREFIXES) or not sec["sh_flags"] & SHF_ALLOC:
                continue
            size = sec["sh_size"]
            if size == 0:
                continue
            initial = None if sec["sh_type"] == "SHT_NOBITS" else sec.data()
            self.global_map[idx] = len(self.maps)
            self.maps.append(MapDef(name, 2, 4, size, 1, 0, initial,
                                    frozen=name.startswith(".rodata"), is_global=True))

    # -- code -----------------------------------------------------------------------------------

    def _read_functions(self) -> None:
        for sym in self.symbols:
            if sym["st_info"]["type"] != "STT_FUNC":
                continue
            cs = self.code.get(sym["st_shndx"]) if isinstance(sym["st_shndx"], int) else None
            if cs is None:
                continue
            start = sym["st_value"] // isa.INSN_SIZE
            size = sym["st_size"] // isa.INSN_SIZE or len(cs.insns) - start
            is_global = sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
            cs.functions[start] = (sym.name, start, start + size, is_global)

    def _apply_relocations(self, cs: _CodeSection, rel: RelocationSection) -> None:
        for reloc in rel.iter_relocations():
            offset, rtype = reloc["r_offset"], reloc["r_info_type"]
            pc = offset // isa.INSN_SIZE
            if offset % isa.INSN_SIZE or pc >= len(cs.insns):
                raise self.fail(f"section {cs.name}: relocation at bad offset {offset}")
            sym = self.symbols[reloc["r_info_sym"]]
            insn = cs.insns[pc]
            shndx = sym["st_shndx"]
            where = f"section {cs.name} insn {pc}"
            if shndx == "SHN_UNDEF" or not isinstance(shndx, int):
                raise self.fail(f"{where}: unresolved external symbol {sym.name!r} "
                                "(externs and kfuncs are not supported)")
            if insn.opcode == isa.OP_LD_IMM64 and rtype == R_BPF_64_64:
                if pc + 1 >= len(cs.insns):
                    raise self.fail(f"{where}: ld_imm64 cut off at the end of the section")
                self._relocate_ld_imm64(cs, pc, sym, shndx, where)
            elif insn.opcode == isa.OP_CALL and insn.src == isa.BPF_PSEUDO_CALL:
                if shndx not in self.code:
                    raise self.fail(f"{where}: call to {sym.name!r}, which is not code")
                target = sym["st_value"] // isa.INSN_SIZE + insn.imm + 1
                cs.code_refs[pc] = (shndx, target)
            else:
                raise self.fail(f"{where}: unsupported relocation type {rtype} against "
                                f"{sym.name!r} on opcode {insn.opcode:#04x}")

    def _relocate_ld_imm64(self, cs: _CodeSection, pc: int, sym, shndx: int,
                           where: str) -> None:
        insn, hi = cs.insns[pc], cs.insns[pc + 1]
        value = sym["st_value"]
        if (shndx, value) in self.map_by_symbol:
            cs.insns[pc] = insn._replace(src=isa.BPF_PSEUDO_MAP_FD,
                                         imm=self.map_by_symbol[(shndx, value)])
            cs.insns[pc + 1] = hi._replace(imm=0)
        elif shndx in self.global_map:
            m = self.global_map[shndx]
            off = value + insn.imm
            if not 0 <= off < self.maps[m].value_size:
                raise self.fail(f"{where}: offset {off} outside {self.maps[m].name}")
            cs.insns[pc] = insn._replace(src=isa.BPF_PSEUDO_MAP_VALUE, imm=m)
            cs.insns[pc + 1] = hi._replace(imm=off)
        elif shndx in self.code:
            byte_off = value + insn.imm
            if byte_off % isa.INSN_SIZE:
                raise self.fail(f"{where}: function reference to a misaligned offset")
            cs.insns[pc] = insn._replace(src=isa.BPF_PSEUDO_FUNC, imm=0)
            cs.code_refs[pc] = (shndx, byte_off // isa.INSN_SIZE)
        elif self.sections[shndx].name == MAP_SECTION:
            raise self.fail(f"{where}: reference into section maps at offset {value} that is "
                            "not the start of a map definition")
        else:
            name = self.sections[shndx].name
            raise self.fail(f"{where}: reference to {sym.name or name!r} in section {name!r}, "
                            "which is neither a map nor .data/.rodata/.bss")

    def _resolve_local_calls(self) -> None:
        """Calls to static functions of the same section carry no relocation."""
        for cs in self.code.values():
            for pc, insn in enumerate(cs.insns):
                if (insn.opcode == isa.OP_CALL and insn.src == isa.BPF_PSEUDO_CALL
                        and pc not in cs.code_refs):
                    cs.code_refs[pc] = (cs.index, pc + insn.imm + 1)

    def _link(self, cs: _CodeSection, start: int, name: str) -> LinkedProgram:
        """Copy the program and every function it reaches into one instruction array."""
        s = cs.functions[start][1]
        out: list[Insn] = []
        placed: dict[tuple[int, int], int] = {}  # (section, start) -> linked start
        functions: list[Function] = []
        fixups: list[tuple[int, tuple[int, int]]] = []  # linked pc -> target (section, insn)
        queue = [(cs.index, s)]
        while queue:
            key = queue.pop(0)
            if key in placed:
                continue
            sec = self.code[key[0]]
            if key[1] not in sec.functions:
                raise self.fail(f"program {name}: call or reference to section {sec.name} "
                                f"insn {key[1]}, which is not the start of a function")
            fname, fs, fe, _ = sec.functions[key[1]]
            base = len(out)
            placed[key] = base
            functions.append(Function(fname, base, base + fe - fs))
            out.extend(sec.insns[fs:fe])
            for pc, target in sec.code_refs.items():
                if fs <= pc < fe:
                    fixups.append((base + pc - fs, target))
                    if target not in placed:
                        queue.append(target)
        for pc, target in fixups:
            rel = placed[target] - (pc + 1)
            out[pc] = out[pc]._replace(imm=rel)
        return LinkedProgram(name, cs.name, out, functions)
