"""Word-level memory images for the RTL (``$readmemh``), written and read back.

Every control word's bit fields are declared once here (``LAYOUTS``) and docs/pipeline.md
("Memory images") prints the same tables. One file per memory, one word per line, lowercase
hex, most significant digit first, zero-padded to the word width, preceded by one ``//``
comment line; no ``@address`` lines: word i of the file is address i. The files:

==========================  ===========================  ====================================
file                        depth x width                contents
==========================  ===========================  ====================================
``parser.hex``              num_containers x 32          extract per container
``deparser.hex``            (1 + punt_containers) x 32   default verdict; punt containers
``stLL_gw.hex``             gateways x 128               gateway g of logical stage LL
``stLL_vliw.hex``           64 x 128                     VLIW op for destination slot s
``stLL_tbl.hex``            tables x 256                 table unit configuration
``stLL_sfu.hex``            stateful_alus x 192          stateful unit configuration
``stLL_ext.hex``            extern units x 128           extern unit configuration
``stLL_tT_key.hex``         size x (key_bits + 4)        {valid, key} per entry
``stLL_tT_mask.hex``        size x key_bits              match mask (ternary, lpm)
``stLL_tT_data.hex``        size x 64*action_containers  action data (value bytes)
``stLL_rU.hex``             words x 64                   stateful unit U's registers
``params.vh``                                            ```define PIPE_*`` target parameters
``manifest.json``                                        files, widths, depths; the names
==========================  ===========================  ====================================

``read_memory_images(dir)`` decodes the files (names, the program and map bindings come from
the manifest, which is not loaded by the RTL) and returns ``canonical(config)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw.pipeline import ops as O
from hw.pipeline.config import (
    TABLE_KINDS,
    Buffer,
    Entry,
    Extern,
    Extract,
    Gateway,
    Op,
    PipelineConfig,
    Slice,
    Stage,
    Stateful,
    Table,
    TargetParams,
    dump_config,
    load_config,
    parse_config,
)
from hw.pipeline.errors import ConfigError

MANIFEST_FORMAT = "xdp-offload-pipeline-images"
VLIW_SLOTS = 64


@dataclass(frozen=True)
class Field:
    name: str
    lo: int
    bits: int


@dataclass(frozen=True)
class Layout:
    name: str
    width: int
    fields: tuple[Field, ...]

    def pack(self, values: dict[str, int]) -> int:
        word = 0
        for f in self.fields:
            v = values.get(f.name, 0)
            assert 0 <= v < 1 << f.bits, (self.name, f.name, v)
            word |= v << f.lo
        return word

    def unpack(self, word: int) -> dict[str, int]:
        return {f.name: (word >> f.lo) & ((1 << f.bits) - 1) for f in self.fields}


def _layout(name: str, width: int, *fields: tuple[str, int, int]) -> Layout:
    return Layout(name, width, tuple(Field(*f) for f in fields))


VLIW = _layout("vliw", 128, ("opcode", 0, 6), ("w32", 6, 1), ("signed", 7, 1), ("pred", 8, 6),
               ("pred_neg", 14, 1), ("a", 15, 6), ("b", 21, 6), ("b_imm", 27, 1),
               ("size", 28, 2), ("offset", 30, 16), ("sel", 46, 6), ("imm", 64, 64))
GATEWAY = _layout("gateway", 128, ("valid", 0, 1), ("cmp", 1, 4), ("w32", 5, 1),
                  ("invert", 6, 1), ("combine", 7, 1), ("a", 8, 6), ("a_offset", 14, 3),
                  ("a_size", 17, 2), ("b", 19, 6), ("b_imm", 25, 1), ("pred_in", 26, 6),
                  ("pred_in_neg", 32, 1), ("dst", 33, 6), ("imm", 64, 64))
TABLE = _layout("table", 256, ("valid", 0, 1), ("kind", 1, 2), ("enable", 3, 6),
                ("enable_neg", 9, 1), ("hit", 10, 6), ("size", 16, 16), ("key_bytes", 32, 8),
                *[(f"slice{i}", 40 + 16 * i, 16) for i in range(8)],
                *[(f"action{i}", 168 + 8 * i, 8) for i in range(8)])
SLICE = _layout("slice", 16, ("container", 0, 6), ("offset", 6, 3), ("size_m1", 9, 3),
                ("valid", 15, 1))
ACTION = _layout("action", 8, ("container", 0, 6), ("valid", 7, 1))
STATEFUL = _layout("stateful", 192, ("valid", 0, 1), ("op", 1, 3), ("size", 4, 2),
                   ("offset", 6, 3), ("index_container_sel", 9, 1), ("table", 10, 3),
                   ("index_container", 13, 6), ("base", 19, 16), ("stride", 35, 8),
                   ("b", 43, 6), ("b_imm", 49, 1), ("cmp", 50, 6), ("fetch", 56, 6),
                   ("fetch_en", 62, 1), ("pred_neg", 63, 1), ("pred", 64, 6),
                   ("words", 70, 17), ("imm", 128, 64))
EXTERN = _layout("extern", 128, ("valid", 0, 1), ("kind", 1, 2), ("mode", 3, 1), ("dst", 4, 6),
                 ("pred", 10, 6), ("pred_neg", 16, 1), ("seed_sel", 17, 1),
                 ("seed_container", 18, 6), ("x_kind", 24, 2), ("x_offset", 26, 16),
                 ("x_container", 42, 6), ("x_length", 48, 7), ("y_kind", 55, 2),
                 ("y_offset", 57, 16), ("y_container", 73, 6), ("y_length", 79, 7),
                 ("seed", 96, 32))
PARSER = _layout("parser", 32, ("valid", 0, 1), ("size", 1, 2), ("offset", 3, 16))
DEPARSER = _layout("deparser", 32, ("container", 0, 6), ("valid", 7, 1))
LAYOUTS = (VLIW, GATEWAY, TABLE, SLICE, ACTION, STATEFUL, EXTERN, PARSER, DEPARSER)


# --- canonical form ---------------------------------------------------------------------------

def canonical(config: PipelineConfig) -> PipelineConfig:
    """The form the images preserve: units sorted by slot, nops, zero direct entries and zero
    register words dropped, entries sorted by index."""
    stages = []
    for st in config.stages:
        tables = []
        for t in sorted(st.tables, key=lambda t: t.slot):
            entries = sorted(t.entries, key=lambda e: e.index)
            if t.kind == "direct":
                entries = [e for e in entries if any(e.data)]
            tables.append(dataclasses.replace(t, entries=tuple(entries)))
        stateful = tuple(dataclasses.replace(u, init=tuple(sorted((a, v) for a, v in u.init
                                                                  if v)))
                         for u in sorted(st.stateful, key=lambda u: u.unit))
        stages.append(Stage(gateways=st.gateways, tables=tuple(tables),
                            ops=tuple(sorted((o for o in st.ops if o.op != "nop"),
                                             key=lambda o: o.slot)),
                            stateful=stateful,
                            externs=tuple(sorted(st.externs, key=lambda e: e.unit))))
    return dataclasses.replace(config, stages=tuple(stages),
                               extracts=tuple(sorted(config.extracts,
                                                     key=lambda e: e.container)))


# --- encoding -------------------------------------------------------------------------------

def _b(b: int | None, imm: int) -> dict[str, int]:
    return {"b": b or 0, "b_imm": int(b is None), "imm": imm if b is None else 0}


def encode_op(op: Op) -> int:
    """The 128-bit VLIW word of ``op`` (a nop is the all-zero word)."""
    if op.op == "nop":
        return 0
    return VLIW.pack({"opcode": O.VLIW_BY_NAME[op.op].code, "w32": int(op.width == 32),
                      "signed": int(op.signed), "pred": op.pred, "pred_neg": int(op.pred_neg),
                      "a": op.a, **_b(op.b, op.imm), "size": O.SIZE_CODES[op.size],
                      "offset": op.offset & O.mask(O.WINDOW_OFFSET_BITS), "sel": op.sel})


def encode_gateway(g: Gateway) -> int:
    return GATEWAY.pack({"valid": 1, "cmp": O.GATEWAY_BY_NAME[g.cmp].code,
                         "w32": int(g.width == 32), "invert": int(g.invert),
                         "combine": O.COMBINES.index(g.combine), "a": g.a,
                         "a_offset": g.a_offset, "a_size": O.SIZE_CODES[g.a_size],
                         **_b(g.b, g.imm), "pred_in": g.pred_in,
                         "pred_in_neg": int(g.pred_in_neg), "dst": g.dst})


def encode_table(t: Table) -> int:
    v = {"valid": 1, "kind": TABLE_KINDS.index(t.kind), "enable": t.enable,
         "enable_neg": int(t.enable_neg), "hit": t.hit, "size": t.size,
         "key_bytes": t.key_bytes}
    for i, s in enumerate(t.key):
        v[f"slice{i}"] = SLICE.pack({"container": s.container, "offset": s.offset,
                                     "size_m1": s.size - 1, "valid": 1})
    for i, c in enumerate(t.action):
        v[f"action{i}"] = ACTION.pack({"container": c, "valid": 1})
    return TABLE.pack(v)


def encode_stateful(u: Stateful) -> int:
    return STATEFUL.pack({
        "valid": 1, "op": O.STATEFUL_BY_NAME[u.op].code, "size": O.SIZE_CODES[u.size],
        "offset": u.offset, "index_container_sel": int(u.index_table is None),
        "table": u.index_table or 0, "index_container": u.index_container, "base": u.base,
        "stride": u.stride, **_b(u.b, u.imm), "cmp": u.cmp, "fetch": u.fetch or 0,
        "fetch_en": int(u.fetch is not None), "pred_neg": int(u.pred_neg), "pred": u.pred,
        "words": u.words})


def _buf(prefix: str, b: Buffer | None) -> dict[str, int]:
    if b is None:
        return {}
    return {f"{prefix}_kind": O.BUFFER_KINDS.index(b.kind), f"{prefix}_offset": b.offset,
            f"{prefix}_container": b.container, f"{prefix}_length": b.length}


def encode_extern(e: Extern) -> int:
    return EXTERN.pack({"valid": 1, "kind": O.EXTERN_BY_NAME[e.kind].code,
                        "mode": O.CSUM_MODES.index(e.mode), "dst": e.dst, "pred": e.pred,
                        "pred_neg": int(e.pred_neg),
                        "seed_sel": int(e.seed_container is not None),
                        "seed_container": e.seed_container or 0, **_buf("x", e.x),
                        **_buf("y", e.y), "seed": e.seed})


def _hexfile(path: Path, comment: str, width: int, words: list[int]) -> dict[str, Any]:
    digits = -(-width // 4)
    lines = [f"// {comment}"] + [f"{w:0{digits}x}" for w in words]
    path.write_text("\n".join(lines) + "\n")
    return {"name": path.name, "width": width, "depth": len(words), "what": comment}


def _le(data: bytes) -> int:
    return int.from_bytes(data, "little")


def write_memory_images(config: PipelineConfig, outdir: str | os.PathLike[str]) -> list[str]:
    """Write every memory image, params.vh and manifest.json; returns the file names."""
    config = load_config(config)
    t = config.target
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    parser = [0] * t.num_containers
    for e in config.extracts:
        parser[e.container] = PARSER.pack({"valid": 1, "size": O.SIZE_CODES[e.size],
                                           "offset": e.offset})
    files.append(_hexfile(out / "parser.hex", "parser extracts, word = container", 32, parser))
    dep = [config.default_verdict]
    dep += [DEPARSER.pack({"container": c, "valid": 1}) for c in config.punt_containers]
    dep += [0] * (1 + t.punt_containers - len(dep))
    files.append(_hexfile(out / "deparser.hex", "default verdict; punt header containers",
                          32, dep))
    n_ext = sum(t.get_extern_units(k.name) for k in O.EXTERN_KINDS)
    for s, st in enumerate(config.stages):
        tag = f"st{s:02d}"
        gw = [encode_gateway(g) for g in st.gateways] + [0] * (t.gateways - len(st.gateways))
        files.append(_hexfile(out / f"{tag}_gw.hex", f"{tag} gateways", 128, gw))
        vliw = [0] * VLIW_SLOTS
        for op in st.ops:
            vliw[op.slot] = encode_op(op)
        files.append(_hexfile(out / f"{tag}_vliw.hex", f"{tag} VLIW ops by slot", 128, vliw))
        tbl = [0] * t.tables
        for tb in st.tables:
            tbl[tb.slot] = encode_table(tb)
            files += _table_memories(out, tag, tb, t)
        files.append(_hexfile(out / f"{tag}_tbl.hex", f"{tag} table units", 256, tbl))
        sfu = [0] * t.stateful_alus
        for u in st.stateful:
            sfu[u.unit] = encode_stateful(u)
            regs = [0] * u.words
            for addr, value in u.init:
                regs[addr] = value
            files.append(_hexfile(out / f"{tag}_r{u.unit}.hex",
                                  f"{tag} stateful unit {u.unit} registers", 64, regs))
        files.append(_hexfile(out / f"{tag}_sfu.hex", f"{tag} stateful units", 192, sfu))
        ext = [0] * n_ext
        for e in st.externs:
            ext[e.unit] = encode_extern(e)
        files.append(_hexfile(out / f"{tag}_ext.hex", f"{tag} extern units", 128, ext))
    (out / "params.vh").write_text(_params_vh(config))
    manifest = {"format": MANIFEST_FORMAT, "version": 1, "num_logical_stages":
                len(config.stages), "files": files, "config": _annotations(config)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return [f["name"] for f in files] + ["params.vh", "manifest.json"]


def _table_memories(out: Path, tag: str, tb: Table, t: TargetParams) -> list[dict[str, Any]]:
    name = f"{tag}_t{tb.slot}"
    keys = [0] * tb.size
    masks = [0] * tb.size
    data = [0] * tb.size
    for e in tb.entries:
        keys[e.index] = (1 << t.key_bits) | _le(e.key)
        masks[e.index] = _le(tb.get_mask(e))
        data[e.index] = _le(e.data)
    files = []
    if tb.kind != "direct":
        files.append(_hexfile(out / f"{name}_key.hex", f"{name} {{valid, key}}",
                              t.key_bits + 4, keys))
    if tb.kind in ("ternary", "lpm"):
        files.append(_hexfile(out / f"{name}_mask.hex", f"{name} masks", t.key_bits, masks))
    if tb.action:
        files.append(_hexfile(out / f"{name}_data.hex", f"{name} action data",
                              64 * t.action_containers, data))
    return files


def _params_vh(config: PipelineConfig) -> str:
    lines = [f"// pipe target parameters for {config.program or 'a configuration'}; "
             f"generated by hw.pipeline.images"]
    for f in dataclasses.fields(TargetParams):
        name, v = f.name, getattr(config.target, f.name)
        if isinstance(v, bool):
            v = int(v)
        elif isinstance(v, float):
            name, v = "clock_khz", config.target.clock_khz
        elif isinstance(v, str):
            v = f'"{v}"'
        lines.append(f"`define PIPE_{name.upper()} {v}")
    lines.append(f"`define PIPE_NUM_LOGICAL_STAGES {len(config.stages)}")
    lines.append(f"`define PIPE_NUM_PASSES {config.num_passes}")
    for s, st in enumerate(config.stages):
        for tb in st.tables:
            lines.append(f"`define PIPE_ST{s:02d}_T{tb.slot}_SIZE {tb.size}")
        for u in st.stateful:
            lines.append(f"`define PIPE_ST{s:02d}_R{u.unit}_WORDS {u.words}")
    return "\n".join(lines) + "\n"


def _annotations(config: PipelineConfig) -> dict[str, Any]:
    """What the RTL does not load: the program, target, names, map bindings."""
    doc = dump_config(config)
    return {"program": doc["program"], "target": doc["target"],
            "containers": doc["containers"], "predicates": doc["predicates"],
            "maps": doc["maps"],
            "table_names": {f"{s}.{t.slot}": t.name for s, st in enumerate(config.stages)
                            for t in st.tables},
            "stateful_names": {f"{s}.{u.unit}": u.name for s, st in enumerate(config.stages)
                               for u in st.stateful}}


# --- decoding -------------------------------------------------------------------------------

def read_hexfile(path: Path, width: int) -> list[int]:
    """The words of one image file; ConfigError names the file and line of a bad word."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path.name}: cannot read: {exc}") from exc
    words = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("//")[0].strip()
        if not line:
            continue
        try:
            w = int(line, 16)
        except ValueError:
            raise ConfigError(f"{path.name}:{n}: not a hex word: {line!r}") from None
        if w >> width:
            raise ConfigError(f"{path.name}:{n}: word 0x{w:x} is wider than {width} bits")
        words.append(w)
    return words


