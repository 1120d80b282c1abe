"""Load clang-built BPF ELF objects the way libbpf does (pyelftools for ELF, ours for BTF).

What comes out is an ``ElfObject``: programs linked with their sub-programs, maps from
BTF `.maps`, the legacy `maps` section and global data, the license, and per-instruction
C source lines from `.BTF.ext`. Any problem with the file is one ``ElfError`` naming the
file and what is wrong.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError as PyElfError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Section, SymbolTableSection

from ebpf.code.isa import (
    LDDW_OPCODE,
    CallKind,
    Insn,
    Kind,
    PseudoSrc,
    decode,
    to_s32,
)
from ebpf.errors import BtfError, ElfError, IsaError
from ebpf.kernel_enums import MAP_TYPE_IDS, MAP_TYPE_NAMES
from ebpf.loader.btf import Btf, BtfExt, BtfKind, BtfType, parse_btf_ext
from ebpf.loader.program import ElfObject, Function, MapDef, ProgramDef, SourceLine
from ebpf.loader.sections import program_type
from ebpf.maps.base import check_map_sizes

EM_BPF = 247
SHF_EXECINSTR = 0x4
SHF_ALLOC = 0x2
R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10
BPF_OBJ_NAME_LEN = 16
LEGACY_MAP_FIELDS = ("type", "key_size", "value_size", "max_entries", "map_flags")
BTF_MAP_UINT_FIELDS = ("type", "max_entries", "map_flags", "key_size", "value_size",
                       "numa_node", "pinning", "map_extra")
GLOBAL_DATA_PREFIXES = (".data", ".rodata", ".bss")


@dataclass
class _CodeSection:
    name: str
    index: int
    slots: dict[int, Insn]  # slot -> instruction starting there
    num_slots: int
    funcs: list[tuple[int, int, str, bool]] = field(default_factory=list)  # start,size,name,global
    relocs: dict[int, tuple[int, object]] = field(default_factory=dict)  # slot -> (type, sym)


def load(path: str | os.PathLike[str]) -> ElfObject:
    """Load a BPF object file; raises ElfError (one line, naming the file) on bad input."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ElfError(f"{path}: cannot read: {exc.strerror}") from exc
    return load_bytes(data, path)


def _check_section_headers(elf: ELFFile, data: bytes) -> None:
    """Every section header inside the file and every section's bytes too, before
    pyelftools seeks to them (a 2^63 offset is an OverflowError inside the library)."""
    shoff, entsize = elf["e_shoff"], elf["e_shentsize"]
    count = elf.num_sections()
    if count and (entsize < 64 or shoff + count * entsize > len(data)):
        raise ElfError(f"section headers ({count} of {entsize} bytes at 0x{shoff:x}) lie "
                       f"outside the file ({len(data)} bytes)")
    for n in range(count):
        off = shoff + n * entsize
        hdr = elf.structs.Elf_Shdr.parse(data[off:off + entsize])
        if hdr["sh_type"] != "SHT_NOBITS" and hdr["sh_offset"] + hdr["sh_size"] > len(data):
            raise ElfError(f"section {n}: {hdr['sh_size']} bytes at 0x{hdr['sh_offset']:x} "
                           f"lie outside the file ({len(data)} bytes)")
    names = elf.get_shstrndx()
    if count and names >= count:
        raise ElfError(f"section name table index {names} is not a section (of {count})")


def load_bytes(data: bytes, path: str = "<bytes>") -> ElfObject:
    if data[:4] != b"\x7fELF":
        raise ElfError(f"{path}: not an ELF file")
    try:
        return _Loader(data, path).run()
    except ElfError as exc:
        if str(exc).startswith(path):
            raise
        raise type(exc)(f"{path}: {exc}") from exc
    except IsaError as exc:
        raise ElfError(f"{path}: {exc}") from exc
    except (PyElfError, struct.error) as exc:  # what pyelftools and struct raise; the rest
        # of a bad file is checked by our code with its own ElfError naming the structure
        raise ElfError(f"{path}: malformed ELF: {exc}") from exc


