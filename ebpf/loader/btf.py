"""BTF and BTF.ext parsing (no library parses BTF, so this is ours).

Layouts follow the kernel's include/uapi/linux/btf.h and Documentation/bpf/btf.rst; field
names are the spec's. Every read goes through ``_Reader`` so a short or inconsistent section
becomes one ``BtfError`` naming the offset and the value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from ebpf.errors import BtfError

BTF_MAGIC = 0xEB9F


class BtfKind(IntEnum):
    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


# Bytes of kind-specific data after the 12-byte btf_type: (fixed, per vlen entry).
_EXTRA = {
    BtfKind.INT: (4, 0), BtfKind.ARRAY: (12, 0), BtfKind.STRUCT: (0, 12),
    BtfKind.UNION: (0, 12), BtfKind.ENUM: (0, 8), BtfKind.FUNC_PROTO: (0, 8),
    BtfKind.VAR: (4, 0), BtfKind.DATASEC: (0, 12), BtfKind.DECL_TAG: (4, 0),
    BtfKind.ENUM64: (0, 12),
}
_MODIFIERS = (BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT,
              BtfKind.TYPE_TAG)


class _Reader:
    """Bounds-checked little-endian reads from one section."""

    def __init__(self, data: bytes, what: str):
        self.data = data
        self.what = what

    def unpack(self, fmt: str, off: int) -> tuple:
        try:
            return struct.unpack_from("<" + fmt, self.data, off)
        except struct.error:
            raise BtfError(f"{self.what}: truncated at offset 0x{off:x} "
                           f"(section is {len(self.data)} bytes)") from None

    def string(self, start: int, end: int, off: int) -> str:
        pos = start + off
        if off < 0 or pos >= end:
            raise BtfError(f"{self.what}: string offset 0x{off:x} outside the string section")
        stop = self.data.find(b"\0", pos, end)
        if stop < 0:
            raise BtfError(f"{self.what}: unterminated string at offset 0x{off:x}")
        return self.data[pos:stop].decode("utf-8", "replace")


@dataclass
class Member:
    name: str
    type_id: int
    offset: int  # bits (for STRUCT/UNION), value (ENUM), byte offset (DATASEC)
    size: int = 0  # DATASEC var size in bytes


@dataclass
class BtfType:
    id: int
    kind: BtfKind
    name: str
    size_or_type: int
    vlen: int
    kind_flag: bool
    members: list[Member] = field(default_factory=list)
    array: tuple[int, int, int] | None = None  # (type, index_type, nelems)
    extra: int = 0  # INT encoding word, VAR linkage, DECL_TAG component_idx

    @property
    def type_id(self) -> int:
        return self.size_or_type


def _header(reader: _Reader, what: str) -> tuple[int, tuple[int, ...]]:
    """(header length, the four u32 offsets and lengths after it) of a .BTF or .BTF.ext
    header (struct btf_header / btf_ext_header: magic, version 1, flags, hdr_len)."""
    magic, version, _flags, hdr_len = reader.unpack("HBBI", 0)
    if magic != BTF_MAGIC:
        raise BtfError(f"{what}: bad magic 0x{magic:04x} (expected 0x{BTF_MAGIC:04x})")
    if version != 1:
        raise BtfError(f"{what}: unsupported version {version}")
    return hdr_len, reader.unpack("IIII", 8)


class Btf:
    """The type graph of a .BTF section."""

    def __init__(self, data: bytes, what: str = ".BTF"):
        reader = _Reader(data, what)
        hdr_len, (type_off, type_len, str_off, str_len) = _header(reader, what)
        self.str_start = hdr_len + str_off
        self.str_end = self.str_start + str_len
        if self.str_end > len(data) or hdr_len + type_off + type_len > len(data):
            raise BtfError(f"{what}: sections extend past the end ({len(data)} bytes)")
        self._reader = reader
        self.types: list[BtfType] = [BtfType(0, BtfKind.UNKN, "void", 0, 0, False)]
        pos, end = hdr_len + type_off, hdr_len + type_off + type_len
        while pos < end:
            pos = self._parse_type(pos)
        if pos != end:
            raise BtfError(f"{what}: type section overruns its length at 0x{pos:x}")
        for t in self.types:
            for ref in self._refs(t):
                if not 0 <= ref < len(self.types):
                    raise BtfError(f"{what}: type [{t.id}] refers to missing type {ref}")

    def string(self, off: int) -> str:
        return self._reader.string(self.str_start, self.str_end, off)

    def _parse_type(self, pos: int) -> int:
        name_off, info, size_or_type = self._reader.unpack("III", pos)
        kind_value = (info >> 24) & 0x1F
        try:
            kind = BtfKind(kind_value)
        except ValueError:
            raise BtfError(f"{self._reader.what}: bad BTF kind {kind_value} at 0x{pos:x}") from None
        if kind is BtfKind.UNKN:
            raise BtfError(f"{self._reader.what}: bad BTF kind 0 at 0x{pos:x}")
        vlen = info & 0xFFFF
        t = BtfType(len(self.types), kind, self.string(name_off), size_or_type, vlen,
                    bool(info >> 31))
        pos += 12
        fixed, per = _EXTRA.get(kind, (0, 0))
        if kind in (BtfKind.INT, BtfKind.VAR, BtfKind.DECL_TAG):
            (t.extra,) = self._reader.unpack("I" if kind is not BtfKind.DECL_TAG else "i", pos)
        elif kind is BtfKind.ARRAY:
            t.array = self._reader.unpack("III", pos)
        for i in range(vlen if per else 0):
            at = pos + fixed + i * per
            if kind in (BtfKind.STRUCT, BtfKind.UNION):
                n, typ, off = self._reader.unpack("III", at)
                t.members.append(Member(self.string(n), typ, off))
            elif kind is BtfKind.ENUM:
                n, val = self._reader.unpack("Ii", at)
                t.members.append(Member(self.string(n), 0, val))
            elif kind is BtfKind.ENUM64:
                n, lo, hi = self._reader.unpack("III", at)
                t.members.append(Member(self.string(n), 0, lo | (hi << 32)))
            elif kind is BtfKind.FUNC_PROTO:
                n, typ = self._reader.unpack("II", at)
                t.members.append(Member(self.string(n), typ, 0))
            elif kind is BtfKind.DATASEC:
                typ, off, size = self._reader.unpack("III", at)
                t.members.append(Member("", typ, off, size))
        self.types.append(t)
        return pos + fixed + per * (vlen if per else 0)

    @staticmethod
    def _refs(t: BtfType) -> list[int]:
        if t.kind in (BtfKind.PTR, BtfKind.FUNC, BtfKind.VAR, BtfKind.DECL_TAG) + _MODIFIERS:
            return [t.size_or_type]
        if t.kind is BtfKind.ARRAY and t.array:
            return [t.array[0], t.array[1]]
        if t.kind in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.DATASEC, BtfKind.FUNC_PROTO):
            return [m.type_id for m in t.members]
        return []

    def __getitem__(self, type_id: int) -> BtfType:
        if not 0 <= type_id < len(self.types):
            raise BtfError(f"{self._reader.what}: no type with id {type_id}")
        return self.types[type_id]

    def skip_modifiers(self, type_id: int) -> BtfType:
        t = self[type_id]
        for _ in range(64):
            if t.kind not in _MODIFIERS:
                return t
            t = self[t.size_or_type]
        raise BtfError(f"{self._reader.what}: modifier loop at type {type_id}")

    def resolve_size(self, type_id: int, depth: int = 0) -> int:
        """Size in bytes of a type, following typedefs and modifiers."""
        if depth > 64:
            raise BtfError(f"{self._reader.what}: type loop at {type_id}")
        t = self.skip_modifiers(type_id)
        if t.kind in (BtfKind.INT, BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM,
                      BtfKind.ENUM64, BtfKind.FLOAT, BtfKind.DATASEC):
            return t.size_or_type
        if t.kind is BtfKind.PTR:
            return 8
        if t.kind is BtfKind.ARRAY and t.array:
            return t.array[2] * self.resolve_size(t.array[0], depth + 1)
        if t.kind is BtfKind.VAR:
            return self.resolve_size(t.size_or_type, depth + 1)
        raise BtfError(f"{self._reader.what}: type [{t.id}] {t.kind.name} has no size")

    def find(self, kind: BtfKind, name: str) -> BtfType | None:
        for t in self.types:
            if t.kind is kind and t.name == name:
                return t
        return None


@dataclass(frozen=True)
class LineInfo:
    insn_off: int  # byte offset within the section
    file: str
    line_text: str
    line: int
    column: int


@dataclass(frozen=True)
class FuncInfo:
    insn_off: int
    type_id: int


@dataclass
class BtfExt:
    """Per-section func info and line info from .BTF.ext."""

    func_info: dict[str, list[FuncInfo]]
    line_info: dict[str, list[LineInfo]]


def parse_btf_ext(data: bytes, btf: Btf, what: str = ".BTF.ext") -> BtfExt:
    reader = _Reader(data, what)
    hdr_len, (func_off, func_len, line_off, line_len) = _header(reader, what)
    funcs = _parse_ext_records(reader, btf, hdr_len + func_off, func_len, 8, "func")
    lines = _parse_ext_records(reader, btf, hdr_len + line_off, line_len, 16, "line")
    func_info = {sec: [FuncInfo(*r[:2]) for r in recs] for sec, recs in funcs.items()}
    line_info = {}
    for sec, recs in lines.items():
        line_info[sec] = [
            LineInfo(off, btf.string(file_off), btf.string(text_off), col_line >> 10,
                     col_line & 0x3FF)
            for off, file_off, text_off, col_line in recs
        ]
    return BtfExt(func_info, line_info)


def _parse_ext_records(reader: _Reader, btf: Btf, start: int, length: int, min_rec: int,
                       what: str) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    if length == 0:
        return out
    end = start + length
    if end > len(reader.data):
        raise BtfError(f"{reader.what}: {what} info extends past the end")
    (rec_size,) = reader.unpack("I", start)
    if rec_size < min_rec:
        raise BtfError(f"{reader.what}: {what} info record size {rec_size} < {min_rec}")
    pos = start + 4
    fmt = "II" if min_rec == 8 else "IIII"
    while pos < end:
        sec_off, count = reader.unpack("II", pos)
        pos += 8
        if pos + count * rec_size > end:
            raise BtfError(f"{reader.what}: {what} info for {count} records overruns at 0x{pos:x}")
        sec = btf.string(sec_off)
        out[sec] = [reader.unpack(fmt, pos + i * rec_size) for i in range(count)]
        pos += count * rec_size
    return out
