"""The pipeline model's stages as generated Python: the same semantics, less interpretation.

``PipelineModel._stage`` interprets a stage's configuration for every packet: it looks each
operation up by name, builds an ``OpInput`` per operation, calls a reader per operand. With
millions of packets (``offload sim`` on a pipe target runs every packet through the model)
that interpretation is most of the time. ``compile_stages`` turns each stage of a
configuration, once per model, into one Python function whose text has the configuration's
constants in it: gateway comparisons, predicate tests and container reads inline, one
reusable operand object per VLIW op (its static fields set once) handed to the op's own
semantics function from ``hw.pipeline.ops``. Tables, stateful units, externs, window
accesses and head/tail adjustments call the same model methods and state as ``_stage``.

The generated function does what ``_stage`` does, in the same order (docs/pipeline.md,
"Stage semantics"): gateways read the predicates as the stage received them, tables are
enabled by the gateway predicates, ops read the PHV as it entered the stage, and every
write lands at the stage's end, side effects only without a fault. ``_stage`` stays the
reference: ``PipelineModel.process_reference`` runs it, and the tests check that both give
the same results on the corpus programs' mappings and packets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hw.pipeline import ops as O
from hw.pipeline.config import Stage

StageFn = Callable[[Any, list, list, int], None]
"""``fn(packet_state, register_writes, table_hits, cycle)``: one stage on one packet."""


class _OpIn:
    """A VLIW op's operands, as ``ops.OpInput`` has them; one per op, reused per packet."""

    __slots__ = ("a", "b", "width", "size", "offset", "signed", "sel")

    def __init__(self, width: int, size: int, offset: int, signed: bool) -> None:
        self.a, self.b, self.sel = 0, 0, False
        self.width, self.size, self.offset, self.signed = width, size, offset, signed


class _Source:
    """Lines of one generated function and the objects its text refers to."""

    def __init__(self, num_containers: int) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {}
        self.nc = num_containers
        self.writes: dict[int, None] = {}  # the PHV indices written, in order

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def write(self, depth: int, index: int, expr: str) -> None:
        """PHV index ``index`` takes ``expr`` at the stage's end (the reference's ``cw``;
        each index a local, as only the last value of each lands and the indices are
        independent)."""
        self.writes.setdefault(index, None)
        self.emit(depth, f"w{index} = {expr}")

    def bind(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.env)}"
        self.env[name] = value
        return name

    def read(self, index: int) -> str:
        """The expression of ``PacketState.read(index)``."""
        if 0 <= index < self.nc:
            return f"c[{index}]"
        return META_EXPR.get(index, "0") if index >= self.nc else f"pk.read({index})"


META_EXPR = {48: "len(pk.pkt)", 49: "pk.ingress", 50: "pk.queue", 51: "pk.verdict",
             52: "pk.redirect", 53: "pk.punt", 54: f"(pk.head & {O.M64})",
             55: f"((pk.end - len(pk.pkt)) & {O.M64})", 56: "(pk.end - pk.head)",
             57: "int(pk.fault)"}
"""``model.META_READERS`` as expressions (the tests hold the two to the same values)."""
SIGNED_CMP = {"sgt": ">", "sge": ">=", "slt": "<", "sle": "<="}
INLINE_ALU = {"mov": "({b}) & {m}", "add": "({a} + {b}) & {m}", "sub": "({a} - {b}) & {m}",
              "or": "({a} | {b}) & {m}", "and": "({a} & {b}) & {m}",
              "xor": "({a} ^ {b}) & {m}"}
"""VLIW ops of ``ops.VLIW_OPS`` whose functions are one expression, written inline (the
random-configuration tests hold them to the functions)."""
UNSIGNED_CMP = {"eq": "==", "ne": "!=", "ugt": ">", "uge": ">=", "ult": "<", "ule": "<="}
"""The unsigned gateway comparisons of ``ops.GATEWAY_CMPS`` as Python operators on the
operands masked to the width."""


def _pred(bits: str, index: int, neg: bool) -> str:
    """The expression of ``PacketState.pred(bits, index, neg)``."""
    return f"((({bits} >> {index}) & 1) == 1) != {neg}"


def _gateways(src: _Source, st: Stage) -> None:
    src.emit(1, "pg = pin")
    for g in st.gateways:
        if g.cmp == "pred":
            r = f"((pin >> {g.a}) & 1) == 1"
        else:
            a = f"(({src.read(g.a)} >> {8 * g.a_offset}) & {O.mask(8 * g.a_size)})"
            b = src.read(g.b) if g.b is not None else str(g.imm)
            w = O.mask(g.width)
            if g.cmp in UNSIGNED_CMP:
                r = f"({a} & {w}) {UNSIGNED_CMP[g.cmp]} ({b} & {w})"
            elif g.cmp == "set":
                r = f"({a} & {w} & {b}) != 0"
            elif g.cmp in SIGNED_CMP:  # ops.signed: ((v & m) ^ sign bit) - sign bit
                sb = 1 << (g.width - 1)
                r = (f"((({a} & {w}) ^ {sb}) - {sb}) {SIGNED_CMP[g.cmp]} "
                     f"((({b} & {w}) ^ {sb}) - {sb})")
            else:
                fn = src.bind("G", O.GATEWAY_BY_NAME[g.cmp].fn)
                r = f"{fn}({a}, {b}, {g.width})"
        src.emit(1, f"r = ({r}) != {g.invert}")
        src.emit(1, f"p_in = {_pred('pin', g.pred_in, g.pred_in_neg)}")
        both = "(r and p_in)" if g.combine == "and" else "(r or p_in)"
        src.emit(1, f"pg = (pg | {1 << g.dst}) if {both} else (pg & {~(1 << g.dst)})")


