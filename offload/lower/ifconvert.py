"""If-conversion: every guard becomes a predicate bit computed by gateways.

Branches are not taken on a pipeline: every packet crosses every stage and an op only acts
when its predicate holds. The predicate of a DAG node follows its **control dependence**
(Ferrante, Ottenstein and Warren, "The Program Dependence Graph and Its Use in
Optimization", TOPLAS 1987; as if-conversion, Park and Schlansker, "On Predicated
Execution", HP Labs 1991): node Y runs iff one of the branch outcomes (X, side) it is
control dependent on happens, so

    P(Y) = OR over (X, side) in CD(Y) of  P(X) AND cond(X, side)

with P(Y) = 1 (predicate 0) when Y post-dominates the entry. Nodes with the same control
dependences share a predicate: a diamond's join needs no gateway. One term is one gateway
(``cmp`` on the branch's operands, ``pred_in`` = P(X), ``combine`` and, ``invert`` for the
fall-through side); a table's hit bit is itself the term when the table is enabled by
P(X); ORs of terms are trees of ``pred`` gateways (each level one stage: gateways read the
predicates a stage entered with).

Exits: the verdict is ``r0`` at the program's exit; clang merges the returns into one
``exit`` with r0 a phi of constants, so the leaves of that phi are grouped by value: the
most frequent becomes the deparser's default verdict, each other value one ``mov`` into
the verdict slot under the OR of its leaves' edge predicates. Cut paths (``punt`` nodes)
write the punt reason 16 (docs/pipeline.md, section 7) under the OR of their predicates.
"""

from __future__ import annotations

import heapq
import sys
from collections import Counter
from typing import Any

from ebpf.analysis import SINK, descendants, dominates, immediate_dominators, post_dominators
from offload.lower.ir import (
    M32,
    PUNT,
    TRUE,
    VERDICT,
    AluOp,
    Cond,
    Const,
    GatewayOp,
    Pred,
    StatefulOp,
    TableOp,
    Top,
    node_guard,
)
from offload.lower.memory import Unsupported
from offload.lower.state import Phi

PUNT_CUT = 16  # hw.pipeline.ops.PUNT_FIRST_CUT: the mapper's cuts
_TRUE = (None, False)


