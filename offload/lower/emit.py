"""The configuration document of docs/pipeline.md (section 10) from a scheduled lowering.

Per logical stage: gateways (predicate bits from ``offload.lower.containers``), tables
(slots in order), VLIW ops (the slot is the destination: a container, the verdict /
redirect / punt metadata, or a discard slot 58-63 for window stores and unused adjust
results), stateful units (numbered in order, indexed by a table of the same stage or a
container) and externs. The parser extracts, the deparser's default verdict, and the map
bindings (tables and register slices) complete it. ``hw.pipeline.load_config`` validates
the result; the mapper treats a validation error as its own bug.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hw.pipeline.config import TargetParams
from offload.lower.containers import Allocation
from offload.lower.ir import (
    AluOp,
    ExternOp,
    GatewayOp,
    Meta,
    Op,
    StatefulOp,
    TableOp,
    Value,
)
from offload.lower.tables import MapPlan
from offload.lower.units import unit_of

DISCARD_FIRST = 58
_PERCPU = ("percpu_array", "percpu_hash", "lru_percpu_hash")


def needs_container(op: AluOp) -> bool:
    """An ALU op's destination needs a container (else a discard slot)."""
    if not isinstance(op.dst, Value):
        return False
    if op.op in ("adjh", "adjt"):
        return any(not u.dead for u in op.dst.uses)
    return True


def used_values(ops: list[Op]) -> set[int]:
    used: set[int] = set()
    for op in ops:
        if op.dead:
            continue
        for v in op.reads():
            if isinstance(v, Value):
                used.add(v.id)
        if isinstance(op, AluOp) and needs_container(op):
            used.add(op.dst.id)  # type: ignore[union-attr]
        if isinstance(op, TableOp):
            used.update(v.id for v in op.action)
            for s in op.stateful:
                if s.fetch is not None and any(not u.dead for u in s.fetch.uses):
                    used.add(s.fetch.id)
        if isinstance(op, StatefulOp) and op.table is None and op.fetch is not None and any(
                not u.dead for u in op.fetch.uses):
            used.add(op.fetch.id)
        if isinstance(op, ExternOp):
            used.add(op.dst.id)
    return used