def _tables(src: _Source, s: int, st: Stage) -> None:
    src.emit(1, "pt = pg")
    for tb in st.tables:
        src.emit(1, "index = None")
        src.emit(1, f"if {_pred('pg', tb.enable, tb.enable_neg)}:")
        parts = [f"{src.read(k.container)}.to_bytes(8, 'little')[{k.offset}:"
                 f"{k.offset + k.size}]" for k in tb.key]
        key = " + ".join(parts) if parts else "b''"
        src.emit(2, f"found = state.lookup({s}, {tb.slot}, {key})")
        src.emit(2, "if found is not None:")
        src.emit(3, "index, data = found")
        for j, c in enumerate(tb.action):
            src.write(3, c, f"int.from_bytes(data[{8 * j}:{8 * j + 8}], 'little')")
        if any(u.index_table == tb.slot for u in st.stateful):
            src.emit(1, f"hits[{tb.slot}] = index")
        src.emit(1, f"hits_log.append(({s}, {tb.slot}, index))")
        if tb.hit:
            src.emit(1, f"pt = (pt | {1 << tb.hit}) if index is not None else "
                        f"(pt & {~(1 << tb.hit)})")


def _ops(src: _Source, op_list: list[Any]) -> None:
    for op in op_list:
        spec = O.VLIW_BY_NAME[op.op]
        if spec.kind == "nop":
            continue  # reads nothing that has an effect, writes nothing
        src.emit(1, f"if {_pred('pt', op.pred, op.pred_neg)}:")
        a = src.read(op.a) if spec.reads_a else "0"
        b = src.read(op.b) if op.b is not None else str(op.imm)
        keep = op.slot not in O.DISCARD_SLOTS
        if spec.kind == "alu" and op.op in INLINE_ALU:
            src.emit(2, "value = " + INLINE_ALU[op.op].format(a=a, b=b, m=O.mask(op.width)))
        elif spec.kind == "alu":
            box = src.bind("I", _OpIn(op.width, op.size, op.offset, op.signed))
            fn = src.bind("F", spec.fn)
            src.emit(2, f"{box}.a = {a}")
            src.emit(2, f"{box}.b = {b}")
            src.emit(2, f"{box}.sel = ((pt >> {op.sel}) & 1) == 1")
            src.emit(2, f"value = {fn}({box})")
        elif spec.window:
            at = f"{op.offset} + {a}" if spec.variable else str(op.offset)
            src.emit(2, f"idx = pk.window_index({at}, {op.size})")
            src.emit(2, "if idx is None:")
            src.emit(3, f"faults.append({O.PUNT_WINDOW_FAULT})")
            if spec.kind == "wstore":
                src.emit(2, "else:")
                src.emit(3, f"stores.append((idx, ({b} & {O.mask(8 * op.size)})"
                            f".to_bytes({op.size}, 'little')))")
                continue
            src.emit(2, "value = None if idx is None else int.from_bytes("
                        f"pk.window[idx:idx + {op.size}], 'little')")
            if op.signed:
                src.emit(2, "if value is not None:")
                src.emit(3, f"value = sext(value, {8 * op.size})")
        elif spec.kind == "adjust":
            src.emit(2, f"delta = signed({b}, 32)")
            src.emit(2, f"value, change = adjust_outcome(pk, {op.op!r}, delta)")
            src.emit(2, "if change == 'fault':")
            src.emit(3, f"faults.append({O.PUNT_HEADROOM_FAULT})")
            src.emit(3, "value = None")
            src.emit(2, "elif change == 'ok':")
            src.emit(3, f"adjust = ({op.op!r}, delta)")
        else:
            raise AssertionError(f"VLIW op kind {spec.kind!r} has no generated form")
        if keep:
            src.emit(2, "if value is not None:")
            src.write(3, op.slot, "value")


def _stateful(src: _Source, s: int, st: Stage) -> None:
    for u in st.stateful:
        src.emit(1, f"if {_pred('pt', u.pred, u.pred_neg)}:")
        if u.index_table is not None:
            src.emit(2, f"index = hits.get({u.index_table})")
        else:
            src.emit(2, f"index = {src.read(u.index_container)} & {O.M32}")
        src.emit(2, "if index is not None:")
        src.emit(3, f"addr = {u.base} + index * {u.stride}")
        src.emit(3, f"if addr < {u.words}:")
        bits, shift = 8 * u.size, 8 * u.offset
        fn = src.bind("S", O.STATEFUL_BY_NAME[u.op].fn)
        b = src.read(u.b) if u.b is not None else str(u.imm)
        src.emit(4, f"word = registers[({s}, {u.unit})][addr]")
        src.emit(4, f"old = (word >> {shift}) & {O.mask(bits)}")
        src.emit(4, f"new = {fn}(old, {b}, {src.read(u.cmp)}, {bits})")
        if u.fetch is not None:
            src.write(4, u.fetch, "old")
        src.emit(4, "if new is not None:")
        src.emit(5, f"reg_writes.append(RegisterWrite({s}, {u.unit}, addr, word, "
                    f"(word & {~(O.mask(bits) << shift) & O.M64}) | (new << {shift})))")