def _b_of(v: dict[str, int]) -> tuple[int | None, int]:
    return (None, v["imm"]) if v["b_imm"] else (v["b"], 0)


def decode_op(slot: int, word: int) -> Op:
    """The op of a VLIW word; a window op's offset is two's complement (16 bits)."""
    v = VLIW.unpack(word)
    spec = O.VLIW_BY_CODE[v["opcode"]]
    b, imm = _b_of(v)
    offset = O.signed(v["offset"], O.WINDOW_OFFSET_BITS) if spec.window else v["offset"]
    return Op(slot=slot, op=spec.name, width=32 if v["w32"] else 64, a=v["a"], b=b, imm=imm,
              size=O.SIZES[v["size"]], offset=offset, signed=bool(v["signed"]),
              sel=v["sel"], pred=v["pred"], pred_neg=bool(v["pred_neg"]))


def decode_gateway(word: int) -> Gateway:
    v = GATEWAY.unpack(word)
    b, imm = _b_of(v)
    return Gateway(dst=v["dst"], cmp=O.GATEWAY_BY_CODE[v["cmp"]].name, a=v["a"], b=b, imm=imm,
                   width=32 if v["w32"] else 64, a_offset=v["a_offset"],
                   a_size=O.SIZES[v["a_size"]], invert=bool(v["invert"]),
                   combine=O.COMBINES[v["combine"]], pred_in=v["pred_in"],
                   pred_in_neg=bool(v["pred_in_neg"]))


