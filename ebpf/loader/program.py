"""What the ELF loader returns: programs linked as libbpf links them, maps, line info.

Linking follows libbpf: every sub-program a program calls (transitively) from `.text` is
appended after the program's own instructions and call immediates are fixed up to relative
slot offsets. Map references in 64-bit loads become ``PseudoSrc.MAP_IDX`` (imm = index into
``ElfObject.maps``) and references into global data become ``PseudoSrc.MAP_IDX_VALUE``
(imm = map index, next_imm = byte offset), which is how the kernel's fd_array form reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ebpf.code.isa import Insn, Kind, slot_offsets
from ebpf.kernel_enums import MAP_TYPE_NAMES, helper_name


@dataclass(frozen=True)
class SourceLine:
    """A C source position from .BTF.ext line info (or DWARF)."""

    file: str
    line: int
    column: int = 0
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class MapDef:
    """A map as the object defines it (BTF `.maps`, legacy `maps`, or global data)."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    section: str = ".maps"
    inner: MapDef | None = None
    initial: bytes | None = None  # contents of a global-data map (.data / .rodata)
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    pinning: int = 0
    values: dict[int, str] = field(default_factory=dict)  # PROG_ARRAY slots: index -> prog

    @property
    def type_name(self) -> str:
        if 0 <= self.type < len(MAP_TYPE_NAMES):
            return MAP_TYPE_NAMES[self.type]
        return f"type_{self.type}"

    @property
    def is_global_data(self) -> bool:
        return self.initial is not None or self.section in (".bss", ".data", ".rodata")


@dataclass
class Function:
    """A function inside a linked program: its entry slot and length in slots."""

    name: str
    start: int
    size: int
    section: str


@dataclass
class ProgramDef:
    """One linked program (entry function plus the sub-programs it calls)."""

    name: str
    section: str
    prog_type: str  # libbpf's program type for the section, e.g. "xdp"
    insns: list[Insn]
    functions: list[Function]
    lines: dict[int, SourceLine]  # slot index -> source line, for slots that start a line
    map_indices: list[int]  # indices into ElfObject.maps referenced by this program
    attach_type: str | None = None
    section_offset: int = 0  # byte offset of the entry function in its section
    own_slots: int = 0  # slots of the entry function alone (what llvm-objdump shows)

    @property
    def num_slots(self) -> int:
        return sum(insn.slots for insn in self.insns)

    def get_slot_offsets(self) -> list[int]:
        return slot_offsets(self.insns)

    def source_line(self, slot: int) -> SourceLine | None:
        """The nearest line-info entry at or before ``slot`` within the same function."""
        best = None
        func = self.function_at(slot)
        for s, line in self.lines.items():
            if s <= slot and (best is None or s > best[0]):
                if func is None or s >= func.start:
                    best = (s, line)
        return best[1] if best else None

    def function_at(self, slot: int) -> Function | None:
        for func in self.functions:
            if func.start <= slot < func.start + func.size:
                return func
        return None

    def helper_ids(self) -> list[int]:
        return sorted({i.imm for i in self.insns if i.kind is Kind.CALL and i.src == 0})

    def helper_names(self) -> list[str]:
        return [helper_name(h) for h in self.helper_ids()]


@dataclass
class ElfObject:
    """A loaded BPF object file."""

    path: str
    programs: list[ProgramDef]
    maps: list[MapDef]
    license: str = ""
    btf: object | None = None  # ebpf.loader.btf.Btf when the object has BTF

    def get_program(self, name: str | None = None) -> ProgramDef:
        """The program called ``name`` (any type), or the first XDP program when name is
        None; ElfError names what the object holds when there is none."""
        from ebpf.errors import ElfError

        if name is None:
            for prog in self.programs:
                if prog.prog_type == "xdp":
                    return prog
            if not self.programs:
                raise ElfError(f"{self.path}: no programs in the object")
            raise ElfError(f"{self.path}: no XDP program (have: {_listing(self.programs)}); "
                           f"name one with --program to use it anyway")
        for prog in self.programs:
            if prog.name == name:
                return prog
        known = ", ".join(p.name for p in self.programs)
        raise ElfError(f"{self.path}: no program named '{name}' (have: {known})")

    def get_xdp_program(self, name: str | None = None) -> ProgramDef:
        """``get_program``, refusing a program XDP semantics do not apply to (ElfError with
        the reason: its type, or a section the kernel would refuse)."""
        from ebpf.errors import ElfError

        prog = self.get_program(name)
        reason = non_xdp_reason(prog)
        if reason is not None:
            raise ElfError(f"{self.path}: {reason}")
        return prog

    def default_note(self) -> str | None:
        """What picking the default program leaves out, in one line, or None when the
        object holds one program: the other XDP programs and the non-XDP ones, why."""
        if len(self.programs) <= 1:
            return None
        xdp = self.iter_xdp_programs()
        if not xdp:
            return None
        parts = []
        if len(xdp) > 1:
            parts.append(f"the first of {len(xdp)} XDP programs ("
                         + ", ".join(p.name for p in xdp) + ")")
        skipped = [f"{p.name} ({p.prog_type or 'unspec'}, section '{p.section}')"
                   for p, _ in self.iter_skipped_programs()]
        if skipped:
            parts.append("not XDP, skipped: " + ", ".join(skipped))
        return f"{self.path}: using {xdp[0].name}: " + "; ".join(parts) + \
            " (--program picks another)"

    def iter_xdp_programs(self) -> list[ProgramDef]:
        """The XDP programs, in ELF order (what the commands analyse by default)."""
        return [p for p in self.programs if p.prog_type == "xdp"]

    def iter_skipped_programs(self) -> list[tuple[ProgramDef, str]]:
        """(program, why it is not analysed) for every program that is not XDP."""
        return [(p, non_xdp_reason(p) or "") for p in self.programs if p.prog_type != "xdp"]

    def get_map(self, name: str) -> MapDef:
        from ebpf.errors import ElfError

        for m in self.maps:
            if m.name == name:
                return m
        raise ElfError(f"{self.path}: no map named '{name}'")


def non_xdp_reason(prog: ProgramDef) -> str | None:
    """Why XDP semantics (verdicts, xdp_md, the NIC targets) do not apply to ``prog``, or
    None for an XDP program or a raw one (no section: bytecode, assembler text).

    A section libbpf does not know gets program type unspec, and libbpf refuses to load
    it ("missing BPF prog type, check ELF section name"): so do we.
    """
    if prog.prog_type == "xdp" or not prog.section:
        return None
    if prog.prog_type == "unspec":
        return (f"program '{prog.name}': section '{prog.section}' is not one libbpf knows "
                f"(program type unspec); the kernel refuses to load it")
    return (f"program '{prog.name}' is a {prog.prog_type} program (section "
            f"'{prog.section}'), not XDP: XDP verdicts and the NIC targets do not apply")


def _listing(programs: list[ProgramDef]) -> str:
    return ", ".join(f"{p.name} ({p.prog_type}, section '{p.section}')" for p in programs)