class IfConverter:
    """Resolves the guards of a ``Translator``'s ops into predicates (gateway ops)."""

    def __init__(self, t: Any) -> None:
        self.t = t
        live = set(t.live)
        self.live = live
        self.succs: dict[int, list[int]] = {n: [] for n in live}
        self.preds: dict[int, list[int]] = {n: [] for n in live}
        for (a, b) in t.out:
            if a in live and b in live:
                self.succs[a].append(b)
                self.preds[b].append(a)
        self.order = [n for n in t.dag.order if n in live]
        self.ipdom = post_dominators(self.order, self.succs)
        self.idom = immediate_dominators(self.order[0], self.succs, self.order)
        self.desc = descendants(self.order, self.succs)
        self.cd = self._control_dependence()
        self.preds_made: list[Pred] = []
        self._or_cache: dict[tuple, tuple] = {}
        self._time: dict[int, int] = {}
        self._busy: set[int] = set()
        self._formula: dict[int, frozenset] = {}
        self._wformula: dict[tuple[int, int], frozenset] = {}
        self._mat: dict[frozenset, tuple] = {}
        self._lit_cache: dict[tuple, tuple] = {}
        self._resolved: dict[tuple, tuple] = {}
        self._deps_into: dict[int, list[tuple[Any, str]]] = {}
        self._cond_deps: dict[int, list[tuple[Any, str]]] = {}
        for src, dst, kind in t.deps:
            if isinstance(src, Cond):
                continue
            if isinstance(dst, Cond):
                self._cond_deps.setdefault(id(dst), []).append((src, kind))
            else:
                self._deps_into.setdefault(dst.id, []).append((src, kind))

    # -- graph ----------------------------------------------------------------------------

    def dominates(self, a: int, b: int) -> bool:
        return dominates(self.idom, a, b)

    def implied(self, x: int, side: int, m: int) -> bool:
        """Does every path that reaches ``m`` take ``side`` at branch ``x``?"""
        if not self.dominates(x, m):
            return False
        other = [s for s in self.succs[x] if self.t.dag.succ_side(x, s) != side]
        return not any(self.desc[s] >> m & 1 for s in other)

    def _control_dependence(self) -> dict[int, frozenset]:
        cd: dict[int, set] = {n: set() for n in self.live}
        for x in self.order:
            if len(self.succs[x]) < 2:
                continue
            stop = self.ipdom[x]
            for s in self.succs[x]:
                side = self.t.dag.succ_side(x, s)
                y = s
                while y != stop and y != SINK:
                    cd[y].add((x, side))
                    y = self.ipdom[y]
        return {n: frozenset(v) for n, v in cd.items()}

    # -- predicates -----------------------------------------------------------------------
    #
    # A predicate is built from a **conjunction** of items: literals (a branch comparison,
    # possibly negated; a table's hit bit) and predicates already made. P(Y) for a node with
    # one control dependence (X, side) is P(X)'s conjunction plus X's literal, so a chain of
    # nested conditions is one flat conjunction, built as a tree: the two items available
    # earliest are combined first (a gateway comparing and ANDing its pred_in, or a `pred`
    # gateway on two predicates), each combination available one stage later. Availability
    # comes from an as-soon-as-possible estimate of the stage of every op (``op_time``). A
    # node with several control dependences ORs its terms the same way.

    def _new_pred(self, name: str, producer: Any) -> Pred:
        p = Pred(len(self.preds_made), name, producer)
        self.preds_made.append(p)
        return p

    def _gateway(self, node: int, slot: int | None, name: str, stage: int, **kw: Any) -> tuple:
        gw = GatewayOp(len(self.t.ops), node, slot, **kw)
        self.t.emit(gw)
        gw.out = self._new_pred(name, gw)
        self._time[gw.id] = stage
        return (gw.out, False)

    def hit_pred(self, table: TableOp) -> Pred:
        if table.hit is None:
            table.hit = self._new_pred(f"{table.lookup.info.get('name', 'table')} hit", table)
        return table.hit

    # readiness estimates (stage numbers, as soon as possible)

    def op_time(self, op: Any) -> int:
        if op.id in self._time:
            return self._time[op.id]
        if op.id in self._busy:
            return 0
        self._busy.add(op.id)
        t = 0
        for v in op.reads():
            t = max(t, self.value_time(v))
        if not isinstance(op, GatewayOp) and op.guard != ("true",):
            ref = self.resolve(op.guard)
            t = max(t, self.ref_time(ref))
        for src, kind in self._deps_into.get(op.id, ()):
            t = max(t, self.op_time(src) + (1 if kind in ("action", "match") else 0))
        if isinstance(op, StatefulOp) and op.table is not None:
            t = max(t, self.op_time(op.table))
        self._busy.discard(op.id)
        self._time[op.id] = t
        return t

    def value_time(self, v: Any) -> int:
        if not hasattr(v, "defs") or v.kind == "extract" or not v.defs:
            return 0
        return max(self.op_time(d) + 1 for d in v.defs)

    def ref_time(self, ref: tuple) -> int:
        """The stage an op predicated by ``ref`` can run in (a gateway: one later)."""
        if ref[0] is None:
            return 0
        return self.op_time(ref[0].producer)

    # formulas: frozensets of ("lit", node, side) / ("ref", pred, neg)

    def formula(self, n: int) -> frozenset:
        if n in self._formula:
            return self._formula[n]
        cds = self.cd[n]
        if not cds:
            out: frozenset = frozenset()
        elif len(cds) == 1:
            (x, side), = cds
            out = self.term_formula(x, side)
        else:
            refs = [self.materialize(self.term_formula(x, side)) for x, side in sorted(cds)]
            out = frozenset([("ref",) + self.or_preds(refs)])
        self._formula[n] = out
        return out

    # weakened formulas: exact only for packets that reach node m (values read after m).
    # For those packets, a branch whose other side cannot reach m is always taken the same
    # way, so its literal can go: W_m(Y) <=> "reaches Y" for every packet that reaches m.

    def _other_reaches(self, x: int, m: int) -> bool:
        cond_sides = self.succs[x]
        return sum(1 for s in cond_sides if self.desc[s] >> m & 1) > 1

    def wformula(self, n: int, m: int) -> frozenset:
        key = (n, m)
        if key in self._wformula:
            return self._wformula[key]
        cds = self.cd[n]
        if not cds:
            out: frozenset = frozenset()
        elif len(cds) == 1:
            (x, side), = cds
            out = self.wterm(x, side, m)
        else:
            refs = [self.materialize(self.wterm(x, side, m)) for x, side in sorted(cds)]
            out = frozenset([("ref",) + self.or_preds(refs)])
        self._wformula[key] = out
        return out

    def wterm(self, x: int, side: int, m: int) -> frozenset:
        if not self._other_reaches(x, m):
            return self.wformula(x, m)
        cond = self.t.conds[x]
        neg = cond.neg != (side == 0)
        base = self.wformula(x, m)
        if cond.cmp == "anyhit":
            pred, pneg = self.anyhit_pred(cond, x)
            return base | {("ref", pred, pneg != neg)}
        if cond.cmp == "hit":
            return base | {("ref", self.hit_pred(cond.a.table), neg)}
        return base | {("lit", x, side)}

    def term_formula(self, x: int, side: int) -> frozenset:
        cond = self.t.conds[x]
        neg = cond.neg != (side == 0)
        base = self.formula(x)
        if cond.cmp == "anyhit":
            pred, pneg = self.anyhit_pred(cond, x)
            return base | {("ref", pred, pneg != neg)}
        if cond.cmp == "hit" and not neg:
            # a hit implies the table's enable: drop what the enable already says
            table = cond.a.table
            enable = self.formula(table.guard[1]) if table.guard[0] == "node" else frozenset()
            return (base - enable) | {("ref", self.hit_pred(table), False)}
        if cond.cmp == "hit":
            return base | {("ref", self.hit_pred(cond.a.table), True)}
        return base | {("lit", x, side)}

    def anyhit_pred(self, cond: Cond, x: int) -> tuple:
        """The predicate of merged value pointers being non-NULL (``offload.lower.merged``):
        the OR over legs of (the leg's edges AND its lookup's hit or index-in-range)."""
        key = ("anyhit", id(cond))
        if key in self._resolved:
            return self._resolved[key]
        refs = []
        for guard, sub in cond.a:
            items = self.guard_formula(guard)
            if sub is not None and sub.cmp == "hit":
                items = items | {("ref", self.hit_pred(sub.a.table), sub.neg)}
            ref = self.materialize(items)
            if sub is not None and sub.cmp != "hit":  # an array index against max_entries
                src, off, size = sub.a
                stage = max(self.ref_time(ref) + 1 if ref[0] is not None else 0,
                            self.value_time(src))
                ref = self._gateway(x, self.t.dag.nodes[x].last, f"{sub.cmp}{'!' if sub.neg else ''}",
                                    stage, cmp=sub.cmp, a=src, b=sub.b, imm=sub.imm,
                                    width=sub.width, a_offset=off, a_size=size, invert=sub.neg,
                                    pred_in=ref)
                cond.gateways.append(ref[0].producer)
            refs.append(ref)
        out = self.or_preds(refs)
        if out[0] is None:  # a leg that always holds: the branch is not a branch
            raise Unsupported(self.t.dag.nodes[x].last or 0, "a null check of merged map value "
                                                             "pointers that cannot fail")
        if out[0].producer not in cond.gateways and \
                isinstance(out[0].producer, GatewayOp):
            cond.gateways.append(out[0].producer)
        self._resolved[key] = out
        return out

    def _lit_time(self, x: int) -> int:
        cond = self.t.conds[x]
        t = self.value_time(cond.a[0])
        if cond.b is not None:
            t = max(t, self.value_time(cond.b))
        for src, _kind in self._cond_deps.get(id(cond), ()):
            t = max(t, self.op_time(src) + 1)
        return t

    def materialize(self, items: frozenset) -> tuple:
        if not items:
            return _TRUE
        if items in self._mat:
            return self._mat[items]
        if len(items) == 1:
            (item,) = items
            if item[0] == "ref":
                return item[1], item[2]
        # heap of (time usable by a gateway, order, item)
        heap = []
        for k, item in enumerate(sorted(items, key=repr)):
            if item[0] == "ref":
                heap.append((self.ref_time((item[1], item[2])) + 1, 1, k, item))
            else:
                heap.append((self._lit_time(item[1]), 0, k, item))
        heapq.heapify(heap)
        k = len(heap)
        while len(heap) > 1:
            t1, kind1, _, a = heapq.heappop(heap)
            t2, kind2, _, b = heapq.heappop(heap)
            if kind1 == 0 and kind2 == 0:  # two literals: the earlier alone first
                ref = self._lit_gateway(a, _TRUE, t1)
                t1, kind1, a = t1 + 1, 1, ("ref",) + ref
            if kind1 == 0:
                a, b, t1, t2, kind1, kind2 = b, a, t2, t1, kind2, kind1
            stage = max(t1, t2)
            if kind2 == 0:
                ref = self._lit_gateway(b, (a[1], a[2]), stage)
            else:
                ref = self._combine((a[1], a[2]), (b[1], b[2]), "and", stage)
            k += 1
            heapq.heappush(heap, (stage + 1, 1, k, ("ref",) + ref))
        t, kind, _, item = heap[0]
        out = self._lit_gateway(item, _TRUE, t) if kind == 0 else (item[1], item[2])
        self._mat[items] = out
        return out

    def _lit_gateway(self, item: tuple, pred_in: tuple, stage: int) -> tuple:
        _, x, side = item
        key = (x, side, pred_in)
        if key in self._lit_cache:
            return self._lit_cache[key]
        cond = self.t.conds[x]
        neg = cond.neg != (side == 0)
        slot = self.t.dag.nodes[x].last
        src, off, size = cond.a
        out = self._gateway(x, slot, f"{cond.cmp}{'!' if neg else ''}@{slot}", stage,
                            cmp=cond.cmp, a=src, b=cond.b, imm=cond.imm, width=cond.width,
                            a_offset=off, a_size=size, invert=neg, pred_in=pred_in)
        cond.gateways.append(out[0].producer)
        self._lit_cache[key] = out
        return out

    def node_pred(self, n: int) -> tuple:
        return self.materialize(self.formula(n))

    def or_preds(self, refs: list[tuple]) -> tuple:
        refs = list(dict.fromkeys(refs))
        if not refs:
            return _TRUE
        if any(r == _TRUE for r in refs):
            return _TRUE
        heap = [(self.ref_time(r) + 1, k, r) for k, r in enumerate(refs)]
        heapq.heapify(heap)
        k = len(heap)
        while len(heap) > 1:
            t1, _, a = heapq.heappop(heap)
            t2, _, b = heapq.heappop(heap)
            stage = max(t1, t2)
            k += 1
            heapq.heappush(heap, (stage + 1, k, self._combine(a, b, "or", stage)))
        return heap[0][2]

    def _combine(self, a: tuple, b: tuple, how: str, stage: int | None = None) -> tuple:
        key = (how, a, b)
        if key not in self._or_cache:
            if stage is None:
                stage = max(self.ref_time(a), self.ref_time(b)) + 1
            node = a[0].producer.node
            self._or_cache[key] = self._gateway(node, None, f"{how}", stage, cmp="pred",
                                                a=a[0], invert=a[1], pred_in=b, combine=how)
        return self._or_cache[key]

    def edge_formula(self, a: int, b: int) -> frozenset:
        if len(self.succs[a]) < 2:
            return self.formula(a)
        return self.term_formula(a, self.t.dag.succ_side(a, b))

    def guard_formula(self, guard: tuple) -> frozenset:
        kind = guard[0]
        if kind == "true":
            return frozenset()
        if kind == "node":
            return self.formula(guard[1])
        if kind == "edge":
            return self.edge_formula(guard[1], guard[2])
        if kind == "phi":  # an edge into m, for a value only read on paths through m
            a, m = guard[1], guard[2]
            if len(self.succs[a]) < 2 or not self._other_reaches(a, m):
                return self.wformula(a, m)
            return self.wterm(a, self.t.dag.succ_side(a, m), m)
        if kind == "and":
            out: frozenset = frozenset()
            for g in guard[1]:
                out = out | self.guard_formula(g)
            return out
        if kind == "or":
            return frozenset([("ref",) + self.or_preds(
                [self.materialize(self.guard_formula(g)) for g in guard[1]])])
        raise ValueError(f"unknown guard {guard!r}")

    def resolve(self, guard: tuple) -> tuple:
        if guard in self._resolved:
            return self._resolved[guard]
        out = self.materialize(self.guard_formula(guard))
        self._resolved[guard] = out
        return out

    # -- exits ----------------------------------------------------------------------------

    def build_exits(self) -> int:
        """Verdict and punt ops; returns the deparser's default verdict."""
        t = self.t
        leaves: list[tuple[tuple, Any, int]] = []
        for n, r0 in t.exits:
            slot = t.dag.nodes[n].last
            if isinstance(r0, Phi):
                for path, sym in r0.leaves():
                    last = ("phi",) + path[0]  # packets that reach the exit
                    guard = ("and", (last,) + tuple(("edge", a, b) for a, b in path[1:])) \
                        if len(path) > 1 else last
                    leaves.append((guard, sym, slot))
            else:
                leaves.append((node_guard(n), r0, slot))
        consts = Counter(s.value & M32 for _, s, _ in leaves if isinstance(s, Const))
        # the default verdict costs nothing: give it to the value whose predicate would be
        # the deepest (most conditions), then to the most frequent
        depth: dict[int, int] = {}
        for guard, sym, _ in leaves:
            if isinstance(sym, Const):
                v = sym.value & M32
                depth[v] = max(depth.get(v, 0), len(self.guard_formula(guard)))
        default = min(consts, key=lambda v: (-depth[v], -consts[v], v)) if consts else 0
        groups: dict[int, list[tuple]] = {}
        for guard, sym, slot in leaves:
            if isinstance(sym, Const):
                if sym.value & M32 != default:
                    groups.setdefault(sym.value & M32, []).append((guard, slot))
                continue
            if isinstance(sym, Top):
                raise Unsupported(slot, "a return value the lowering does not follow")
            n = guard[1] if guard[0] == "node" else t.dag.entry
            src = t.src_of(sym, n, slot, 32)
            t.alu(n, slot, guard, "mov", dst=VERDICT, b=src).exclusive = True
        for value, members in sorted(groups.items()):
            guard = members[0][0] if len(members) == 1 else ("or", tuple(g for g, _ in members))
            t.alu(t.dag.entry, members[0][1], guard, "mov", dst=VERDICT,
                  imm=value).exclusive = True
        if t.punts:
            guard = ("or", tuple(node_guard(n) for n in t.punts))
            cut = t.dag.nodes[t.punts[0]].cut
            t.alu(t.punts[0], cut, guard, "mov", dst=PUNT, imm=PUNT_CUT)
        return default

    # -- everything -----------------------------------------------------------------------

    def run(self) -> int:
        # Guards nest as deep as the program's branches; the limit is raised for this pass
        # only, so nothing else in the process (a TOML or JSON reader's depth check) sees it.
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20000))
        try:
            default = self.build_exits()
            for op in list(self.t.ops):
                if isinstance(op, GatewayOp):
                    continue
                op.pred = self.resolve(op.guard)
                self.op_time(op)
        finally:
            sys.setrecursionlimit(limit)
        return default


_ = (AluOp, TRUE)
