"""Semantic checks of a parsed configuration against its target (docs/pipeline.md).

``validate`` raises one ``ConfigError`` line per problem, naming the key path:
``stages[1].ops[0].offset: window access [250, 258) ends beyond the window (256 + 64 bytes)``.
Field-level checks (types, unknown keys, enum names) happen while parsing (config.py).
"""

from __future__ import annotations

from collections import Counter

from hw.pipeline import ops as O
from hw.pipeline.config import (
    MAP_TYPES,
    PERCPU_TYPES,
    Buffer,
    Extern,
    MapBinding,
    Op,
    PipelineConfig,
    Stage,
    Stateful,
    Table,
    TargetParams,
)
from hw.pipeline.errors import ConfigError


def _fail(path: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {problem}")


def _range(path: str, value: int, lo: int, hi: int, what: str = "") -> None:
    if not lo <= value <= hi:
        raise _fail(path, f"{what}{value} is out of range [{lo}, {hi}]")


def validate(config: PipelineConfig) -> None:
    """Check ``config`` against its target; raise ConfigError naming the first problem."""
    t = config.target
    _check_target(t)
    v = _Checker(t)
    for kind, names, hi in (("containers", config.containers, t.num_containers),
                            ("predicates", config.predicates, t.predicate_bits)):
        seen: set[int] = set()
        for i, (index, _name) in enumerate(names):
            _range(f"{kind}[{i}].index", index, 0, hi - 1)
            if index in seen:
                raise _fail(f"{kind}[{i}].index", f"{index} is named twice")
            seen.add(index)
    seen_c: set[int] = set()
    for i, e in enumerate(config.extracts):
        p = f"parser.extracts[{i}]"
        v.general(f"{p}.container", e.container)
        if e.container in seen_c:
            raise _fail(f"{p}.container", f"container {e.container} is extracted twice")
        seen_c.add(e.container)
        v.size(f"{p}.size", e.size, (1, 2, 4, 8))
        if e.offset + e.size > t.window_bytes:
            raise _fail(f"{p}.offset", f"extract [{e.offset}, {e.offset + e.size}) ends beyond "
                                       f"the {t.window_bytes}-byte window")
    limit = t.num_stages * t.max_passes
    if len(config.stages) > limit:
        raise _fail("stages", f"{len(config.stages)} logical stages exceed num_stages x "
                              f"max_passes = {limit}")
    for s, stage in enumerate(config.stages):
        v.stage(f"stages[{s}]", stage)
    if len(config.punt_containers) > t.punt_containers:
        raise _fail("deparser.punt_containers", f"{len(config.punt_containers)} containers "
                                                f"exceed the target's {t.punt_containers}")
    for i, c in enumerate(config.punt_containers):
        v.readable(f"deparser.punt_containers[{i}]", c)
    _check_budgets(config)
    for m in config.maps:
        _check_map(config, m)
    _check_register_sharing(config)


def _check_target(t: TargetParams) -> None:
    checks = [("num_containers", 1, O.MAX_CONTAINERS), ("predicate_bits", 2, 64),
              ("num_stages", 1, 4096), ("max_passes", 1, 64), ("stage_cycles", 1, 1 << 16),
              ("deparser_cycles", 1, 1 << 16), ("recirc_cycles", 0, 1 << 16),
              ("bus_bits", 8, 1 << 16), ("window_bytes", 14, 32768),
              ("window_headroom", 0, t.frame_headroom), ("gateways", 0, 64), ("tables", 0, 8),
              ("stateful_alus", 0, 8), ("key_slices", 1, 8), ("key_bits", 8, 512),
              ("action_containers", 1, 8), ("punt_containers", 0, 8),
              ("window_loads", 0, 64), ("window_stores", 0, 6), ("min_packet_bytes", 1, 65535),
              ("frame_end", t.window_bytes, 65535), ("frame_headroom", 0, 65535)]
    for name, lo, hi in checks:
        _range(f"target.{name}", getattr(t, name), lo, hi)
    units = sum(t.get_extern_units(k.name) for k in O.EXTERN_KINDS)
    _range("target (extern units)", units, 0, 16, "total extern units ")
    if t.key_bits % 8 or t.bus_bits % 8:
        raise _fail("target.key_bits", "key_bits and bus_bits must be multiples of 8")
    if t.parser_cycles < t.window_beats + 1:
        raise _fail("target.parser_cycles", f"{t.parser_cycles} is less than the window's "
                                            f"{t.window_beats} bus beats + 1")
    if t.mul_max_bits not in (0, 32, 64):
        raise _fail("target.mul_max_bits", f"expected 0, 32 or 64, got {t.mul_max_bits}")
    if t.div not in ("none", "constant", "full"):
        raise _fail("target.div", f"expected none, constant or full, got {t.div!r}")


class _Checker:
    """Per-stage checks against one target."""

    def __init__(self, t: TargetParams) -> None:
        self.t = t

    # operands ------------------------------------------------------------------------------

    def general(self, path: str, c: int) -> None:
        if not 0 <= c < self.t.num_containers:
            raise _fail(path, f"{c} is not a container (0-{self.t.num_containers - 1})")

    def readable(self, path: str, c: int) -> None:
        if not (0 <= c < self.t.num_containers or c in O.META_BY_INDEX):
            raise _fail(path, f"{c} is neither a container (0-{self.t.num_containers - 1}) "
                              f"nor a metadata field (48-57)")

    def pred(self, path: str, p: int, write: bool = False) -> None:
        lo = 1 if write else 0
        if not lo <= p < self.t.predicate_bits:
            what = " (predicate 0 is the constant 1)" if write and p == 0 else ""
            raise _fail(path, f"{p} is not a writable predicate{what}" if write else
                        f"{p} is not a predicate (0-{self.t.predicate_bits - 1})")

    @staticmethod
    def size(path: str, size: int, sizes: tuple[int, ...]) -> None:
        if size not in sizes:
            raise _fail(path, f"size {size} not allowed (expected one of: "
                              f"{', '.join(map(str, sizes))})")

    def operand_b(self, path: str, b: int | None) -> None:
        if b is not None:
            self.readable(f"{path}.b", b)

    # stage ---------------------------------------------------------------------------------

    def stage(self, p: str, st: Stage) -> None:
        t = self.t
        writers: dict[int, str] = {}

        def write(c: int, who: str) -> None:
            if c in writers:
                raise _fail(p, f"container {c} is written by {writers[c]} and {who} (one "
                               f"writer per container per stage)")
            writers[c] = who

        if len(st.gateways) > t.gateways:
            raise _fail(f"{p}.gateways", f"{len(st.gateways)} gateways exceed the target's "
                                         f"{t.gateways}")
        pred_writers: dict[int, str] = {}
        for i, g in enumerate(st.gateways):
            q = f"{p}.gateways[{i}]"
            self.pred(f"{q}.dst", g.dst, write=True)
            if g.dst in pred_writers:
                raise _fail(f"{q}.dst", f"predicate {g.dst} is also written by "
                                        f"{pred_writers[g.dst]}")
            pred_writers[g.dst] = f"gateways[{i}]"
            if g.width not in (32, 64):
                raise _fail(f"{q}.width", f"expected 32 or 64, got {g.width}")
            if g.cmp == "pred":
                self.pred(f"{q}.a", g.a)
            else:
                self.readable(f"{q}.a", g.a)
                self.operand_b(q, g.b)
            self.size(f"{q}.a_size", g.a_size, (1, 2, 4, 8))
            if g.a_offset + g.a_size > 8:
                raise _fail(f"{q}.a_offset", f"slice [{g.a_offset}, {g.a_offset + g.a_size}) "
                                             f"passes the container's 8 bytes")
            self.pred(f"{q}.pred_in", g.pred_in)
        if len(st.tables) > t.tables:
            raise _fail(f"{p}.tables", f"{len(st.tables)} tables exceed the target's {t.tables}")
        slots = Counter(tb.slot for tb in st.tables)
        for i, tb in enumerate(st.tables):
            q = f"{p}.tables[{i}]"
            if tb.slot >= t.tables or slots[tb.slot] > 1:
                raise _fail(f"{q}.slot", f"slot {tb.slot} is out of range or used twice "
                                         f"(target has {t.tables} tables per stage)")
            self.table(q, tb)
            for j, c in enumerate(tb.action):
                write(c, f"tables[{i}].action[{j}]")
            if tb.hit:
                self.pred(f"{q}.hit", tb.hit, write=True)
                if tb.hit in pred_writers:
                    raise _fail(f"{q}.hit", f"predicate {tb.hit} is also written by "
                                            f"{pred_writers[tb.hit]}")
                pred_writers[tb.hit] = f"tables[{i}]"
        counts: Counter[str] = Counter()
        op_slots = Counter(op.slot for op in st.ops)
        for i, op in enumerate(st.ops):
            q = f"{p}.ops[{i}]"
            if op_slots[op.slot] > 1:
                raise _fail(f"{q}.slot", f"slot {op.slot} holds more than one op")
            self.op(q, op)
            spec = O.VLIW_BY_NAME[op.op]
            counts[spec.kind] += 1
            if spec.writes and op.slot not in O.DISCARD_SLOTS:
                write(op.slot, f"ops[{i}]")
        for kind, limit, what in (("wload", t.window_loads, "window loads"),
                                  ("wstore", t.window_stores, "window stores"),
                                  ("adjust", 1, "adjust ops")):
            if counts[kind] > limit:
                raise _fail(f"{p}.ops", f"{counts[kind]} {what} exceed the limit of {limit} "
                                        f"per stage")
        if len(st.stateful) > t.stateful_alus:
            raise _fail(f"{p}.stateful", f"{len(st.stateful)} stateful units exceed the "
                                         f"target's {t.stateful_alus}")
        units = Counter(u.unit for u in st.stateful)
        for i, u in enumerate(st.stateful):
            q = f"{p}.stateful[{i}]"
            if u.unit >= t.stateful_alus or units[u.unit] > 1:
                raise _fail(f"{q}.unit", f"unit {u.unit} is out of range or used twice")
            self.stateful(q, u, st)
            if u.fetch is not None:
                write(u.fetch, f"stateful[{i}].fetch")
        total = sum(t.get_extern_units(k.name) for k in O.EXTERN_KINDS)
        kinds = Counter(e.kind for e in st.externs)
        for kind, n in kinds.items():
            if n > t.get_extern_units(kind):
                raise _fail(f"{p}.externs", f"{n} {kind} externs exceed the target's "
                                            f"{t.get_extern_units(kind)}")
        ext_units = Counter(e.unit for e in st.externs)
        for i, e in enumerate(st.externs):
            q = f"{p}.externs[{i}]"
            if e.unit >= total or ext_units[e.unit] > 1:
                raise _fail(f"{q}.unit", f"unit {e.unit} is out of range (0-{total - 1}) or "
                                         f"used twice")
            self.extern(q, e)
            write(e.dst, f"externs[{i}]")

    def table(self, q: str, tb: Table) -> None:
        t = self.t
        _range(f"{q}.size", tb.size, 1, 65535)
        if not tb.key and tb.kind != "direct" or len(tb.key) > t.key_slices:
            raise _fail(f"{q}.key", f"{len(tb.key)} key slices (expected 1-{t.key_slices})")
        if tb.kind == "direct" and not 1 <= tb.key_bytes <= 4:
            raise _fail(f"{q}.key", f"a direct table's index is 1-4 bytes, got {tb.key_bytes}")
        for j, s in enumerate(tb.key):
            self.readable(f"{q}.key[{j}].container", s.container)
            _range(f"{q}.key[{j}].size", s.size, 1, 8)
            if s.offset + s.size > 8:
                raise _fail(f"{q}.key[{j}].offset", f"slice [{s.offset}, {s.offset + s.size}) "
                                                    f"passes the container's 8 bytes")
        if tb.key_bytes * 8 > t.key_bits:
            raise _fail(f"{q}.key", f"{tb.key_bytes * 8}-bit key exceeds the target's "
                                    f"{t.key_bits} bits")
        if len(tb.action) > t.action_containers:
            raise _fail(f"{q}.action", f"{len(tb.action)} action containers exceed the "
                                       f"target's {t.action_containers}")
        for j, c in enumerate(tb.action):
            self.general(f"{q}.action[{j}]", c)
        self.pred(f"{q}.enable", tb.enable)
        seen: set[int] = set()
        keys: dict[bytes, int] = {}
        last_prefix = None
        for j, e in sorted(enumerate(tb.entries), key=lambda je: je[1].index):
            r = f"{q}.entries[{j}]"
            if e.index >= tb.size or e.index in seen:
                raise _fail(f"{r}.index", f"{e.index} is beyond the table's {tb.size} entries "
                                          f"or used twice")
            seen.add(e.index)
            if tb.kind != "direct" and len(e.key) != tb.key_bytes:
                raise _fail(f"{r}.key", f"{len(e.key)} bytes, the key has {tb.key_bytes}")
            if len(e.data) > tb.data_bytes:
                raise _fail(f"{r}.data", f"{len(e.data)} bytes exceed the action data's "
                                         f"{tb.data_bytes}")
            if tb.kind == "ternary" and len(e.mask or b"") != tb.key_bytes:
                raise _fail(f"{r}.mask", f"{len(e.mask or b'')} bytes, the key has "
                                         f"{tb.key_bytes}")
            if tb.kind == "lpm":
                assert e.prefix_len is not None
                _range(f"{r}.prefix_len", e.prefix_len, 0, 8 * tb.key_bytes)
                if last_prefix is not None and e.prefix_len > last_prefix:
                    raise _fail(f"{r}.prefix_len", f"{e.prefix_len} after a shorter prefix at "
                                                   f"a lower index (longest prefixes first)")
                last_prefix = e.prefix_len
            if tb.kind == "exact":
                if e.key in keys:
                    raise _fail(f"{r}.key", f"duplicate key {e.key.hex()} (also at index "
                                            f"{keys[e.key]})")
                keys[e.key] = e.index

    def op(self, q: str, op: Op) -> None:
        t = self.t
        spec = O.VLIW_BY_NAME[op.op]
        if not (op.slot < t.num_containers or op.slot in O.WRITABLE_META
                or op.slot in O.DISCARD_SLOTS):
            raise _fail(f"{q}.slot", f"{op.slot} is not a writable slot (containers "
                                     f"0-{t.num_containers - 1}, 51-53, discard 58-63)")
        self.pred(f"{q}.pred", op.pred)
        if op.width not in spec.widths:
            raise _fail(f"{q}.width", f"{op.op} takes width {' or '.join(map(str, spec.widths))}"
                                      f", got {op.width}")
        sizes = O.sext_sizes(op.width) if op.op == "sext" else spec.sizes
        self.size(f"{q}.size", op.size, sizes or (8,))
        if spec.reads_a:
            self.readable(f"{q}.a", op.a)
        if spec.reads_b:
            self.operand_b(q, op.b)
        if op.signed and not spec.signed_ok:
            raise _fail(f"{q}.signed", f"{op.op} has no signed form")
        if op.op == "sel":
            self.pred(f"{q}.sel", op.sel)
        elif op.sel:
            raise _fail(f"{q}.sel", f"only sel uses a select predicate, {op.op} got {op.sel}")
        if spec.window:
            half = 1 << (O.WINDOW_OFFSET_BITS - 1)
            _range(f"{q}.offset", op.offset, -half, half - 1, "window offset ")
            end = t.window_bytes + t.window_headroom
            if op.offset + op.size > end:
                raise _fail(f"{q}.offset", f"window access [{op.offset}, {op.offset + op.size})"
                                           f" ends beyond the window ({t.window_bytes} + "
                                           f"{t.window_headroom} bytes)")
            if spec.variable and not t.variable_offset:
                raise _fail(f"{q}.op", f"{op.op}: the target has no variable-offset window "
                                       f"access")
        elif spec.uses_offset:
            if op.offset < 0 or op.offset + op.size > 8:
                raise _fail(f"{q}.offset", f"bytes [{op.offset}, {op.offset + op.size}) pass "
                                           f"the container's 8 bytes")
        elif op.offset:
            raise _fail(f"{q}.offset", f"{op.op} has no offset, got {op.offset}")
        if op.op == "mul" and op.width > t.mul_max_bits:
            raise _fail(f"{q}.op", f"{op.width}-bit mul exceeds the target's "
                                   f"{t.mul_max_bits}-bit multiplier")
        if op.op in O.DIV_OPS and (t.div == "none" or t.div == "constant" and op.b is not None):
            raise _fail(f"{q}.op", f"{op.op}: the target's divider is {t.div!r}")

    def stateful(self, q: str, u: Stateful, st: Stage) -> None:
        _range(f"{q}.words", u.words, 1, 1 << 16)
        self.size(f"{q}.size", u.size, (1, 2, 4, 8))
        if u.offset % u.size or u.offset + u.size > 8:
            raise _fail(f"{q}.offset", f"field [{u.offset}, {u.offset + u.size}) is not "
                                       f"aligned inside the 8-byte word")
        self.pred(f"{q}.pred", u.pred)
        if u.index_table is not None:
            tb = st.get_table(u.index_table)
            if tb is None:
                raise _fail(f"{q}.index.table", f"no table in slot {u.index_table} in this "
                                                f"stage")
            last = u.base + (tb.size - 1) * u.stride
            if last >= u.words:
                raise _fail(f"{q}.words", f"{u.words} words, but table '{tb.name}' entry "
                                          f"{tb.size - 1} addresses word {last}")
        else:
            self.readable(f"{q}.index.container", u.index_container)
        if u.op != "read":
            self.operand_b(q, u.b)
        if u.op == "cmpxchg":
            self.readable(f"{q}.cmp", u.cmp)
        if u.fetch is not None:
            self.general(f"{q}.fetch", u.fetch)
        seen: set[int] = set()
        for i, (addr, _v) in enumerate(u.init):
            if addr >= u.words or addr in seen:
                raise _fail(f"{q}.init[{i}]", f"address {addr} is beyond {u.words} words or "
                                              f"given twice")
            seen.add(addr)

    def buffer(self, q: str, b: Buffer) -> None:
        t = self.t
        if b.kind == "window" and b.offset + b.length > t.window_bytes + t.window_headroom:
            raise _fail(q, f"window bytes [{b.offset}, {b.offset + b.length}) end beyond the "
                           f"window")
        if b.kind == "containers":
            self.general(f"{q}.containers", b.container)
            last = b.container + max(1, -(-b.length // 8)) - 1
            if last >= t.num_containers:
                raise _fail(q, f"{b.length} bytes from container {b.container} pass the last "
                               f"container {t.num_containers - 1}")

    def extern(self, q: str, e: Extern) -> None:
        self.general(f"{q}.dst", e.dst)
        self.pred(f"{q}.pred", e.pred)
        if e.seed_container is not None:
            self.readable(f"{q}.seed_container", e.seed_container)
        wanted = O.EXTERN_BY_NAME[e.kind].inputs
        for key in ("x", "y"):
            buf = getattr(e, key)
            if buf is not None and key not in wanted:
                raise _fail(f"{q}.{key}", f"a {e.kind} extern takes no {key} buffer")
            if buf is not None:
                self.buffer(f"{q}.{key}", buf)
                if (e.kind == "hash" or e.mode == "x86_unfolded") and buf.length % 4:
                    raise _fail(f"{q}.{key}.length", f"{buf.length} is not a multiple of 4")
        if e.kind == "hash" and e.x is None:
            raise _fail(f"{q}.x", "a hash extern needs its key buffer x")
        if e.kind == "random" and (e.seed_container is not None or e.seed == 0):
            raise _fail(f"{q}.seed", "a random extern needs a nonzero immediate seed")


def _sram_words(t: TargetParams, bits: int, rows: int) -> int:
    return rows * -(-bits // t.sram_width_bits) if bits else 0


def _check_budgets(config: PipelineConfig) -> None:
    """Table and register memory per physical stage, summed over the passes that share it."""
    t = config.target
    sram: Counter[int] = Counter()
    tcam: Counter[int] = Counter()
    for s, st in enumerate(config.stages):
        ph = s % t.num_stages
        for tb in st.tables:
            data = tb.data_bytes * 8
            if tb.kind in ("exact", "direct"):
                key = tb.key_bytes * 8 + 1 if tb.kind == "exact" else 0
                sram[ph] += _sram_words(t, key + data, tb.size)
            else:
                tcam[ph] += tb.size * -(-(tb.key_bytes * 8 + 1) // t.tcam_width_bits)
                sram[ph] += _sram_words(t, data, tb.size)
        for u in st.stateful:
            sram[ph] += _sram_words(t, 64, u.words)
    for ph, words in sorted(sram.items()):
        if words > t.sram_blocks * t.sram_entries:
            raise _fail(f"stages[{ph}]", f"physical stage {ph} needs {words} SRAM rows for "
                                         f"tables and registers, it has "
                                         f"{t.sram_blocks * t.sram_entries}")
    for ph, rows in sorted(tcam.items()):
        if rows > t.tcam_blocks * t.tcam_entries:
            raise _fail(f"stages[{ph}]", f"physical stage {ph} needs {rows} TCAM rows, it has "
                                         f"{t.tcam_blocks * t.tcam_entries}")


def _check_map(config: PipelineConfig, m: MapBinding) -> None:
    p = f"maps.{m.name}"
    if m.type not in PERCPU_TYPES and (m.num_cpus != 1 or m.cpu):
        raise _fail(f"{p}.cpu", f"a {m.type} map is not per-CPU")
    if m.cpu >= m.num_cpus:
        raise _fail(f"{p}.cpu", f"cpu {m.cpu} is not below num_cpus {m.num_cpus}")
    if not m.tables and not (m.registers and m.type in ("array", "percpu_array")):
        raise _fail(f"{p}.tables", "a map needs at least one table (an array whose values "
                                   "all live in registers needs none)")
    for i, (s, slot) in enumerate(m.tables):
        q = f"{p}.tables[{i}]"
        tb = config.stages[s].get_table(slot) if 0 <= s < len(config.stages) else None
        if tb is None:
            raise _fail(q, f"no table in stage {s} slot {slot}")
        if tb.kind not in MAP_TYPES[m.type]:
            raise _fail(q, f"a {m.type} map needs a {'/'.join(MAP_TYPES[m.type])} table, "
                           f"table '{tb.name}' is {tb.kind}")
        want = {"direct": 4, "lpm": tb.key_bytes + 4}.get(tb.kind, tb.key_bytes)
        if m.key_size != want:
            raise _fail(f"{p}.key_size", f"{m.key_size} does not fit table '{tb.name}' "
                                         f"({want} expected)")
        if tb.kind == "direct" and tb.size != m.max_entries:
            raise _fail(q, f"direct table size {tb.size} differs from max_entries "
                           f"{m.max_entries}")
        if tb.size < m.max_entries:
            raise _fail(q, f"table size {tb.size} is below max_entries {m.max_entries}")
        if tb.action and tb.data_bytes < m.value_size:
            raise _fail(q, f"action data of {tb.data_bytes} bytes cannot hold the "
                           f"{m.value_size}-byte value")
    if not m.tables and m.key_size != 4:
        raise _fail(f"{p}.key_size", f"{m.key_size}: an array's key is a u32 (4 expected)")
    for j, r in enumerate(m.registers):
        q = f"{p}.registers[{j}]"
        u = config.stages[r.stage].get_stateful(r.unit) if 0 <= r.stage < len(config.stages) \
            else None
        if u is None:
            raise _fail(q, f"no stateful unit {r.unit} in stage {r.stage}")
        if r.word_offset + r.words > m.value_words:
            raise _fail(f"{q}.words", f"value words [{r.word_offset}, "
                                      f"{r.word_offset + r.words}) pass the value's "
                                      f"{m.value_words}")
        if r.first_entry + r.entries > m.max_entries:
            raise _fail(f"{q}.entries", f"entries [{r.first_entry}, "
                                        f"{r.first_entry + r.entries}) pass max_entries "
                                        f"{m.max_entries}")
        if r.stride < r.words:
            raise _fail(f"{q}.stride", f"{r.stride} words cannot hold the slice's {r.words} "
                                       f"value words")
        end = r.get_address(r.first_entry + r.entries - 1, r.word_offset + r.words - 1) + 1
        if end > u.words:
            raise _fail(q, f"entries [{r.first_entry}, {r.first_entry + r.entries}) need "
                           f"{end} words, unit {r.unit} of stage {r.stage} has {u.words}")
        for k, o in enumerate(m.registers[:j]):
            if (r.first_entry < o.first_entry + o.entries
                    and o.first_entry < r.first_entry + r.entries
                    and r.word_offset < o.word_offset + o.words
                    and o.word_offset < r.word_offset + r.words):
                raise _fail(q, f"entries [{r.first_entry}, {r.first_entry + r.entries}) "
                               f"words [{r.word_offset}, {r.word_offset + r.words}) overlap "
                               f"registers[{k}]")
    if m.registers:
        covered = sum(r.entries * r.words for r in m.registers)
        if covered != m.max_entries * m.value_words:
            index, word = _uncovered(m)
            raise _fail(f"{p}.registers", f"word {word} of entry {index} is in no slice (the "
                                          f"slices must hold every value word of every "
                                          f"entry)")


def _uncovered(m: MapBinding) -> tuple[int, int]:
    """The first (entry, word) of ``m`` that no register slice holds (slices do not overlap)."""
    for word in range(m.value_words):
        spans = sorted((r.first_entry, r.first_entry + r.entries) for r in m.registers
                       if r.word_offset <= word < r.word_offset + r.words)
        index = 0
        for lo, hi in spans:
            if lo > index:
                break
            index = max(index, hi)
        if index < m.max_entries:
            return index, word
    raise AssertionError("every word is covered")


def _check_register_sharing(config: PipelineConfig) -> None:
    """No register word holds two map words (slices of one unit, of one map or several)."""
    owner: dict[tuple[int, int, int], str] = {}
    for m in config.maps:
        for j, r in enumerate(m.registers):
            where = f"maps.{m.name}.registers[{j}]"
            for i in range(r.first_entry, r.first_entry + r.entries):
                for w in range(r.word_offset, r.word_offset + r.words):
                    key = (r.stage, r.unit, r.get_address(i, w))
                    if key in owner:
                        raise _fail(where, f"register {key[2]} of stage {r.stage} unit "
                                           f"{r.unit} also holds a word of {owner[key]}")
                    owner[key] = where
