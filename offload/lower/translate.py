"""Symbolic translation of the program's DAG into pipe ops (the lowering's first phase).

Nodes are visited in topological order; each starts from the join of the states its live
incoming edges carry (``offload.lower.state``). Instructions become:

- ALU64 / ALU32: constant folding (the VM's own operation tables, so the results are the
  kernel's), pointer arithmetic folded into ``Pkt`` / ``MapVal`` / ``Stack`` offsets,
  everything else one VLIW op into a new virtual container, speculated (guard TRUE: it has
  no side effect, its result is only read where its block runs);
- conditional jumps: a ``Cond`` for the gateways, or decided when the operands are known
  (constants from this translation or from the analysis: ``Analysis.state_before``), so
  that only live edges remain; bounds checks ``data + N > data_end`` compare ``data_len``;
- memory: ``offload.lower.memory`` (stack bytes, packet window, map values);
- helpers: map lookups (tables), adjust head / tail, redirect; the rest is a
  ``LowerReason`` and its packets are cut to the host;
- bpf-to-bpf calls: the callee runs inline in a fresh frame (r6-r10 saved and restored).

Anything the translation cannot express raises ``Unsupported``; the node's paths end there
and the mapper retries with that slot cut.
"""

from __future__ import annotations

from typing import Any

from ebpf.analysis import SINK, descendants, post_dominators
from ebpf.analysis.dataflow import Analysis, Region
from ebpf.code.isa import AluOp, CallKind, InsnClass, JmpOp, Kind, PseudoSrc, Source
from ebpf.kernel_enums import helper_name
from ebpf.loader.elf import ElfObject
from ebpf.loader.program import ProgramDef
from ebpf.vm.alu import JMP32_OPS, JMP64_OPS
from offload.lower.alu import AluMixin
from offload.lower.dag import Dag
from offload.lower.ir import (
    DATA_LEN,
    INGRESS,
    M32,
    M64,
    REDIRECT,
    RX_QUEUE,
    TRUE,
    Cond,
    Const,
    Ctx,
    ExternOp,
    Lookup,
    LowerParams,
    LowerReason,
    MapPtr,
    MapVal,
    Meta,
    Op,
    Pkt,
    PktEnd,
    Stack,
    Top,
    Val,
    Value,
    node_guard,
)
from offload.lower.ir import (
    AluOp as PAlu,
)
from offload.lower.memory import MemoryMixin, Unsupported
from offload.lower.merged import MergedMixin
from offload.lower.state import (
    TOP,
    Phi,
    State,
    canonical,
    initial_state,
    is_merged_value,
    join_states,
    view_of,
)

MIN_PACKET = 14  # docs/pipeline.md section 3: min_packet_bytes, ETH_HLEN
_JMP_REL = {JmpOp.JEQ: "eq", JmpOp.JNE: "ne", JmpOp.JGT: "ugt", JmpOp.JGE: "uge",
            JmpOp.JLT: "ult", JmpOp.JLE: "ule", JmpOp.JSGT: "sgt", JmpOp.JSGE: "sge",
            JmpOp.JSLT: "slt", JmpOp.JSLE: "sle", JmpOp.JSET: "set"}
SWAP = {"eq": "eq", "ne": "ne", "ugt": "ult", "uge": "ule", "ult": "ugt", "ule": "uge",
        "sgt": "slt", "sge": "sle", "slt": "sgt", "sle": "sge"}
# ptr REL data_end, as a comparison of data_len with the pointer's constant offset k
_LEN_REL = {"ugt": "ult", "uge": "ule", "ult": "ugt", "ule": "uge", "sgt": "ult",
            "sge": "ule", "slt": "ugt", "sle": "uge", "eq": "eq", "ne": "ne"}
# ptr REL data_end with ptr = C[base] + k: C[base] REL' (data_len - k), signed
_BASE_REL = {"ugt": "sgt", "uge": "sge", "ult": "slt", "ule": "sle", "sgt": "sgt",
             "sge": "sge", "slt": "slt", "sle": "sle", "eq": "eq", "ne": "ne"}
_ALU_NAMES = {AluOp.ADD: "add", AluOp.SUB: "sub", AluOp.MUL: "mul", AluOp.OR: "or",
              AluOp.AND: "and", AluOp.LSH: "lsh", AluOp.RSH: "rsh", AluOp.ARSH: "arsh",
              AluOp.XOR: "xor", AluOp.DIV: "div", AluOp.MOD: "mod"}


