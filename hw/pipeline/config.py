"""The pipeline configuration: frozen dataclasses, the JSON document, and its validation.

The document (``"format": "xdp-offload-pipeline", "version": 1``) is what the mapper writes
and the model, the image writer and the RTL flow read; docs/pipeline.md ("The configuration
document") specifies every key. ``load_config`` parses and validates it in one pass and
raises one ``ConfigError`` line naming the key and the problem:
``stages[0].ops[2].op: unknown op 'foo' (expected one of: nop, mov, ...)``.
``dump_config`` gives the document back (``load_config(dump_config(c)) == c``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ebpf.jsonfile import read_json
from hw.pipeline import ops as O
from hw.pipeline.errors import ConfigError, PipelineError
from hw.pipeline.profile import PIPE_DEFAULTS as _D
from hw.pipeline.profile import profile_fields

if TYPE_CHECKING:
    from hw.targets import PipelineTarget

FORMAT = "xdp-offload-pipeline"
VERSION = 1
TABLE_KINDS = ("exact", "ternary", "lpm", "direct")
MAP_TYPES = {  # map type -> table kinds that can hold it
    "hash": ("exact",), "lru_hash": ("exact",), "percpu_hash": ("exact",),
    "lru_percpu_hash": ("exact",), "array": ("direct",), "percpu_array": ("direct",),
    "lpm_trie": ("lpm",),
}
PERCPU_TYPES = frozenset({"percpu_hash", "lru_percpu_hash", "percpu_array"})


@dataclass(frozen=True, kw_only=True)
class TargetParams:
    """The target a configuration was made for. Defaults: hw/targets/pipe.toml (``_D``)."""

    name: str = _D["name"]
    clock_mhz: float = _D["clock_mhz"]
    bus_bits: int = _D["bus_bits"]
    window_bytes: int = _D["window_bytes"]
    window_headroom: int = _D["window_headroom"]
    variable_offset: bool = _D["variable_offset"]
    num_containers: int = _D["num_containers"]
    predicate_bits: int = _D["predicate_bits"]
    num_stages: int = _D["num_stages"]
    stage_cycles: int = _D["stage_cycles"]
    parser_cycles: int = _D["parser_cycles"]
    deparser_cycles: int = _D["deparser_cycles"]
    recirc_cycles: int = _D["recirc_cycles"]
    max_passes: int = _D["max_passes"]
    gateways: int = _D["gateways"]
    tables: int = _D["tables"]
    stateful_alus: int = _D["stateful_alus"]
    checksum_units: int = _D["checksum_units"]
    hash_units: int = _D["hash_units"]
    random_units: int = _D["random_units"]
    timestamp_units: int = _D["timestamp_units"]
    key_bits: int = _D["key_bits"]
    key_slices: int = _D["key_slices"]
    action_containers: int = _D["action_containers"]
    window_loads: int = _D["window_loads"]
    window_stores: int = _D["window_stores"]
    punt_containers: int = _D["punt_containers"]
    sram_blocks: int = _D["sram_blocks"]
    sram_entries: int = _D["sram_entries"]
    sram_width_bits: int = _D["sram_width_bits"]
    tcam_blocks: int = _D["tcam_blocks"]
    tcam_entries: int = _D["tcam_entries"]
    tcam_width_bits: int = _D["tcam_width_bits"]
    mul_max_bits: int = _D["mul_max_bits"]
    div: str = _D["div"]
    frame_headroom: int = _D["frame_headroom"]
    frame_end: int = _D["frame_end"]
    min_packet_bytes: int = _D["min_packet_bytes"]

    @property
    def clock_khz(self) -> int:
        return round(self.clock_mhz * 1000)

    @property
    def window_beats(self) -> int:
        """Bus beats (cycles) that carry the window: ceil(window_bytes * 8 / bus_bits)."""
        return -(-self.window_bytes * 8 // self.bus_bits)

    def get_extern_units(self, kind: str) -> int:
        return int(getattr(self, f"{kind}_units"))


def target_params(target: PipelineTarget) -> TargetParams:
    """The configuration's ``target`` section for a pipeline profile (``hw.pipeline.profile``)."""
    return TargetParams(**profile_fields(target))