def emit_config(program: str, t: TargetParams, ops: list[Op], values: list[Value],
                stage: dict[str, int], alloc: Allocation, plans: dict[int, MapPlan],
                default_verdict: int, num_stages: int) -> dict[str, Any]:
    stages: list[dict[str, list]] = [{"gateways": [], "tables": [], "ops": [], "stateful": [],
                                      "externs": []} for _ in range(num_stages)]
    next_table = [0] * num_stages
    next_unit = [0] * num_stages
    next_extern = [0] * num_stages
    next_discard = [0] * num_stages
    placed: dict[int, tuple[int, int]] = {}  # stateful op id -> (stage, unit)
    tables: dict[int, tuple[int, int]] = {}  # table op id -> (stage, slot)
    used = used_values(ops)

    def src(x: Any) -> int:
        if isinstance(x, Meta):
            return x.index
        return alloc.container[x.id]

    def pred(ref: tuple) -> tuple[int, bool]:
        p, neg = ref
        return (0, neg) if p is None else (alloc.predicate[p.id], neg)

    def operand_b(b: Any, imm: int) -> dict[str, int]:
        return {"b": src(b)} if b is not None else {"imm": imm}

    def stateful_doc(op: StatefulOp, s: int, index: dict[str, int]) -> dict[str, Any]:
        unit = next_unit[s]
        next_unit[s] += 1
        placed[op.id] = (s, unit)
        p, neg = pred(op.pred)
        plan = plans[op.lookup.map]
        fetch = None
        if op.fetch is not None and op.fetch.id in used:
            fetch = src(op.fetch)
        doc = {"unit": unit, "name": f"{plan.name}.value[{op.word}]", "op": op.op,
               "words": plan.home_of(op).words, "size": op.size, "offset": op.offset,
               "index": index, "base": 0, "stride": 1, "cmp": src(op.cmp) if op.cmp else 0,
               "fetch": fetch, "pred": p, "pred_neg": neg}
        if op.op != "read":
            doc.update(operand_b(op.b, op.imm))
        return doc

    for op in ops:
        if op.dead or unit_of(op) is not op:
            continue
        s = stage[op.uid]
        st = stages[s]
        if isinstance(op, GatewayOp):
            p_in, neg_in = pred(op.pred_in)
            doc = {"dst": alloc.predicate[op.out.id], "cmp": op.cmp,  # type: ignore[union-attr]
                   "width": op.width, "invert": op.invert, "combine": op.combine,
                   "pred_in": p_in, "pred_in_neg": neg_in}
            if op.cmp == "pred":
                doc["a"] = alloc.predicate[op.a.id]
            else:
                doc.update({"a": src(op.a), "a_offset": op.a_offset, "a_size": op.a_size},
                           **operand_b(op.b, op.imm))
            st["gateways"].append(doc)
        elif isinstance(op, AluOp):
            if isinstance(op.dst, Meta):
                slot = op.dst.index
            elif needs_container(op):
                slot = src(op.dst)
            else:
                slot = DISCARD_FIRST + next_discard[s]
                next_discard[s] += 1
            p, neg = pred(op.pred)
            doc = {"slot": slot, "op": op.op, "width": op.width,
                   "a": src(op.a) if op.a is not None else 0, "size": op.size,
                   "offset": op.offset, "signed": op.signed, "pred": p, "pred_neg": neg}
            if op.op not in ("ext", "wld", "wldv", "neg", "sext", "be", "le"):
                doc.update(operand_b(op.b, op.imm))
            if op.op == "sel":
                doc["sel"] = pred(op.sel_pred)[0]
            st["ops"].append(doc)
        elif isinstance(op, TableOp):
            slot = next_table[s]
            next_table[s] += 1
            tables[op.id] = (s, slot)
            plan = plans[op.lookup.map]
            p, neg = pred(op.pred)
            st["tables"].append({
                "slot": slot, "name": plan.name, "kind": op.tkind, "size": plan.max_entries,
                "key": [{"container": src(k.src), "offset": k.off, "size": k.size}
                        for k in op.key],
                "action": [src(v) for v in op.action],
                "hit": alloc.predicate[op.hit.id] if op.hit is not None else 0,
                "enable": p, "enable_neg": neg, "entries": []})
            for sop in op.stateful:
                st["stateful"].append(stateful_doc(sop, s, {"table": slot}))
        elif isinstance(op, StatefulOp):
            st["stateful"].append(stateful_doc(op, s, {"container": src(op.index)}))
        elif isinstance(op, ExternOp):
            unit = next_extern[s]
            next_extern[s] += 1
            p, neg = pred(op.pred)
            doc = {"unit": unit, "kind": op.ext, "dst": src(op.dst), "pred": p,
                   "pred_neg": neg, "mode": "fold16"}
            if op.seed_src is not None:
                doc["seed_container"] = src(op.seed_src)
            else:
                doc["seed"] = op.seed
            for key, buf in (("x", op.x), ("y", op.y)):
                if buf is None:
                    continue
                if buf[0] == "window":
                    doc[key] = {"window": buf[1], "length": buf[2]}
                else:
                    doc[key] = {"containers": src(buf[1][0]), "length": buf[2]}
            st["externs"].append(doc)
    extracts = sorted((alloc.container[v.id], v) for v in values
                      if v.kind == "extract" and v.id in alloc.container)
    names: dict[int, list[str]] = {}
    for vid, c in sorted(alloc.container.items()):
        names.setdefault(c, []).append(values[vid].name)
    return {
        "format": "xdp-offload-pipeline", "version": 1, "program": program,
        "target": dataclasses.asdict(t),
        "containers": [{"index": c, "name": " | ".join(n)[:200]}
                       for c, n in sorted(names.items())],
        "predicates": [],
        "parser": {"extracts": [{"container": c, "offset": v.extract[0],
                                 "size": v.extract[1]} for c, v in extracts]},
        "stages": stages,
        "deparser": {"default_verdict": default_verdict, "punt_containers": []},
        "maps": _bindings(plans, tables, placed),
    }


def _bindings(plans: dict[int, MapPlan], tables: dict[int, tuple[int, int]],
              placed: dict[int, tuple[int, int]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in sorted(plans.values(), key=lambda p: p.name):
        doc: dict[str, Any] = {"type": p.type, "key_size": p.key_size,
                               "value_size": p.value_size, "max_entries": p.max_entries,
                               "tables": [list(tables[t.id]) for t in p.tables
                                          if t.id in tables]}
        if p.homes:
            regs = []
            for h in p.homes:
                stg, unit = placed[h.op.id]
                regs += [{"stage": stg, "unit": unit, **sl} for sl in h.slices]
            doc["registers"] = regs
        if p.type in _PERCPU:
            doc.update({"cpu": 0, "num_cpus": 1})
        out[p.name] = doc
    return out