def _externs(src: _Source, s: int, st: Stage) -> None:
    for e in st.externs:
        obj = src.bind("E", e)
        src.emit(1, f"if {_pred('pt', e.pred, e.pred_neg)}:")
        src.emit(2, f"value = extern_value({s}, {obj}, pk, cycle, rng)")
        src.emit(2, "if value is None:")
        src.emit(3, f"faults.append({O.PUNT_WINDOW_FAULT})")
        src.emit(2, "else:")
        src.write(3, e.dst, "value")


def _end(src: _Source, has: dict[str, bool]) -> None:
    """The stage's end, as ``_stage`` ends it (the parts this stage can need)."""
    if has["faults"]:
        src.emit(1, "if faults and not pk.fault:")
        src.emit(2, "pk.fault = True")
        src.emit(2, "pk.punt = faults[0]")
    meta = {O.META_VERDICT: "verdict", O.META_REDIRECT: "redirect", O.META_PUNT: "punt"}
    for k in src.writes:
        if k < src.nc:
            src.emit(1, f"if w{k} is not NONE:")
            src.emit(2, f"c[{k}] = w{k}")
        elif k in meta:
            src.emit(1, f"if w{k} is not NONE and not pk.fault:")
            src.emit(2, f"pk.{meta[k]} = w{k} & {O.M32}")
    src.emit(1, "pk.preds = pt | 1")
    if not (has["stores"] or has["stateful"] or has["externs"] or has["adjust"]):
        return
    src.emit(1, "if pk.fault:")
    src.emit(2, "return")
    if has["stores"]:
        src.emit(1, "for idx, data in stores:")
        src.emit(2, "pk.window[idx:idx + len(data)] = data")
    if has["stateful"]:
        src.emit(1, "for w in reg_writes:")
        src.emit(2, "registers[(w.stage, w.unit)][w.addr] = w.new")
        src.emit(1, "writes.extend(reg_writes)")
    if has["externs"]:
        src.emit(1, "if rng:")
        src.emit(2, "state.rng.update(rng)")
    if has["adjust"]:
        src.emit(1, "if adjust is not None:")
        src.emit(2, "apply_adjust(pk, *adjust)")


def compile_stage(model: Any, s: int, st: Stage, op_list: list[Any]) -> StageFn:
    """Stage ``s`` of ``model``'s configuration as one function (see the module doc)."""
    from hw.pipeline.model import RegisterWrite

    kinds = {O.VLIW_BY_NAME[op.op].kind for op in op_list}
    has = {"stores": "wstore" in kinds, "adjust": "adjust" in kinds,
           "stateful": bool(st.stateful), "externs": bool(st.externs)}
    has["faults"] = has["externs"] or bool(kinds & {"wload", "wstore", "adjust"})
    src = _Source(model.target.num_containers)
    src.emit(0, "def stage(pk, writes, hits_log, cycle):")
    src.emit(1, "c = pk.c")
    src.emit(1, "pin = pk.preds")
    if st.tables or st.stateful or st.externs:
        src.emit(1, "state = model.state")
        src.emit(1, "registers = state.registers")
    init_at = len(src.lines)
    _gateways(src, st)
    if any(u.index_table is not None for u in st.stateful):
        src.emit(1, "hits = {}")
    _tables(src, s, st)
    for flag, line in (("faults", "faults = []"), ("stores", "stores = []"),
                       ("adjust", "adjust = None")):
        if has[flag]:
            src.emit(1, line)
    _ops(src, op_list)
    if has["stateful"]:
        src.emit(1, "reg_writes = []")
    _stateful(src, s, st)
    if has["externs"]:
        src.emit(1, "rng = {}")
    _externs(src, s, st)
    _end(src, has)
    src.lines[init_at:init_at] = ["    " + " = ".join(
        [*(f"w{k}" for k in src.writes), "NONE"])] if src.writes else []
    env = dict(src.env, model=model, NONE=None, RegisterWrite=RegisterWrite, sext=O.sext,
               signed=O.signed, adjust_outcome=model.adjust_outcome,
               extern_value=model.extern_value, apply_adjust=model._apply_adjust)
    exec(compile("\n".join(src.lines), f"<pipeline stage {s}>", "exec"), env)  # noqa: S102
    return env["stage"]


def compile_stages(model: Any) -> list[StageFn]:
    """Every stage of ``model``'s configuration, in order."""
    return [compile_stage(model, s, st, model._ops[s])
            for s, st in enumerate(model.config.stages)]