@dataclass(frozen=True)
class Slice:
    """Bytes [offset, offset+size) of a container, little-endian: part of a table key."""

    container: int
    offset: int = 0
    size: int = 8


@dataclass(frozen=True)
class Buffer:
    """An extern's input bytes: ``window`` at ``offset`` or ``containers`` from ``container``."""

    kind: str
    length: int
    offset: int = 0
    container: int = 0


@dataclass(frozen=True, kw_only=True)
class Gateway:
    dst: int
    cmp: str
    a: int
    b: int | None = None
    imm: int = 0
    width: int = 64
    a_offset: int = 0
    a_size: int = 8
    invert: bool = False
    combine: str = "and"
    pred_in: int = 0
    pred_in_neg: bool = False


@dataclass(frozen=True, kw_only=True)
class Op:
    slot: int
    op: str
    width: int = 64
    a: int = 0
    b: int | None = None
    imm: int = 0
    size: int = 8
    offset: int = 0  # window ops: signed 16-bit packet offset; ext / ins: byte 0-7
    signed: bool = False
    sel: int = 0
    pred: int = 0
    pred_neg: bool = False


@dataclass(frozen=True, kw_only=True)
class Entry:
    """A table entry at address ``index``: key bytes, mask (ternary), prefix (lpm), data."""

    index: int
    key: bytes = b""
    mask: bytes | None = None
    prefix_len: int | None = None
    data: bytes = b""


@dataclass(frozen=True, kw_only=True)
class Table:
    slot: int
    kind: str
    size: int
    key: tuple[Slice, ...] = ()
    action: tuple[int, ...] = ()
    hit: int = 0
    enable: int = 0
    enable_neg: bool = False
    name: str = ""
    entries: tuple[Entry, ...] = ()

    @property
    def key_bytes(self) -> int:
        return sum(s.size for s in self.key)

    @property
    def data_bytes(self) -> int:
        return 8 * len(self.action)

    def get_mask(self, entry: Entry) -> bytes:
        """The entry's match mask over the key bytes (exact: all ones)."""
        if self.kind == "ternary":
            return entry.mask or bytes(self.key_bytes)
        if self.kind == "lpm":
            return prefix_mask(entry.prefix_len or 0, self.key_bytes)
        return b"\xff" * self.key_bytes


def prefix_mask(prefix_len: int, nbytes: int) -> bytes:
    """The first ``prefix_len`` bits of ``nbytes`` bytes, most significant bit of byte 0 first."""
    out = bytearray(nbytes)
    for i in range(nbytes):
        bits = min(8, max(0, prefix_len - 8 * i))
        out[i] = (0xFF << (8 - bits)) & 0xFF
    return bytes(out)


@dataclass(frozen=True, kw_only=True)
class Stateful:
    unit: int
    op: str
    words: int
    size: int = 8
    offset: int = 0
    index_table: int | None = 0  # a table slot of this stage, or None: index_container
    index_container: int = 0
    base: int = 0
    stride: int = 1
    b: int | None = None
    imm: int = 0
    cmp: int = 0
    fetch: int | None = None
    pred: int = 0
    pred_neg: bool = False
    name: str = ""
    init: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Extern:
    unit: int
    kind: str
    dst: int
    pred: int = 0
    pred_neg: bool = False
    seed: int = 0
    seed_container: int | None = None
    x: Buffer | None = None
    y: Buffer | None = None
    mode: str = "fold16"


@dataclass(frozen=True, kw_only=True)
class Stage:
    gateways: tuple[Gateway, ...] = ()
    tables: tuple[Table, ...] = ()
    ops: tuple[Op, ...] = ()
    stateful: tuple[Stateful, ...] = ()
    externs: tuple[Extern, ...] = ()

    def get_table(self, slot: int) -> Table | None:
        return next((t for t in self.tables if t.slot == slot), None)

    def get_stateful(self, unit: int) -> Stateful | None:
        return next((s for s in self.stateful if s.unit == unit), None)


@dataclass(frozen=True)
class Extract:
    """Parser: container = little-endian ``size`` bytes of the window at ``offset``."""

    container: int
    offset: int
    size: int


