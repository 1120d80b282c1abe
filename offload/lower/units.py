"""From lowered ops to the scheduler's problem: dead code, units, Jose et al. dependencies.

``prune`` keeps the ops that matter (side effects, verdict / redirect / punt writes) and
everything they need: the values they read, the predicates they run under, the gateways and
tables that compute those. ``build_problem`` gives one ``offload.schedule.Unit`` per op (a
stateful op indexed by a table's hit address rides in that table's unit: both must sit in
one stage) and the dependencies (src -> dst):

=================== ===================================================================
``match`` (gap 1)   a gateway or table reads a container, or a gateway reads a predicate
                    (gateways see the predicates a stage entered with), or a table is
                    enabled by another table's hit bit
``action`` (gap 1)  an op reads a container another op writes (RAW), two writes of one
                    container or metadata field (WAW: one writer per container and stage),
                    window store -> load of the same bytes, adjust -> later window access
``successor`` (0)   an op (or table) runs under a predicate a gateway or table of the same
                    stage computes; a window access that may fault -> the side effects on
                    its paths (a fault suppresses the side effects of its stage and later)
``reverse_match``   write after read: a window store after a load of its bytes, an adjust
(gap 0)             after the accesses that used the old head
=================== ===================================================================
"""

from __future__ import annotations

import math
from typing import Any

from hw.pipeline.config import TargetParams
from offload.lower.ir import (
    AluOp,
    Cond,
    ExternOp,
    GatewayOp,
    Meta,
    Op,
    Pred,
    StatefulOp,
    TableOp,
    Value,
)
from offload.lower.memory import Unsupported
from offload.schedule import Dependency, Unit


def _pred_refs(op: Op) -> list[Pred]:
    out = []
    if op.pred[0] is not None:
        out.append(op.pred[0])
    if isinstance(op, GatewayOp):
        if op.pred_in[0] is not None:
            out.append(op.pred_in[0])
        if op.cmp == "pred":
            out.append(op.a)
    if isinstance(op, TableOp):
        for s in op.stateful:
            if s.pred[0] is not None:
                out.append(s.pred[0])
    return out


def is_root(op: Op) -> bool:
    if op.side_effect:
        return True
    return isinstance(op, AluOp) and isinstance(op.dst, Meta)


def prune(ops: list[Op]) -> list[Op]:
    """Mark ops nobody needs dead; the live ops, in creation order."""
    live: set[int] = set()
    work: list[Op] = []

    def need(op: Op) -> None:
        if op.id not in live and not getattr(op, "merged", False):
            live.add(op.id)
            work.append(op)

    for op in ops:
        if is_root(op) or (isinstance(op, StatefulOp) and op.op != "read"):
            need(op)
    while work:
        op = work.pop()
        if isinstance(op, StatefulOp) and op.table is not None:
            need(op.table)
        if isinstance(op, TableOp):
            for s in op.stateful:
                need(s)
        for v in op.reads():
            if isinstance(v, Value):
                for d in v.defs:
                    need(d)
        for p in _pred_refs(op):
            need(p.producer)
        if isinstance(op, StatefulOp) and op.cmp is not None and isinstance(op.cmp, Value):
            for d in op.cmp.defs:
                need(d)
    # values read by live ops keep their definitions alive (fetches need their unit)
    for op in ops:
        op.dead = op.id not in live
    for op in ops:
        if isinstance(op, TableOp) and not op.dead and op.hit is not None:
            if not any(p is op.hit for o in ops if not o.dead for p in _pred_refs(o)):
                op.hit = None
    return [op for op in ops if not op.dead]


def unit_of(op: Op) -> Op:
    """The op whose unit carries ``op`` (a table carries its stateful ops)."""
    if isinstance(op, StatefulOp) and op.table is not None:
        return op.table
    return op