class Translator(AluMixin, MemoryMixin, MergedMixin):
    """Runs the symbolic translation of ``dag``; results in the attributes below."""

    def __init__(self, an: Analysis, obj: ElfObject, prog: ProgramDef, params: LowerParams,
                 dag: Dag) -> None:
        self.an, self.obj, self.prog, self.params, self.dag = an, obj, prog, params, dag
        self.values: list[Value] = []
        self.ops: list[Op] = []
        self.deps: list[tuple[Any, Any, str]] = []  # (src, dst, kind): ops or Conds
        self.reasons: dict[int, LowerReason] = {}
        self.conds: dict[int, Cond] = {}
        self.out: dict[tuple[int, int], State] = {}
        self.live: list[int] = []
        self.exits: list[tuple[int, Any]] = []
        self.punts: list[int] = []
        self.lookups: list = []
        self.extracts: dict[tuple[int, int], Value] = {}
        self._cache: dict[Any, Value] = {}
        self._phis: dict[int, Value] = {}
        self.base_rel: dict[int, tuple[Any, int, int]] = {}
        self._merged: dict[int, MapVal] = {}
        self.written = self._written_words()
        self._dag_reach, self._always = _dag_relations(dag)
        self.has_adjust_head = any(
            prog.insns[i].kind is Kind.CALL and prog.insns[i].src == CallKind.HELPER
            and helper_name(prog.insns[i].imm) == "xdp_adjust_head"
            for i in range(len(prog.insns)))

    # -- building blocks ------------------------------------------------------------------

    def value(self, name: str, kind: str = "op", bits: int = 64, slot: int | None = None,
              extract: tuple[int, int] | None = None) -> Value:
        v = Value(len(self.values), name, kind, bits, extract, slot)
        self.values.append(v)
        return v

    def emit(self, op: Op) -> Op:
        op.id = len(self.ops)
        self.ops.append(op)
        for v in op.reads():
            if isinstance(v, Value):
                v.uses.append(op)
        if isinstance(op.dst, Value):
            op.dst.defs.append(op)
        return op

    def alu(self, n: int, slot: int | None, guard: tuple, op: str, dst: Any = None,
            a: Any = None, b: Any = None, imm: int = 0, width: int = 64, size: int = 8,
            offset: int = 0, signed: bool = False, bits: int | None = None,
            name: str = "") -> PAlu:
        if dst is None and op not in ("wst", "wstv", "adjh", "adjt"):
            dst = self.value(name or f"{op}@{slot}", bits=bits if bits is not None else width,
                             slot=slot)
        return self.emit(PAlu(len(self.ops), n, slot, guard, op, dst, a, b, imm, width, size,
                              offset, signed))  # type: ignore[return-value]

    def dep(self, src: Any, dst: Any, kind: str) -> None:
        self.deps.append((src, dst, kind))

    def dag_reach(self, a: int, b: int) -> bool:
        """Some path leads from node a to node b (or a is b)."""
        return bool(self._dag_reach.get(a, 0) >> b & 1)

    def always_reaches(self, a: int, b: int) -> bool:
        """Every path from node a reaches node b (b post-dominates a; cuts end paths)."""
        while a != b:
            if a not in self._always or self._always[a] == a:
                return False
            a = self._always[a]
        return True

    def unsupported(self, slot: int, what: str, fix: str = "") -> Unsupported:
        return Unsupported(slot, what, fix)

    # -- materialisation -----------------------------------------------------------------

    def src_of(self, sym: Any, n: int, slot: int | None, bits: int = 64) -> Any:
        """A PHV source whose low ``bits`` bits equal ``sym``'s (ops when needed)."""
        if isinstance(sym, Val):
            if sym.off == 0 and (8 * sym.size >= bits or sym.src.bits <= 8 * sym.size):
                return sym.src
            return self._slice(sym, n, slot)
        if isinstance(sym, Const):
            key = ("const", sym.value)
            if key not in self._cache:
                self._cache[key] = self.alu(n, slot, TRUE, "mov", imm=sym.value,
                                            bits=max(1, sym.value.bit_length()),
                                            name=f"const {sym.value:#x}").dst
            return self._cache[key]
        if isinstance(sym, Phi):
            return self.phi_value(sym, slot)
        if isinstance(sym, Pkt):
            if sym.base is None:
                return self.src_of(Const(sym.k), n, slot)
            if sym.k == 0:
                return sym.base
            key = ("pkt", sym.base.id, sym.k)
            if key not in self._cache:
                self._cache[key] = self.alu(n, slot, TRUE, "add", a=sym.base, imm=sym.k,
                                            name=f"{sym.base.name}+{sym.k}").dst
            return self._cache[key]
        raise self.unsupported(slot or 0, f"a value the lowering cannot hold in a container "
                                          f"({_describe(sym)})")

    def _slice(self, sym: Val, n: int, slot: int | None) -> Value:
        key = ("ext", id(sym.src), sym.off, sym.size)
        if isinstance(sym.src, Meta):
            key = None  # metadata changes (adjust ops): never shared
        if key is not None and key in self._cache:
            return self._cache[key]
        if sym.size in (1, 2, 4, 8) and sym.off + sym.size <= 8:
            v = self.alu(n, slot, TRUE, "ext", a=sym.src, size=sym.size, offset=sym.off,
                         bits=8 * sym.size, name=f"{_name(sym.src)}[{sym.off}:{sym.size}]").dst
        else:
            t = self.alu(n, slot, TRUE, "rsh", a=sym.src, imm=8 * sym.off).dst
            v = self.alu(n, slot, TRUE, "and", a=t, imm=(1 << (8 * sym.size)) - 1,
                         bits=8 * sym.size).dst
        if key is not None:
            self._cache[key] = v
        return v

    def operand_b(self, sym: Any, n: int, slot: int, bits: int = 64) -> tuple[Any, int]:
        """(source, 0) or (None, immediate) for a VLIW or stateful B operand."""
        if isinstance(sym, Const):
            return None, sym.value
        return self.src_of(sym, n, slot, bits), 0

    def phi_value(self, phi: Phi, slot: int | None) -> Value:
        """The container of a lazy phi: one copy per incoming edge, guarded by the edge."""
        if id(phi) in self._phis:
            return self._phis[id(phi)]
        leaves = [s for _, s in phi.incoming]
        pointer = any(isinstance(s, Pkt) for s in leaves)
        if pointer and not all(isinstance(s, (Pkt, Phi)) or s == Const(0) for s in leaves):
            raise self.unsupported(slot or 0, "a packet pointer merged with a scalar")
        p = self.value(f"phi@{phi.node}", "phi", slot=slot)
        self._phis[id(phi)] = p
        bits = 0
        consts: dict[int, list[tuple[int, tuple]]] = {}
        others = []
        for pred, sym in phi.incoming:
            g = ("phi", pred, phi.node)  # read only on paths through the merge
            c = sym.value if isinstance(sym, Const) else \
                sym.k & M64 if isinstance(sym, Pkt) and sym.base is None else None
            if c is None:
                others.append((pred, g, sym))
            else:
                consts.setdefault(c, []).append((pred, g))
        if consts:
            # the most frequent constant unconditionally first (it needs no predicate), then
            # one write per other constant under the OR of its edges
            default = max(consts, key=lambda c: (len(consts[c]), -c))
            self.alu(consts[default][0][0], slot, TRUE, "mov", dst=p, imm=default)
            for c, edges in consts.items():
                bits = max(bits, c.bit_length())
                if c == default:
                    continue
                guard = edges[0][1] if len(edges) == 1 else ("or", tuple(g for _, g in edges))
                self.alu(edges[0][0], slot, guard, "mov", dst=p, imm=c).exclusive = True
        for pred, g, sym in others:
            if isinstance(sym, Phi):
                inner = self.phi_value(sym, slot)
                copy = self.alu(pred, slot, g, "mov", dst=p, b=inner)
                bits = max(bits, inner.bits)
            elif isinstance(sym, Pkt) and sym.base is not None and sym.k:
                copy = self.alu(pred, slot, g, "add", dst=p, a=sym.base, imm=sym.k)
                bits = 64
            else:
                src = self.src_of(sym, pred, slot)
                copy = self.alu(pred, slot, g, "mov", dst=p, b=src)
                bits = max(bits, src.bits if isinstance(src, Value) else 64)
            copy.exclusive = True  # the incoming edges of one merge
        p.bits = max(1, bits) if phi.size == 8 else min(max(1, bits), 8 * phi.size)
        return p

    def merged_lookup(self, phi: Phi, slot: int) -> MapVal | Phi:
        """Value pointers of several lookups of one array merged: one lookup whose index is
        the phi of theirs (``if (v) (*v)++`` after clang merged the inlined copies)."""
        if id(phi) in self._merged:
            return self._merged[id(phi)]
        leaves = [s for _, s in phi.leaves()]
        first = leaves[0]
        if all(s.lookup is first.lookup and s.off == first.off for s in leaves):
            return first
        m = self.obj.maps[first.lookup.map]
        if any(s.lookup.map != first.lookup.map or s.off != first.off for s in leaves) or \
                m.type_name not in ("array", "percpu_array") or m.is_global_data:
            return phi  # each leaf's own table (offload.lower.merged)

        def index(p: Phi) -> Phi:
            return Phi(p.node, tuple((pred, index(x) if isinstance(x, Phi) else
                                      x.lookup.info["index"]) for pred, x in p.incoming), 4)

        lk = Lookup(len(self.lookups), first.lookup.map, phi.node, slot, None)
        lk.info["index"] = index(phi)
        self.lookups.append(lk)
        out = MapVal(lk, first.off)
        self._merged[id(phi)] = out
        return out

    def scalar(self, sym: Any, n: int, slot: int) -> Any:
        """``sym`` as a scalar Sym usable as an operand (phis materialised)."""
        if isinstance(sym, Phi):
            if any(isinstance(s, Pkt) for _, s in sym.leaves()):
                raise self.unsupported(slot, "a merged packet pointer used as a number")
            return Val(self.phi_value(sym, slot), 0, sym.size)
        return sym

    def pointer(self, sym: Any, slot: int) -> Any:
        """``sym`` as a pointer Sym (a phi of packet pointers becomes a variable offset)."""
        if isinstance(sym, Phi):
            leaves = [s for _, s in sym.leaves()]
            if all(isinstance(s, Pkt) or s == Const(0) for s in leaves) and any(
                    isinstance(s, Pkt) for s in leaves):  # NULL on some paths: offset 0
                return Pkt(self.phi_value(sym, slot), 0)
            if all(isinstance(s, MapVal) for s in leaves):
                return self.merged_lookup(sym, slot)
            if is_merged_value(sym):  # NULL on some paths
                return sym
            if any(isinstance(s, Pkt) for s in leaves):
                raise self.unsupported(slot, "a pointer merged from different kinds of "
                                             "pointers")
        return sym

    def reg(self, st: State, r: int, n: int, slot: int) -> Any:
        """Register ``r`` before ``slot``: the translation's value, or the analysis' constant."""
        sym = st.regs[r]
        if isinstance(sym, (Const, Pkt, PktEnd, Ctx, MapPtr, MapVal, Stack)):
            return sym
        if isinstance(sym, Val) and isinstance(sym.src, Value) and sym.src.view is not None:
            view = view_of(sym)
            simpler = canonical(view, lambda x, k: self.extract(x, k, slot),
                                self.params.window_bytes) if view is not None else None
            if simpler is not None:
                sym = simpler
        a = self.an.state_before(slot, self.dag.nodes[n].cs)
        if a is not None:
            v = a.reg(r)
            if v.kind is Region.SCALAR and v.num.is_const:
                return Const(v.num.value)
        return sym

    # -- the walk -------------------------------------------------------------------------

    def run(self) -> None:
        for n in self.dag.order:
            node = self.dag.nodes[n]
            if n == self.dag.entry:
                st: State | None = initial_state()
            else:
                incoming = [(p, self.out[(p, n)]) for p in node.preds if (p, n) in self.out]
                st = join_states(n, incoming) if incoming else None
            if st is None:
                continue
            self.live.append(n)
            try:
                self._node(n, st)
            except Unsupported as exc:
                self.reasons.setdefault(exc.slot, LowerReason(exc.slot, exc.what, exc.fix))
        if not self.reasons:
            self.coalesce()

    def coalesce(self) -> None:
        """A phi copy ``mov p <- v`` whose v is computed by a speculated op read by nothing
        else: that op writes p itself, under the copy's edge predicate (one stage less)."""
        in_conds = {id(x) for c in self.conds.values() for x in (
            c.a[0] if isinstance(c.a, tuple) else None, c.b) if x is not None}
        for copy in list(self.ops):
            if not (isinstance(copy, PAlu) and copy.op == "mov" and copy.exclusive
                    and isinstance(copy.b, Value) and isinstance(copy.dst, Value)
                    and copy.width == 64 and copy.pred == (None, False)):
                continue
            v, p = copy.b, copy.dst
            if len(v.defs) != 1 or v.uses != [copy] or v.zero_init or v.kind != "op" or \
                    id(v) in in_conds:
                continue
            d = v.defs[0]
            if not (isinstance(d, PAlu) and d.guard == TRUE and not d.side_effect
                    and d.op not in ("wld", "wldv", "wst", "wstv", "adjh", "adjt")
                    and d.width == 64):
                continue
            d.dst, d.guard, d.exclusive, d.node = p, copy.guard, True, copy.node
            p.defs = [d if x is copy else x for x in p.defs]
            p.bits = max(p.bits, v.bits)
            v.defs, v.uses = [], []
            copy.dead = copy.merged = True  # type: ignore[attr-defined]
            copy.guard = ("true",)
            copy.b = None

    def _node(self, n: int, st: State) -> None:
        node = self.dag.nodes[n]
        body = node.slots
        for i, slot in enumerate(body):
            last = i == len(body) - 1
            insn = self.prog.insns[self._index(slot)]
            kind = insn.kind
            if last and kind is Kind.JCOND and node.term == "branch":
                self._branch(n, st, slot, insn)
                return
            if kind is Kind.JCOND:  # a branch with one feasible edge
                continue
            if kind is Kind.JA:
                continue
            if kind is Kind.EXIT:
                if not node.cs:
                    self.exits.append((n, st.regs[0]))
                    return
                st = self._return(st)
                continue
            if kind is Kind.CALL and insn.src == CallKind.LOCAL:
                st = self._call(st)
                continue
            st = self._insn(n, st, slot, insn)
        if node.term == "punt":
            self.punts.append(n)
            return
        if node.term == "dead":
            raise self.unsupported(node.last or node.block, "a path the analysis found "
                                                             "infeasible")
        for s in node.succs:
            if s >= 0:
                self.out[(n, s)] = st

    def _index(self, slot: int) -> int:
        if not hasattr(self, "_slot_index"):
            self._slot_index = {s: i for i, s in enumerate(self.prog.get_slot_offsets())}
        return self._slot_index[slot]

    def _call(self, st: State) -> State:
        saved = tuple(st.regs[6:11])
        depth = st.depth + 1
        regs = list(st.regs)
        regs[0] = TOP
        for r in range(6, 10):
            regs[r] = TOP
        regs[10] = Stack(depth, 0)
        stack = {k: v for k, v in st.stack.items() if k[0] < depth}
        out = st.copy()
        out.regs, out.frames, out.stack = tuple(regs), st.frames + (saved,), stack
        return out

    def _return(self, st: State) -> State:
        saved = st.frames[-1]
        depth = st.depth
        regs = [st.regs[0]] + [TOP] * 5 + list(saved)
        regs = [TOP if isinstance(s, Stack) and s.depth >= depth else s for s in regs]
        out = st.copy()
        out.regs, out.frames = tuple(regs), st.frames[:-1]
        out.stack = {k: v for k, v in st.stack.items() if k[0] < depth}
        return out

    # -- instructions ---------------------------------------------------------------------

    def _insn(self, n: int, st: State, slot: int, insn: Any) -> State:
        kind = insn.kind
        if kind in (Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.BSWAP):
            return st.with_reg(insn.dst, self._alu(n, st, slot, insn))
        if kind is Kind.LDDW:
            src = insn.src
            if src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_FD):
                return st.with_reg(insn.dst, MapPtr(insn.imm))
            if src in (PseudoSrc.MAP_IDX_VALUE, PseudoSrc.MAP_VALUE):
                lk = self.global_lookup(n, slot, insn.imm)
                return st.with_reg(insn.dst, MapVal(lk, insn.next_imm or 0))
            if src == PseudoSrc.IMM64:
                return st.with_reg(insn.dst, Const(insn.imm64))
            raise self.unsupported(slot, "a 64-bit load of a function or BTF address")
        if kind in (Kind.LDX, Kind.LDXSX):
            ptr = self.pointer(st.regs[insn.src], slot)
            sym = self.load(n, st, slot, ptr, insn.off, insn.spec.width, kind is Kind.LDXSX)
            return st.with_reg(insn.dst, sym)
        if kind in (Kind.ST, Kind.STX):
            raw = st.regs[insn.dst]
            ptr = self.pointer(raw, slot)
            val = Const(insn.imm) if kind is Kind.ST else st.regs[insn.src]
            if not isinstance(val, Phi):
                val = Const(insn.imm) if kind is Kind.ST else self.reg(st, insn.src, n, slot)
            self.store(n, st, slot, ptr, insn.off, insn.spec.width, val, raw)
            return st
        if kind is Kind.ATOMIC:
            return self.atomic(n, st, slot, insn)
        if kind is Kind.CALL:
            if insn.src != CallKind.HELPER:
                raise self.unsupported(slot, "a kfunc call")
            return self._helper(n, st, slot, helper_name(insn.imm))
        raise self.unsupported(slot, f"{kind.value} instruction")

    # -- branches -------------------------------------------------------------------------

    def _branch(self, n: int, st: State, slot: int, insn: Any) -> None:
        node = self.dag.nodes[n]
        spec = insn.spec
        is64 = spec.cls is InsnClass.JMP
        rel = _JMP_REL[JmpOp(spec.op)]
        a = self.reg(st, insn.dst, n, slot)
        b = self.reg(st, insn.src, n, slot) if spec.source is Source.X else \
            Const(insn.imm & (M64 if is64 else M32))
        fall, taken = node.succs
        decided = None
        cond = None
        flags = self._leafwise(a, b, JmpOp(spec.op), is64)
        if flags is not None:  # decided on every incoming path: a phi of flags
            a, b, rel = Val(self.phi_value(flags, slot), 0, 1), Const(0), "ne"
        a_p, b_p = self.pointer(a, slot), self.pointer(b, slot) if not isinstance(b, Const) \
            else b
        if isinstance(a_p, PktEnd) and isinstance(b_p, Pkt):
            a_p, b_p, rel = b_p, a_p, SWAP.get(rel, rel)
        if isinstance(a_p, Pkt) and isinstance(b_p, PktEnd):
            if rel not in _LEN_REL:  # JSET: a bit test of two addresses, no bounds check
                raise self.unsupported(slot, "a bit test (JSET) of packet pointers")
            cond = self._bounds(n, st, slot, a_p, rel)
            if isinstance(cond, bool):
                decided, cond = cond, None
        elif is_merged_value(a_p) or is_merged_value(b_p):
            mv, other = (a_p, b_p) if is_merged_value(a_p) else (b_p, a_p)
            if not (isinstance(other, Const) and other.value == 0 and rel in ("eq", "ne")):
                raise self.unsupported(slot, "a comparison of merged map value pointers")
            cond = self.merged_null_check(n, slot, mv, rel == "eq")
            if isinstance(cond, bool):
                decided, cond = cond, None
        elif isinstance(a_p, MapVal) or isinstance(b_p, MapVal):
            mv, other = (a_p, b_p) if isinstance(a_p, MapVal) else (b_p, a_p)
            if not (isinstance(other, Const) and other.value == 0 and rel in ("eq", "ne")):
                raise self.unsupported(slot, "a comparison of a map value pointer")
            cond = self.null_check(n, slot, mv, rel == "eq")
            if isinstance(cond, bool):
                decided, cond = cond, None
        else:
            a_s, b_s = self.scalar(a, n, slot), self.scalar(b, n, slot)
            if isinstance(a_s, Const) and isinstance(b_s, Const):
                decided = (JMP64_OPS if is64 else JMP32_OPS)[JmpOp(spec.op)](
                    a_s.value & (M64 if is64 else M32), b_s.value & (M64 if is64 else M32))
            else:
                if isinstance(a_s, Const) and rel != "set":
                    a_s, b_s, rel = b_s, a_s, SWAP[rel]
                elif isinstance(a_s, Const):
                    a_s, b_s = b_s, a_s
                cond = self._compare(n, slot, rel, a_s, b_s, 64 if is64 else 32)
        live = [s for s in (fall, taken) if s >= 0]
        if decided is not None:
            live = [s for s in ([taken] if decided else [fall]) if s >= 0]
        if cond is not None and len(live) == 2:
            self.conds[n] = cond
        elif len(live) == 2:
            raise self.unsupported(slot, "a branch the lowering cannot decide")
        for s in live:
            self.out[(n, s)] = st

    def _leafwise(self, a: Any, b: Any, op: JmpOp, is64: bool) -> Phi | None:
        """A comparison of a phi with a constant that each incoming value decides (a maybe-
        NULL pointer against 0, a phi of constants): the phi of its outcomes, or None."""
        if isinstance(b, Phi) and not isinstance(a, Phi):
            return None
        if not isinstance(a, Phi) or not isinstance(b, Const):
            return None
        fn = (JMP64_OPS if is64 else JMP32_OPS)[op]
        mask = M64 if is64 else M32

        def decide(x: Any) -> Any:
            if isinstance(x, Phi):
                inner = [(p, decide(v)) for p, v in x.incoming]
                return None if any(v is None for _, v in inner) else Phi(x.node, tuple(inner))
            if isinstance(x, Const):
                return Const(int(fn(x.value & mask, b.value & mask)))
            if not (b.value == 0 and op in (JmpOp.JEQ, JmpOp.JNE)):
                return None
            if isinstance(x, (Pkt, Stack)) or (isinstance(x, MapVal) and
                                               self.never_null(x.lookup)):
                return Const(int(op is JmpOp.JNE))  # a pointer that is never NULL
            return None  # a lookup's result: its hit decides (merged_null_check)

        if not any(isinstance(v, (Pkt, MapVal, Stack)) for _, v in a.leaves()):
            return None
        out = decide(a)
        return out if isinstance(out, Phi) else None

    def _compare(self, n: int, slot: int, rel: str, a: Any, b: Any, width: int) -> Cond:
        if not isinstance(a, Val):
            raise self.unsupported(slot, f"a comparison of {_describe(a)}")
        if a.size not in (1, 2, 4, 8) or a.off + a.size > 8:
            a = Val(self.src_of(a, n, slot))
        if isinstance(b, Const):
            return Cond(rel, (a.src, a.off, a.size), None, b.value, width)
        if not isinstance(b, Val):
            raise self.unsupported(slot, f"a comparison with {_describe(b)}")
        return Cond(rel, (a.src, a.off, a.size), self.src_of(b, n, slot, width), 0, width)

    def _bounds(self, n: int, st: State, slot: int, ptr: Pkt, rel: str) -> Cond | bool:
        """``ptr REL data_end`` as a comparison with data_len (docs/pipeline.md, 13), or
        decided: data_len is at least 14 on the pipeline (shorter packets never enter it,
        and the adjust helpers keep 14 bytes), so ``data + 14 > data_end`` never holds."""
        if ptr.base is None:
            lo = MIN_PACKET
            decided = {"ult": False if ptr.k <= lo else None,
                       "ule": False if ptr.k < lo else None,
                       "ugt": True if ptr.k < lo else None,
                       "uge": True if ptr.k <= lo else None,
                       "eq": False if ptr.k < lo else None,
                       "ne": True if ptr.k < lo else None}[_LEN_REL[rel]]
            if decided is not None:
                return decided
            cond = Cond(_LEN_REL[rel], (DATA_LEN, 0, 8), None, ptr.k, 64)
        else:
            key = ("len-k", ptr.k, tuple(a.id for a in st.adjusts))
            lim = self._cache.get(key)
            if lim is None:
                op = self.alu(n, slot, TRUE, "sub", a=DATA_LEN, imm=ptr.k,
                              name=f"data_len-{ptr.k}")
                self.he_read(op, n, st)
                lim = self._cache[key] = op.dst
            cond = Cond(_BASE_REL[rel], (ptr.base, 0, 8), lim, 0, 64)
        self.he_read(cond, n, st)
        return cond

    # -- helpers --------------------------------------------------------------------------

    def _helper(self, n: int, st: State, slot: int, name: str) -> State:
        if name in ("map_lookup_elem", "map_lookup_percpu_elem"):
            r0 = self.lookup(n, st, slot)
        elif name in ("xdp_adjust_head", "xdp_adjust_tail"):
            st, r0 = self.adjust(n, st, slot, name)
        elif name == "redirect":
            flags = self.scalar(self.reg(st, 3, n, slot), n, slot)
            if not (isinstance(flags, Const) and flags.value == 0):
                raise self.unsupported(slot, "bpf_redirect with flags other than 0")
            ifindex = self.scalar(self.reg(st, 2, n, slot), n, slot)
            b, imm = self.operand_b(ifindex, n, slot, 32)
            self.alu(n, slot, node_guard(n), "mov", dst=REDIRECT, b=b, imm=imm)
            r0 = Const(4)
        elif name == "get_smp_processor_id":
            r0 = Const(0)
        elif name == "csum_diff":
            r0 = self.csum_diff(n, st, slot)
        elif name in ("ktime_get_ns", "ktime_get_boot_ns", "get_prandom_u32"):
            raise self.unsupported(slot, f"bpf_{name}: the pipeline's value is not the host's",
                                   "the timestamp and random externs cannot be proven equal "
                                   "to the kernel's; keep this path on the host")
        else:
            raise self.unsupported(slot, f"bpf_{name} has no pipeline equivalent in the "
                                         f"lowering")
        regs = list(st.regs)
        regs[0] = r0
        for r in range(1, 6):
            regs[r] = TOP
        out = st.copy()
        out.regs = tuple(regs)
        return out

    def csum_diff(self, n: int, st: State, slot: int) -> Any:
        """bpf_csum_diff(from, from_size, to, to_size, seed): the checksum extern
        (docs/pipeline.md 5.7, mode fold16 as the VM's helper), buffers of at most 8 bytes
        from the stack (one container) or at a constant packet offset (the window)."""
        bufs = []
        for ptr_reg, size_reg in ((1, 2), (3, 4)):
            size = self.scalar(self.reg(st, size_reg, n, slot), n, slot)
            if not isinstance(size, Const):
                raise self.unsupported(slot, "bpf_csum_diff with a size not known at load time")
            length = size.value
            if length == 0:
                bufs.append(None)
                continue
            ptr = self.pointer(st.regs[ptr_reg], slot)
            if isinstance(ptr, Stack) and length <= 8:
                data = self.stack_load(n, st, slot, ptr.depth, ptr.off, length)
                bufs.append(("containers", [self.src_of(data, n, slot, 8 * length)], length))
            elif isinstance(ptr, Pkt) and ptr.base is None and not st.adjusted and \
                    0 <= ptr.k and ptr.k + length <= self.params.window_bytes:
                bufs.append(("window", ptr.k, length))
            else:
                raise self.unsupported(slot, f"bpf_csum_diff of a {length}-byte buffer the "
                                             f"extern cannot read (at most 8 bytes from the "
                                             f"stack, or the packet at a constant offset)")
        seed = self.scalar(self.reg(st, 5, n, slot), n, slot)
        seed_src, seed_imm = self.operand_b(seed, n, slot, 32)
        dst = self.value(f"csum_diff@{slot}", "extern", 16, slot=slot)
        op = ExternOp(len(self.ops), n, slot, TRUE, "checksum", dst, bufs[0], bufs[1],
                      seed_imm & M32, seed_src)
        if any(b is not None and b[0] == "window" for b in bufs):
            op.guard = node_guard(n)
            for entry in st.pkt:
                if entry[0].op in ("wst", "wstv"):
                    self.dep(entry[0], op, "action")
        self.emit(op)
        return Val(dst)

    def adjust(self, n: int, st: State, slot: int, name: str) -> tuple[State, Any]:
        delta = self.scalar(self.reg(st, 2, n, slot), n, slot)
        b, imm = self.operand_b(delta, n, slot, 32)
        op = self.alu(n, slot, node_guard(n), "adjh" if name == "xdp_adjust_head" else "adjt",
                      dst=self.value(f"{name}@{slot}", slot=slot), b=b, imm=imm)
        op.side_effect = True
        out = st.copy()
        if name == "xdp_adjust_head":
            if isinstance(delta, Const):
                d = _signed32(delta.value)
                out.head_min = min(st.head_min, st.head_min + d)
                out.head_max = max(st.head_max, st.head_max + d)
                op.may_fault = out.head_min < -self.params.window_headroom
            else:
                out.head_min, out.head_max = -self.params.frame_headroom, self.params.window_bytes
                op.may_fault = True
        for a in st.adjusts:
            self.dep(a, op, "action")
        for r in st.he_reads:
            self.dep(r, op, "reverse_match")
        for e in st.pkt:
            self.dep(e[0], op, "reverse_match")
        out.adjusts, out.he_reads, out.pkt, out.adjusted = (op,), (), (), True
        out.wbytes = {}
        out.regs = tuple(TOP if _packet(s) else s for s in out.regs)
        out.stack = {k: v for k, v in out.stack.items() if not (v[0] == "s" and _packet(v[1]))}
        return out, Val(op.dst)

    def he_read(self, reader: Any, n: int, st: State | None = None) -> None:
        """``reader`` reads head / length: after the adjusts on its path, before later ones."""
        if st is None:
            return
        for a in st.adjusts:
            self.dep(a, reader, "match" if isinstance(reader, Cond) else "action")
        st.he_reads = st.he_reads + (reader,)

    # -- written map words ----------------------------------------------------------------

    def _written_words(self) -> dict[int, set[int] | None]:
        out: dict[int, set[int] | None] = {}
        for a in self.an.iter_accesses():
            if a.region is not Region.MAP_VALUE or not a.write or a.helper or a.map is None:
                continue
            if a.offset is None or a.offset.umax > 1 << 16:
                out[a.map] = None
                continue
            words = out.setdefault(a.map, set())
            if words is not None:
                end = a.offset.umax + (a.size or 8) - 1
                words.update(range(a.offset.umin // 8, end // 8 + 1))
        return out


def _dag_relations(dag: Dag) -> tuple[dict[int, int], dict[int, int]]:
    """(descendant bitsets, immediate post-dominators) of the DAG's nodes; a node whose paths
    share no later node maps to itself."""
    succs = {n: [s for s in dag.nodes[n].succs if s >= 0] for n in dag.order}
    ipdom = post_dominators(dag.order, succs)
    return (descendants(dag.order, succs),
            {n: (p if p != SINK else n) for n, p in ipdom.items() if n != SINK})


def _signed32(v: int) -> int:
    v &= M32
    return v - (1 << 32) if v >> 31 else v


def _packet(sym: Any) -> bool:
    if isinstance(sym, (Pkt, PktEnd)):
        return True
    return isinstance(sym, Phi) and any(isinstance(s, (Pkt, PktEnd)) for _, s in sym.leaves())


def _name(src: Any) -> str:
    return src.name if isinstance(src, Value) else f"meta{src.index}"


def _describe(sym: Any) -> str:
    return {Pkt: "a packet pointer", PktEnd: "data_end", Ctx: "the context pointer",
            MapPtr: "a map pointer", MapVal: "a map value pointer", Stack: "a stack pointer",
            Top: "a value the lowering does not follow"}.get(type(sym), type(sym).__name__)


_ = (INGRESS, RX_QUEUE, Stack)