@dataclass(frozen=True, kw_only=True)
class RegisterSlice:
    """Part of a map's values in one stateful unit's registers (docs/pipeline.md, section 9).

    Value words [word_offset, word_offset + words) of the entries [first_entry, first_entry +
    entries) live in unit ``unit`` of logical stage ``stage``: word w of entry i (the table
    address, or the array index) at ``REG[base + i * stride + (w - word_offset)]``, the
    address a stateful unit with the same base and stride computes from index i.
    """

    stage: int
    unit: int
    base: int = 0
    stride: int = 1
    word_offset: int = 0
    words: int  # the document's default: the value's words from word_offset on
    first_entry: int = 0
    entries: int  # the document's default: the entries from first_entry on

    def has(self, index: int, word: int) -> bool:
        """Whether word ``word`` of entry ``index`` lives in this slice."""
        return (self.first_entry <= index < self.first_entry + self.entries
                and self.word_offset <= word < self.word_offset + self.words)

    def get_address(self, index: int, word: int) -> int:
        """The register address of word ``word`` of entry ``index`` (which must be here)."""
        return self.base + index * self.stride + word - self.word_offset


@dataclass(frozen=True, kw_only=True)
class MapBinding:
    """Where a map's contents live: tables (copies) and, when written, stateful registers.

    ``registers`` splits the values over stateful units by value word (field) and by entry
    range; the slices of a map cover every (entry, word) exactly once (validate.py).
    """

    name: str
    type: str
    key_size: int
    value_size: int
    max_entries: int
    tables: tuple[tuple[int, int], ...] = ()  # (logical stage, table slot)
    registers: tuple[RegisterSlice, ...] = ()
    cpu: int = 0
    num_cpus: int = 1

    @property
    def value_words(self) -> int:
        return -(-self.value_size // 8)

    def get_register(self, index: int, word: int) -> tuple[int, int, int]:
        """(stage, unit, address) of value word ``word`` of entry ``index``.

        The control plane's view of a register-held value: reading or writing entry
        ``index`` is one register access per value word, each at the address returned here.
        """
        for r in self.registers:
            if r.has(index, word):
                return r.stage, r.unit, r.get_address(index, word)
        raise PipelineError(f"map '{self.name}': word {word} of entry {index} is in no "
                            f"register slice")


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    target: TargetParams = field(default_factory=TargetParams)
    program: str = ""
    containers: tuple[tuple[int, str], ...] = ()  # (index, name)
    predicates: tuple[tuple[int, str], ...] = ()
    extracts: tuple[Extract, ...] = ()
    stages: tuple[Stage, ...] = ()
    punt_containers: tuple[int, ...] = ()
    default_verdict: int = 0  # the verdict field's value at parse (0 = XDP_ABORTED)
    maps: tuple[MapBinding, ...] = ()

    @property
    def num_passes(self) -> int:
        """Passes through the physical stages: ceil(logical stages / num_stages), at least 1."""
        return max(1, -(-len(self.stages) // self.target.num_stages))

    def get_map(self, name: str) -> MapBinding | None:
        return next((m for m in self.maps if m.name == name), None)


# --- reading --------------------------------------------------------------------------------

def _fail(path: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {problem}")


def _obj(v: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
         ) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise _fail(path, f"expected an object, got {type(v).__name__}")
    for k in v:
        if k not in allowed:
            raise _fail(f"{path}.{k}" if path else k,
                        f"unknown key (expected one of: {', '.join(allowed)})")
    for k in required:
        if k not in v:
            raise _fail(f"{path}.{k}" if path else k, "missing")
    return v


def _list(v: Any, path: str) -> list[Any]:
    if not isinstance(v, list):
        raise _fail(path, f"expected a list, got {type(v).__name__}")
    return v


def _int(d: Mapping[str, Any], key: str, path: str, default: Any = None, lo: int = 0,
         hi: int = (1 << 64) - 1) -> Any:
    p = f"{path}.{key}" if path else key
    if key not in d:
        if default is None:
            raise _fail(p, "missing")
        return default
    v = d[key]
    if isinstance(v, str) and v.lower().startswith(("0x", "-0x")):
        try:
            v = int(v, 16)
        except ValueError:
            raise _fail(p, f"expected an integer, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail(p, f"expected an integer, got {v!r}")
    if not lo <= v <= hi:
        raise _fail(p, f"{v} is out of range [{lo}, {hi}]")
    return v


def _imm(d: Mapping[str, Any], key: str, path: str) -> int:
    """A 64-bit immediate: -2**63 .. 2**64-1, stored as its unsigned 64-bit pattern."""
    return _int(d, key, path, 0, -(1 << 63)) & O.M64


def _bool(d: Mapping[str, Any], key: str, path: str, default: bool = False) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise _fail(f"{path}.{key}", f"expected true or false, got {v!r}")
    return v


def _choice(d: Mapping[str, Any], key: str, path: str, choices: tuple[str, ...] | Any,
            default: str | None = None, what: str = "value") -> str:
    p = f"{path}.{key}" if path else key
    if key not in d and default is None:
        raise _fail(p, "missing")
    v = d.get(key, default)
    if v not in choices:
        raise _fail(p, f"unknown {what} {v!r} (expected one of: {', '.join(choices)})")
    return v


def _hex(d: Mapping[str, Any], key: str, path: str, default: bytes | None = None) -> bytes:
    p = f"{path}.{key}"
    if key not in d:
        if default is None:
            raise _fail(p, "missing")
        return default
    v = d[key]
    try:
        if not isinstance(v, str):
            raise ValueError
        return bytes.fromhex(v)
    except ValueError:
        raise _fail(p, f"expected a hex string, got {v!r}") from None


def _operand_b(d: Mapping[str, Any], path: str, required: bool) -> tuple[int | None, int]:
    if "b" in d and "imm" in d:
        raise _fail(f"{path}.b", "give either \"b\" (a container) or \"imm\", not both")
    if "b" in d:
        return _int(d, "b", path, hi=63), 0
    if required and "imm" not in d:
        raise _fail(f"{path}.imm", "missing (operand B needs \"b\" or \"imm\")")
    return None, _imm(d, "imm", path)


def _read_target(v: Any) -> TargetParams:
    fields = {f.name: f for f in dataclasses.fields(TargetParams)}
    d = _obj(v, "target", tuple(fields))
    kw: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in d:
            continue
        if f.type in ("str",):
            if not isinstance(d[name], str):
                raise _fail(f"target.{name}", f"expected a string, got {d[name]!r}")
            kw[name] = d[name]
        elif f.type == "bool":
            kw[name] = _bool(d, name, "target")
        elif f.type == "float":
            val = d[name]
            if isinstance(val, bool) or not isinstance(val, (int, float)) or val <= 0:
                raise _fail(f"target.{name}", f"expected a positive number, got {val!r}")
            kw[name] = float(val)
        else:
            kw[name] = _int(d, name, "target", lo=0, hi=1 << 32)
    return TargetParams(**kw)


def _read_gateway(v: Any, p: str) -> Gateway:
    d = _obj(v, p, ("dst", "cmp", "a", "b", "imm", "width", "a_offset", "a_size", "invert",
                    "combine", "pred_in", "pred_in_neg"), ("dst", "cmp", "a"))
    cmp = _choice(d, "cmp", p, O.GATEWAY_BY_NAME, what="comparison")
    b, imm = _operand_b(d, p, required=cmp != "pred")
    return Gateway(dst=_int(d, "dst", p, hi=63), cmp=cmp, a=_int(d, "a", p, hi=63), b=b,
                   imm=imm, width=_int(d, "width", p, 64), a_offset=_int(d, "a_offset", p, 0),
                   a_size=_int(d, "a_size", p, 8), invert=_bool(d, "invert", p),
                   combine=_choice(d, "combine", p, O.COMBINES, "and"),
                   pred_in=_int(d, "pred_in", p, 0, hi=63),
                   pred_in_neg=_bool(d, "pred_in_neg", p))


def _read_op(v: Any, p: str) -> Op:
    d = _obj(v, p, ("slot", "op", "width", "a", "b", "imm", "size", "offset", "signed", "sel",
                    "pred", "pred_neg"), ("slot", "op"))
    name = _choice(d, "op", p, O.VLIW_BY_NAME, what="op")
    spec = O.VLIW_BY_NAME[name]
    b, imm = _operand_b(d, p, required=spec.reads_b)
    return Op(slot=_int(d, "slot", p, hi=63), op=name, width=_int(d, "width", p, 64),
              a=_int(d, "a", p, 0, hi=63), b=b, imm=imm, size=_int(d, "size", p, 8),
              offset=_int(d, "offset", p, 0, lo=-(1 << 63)),  # ranges per op: validate.py
              signed=_bool(d, "signed", p),
              sel=_int(d, "sel", p, 0, hi=63), pred=_int(d, "pred", p, 0, hi=63),
              pred_neg=_bool(d, "pred_neg", p))


def _read_entry(v: Any, p: str, kind: str) -> Entry:
    d = _obj(v, p, ("index", "key", "mask", "prefix_len", "data"), ("index",))
    return Entry(index=_int(d, "index", p),
                 key=_hex(d, "key", p, b"" if kind == "direct" else None),
                 mask=_hex(d, "mask", p) if kind == "ternary" else None,
                 prefix_len=_int(d, "prefix_len", p) if kind == "lpm" else None,
                 data=_hex(d, "data", p, b""))


def _read_table(v: Any, p: str) -> Table:
    d = _obj(v, p, ("slot", "kind", "size", "key", "action", "hit", "enable", "enable_neg",
                    "name", "entries"), ("slot", "kind", "size"))
    kind = _choice(d, "kind", p, TABLE_KINDS, what="table kind")
    key = []
    for i, s in enumerate(_list(d.get("key", []), f"{p}.key")):
        sp = f"{p}.key[{i}]"
        sd = _obj(s, sp, ("container", "offset", "size"), ("container",))
        key.append(Slice(_int(sd, "container", sp, hi=63), _int(sd, "offset", sp, 0),
                         _int(sd, "size", sp, 8)))
    action = tuple(_int({"c": c}, "c", f"{p}.action[{i}]", hi=63)
                   for i, c in enumerate(_list(d.get("action", []), f"{p}.action")))
    entries = []
    for i, e in enumerate(_list(d.get("entries", []), f"{p}.entries")):
        entry = _read_entry(e, f"{p}.entries[{i}]", kind)
        if len(entry.data) < 8 * len(action):  # action data is zero-padded to its width
            entry = dataclasses.replace(entry, data=entry.data.ljust(8 * len(action), b"\0"))
        entries.append(entry)
    return Table(slot=_int(d, "slot", p, hi=7), kind=kind, size=_int(d, "size", p, hi=65535),
                 key=tuple(key), action=action, hit=_int(d, "hit", p, 0, hi=63),
                 enable=_int(d, "enable", p, 0, hi=63), enable_neg=_bool(d, "enable_neg", p),
                 name=str(d.get("name", "")), entries=tuple(entries))


def _read_stateful(v: Any, p: str) -> Stateful:
    d = _obj(v, p, ("unit", "op", "words", "size", "offset", "index", "base", "stride", "b",
                    "imm", "cmp", "fetch", "pred", "pred_neg", "name", "init"),
             ("unit", "op", "words", "index"))
    idx = _obj(d["index"], f"{p}.index", ("table", "container"))
    if len(idx) != 1:
        raise _fail(f"{p}.index", "expected {\"table\": slot} or {\"container\": index}")
    b, imm = _operand_b(d, p, required=d.get("op") not in ("read",))
    init = []
    for i, pair in enumerate(_list(d.get("init", []), f"{p}.init")):
        ip = f"{p}.init[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise _fail(ip, f"expected [address, value], got {pair!r}")
        init.append((_int({"a": pair[0]}, "a", ip), _imm({"v": pair[1]}, "v", ip)))
    fetch = d.get("fetch")
    return Stateful(
        unit=_int(d, "unit", p, hi=7), op=_choice(d, "op", p, O.STATEFUL_BY_NAME, what="op"),
        words=_int(d, "words", p, lo=1, hi=1 << 17), size=_int(d, "size", p, 8),
        offset=_int(d, "offset", p, 0, hi=7),
        index_table=_int(idx, "table", f"{p}.index", hi=7) if "table" in idx else None,
        index_container=_int(idx, "container", f"{p}.index", hi=63) if "container" in idx
        else 0,
        base=_int(d, "base", p, 0, hi=0xFFFF), stride=_int(d, "stride", p, 1, lo=1, hi=255),
        b=b, imm=imm, cmp=_int(d, "cmp", p, 0, hi=63),
        fetch=None if fetch is None else _int(d, "fetch", p, hi=63),
        pred=_int(d, "pred", p, 0, hi=63), pred_neg=_bool(d, "pred_neg", p),
        name=str(d.get("name", "")), init=tuple(init))


def _read_buffer(v: Any, p: str) -> Buffer | None:
    if v is None:
        return None
    d = _obj(v, p, ("window", "containers", "length"), ("length",))
    if ("window" in d) == ("containers" in d):
        raise _fail(p, "expected exactly one of \"window\" (offset) or \"containers\" (first)")
    length = _int(d, "length", p, hi=64)
    if "window" in d:
        return Buffer("window", length, offset=_int(d, "window", p, hi=0xFFFF))
    return Buffer("containers", length, container=_int(d, "containers", p, hi=63))


def _read_extern(v: Any, p: str) -> Extern:
    d = _obj(v, p, ("unit", "kind", "dst", "pred", "pred_neg", "seed", "seed_container", "x",
                    "y", "mode"), ("unit", "kind", "dst"))
    sc = d.get("seed_container")
    return Extern(unit=_int(d, "unit", p, hi=15),
                  kind=_choice(d, "kind", p, O.EXTERN_BY_NAME, what="extern kind"),
                  dst=_int(d, "dst", p, hi=63), pred=_int(d, "pred", p, 0, hi=63),
                  pred_neg=_bool(d, "pred_neg", p), seed=_int(d, "seed", p, 0, hi=O.M32),
                  seed_container=None if sc is None else _int(d, "seed_container", p, hi=63),
                  x=_read_buffer(d.get("x"), f"{p}.x"), y=_read_buffer(d.get("y"), f"{p}.y"),
                  mode=_choice(d, "mode", p, O.CSUM_MODES, "fold16", what="checksum mode"))


def _read_stage(v: Any, p: str) -> Stage:
    d = _obj(v, p, ("gateways", "tables", "ops", "stateful", "externs"))

    def items(key: str, fn: Any) -> tuple[Any, ...]:
        return tuple(fn(x, f"{p}.{key}[{i}]")
                     for i, x in enumerate(_list(d.get(key, []), f"{p}.{key}")))

    return Stage(gateways=items("gateways", _read_gateway), tables=items("tables", _read_table),
                 ops=items("ops", _read_op), stateful=items("stateful", _read_stateful),
                 externs=items("externs", _read_extern))


def _read_names(v: Any, p: str) -> tuple[tuple[int, str], ...]:
    out = []
    for i, x in enumerate(_list(v, p)):
        d = _obj(x, f"{p}[{i}]", ("index", "name"), ("index", "name"))
        out.append((_int(d, "index", f"{p}[{i}]", hi=63), str(d["name"])))
    return tuple(out)


def _read_map(name: str, v: Any, p: str) -> MapBinding:
    d = _obj(v, p, ("type", "key_size", "value_size", "max_entries", "tables", "registers",
                    "cpu", "num_cpus"), ("type", "key_size", "value_size", "max_entries"))
    tables = []
    for i, t in enumerate(_list(d.get("tables", []), f"{p}.tables")):
        if not isinstance(t, list) or len(t) != 2 or not all(isinstance(x, int) for x in t):
            raise _fail(f"{p}.tables[{i}]", f"expected [stage, slot], got {t!r}")
        tables.append((t[0], t[1]))
    value_size = _int(d, "value_size", p, lo=1)
    max_entries = _int(d, "max_entries", p, lo=1)
    raw = d.get("registers")
    if raw is None:
        raw = []
    elif isinstance(raw, Mapping):  # the one-slice shorthand: every word of every entry
        raw = [raw]
    regs = []
    for i, r in enumerate(_list(raw, f"{p}.registers")):
        rp = f"{p}.registers[{i}]"
        r = _obj(r, rp, ("stage", "unit", "base", "stride", "word_offset", "words",
                         "first_entry", "entries"), ("stage", "unit"))
        word_offset = _int(r, "word_offset", rp, 0)
        first_entry = _int(r, "first_entry", rp, 0)
        regs.append(RegisterSlice(
            stage=_int(r, "stage", rp), unit=_int(r, "unit", rp), base=_int(r, "base", rp, 0),
            stride=_int(r, "stride", rp, 1, lo=1), word_offset=word_offset,
            words=_int(r, "words", rp, max(1, -(-value_size // 8) - word_offset), lo=1),
            first_entry=first_entry,
            entries=_int(r, "entries", rp, max(1, max_entries - first_entry), lo=1)))
    return MapBinding(name=name, type=_choice(d, "type", p, MAP_TYPES, what="map type"),
                      key_size=_int(d, "key_size", p, lo=1), value_size=value_size,
                      max_entries=max_entries, tables=tuple(tables), registers=tuple(regs),
                      cpu=_int(d, "cpu", p, 0), num_cpus=_int(d, "num_cpus", p, 1, lo=1))


def parse_config(doc: Mapping[str, Any]) -> PipelineConfig:
    """The document as dataclasses, field-level checks only (``load_config`` also validates)."""
    d = _obj(doc, "", ("format", "version", "program", "target", "containers", "predicates",
                       "parser", "stages", "deparser", "maps"), ("format", "version"))
    if d["format"] != FORMAT:
        raise _fail("format", f"expected {FORMAT!r}, got {d['format']!r}")
    if d["version"] != VERSION:
        raise _fail("version", f"unsupported version {d['version']!r} (this reader: {VERSION})")
    parser = _obj(d.get("parser", {}), "parser", ("extracts",))
    extracts = []
    for i, x in enumerate(_list(parser.get("extracts", []), "parser.extracts")):
        p = f"parser.extracts[{i}]"
        e = _obj(x, p, ("container", "offset", "size"), ("container", "offset", "size"))
        extracts.append(Extract(_int(e, "container", p, hi=63),
                                _int(e, "offset", p, hi=0xFFFF), _int(e, "size", p)))
    dep = _obj(d.get("deparser", {}), "deparser", ("default_verdict", "punt_containers"))
    punt = tuple(_int({"c": c}, "c", f"deparser.punt_containers[{i}]", hi=63)
                 for i, c in enumerate(_list(dep.get("punt_containers", []),
                                             "deparser.punt_containers")))
    raw_maps = d.get("maps", {})
    maps = _obj(raw_maps, "maps", tuple(raw_maps) if isinstance(raw_maps, Mapping) else ())
    return PipelineConfig(
        target=_read_target(d.get("target", {})), program=str(d.get("program", "")),
        containers=_read_names(d.get("containers", []), "containers"),
        predicates=_read_names(d.get("predicates", []), "predicates"),
        extracts=tuple(extracts),
        stages=tuple(_read_stage(s, f"stages[{i}]")
                     for i, s in enumerate(_list(d.get("stages", []), "stages"))),
        punt_containers=punt, default_verdict=_int(dep, "default_verdict", "deparser", 0,
                                                    hi=O.M32),
        maps=tuple(_read_map(n, m, f"maps.{n}") for n, m in maps.items()))


def load_config(src: PipelineConfig | Mapping[str, Any] | str | os.PathLike[str]
                ) -> PipelineConfig:
    """Parse and validate a configuration: a dict, a JSON file path, or a PipelineConfig."""
    from hw.pipeline.validate import validate
    if isinstance(src, PipelineConfig):
        validate(src)
        return src
    where = ""
    if not isinstance(src, Mapping):
        where = os.fspath(src)
        src = read_json(where, ConfigError)
    try:
        config = parse_config(src)
        validate(config)
    except ConfigError as exc:
        if where:
            raise ConfigError(f"{where}: {exc}") from exc
        raise
    return config


# --- writing --------------------------------------------------------------------------------

def _b_operand(b: int | None, imm: int) -> dict[str, int]:
    return {"b": b} if b is not None else {"imm": imm}


def _dump_table(t: Table) -> dict[str, Any]:
    entries = []
    for e in t.entries:
        ed: dict[str, Any] = {"index": e.index}
        if t.kind != "direct":
            ed["key"] = e.key.hex()
        if t.kind == "ternary":
            ed["mask"] = (e.mask or b"").hex()
        if t.kind == "lpm":
            ed["prefix_len"] = e.prefix_len
        ed["data"] = e.data.hex()
        entries.append(ed)
    return {"slot": t.slot, "name": t.name, "kind": t.kind, "size": t.size,
            "key": [dataclasses.asdict(s) for s in t.key], "action": list(t.action),
            "hit": t.hit, "enable": t.enable, "enable_neg": t.enable_neg, "entries": entries}


def _dump_buffer(b: Buffer | None) -> dict[str, int] | None:
    if b is None:
        return None
    if b.kind == "window":
        return {"window": b.offset, "length": b.length}
    return {"containers": b.container, "length": b.length}


def _dump_stage(s: Stage) -> dict[str, Any]:
    gws = [{"dst": g.dst, "cmp": g.cmp, "a": g.a, **_b_operand(g.b, g.imm), "width": g.width,
            "a_offset": g.a_offset, "a_size": g.a_size, "invert": g.invert,
            "combine": g.combine, "pred_in": g.pred_in, "pred_in_neg": g.pred_in_neg}
           for g in s.gateways]
    ops = [{"slot": o.slot, "op": o.op, "width": o.width, "a": o.a, **_b_operand(o.b, o.imm),
            "size": o.size, "offset": o.offset, "signed": o.signed, "sel": o.sel,
            "pred": o.pred, "pred_neg": o.pred_neg} for o in s.ops]
    sfs = [{"unit": u.unit, "name": u.name, "op": u.op, "words": u.words, "size": u.size,
            "offset": u.offset,
            "index": ({"table": u.index_table} if u.index_table is not None
                      else {"container": u.index_container}),
            "base": u.base, "stride": u.stride, **_b_operand(u.b, u.imm), "cmp": u.cmp,
            "fetch": u.fetch, "pred": u.pred, "pred_neg": u.pred_neg,
            "init": [[a, v] for a, v in u.init]} for u in s.stateful]
    exts = []
    for e in s.externs:
        ed: dict[str, Any] = {"unit": e.unit, "kind": e.kind, "dst": e.dst, "pred": e.pred,
                              "pred_neg": e.pred_neg, "mode": e.mode}
        if e.seed_container is not None:
            ed["seed_container"] = e.seed_container
        else:
            ed["seed"] = e.seed
        for key in ("x", "y"):
            buf = _dump_buffer(getattr(e, key))
            if buf is not None:
                ed[key] = buf
        exts.append(ed)
    return {"gateways": gws, "tables": [_dump_table(t) for t in s.tables], "ops": ops,
            "stateful": sfs, "externs": exts}


def dump_config(config: PipelineConfig) -> dict[str, Any]:
    """The JSON-ready document for ``config`` (integers exact, bytes as hex)."""
    maps = {}
    for m in config.maps:
        md: dict[str, Any] = {"type": m.type, "key_size": m.key_size,
                              "value_size": m.value_size, "max_entries": m.max_entries,
                              "tables": [list(t) for t in m.tables], "cpu": m.cpu,
                              "num_cpus": m.num_cpus}
        if m.registers:
            md["registers"] = [dataclasses.asdict(r) for r in m.registers]
        maps[m.name] = md
    return {
        "format": FORMAT, "version": VERSION, "program": config.program,
        "target": dataclasses.asdict(config.target),
        "containers": [{"index": i, "name": n} for i, n in config.containers],
        "predicates": [{"index": i, "name": n} for i, n in config.predicates],
        "parser": {"extracts": [dataclasses.asdict(e) for e in config.extracts]},
        "stages": [_dump_stage(s) for s in config.stages],
        "deparser": {"default_verdict": config.default_verdict,
                     "punt_containers": list(config.punt_containers)},
        "maps": maps,
    }


def save_config(config: PipelineConfig, path: str | os.PathLike[str]) -> None:
    Path(path).write_text(json.dumps(dump_config(config), indent=1) + "\n")