def _decode_table(slot: int, word: int, out: Path, tag: str, t: TargetParams,
                  name: str) -> Table:
    v = TABLE.unpack(word)
    key = []
    for i in range(8):
        s = SLICE.unpack(v[f"slice{i}"])
        if s["valid"]:
            key.append(Slice(s["container"], s["offset"], s["size_m1"] + 1))
    action = tuple(ACTION.unpack(v[f"action{i}"])["container"] for i in range(8)
                   if ACTION.unpack(v[f"action{i}"])["valid"])
    kind = TABLE_KINDS[v["kind"]]
    size, nkey, ndata = v["size"], v["key_bytes"], 8 * len(action)
    base = out / f"{tag}_t{slot}"
    keys = read_hexfile(Path(f"{base}_key.hex"), t.key_bits + 4) if kind != "direct" else []
    masks = (read_hexfile(Path(f"{base}_mask.hex"), t.key_bits)
             if kind in ("ternary", "lpm") else [])
    data = read_hexfile(Path(f"{base}_data.hex"), 64 * t.action_containers) if action else []
    entries = []
    for i in range(size):
        d = data[i].to_bytes(8 * t.action_containers, "little")[:ndata] if data else b""
        if kind == "direct":
            if any(d):
                entries.append(Entry(index=i, data=d))
            continue
        if not keys[i] >> t.key_bits:
            continue
        k = (keys[i] & ((1 << t.key_bits) - 1)).to_bytes(nkey, "little")
        if kind == "ternary":
            entries.append(Entry(index=i, key=k, mask=masks[i].to_bytes(nkey, "little"),
                                 data=d))
        elif kind == "lpm":
            m = masks[i].to_bytes(nkey, "little")
            entries.append(Entry(index=i, key=k, prefix_len=int.from_bytes(m, "big")
                                 .bit_count(), data=d))
        else:
            entries.append(Entry(index=i, key=k, data=d))
    return Table(slot=slot, kind=kind, size=size, key=tuple(key), action=action, hit=v["hit"],
                 enable=v["enable"], enable_neg=bool(v["enable_neg"]), name=name,
                 entries=tuple(entries))