def _blocks(rows: int, per_block: int) -> int:
    return -(-rows // per_block) if rows else 0


def table_memory(t: TargetParams, op: TableOp, value_size: int, max_entries: int,
                 register_words: int) -> tuple[int, int]:
    """(SRAM rows, TCAM rows) of a table (and the registers of its stateful ops)."""
    data = 64 * len(op.action)
    key = 8 * sum(k.size for k in op.key)
    size = max_entries
    sram = tcam = 0
    if op.tkind == "exact":
        sram = size * math.ceil((key + 1 + data) / t.sram_width_bits)
    elif op.tkind == "direct":
        sram = size * math.ceil(data / t.sram_width_bits) if data else 0
    else:
        tcam = size * math.ceil((key + 1) / t.tcam_width_bits)
        sram = size * math.ceil(data / t.sram_width_bits) if data else 0
    return sram + register_words, tcam


def build_problem(ops: list[Op], deps: list[tuple[Any, Any, str]], t: TargetParams,
                  memory: dict[int, tuple[int, int]], reach: Any) -> tuple[list[Unit],
                                                                         list[Dependency]]:
    """Units and dependencies of the live ops. ``memory``: op id -> (SRAM, TCAM rows);
    ``reach(a, b)``: DAG node a reaches node b (or is b)."""
    units: list[Unit] = []
    carried = [op for op in ops if unit_of(op) is op]
    for op in carried:
        res: dict[str, int] = {}
        if isinstance(op, AluOp):
            res["alu_slots"] = 1
            kind = "alu"
        elif isinstance(op, GatewayOp):
            res["gateways"] = 1
            kind = "gateway"
        elif isinstance(op, TableOp):
            res["tables"] = 1
            if op.stateful:
                res["stateful"] = len(op.stateful)
            kind = "table"
        elif isinstance(op, StatefulOp):
            res["stateful"] = 1
            kind = "stateful"
        else:
            assert isinstance(op, ExternOp)
            res[f"externs.{op.ext}"] = 1
            kind = "extern"
        sram, tcam = memory.get(op.id, (0, 0))
        if sram:
            res["sram_blocks"] = _blocks(sram, t.sram_entries)
        if tcam:
            res["tcam_blocks"] = _blocks(tcam, t.tcam_entries)
        units.append(Unit(op.uid, kind, res, op.label()))
    out: dict[tuple[str, str], str] = {}
    strength = {"match": 3, "action": 2, "successor": 1, "reverse_match": 0}

    def add(a: Op, b: Op, kind: str) -> None:
        a, b = unit_of(a), unit_of(b)
        if a is b or a.dead or b.dead:
            return
        key = (a.uid, b.uid)
        if key not in out or strength[kind] > strength[out[key]]:
            out[key] = kind

    writers: dict[int, list[Op]] = {}
    for op in ops:
        reader = unit_of(op)
        for v in op.reads():
            if isinstance(v, Value):
                for d in v.defs:
                    if not d.dead:
                        add(d, op, "match" if isinstance(reader, (TableOp, GatewayOp))
                            else "action")
        if isinstance(op, StatefulOp) and isinstance(op.cmp, Value):
            for d in op.cmp.defs:
                add(d, op, "action")
        dst = op.dst
        if isinstance(dst, (Value, Meta)):
            key = id(dst) if isinstance(dst, Value) else -dst.index
            writers.setdefault(key, []).append(op)
        if isinstance(op, TableOp):
            for v in op.action:
                writers.setdefault(id(v), []).append(op)
        for p in _pred_refs(op):
            src = p.producer
            if isinstance(op, GatewayOp):
                kind = "match"
            elif isinstance(op, TableOp) and op.pred[0] is p and isinstance(src, TableOp):
                kind = "match"
            else:
                kind = "successor"
            add(src, op, kind)
    for a, b, kind in deps:
        for x in _ops_of(a):
            for y in _ops_of(b):
                add(x, y, kind)
    # write after write, one writer per container and stage: writers on exclusive paths
    # (phi copies, verdict leaves) in the order their inputs are ready, unconditional first
    asap = _asap(carried, out)
    for ws in writers.values():
        live = [w for w in ws if not w.dead]
        if len(live) > 1 and all(getattr(w, "exclusive", False) or w.guard == ("true",)
                                 for w in live):
            live.sort(key=lambda w: (w.guard != ("true",), asap.get(unit_of(w).uid, 0),
                                     w.id))
        for a, b in zip(live, live[1:], strict=False):
            add(a, b, "action")
    # faults: a window access that may fault sits at or before every side effect on its
    # paths, so that a faulting packet (punted, re-run from the start) changed nothing
    faulting = [op for op in ops if op.may_fault]
    effects = [op for op in ops if op.side_effect]
    for f in faulting:
        for e in effects:
            if e is not f and (reach(f.node, e.node) or reach(e.node, f.node)):
                add(f, e, "successor")
    deps_out = [Dependency(a, b, k) for (a, b), k in out.items()]
    _check_cycles(units, deps_out, ops)
    return units, deps_out


def _asap(units: list[Op], deps: dict[tuple[str, str], str]) -> dict[str, int]:
    """Earliest stage of every unit under ``deps`` (dependency gaps only)."""
    from offload.schedule import MIN_STAGE_GAP

    preds: dict[str, list[tuple[str, int]]] = {}
    indeg = {u.uid: 0 for u in units}
    succ: dict[str, list[str]] = {}
    for (a, b), kind in deps.items():
        preds.setdefault(b, []).append((a, MIN_STAGE_GAP[kind]))
        succ.setdefault(a, []).append(b)
        indeg[b] = indeg.get(b, 0) + 1
    ready = [u for u, k in indeg.items() if k == 0]
    out: dict[str, int] = {}
    while ready:
        u = ready.pop()
        out[u] = max((out.get(a, 0) + g for a, g in preds.get(u, ())), default=0)
        for v in succ.get(u, ()):
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(v)
    return out


def _ops_of(x: Any) -> list[Op]:
    if isinstance(x, Cond):
        return list(x.gateways)
    return [x]


def _check_cycles(units: list[Unit], deps: list[Dependency], ops: list[Op]) -> None:
    """A cycle means a side effect must precede an access that may fault: a reason."""
    succ: dict[str, list[str]] = {u.id: [] for u in units}
    indeg = {u.id: 0 for u in units}
    for d in deps:
        succ[d.src].append(d.dst)
        indeg[d.dst] += 1
    ready = [u for u, k in indeg.items() if k == 0]
    seen = 0
    while ready:
        u = ready.pop()
        seen += 1
        for v in succ[u]:
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(v)
    if seen == len(units):
        return
    stuck = {u for u, k in indeg.items() if k > 0}
    by_uid = {op.uid: op for op in ops}
    for op in ops:
        if op.may_fault and op.uid in stuck:
            raise Unsupported(op.slot or 0, "a packet access that may fault (leave the "
                                            "window) comes after a side effect on its path: "
                                            "a punt there would repeat the side effect",
                              "check the bounds before the first write")
    first = by_uid[min(stuck)]
    raise Unsupported(first.slot or 0, "the lowered operations depend on each other in a "
                                       "cycle")