class _Loader:
    def __init__(self, data: bytes, path: str):
        self.path = path
        self.elf = ELFFile(io.BytesIO(data))
        self.obj_name = _object_name(path)
        _check_section_headers(self.elf, data)

    def run(self) -> ElfObject:
        elf = self.elf
        if elf.header["e_machine"] not in ("EM_BPF", EM_BPF):
            raise ElfError(f"not a BPF object (machine {elf.header['e_machine']})")
        if elf.elfclass != 64:
            raise ElfError(f"not a 64-bit ELF (class {elf.elfclass})")
        if not elf.little_endian:
            raise ElfError("big-endian BPF objects are not supported")
        self.sections = list(elf.iter_sections())
        symtabs = [s for s in self.sections if isinstance(s, SymbolTableSection)]
        if not symtabs:
            raise ElfError("no symbol table")
        self.symbols = list(symtabs[0].iter_symbols())
        self.btf, self.btf_ext = self._load_btf()
        self.license = self._license()
        self.maps: list[MapDef] = []
        self.map_symbols: dict[tuple[int, int], int] = {}  # (shndx, offset) -> map index
        self.data_maps: dict[int, int] = {}  # shndx -> map index
        self._legacy_maps()
        self._btf_maps()
        self._global_data_maps()
        self.code = self._code_sections()
        self._relocations()
        programs = self._programs()
        if not programs:
            raise ElfError("no BPF programs in the object")
        return ElfObject(self.path, programs, self.maps, self.license, self.btf)

    # --- sections and symbols -------------------------------------------------------
    def _section(self, name: str) -> Section | None:
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None

    def _sec_data(self, sec: Section) -> bytes:
        if sec["sh_type"] == "SHT_NOBITS":
            return b""
        data = sec.data()
        if len(data) != sec["sh_size"]:
            raise ElfError(f"section '{sec.name}' is truncated ({len(data)} of "
                           f"{sec['sh_size']} bytes)")
        return data

    def _symbols_in(self, shndx: int) -> list:
        return [s for s in self.symbols if s["st_shndx"] == shndx]

    def _load_btf(self) -> tuple[Btf | None, BtfExt | None]:
        sec = self._section(".BTF")
        if sec is None:
            return None, None
        btf = Btf(self._sec_data(sec))
        ext_sec = self._section(".BTF.ext")
        ext = parse_btf_ext(self._sec_data(ext_sec), btf) if ext_sec is not None else None
        return btf, ext

    def _license(self) -> str:
        sec = self._section("license")
        if sec is None:
            return ""
        return self._sec_data(sec).split(b"\0", 1)[0].decode("ascii", "replace")

    # --- maps -----------------------------------------------------------------------
    def _add_map(self, mdef: MapDef, shndx: int | None = None, offset: int = 0) -> int:
        if mdef.type not in range(len(MAP_TYPE_NAMES)) or mdef.type == 0:
            raise ElfError(f"map '{mdef.name}': unknown map type {mdef.type}")
        check_map_sizes(mdef.name, mdef.key_size, mdef.value_size, mdef.max_entries)
        if mdef.inner is not None:
            check_map_sizes(mdef.inner.name, mdef.inner.key_size, mdef.inner.value_size,
                            mdef.inner.max_entries)
        self.maps.append(mdef)
        if shndx is not None:
            self.map_symbols[(shndx, offset)] = len(self.maps) - 1
        return len(self.maps) - 1

    def _legacy_maps(self) -> None:
        sec = self._section("maps")
        if sec is None:
            return
        shndx = self.sections.index(sec)
        data = self._sec_data(sec)
        syms = sorted((s for s in self._symbols_in(shndx) if s.name), key=lambda s: s["st_value"])
        if not syms:
            raise ElfError("legacy 'maps' section has no map symbols")
        def_size = len(data) // len(syms)
        if def_size < 4 * len(LEGACY_MAP_FIELDS) or def_size * len(syms) != len(data):
            raise ElfError(f"legacy 'maps' section: {len(data)} bytes do not hold "
                           f"{len(syms)} map definitions")
        for sym in syms:
            off = sym["st_value"]
            if off + def_size > len(data) or off % 4:
                raise ElfError(f"legacy map '{sym.name}' at offset {off} outside 'maps'")
            values = struct.unpack_from("<5I", data, off)
            fields = dict(zip(LEGACY_MAP_FIELDS, values, strict=True))
            self._add_map(MapDef(sym.name, fields["type"], fields["key_size"],
                                 fields["value_size"], fields["max_entries"],
                                 fields["map_flags"], section="maps"), shndx, off)

    def _btf_maps(self) -> None:
        sec = self._section(".maps")
        if sec is None:
            return
        if self.btf is None:
            raise ElfError("'.maps' section without BTF")
        datasec = self.btf.find(BtfKind.DATASEC, ".maps")
        if datasec is None:
            raise ElfError("'.maps' section has no BTF DATASEC")
        shndx = self.sections.index(sec)
        # clang may leave DATASEC offsets zero (libbpf fixes them up): take the symbols'.
        syms = {s.name: s for s in self._symbols_in(shndx) if s.name}
        self.map_vars: list[tuple[int, int, int]] = []  # (offset, size, var type id)
        for var in datasec.members:
            vtype = self.btf[var.type_id]
            if vtype.kind is not BtfKind.VAR:
                raise BtfError(f".maps: member [{var.type_id}] is {vtype.kind.name}, not VAR")
            if vtype.name not in syms:
                raise ElfError(f"map '{vtype.name}' has no symbol in '.maps'")
            mdef = self._btf_map_def(vtype.name, vtype.type_id)
            offset = syms[vtype.name]["st_value"]
            self._add_map(mdef, shndx, offset)
            # st_size covers a `values` initializer past the struct's BTF size.
            size = max(syms[vtype.name]["st_size"], self.btf.resolve_size(var.type_id))
            self.map_vars.append((offset, size, var.type_id))
        self._map_initial_values(sec, shndx)

    def _btf_map_def(self, name: str, type_id: int) -> MapDef:
        btf = self.btf
        assert btf is not None
        struct_t = btf.skip_modifiers(type_id)
        if struct_t.kind is not BtfKind.STRUCT:
            raise BtfError(f"map '{name}': definition is {struct_t.kind.name}, not a struct")
        fields: dict[str, int] = {}
        key_id = value_id = 0
        inner: MapDef | None = None
        has_values = False
        for m in struct_t.members:
            mtype = btf.skip_modifiers(m.type_id)
            if m.name in BTF_MAP_UINT_FIELDS:
                fields[m.name] = self._btf_uint(name, m.name, mtype)
            elif m.name in ("key", "value"):
                if mtype.kind is not BtfKind.PTR:
                    raise BtfError(f"map '{name}': '{m.name}' is not a pointer")
                size = btf.resolve_size(mtype.type_id)
                fields.setdefault(f"{m.name}_size", size)
                if fields[f"{m.name}_size"] != size:
                    raise ElfError(f"map '{name}': {m.name}_size {fields[m.name + '_size']} "
                                   f"does not match {m.name} type size {size}")
                if m.name == "key":
                    key_id = mtype.type_id
                else:
                    value_id = mtype.type_id
            elif m.name == "values":
                has_values = True
                inner = self._btf_inner_map(name, mtype)
            else:
                raise ElfError(f"map '{name}': unknown map definition field '{m.name}'")
        if "type" not in fields:
            raise ElfError(f"map '{name}': no map type")
        if has_values:  # map-in-map and prog-array values are 4-byte fds, as libbpf sets
            fields.setdefault("value_size", 4)
        return MapDef(name, fields["type"], fields.get("key_size", 0),
                      fields.get("value_size", 0), fields.get("max_entries", 0),
                      fields.get("map_flags", 0), ".maps", inner, None, key_id, value_id,
                      fields.get("pinning", 0))

    def _btf_uint(self, name: str, member: str, mtype: BtfType) -> int:
        btf = self.btf
        assert btf is not None
        if mtype.kind is not BtfKind.PTR:
            raise BtfError(f"map '{name}': '{member}' is not an __uint() pointer")
        arr = btf.skip_modifiers(mtype.type_id)
        if arr.kind is not BtfKind.ARRAY or arr.array is None:
            raise BtfError(f"map '{name}': '{member}' is not an __uint() array pointer")
        return arr.array[2]

    def _btf_inner_map(self, name: str, mtype: BtfType) -> MapDef | None:
        btf = self.btf
        assert btf is not None
        if mtype.kind is not BtfKind.ARRAY or mtype.array is None:
            raise BtfError(f"map '{name}': 'values' is not an array")
        ptr = btf.skip_modifiers(mtype.array[0])
        if ptr.kind is not BtfKind.PTR:
            raise BtfError(f"map '{name}': 'values' elements are not pointers")
        target = btf.skip_modifiers(ptr.type_id)
        if target.kind is BtfKind.STRUCT:
            return self._btf_map_def(f"{name}.inner", ptr.type_id)
        return None  # PROG_ARRAY: values are programs (FUNC_PROTO)

    def _map_initial_values(self, sec: Section, shndx: int) -> None:
        """`.rel.maps` entries set initial slots of PROG_ARRAY and map-in-map maps."""
        rel = self._rel_section_for(shndx)
        if rel is None:
            return
        btf = self.btf
        assert btf is not None
        for r in rel.iter_relocations():
            off = r["r_offset"]
            if r["r_info_sym"] >= len(self.symbols):
                raise ElfError(f"relocation at 0x{off:x} in '.maps' names a missing symbol")
            sym = self.symbols[r["r_info_sym"]]
            for var_off, var_size, var_type in self.map_vars:
                if var_off <= off < var_off + var_size:
                    mdef = self.maps[self.map_symbols[(shndx, var_off)]]
                    values_off = self._member_offset(btf[var_type].type_id, "values")
                    if values_off is None or (off - var_off - values_off) % 8:
                        raise ElfError(f"map '{mdef.name}': relocation at 0x{off:x} is not "
                                       "inside 'values'")
                    mdef.values[(off - var_off - values_off) // 8] = sym.name
                    break
            else:
                raise ElfError(f"relocation at 0x{off:x} in '.maps' is outside every map")

    def _member_offset(self, type_id: int, member: str) -> int | None:
        assert self.btf is not None
        for m in self.btf.skip_modifiers(type_id).members:
            if m.name == member:
                return m.offset // 8
        return None

    def _global_data_maps(self) -> None:
        for shndx, sec in enumerate(self.sections):
            name = sec.name
            if not any(name == p or name.startswith(p + ".") for p in GLOBAL_DATA_PREFIXES):
                continue
            if not sec["sh_flags"] & SHF_ALLOC or sec["sh_size"] == 0:
                continue
            # one array value holds the section: the kernel's value_size limit, checked
            # before the zeros of a .bss are allocated
            check_map_sizes(name, 4, sec["sh_size"], 1)
            initial = None if sec["sh_type"] == "SHT_NOBITS" else self._sec_data(sec)
            mdef = MapDef(_internal_map_name(self.obj_name, name), MAP_TYPE_IDS["array"], 4,
                          sec["sh_size"], 1, _global_data_flags(name, self.btf), name,
                          initial=initial if initial is not None else bytes(sec["sh_size"]))
            self.data_maps[shndx] = self._add_map(mdef)

    # --- code -------------------------------------------------------------------------
    def _code_sections(self) -> dict[int, _CodeSection]:
        out: dict[int, _CodeSection] = {}
        for shndx, sec in enumerate(self.sections):
            if sec["sh_type"] != "SHT_PROGBITS" or not sec["sh_flags"] & SHF_EXECINSTR:
                continue
            data = self._sec_data(sec)
            if not data:
                continue
            try:
                insns = decode(data)
            except IsaError as exc:
                raise ElfError(f"section '{sec.name}': {exc}") from exc
            slots, pos = {}, 0
            for insn in insns:
                slots[pos] = insn
                pos += insn.slots
            code = _CodeSection(sec.name, shndx, slots, pos)
            for sym in self._symbols_in(shndx):
                if sym["st_info"]["type"] != "STT_FUNC":
                    continue
                start, size = sym["st_value"], sym["st_size"]
                if start % 8 or size % 8 or start + size > len(data):
                    raise ElfError(f"function '{sym.name}' at 0x{start:x}+{size} lies outside "
                                   f"section '{sec.name}'")
                is_global = sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
                code.funcs.append((start // 8, size // 8, sym.name, is_global))
            code.funcs.sort()
            out[shndx] = code
        return out

    def _rel_section_for(self, shndx: int) -> Section | None:
        for sec in self.sections:
            if sec["sh_type"] == "SHT_REL" and sec["sh_info"] == shndx:
                return sec
        return None

    def _relocations(self) -> None:
        for shndx, code in self.code.items():
            rel = self._rel_section_for(shndx)
            if rel is None:
                continue
            for r in rel.iter_relocations():
                off, rtype = r["r_offset"], r["r_info_type"]
                if off % 8 or off // 8 not in code.slots:
                    raise ElfError(f"relocation at offset 0x{off:x} points outside section "
                                   f"'{code.name}' ({code.num_slots * 8} bytes)")
                if r["r_info_sym"] >= len(self.symbols):
                    raise ElfError(f"relocation at 0x{off:x} in '{code.name}' names missing "
                                   f"symbol {r['r_info_sym']}")
                sym = self.symbols[r["r_info_sym"]]
                slot = off // 8
                code.relocs[slot] = (rtype, sym)
                code.slots[slot] = self._apply_reloc(code, slot, rtype, sym)

    def _apply_reloc(self, code: _CodeSection, slot: int, rtype: int, sym) -> Insn:
        insn = code.slots[slot]
        where = f"'{code.name}' insn {slot}"
        shndx = sym["st_shndx"]
        if shndx == "SHN_UNDEF":
            raise ElfError(f"{where}: extern symbol '{sym.name}' is not supported")
        if insn.kind is Kind.CALL:
            if rtype not in (R_BPF_64_32, R_BPF_64_NODYLD32) or insn.src != CallKind.LOCAL:
                raise ElfError(f"{where}: unexpected relocation type {rtype} on a call")
            if shndx not in self.code:
                raise ElfError(f"{where}: call to '{sym.name}' outside code")
            return insn  # resolved at link time
        if insn.opcode != LDDW_OPCODE or rtype != R_BPF_64_64:
            raise ElfError(f"{where}: relocation type {rtype} against '{sym.name}' on "
                           f"opcode 0x{insn.opcode:02x}")
        value = sym["st_value"]
        if (shndx, value) in self.map_symbols:
            return Insn(insn.opcode, insn.dst, PseudoSrc.MAP_IDX, 0,
                        self.map_symbols[(shndx, value)], 0)
        if shndx in self.data_maps:
            return Insn(insn.opcode, insn.dst, PseudoSrc.MAP_IDX_VALUE, 0, self.data_maps[shndx],
                        to_s32(insn.imm + value))
        if shndx in self.code:
            return insn  # function address (callback), resolved at link time
        sec_name = self.sections[shndx].name if isinstance(shndx, int) and \
            shndx < len(self.sections) else shndx
        raise ElfError(f"{where}: relocation against '{sym.name}' in section '{sec_name}' "
                       "that is neither a map nor code")

    # --- programs -------------------------------------------------------------------
    def _programs(self) -> list[ProgramDef]:
        programs = []
        for code in self.code.values():
            if code.name == ".text":
                continue
            typed = program_type(code.name)
            prog_type, attach = typed if typed else ("unspec", None)
            for start, size, name, is_global in code.funcs:
                if not is_global:
                    raise ElfError(f"section '{code.name}': program '{name}' is static")
                programs.append(self._link(code, start, size, name, prog_type, attach))
        return programs

    def _function_at(self, code: _CodeSection, slot: int) -> tuple[int, int, str]:
        for start, size, name, _ in code.funcs:
            if start <= slot < start + size:
                return start, size, name
        if not code.funcs:
            return 0, code.num_slots, code.name  # code without symbols: the whole section
        raise ElfError(f"section '{code.name}': slot {slot} is in no function")

    def _link(self, code: _CodeSection, start: int, size: int, name: str, prog_type: str,
              attach: str | None) -> ProgramDef:
        insns: list[Insn] = []
        origins: list[tuple[int, int]] = []  # (shndx, slot) per insn
        functions: list[Function] = []
        placed: dict[tuple[int, int], int] = {}  # (shndx, func start) -> linked slot
        out_slot = 0

        def place(sec: _CodeSection, fstart: int, fsize: int, fname: str) -> int:
            nonlocal out_slot
            at = out_slot
            placed[(sec.index, fstart)] = at
            functions.append(Function(fname, at, fsize, sec.name))
            for s in range(fstart, fstart + fsize):
                if s in sec.slots:
                    insns.append(sec.slots[s])
                    origins.append((sec.index, s))
            out_slot += fsize
            return at

        place(code, start, size, name)
        lines: dict[int, SourceLine] = {}
        map_indices: set[int] = set()

        def relocate(first: int, last: int, slot: int) -> None:
            """Fix up insns[first:last] (starting at ``slot``); like libbpf's
            bpf_object__reloc_code, a callee is appended and relocated depth-first as soon
            as it is first called."""
            for i in range(first, last):
                insn = insns[i]
                shndx, orig = origins[i]
                if insn.opcode == LDDW_OPCODE and insn.src in (PseudoSrc.MAP_IDX,
                                                                PseudoSrc.MAP_IDX_VALUE):
                    map_indices.add(insn.imm)
                target = self._call_target(self.code[shndx], orig, insn)
                if target is not None:
                    tsec, tslot = target
                    fstart, fsize, fname = self._function_at(tsec, tslot)
                    key = (tsec.index, fstart)
                    if key in placed:
                        base = placed[key]
                    else:
                        n = len(insns)
                        base = place(tsec, fstart, fsize, fname)
                        relocate(n, len(insns), base)
                    rel = base + (tslot - fstart) - (slot + 1)
                    src = CallKind.LOCAL if insn.kind is Kind.CALL else PseudoSrc.FUNC
                    insns[i] = Insn(insn.opcode, insn.dst, src, insn.off, rel, insn.next_imm)
                slot += insn.slots

        relocate(0, len(insns), 0)
        # Line info, by origin.
        line_tables = self._line_tables()
        slot = 0
        for insn, (shndx, orig) in zip(insns, origins, strict=True):
            info = line_tables.get(shndx, {}).get(orig)
            if info is not None:
                lines[slot] = info
            slot += insn.slots
        return ProgramDef(name, code.name, prog_type, insns, functions, lines,
                          sorted(map_indices), attach, start * 8, size)

    def _call_target(self, sec: _CodeSection, orig: int, insn: Insn
                     ) -> tuple[_CodeSection, int] | None:
        """Where a local call or function-address load points, as (section, slot)."""
        is_call = insn.kind is Kind.CALL and insn.src == CallKind.LOCAL
        is_func_addr = insn.opcode == LDDW_OPCODE and orig in sec.relocs and \
            sec.relocs[orig][1]["st_shndx"] in self.code
        if not (is_call or is_func_addr):
            return None
        reloc = sec.relocs.get(orig)
        if reloc is None:  # same-section call resolved by the compiler
            target = orig + insn.imm + 1
            tsec = sec
        else:
            sym = reloc[1]
            tsec = self.code[sym["st_shndx"]]
            if is_call:
                target = sym["st_value"] // 8 + insn.imm + 1
            else:
                target = (sym["st_value"] + insn.imm) // 8
        if target not in tsec.slots:
            raise ElfError(f"'{sec.name}' insn {orig}: call target {target} outside "
                           f"'{tsec.name}'")
        return tsec, target

    def _line_tables(self) -> dict[int, dict[int, SourceLine]]:
        if getattr(self, "_lines_cache", None) is not None:
            return self._lines_cache
        tables: dict[int, dict[int, SourceLine]] = {}
        if self.btf_ext is not None:
            for shndx, code in self.code.items():
                entries = self.btf_ext.line_info.get(code.name, [])
                tables[shndx] = {
                    e.insn_off // 8: SourceLine(e.file, e.line, e.column, e.line_text)
                    for e in entries
                }
        self._lines_cache = tables
        return tables


def _object_name(path: str) -> str:
    """libbpf's object name: the file's base name up to its first dot, at most 15 chars."""
    base = os.path.basename(path)[: BPF_OBJ_NAME_LEN - 1]
    return base.split(".", 1)[0]


def _internal_map_name(obj_name: str, section: str) -> str:
    """libbpf's name for a global-data map, e.g. 'globals.rodata' or 'katran_l.bss'."""
    sfx_len = max(7, len(section))
    if sfx_len >= BPF_OBJ_NAME_LEN:
        return section
    pfx_len = min(BPF_OBJ_NAME_LEN - sfx_len - 1, len(obj_name))
    name = obj_name[:pfx_len] + section[:sfx_len]
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name)


def _global_data_flags(section: str, btf: Btf | None) -> int:
    """libbpf's map_flags for a global-data map (bpf_object__init_internal_map): .rodata
    is BPF_F_RDONLY_PROG; BPF_F_MMAPABLE only when the section's BTF DATASEC holds a
    variable that is not static (libbpf's map_is_mmapable), e.g. not for a section of
    string literals or static constants only."""
    BPF_F_RDONLY_PROG = 1 << 7
    BPF_F_MMAPABLE = 1 << 10
    BTF_VAR_STATIC = 0
    flags = BPF_F_RDONLY_PROG if section.startswith(".rodata") else 0
    sec = btf.find(BtfKind.DATASEC, section) if btf is not None else None
    if sec is not None and any(
            btf[m.type_id].kind is BtfKind.VAR and btf[m.type_id].extra != BTF_VAR_STATIC
            for m in sec.members):
        flags |= BPF_F_MMAPABLE
    return flags