def _decode_stateful(unit: int, word: int, regs: list[int], name: str) -> Stateful:
    v = STATEFUL.unpack(word)
    b, imm = _b_of(v)
    return Stateful(unit=unit, op=O.STATEFUL_BY_CODE[v["op"]].name, words=v["words"],
                    size=O.SIZES[v["size"]], offset=v["offset"],
                    index_table=None if v["index_container_sel"] else v["table"],
                    index_container=v["index_container"], base=v["base"], stride=v["stride"],
                    b=b, imm=imm, cmp=v["cmp"], fetch=v["fetch"] if v["fetch_en"] else None,
                    pred=v["pred"], pred_neg=bool(v["pred_neg"]), name=name,
                    init=tuple((a, w) for a, w in enumerate(regs) if w))


def _decode_buffer(v: dict[str, int], prefix: str) -> Buffer | None:
    kind = O.BUFFER_KINDS[v[f"{prefix}_kind"]]
    if kind == "none":
        return None
    return Buffer(kind, v[f"{prefix}_length"], v[f"{prefix}_offset"], v[f"{prefix}_container"])


def decode_extern(unit: int, word: int) -> Extern:
    v = EXTERN.unpack(word)
    return Extern(unit=unit, kind=O.EXTERN_BY_CODE[v["kind"]].name, dst=v["dst"],
                  pred=v["pred"], pred_neg=bool(v["pred_neg"]), seed=v["seed"],
                  seed_container=v["seed_container"] if v["seed_sel"] else None,
                  x=_decode_buffer(v, "x"), y=_decode_buffer(v, "y"),
                  mode=O.CSUM_MODES[v["mode"]])


def read_memory_images(outdir: str | os.PathLike[str]) -> PipelineConfig:
    """Decode a directory written by ``write_memory_images``: ``canonical(config)``."""
    out = Path(outdir)
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{out / 'manifest.json'}: cannot read: {exc}") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ConfigError(f"manifest.json: format {manifest.get('format')!r} is not "
                          f"{MANIFEST_FORMAT!r}")
    ann = manifest["config"]
    base = parse_config({"format": "xdp-offload-pipeline", "version": 1,
                         "program": ann["program"], "target": ann["target"],
                         "containers": ann["containers"], "predicates": ann["predicates"]})
    t = base.target
    extracts = []
    for c, w in enumerate(read_hexfile(out / "parser.hex", 32)):
        v = PARSER.unpack(w)
        if v["valid"]:
            extracts.append(Extract(c, v["offset"], O.SIZES[v["size"]]))
    dep = read_hexfile(out / "deparser.hex", 32)
    punt = tuple(DEPARSER.unpack(w)["container"] for w in dep[1:] if DEPARSER.unpack(w)["valid"])
    stages = []
    for s in range(manifest["num_logical_stages"]):
        tag = f"st{s:02d}"
        gws = tuple(decode_gateway(w) for w in read_hexfile(out / f"{tag}_gw.hex", 128)
                    if GATEWAY.unpack(w)["valid"])
        ops = tuple(decode_op(slot, w)
                    for slot, w in enumerate(read_hexfile(out / f"{tag}_vliw.hex", 128))
                    if VLIW.unpack(w)["opcode"])
        tables = tuple(_decode_table(slot, w, out, tag, t, ann["table_names"].get(f"{s}.{slot}",
                                                                                  ""))
                       for slot, w in enumerate(read_hexfile(out / f"{tag}_tbl.hex", 256))
                       if TABLE.unpack(w)["valid"])
        sfus = tuple(_decode_stateful(u, w, read_hexfile(out / f"{tag}_r{u}.hex", 64),
                                      ann["stateful_names"].get(f"{s}.{u}", ""))
                     for u, w in enumerate(read_hexfile(out / f"{tag}_sfu.hex", 192))
                     if STATEFUL.unpack(w)["valid"])
        exts = tuple(decode_extern(u, w)
                     for u, w in enumerate(read_hexfile(out / f"{tag}_ext.hex", 128))
                     if EXTERN.unpack(w)["valid"])
        stages.append(Stage(gateways=gws, tables=tables, ops=ops, stateful=sfus,
                            externs=exts))
    maps = parse_config({"format": "xdp-offload-pipeline", "version": 1,
                         "maps": ann["maps"]}).maps
    return dataclasses.replace(base, extracts=tuple(extracts), stages=tuple(stages),
                               punt_containers=punt, default_verdict=dep[0], maps=maps)
