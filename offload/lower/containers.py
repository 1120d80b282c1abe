"""Virtual containers and predicates onto the PHV, by liveness over the schedule's stages.

Once every op has a stage, a value written in stage d (``-1`` for parser extracts) and read
last in stage u occupies its container on the stage boundaries d+1 .. u: reads in a stage
see the PHV as it entered, writes land at the end (docs/pipeline.md, section 5), so a value
written in stage u may take the container of one last read in u. A value nobody reads still
takes its container at d+1 (table action data is written whole). Intervals of different
values in one container must not overlap; the greedy colouring of intervals by start is
optimal for interval graphs, so the count it needs is the true minimum for this schedule.

Predicates are the same with closed intervals [d, u]: a gateway's output is visible to
ops and tables of its own stage, so a bit is free again only after its last reader's stage.
Predicate 0 is the constant 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from offload.errors import MapperError
from offload.lower.ir import GatewayOp, Op, Pred, StatefulOp, TableOp, Value
from offload.lower.units import _pred_refs, unit_of


class AllocationError(MapperError):
    """More live values (or predicates) at a stage boundary than the target's PHV holds."""


@dataclass
class Allocation:
    container: dict[int, int] = field(default_factory=dict)  # value id -> container
    predicate: dict[int, int] = field(default_factory=dict)  # pred id -> bit
    live_at: list[int] = field(default_factory=list)  # live containers per stage boundary
    max_live: int = 0
    max_preds: int = 0


def value_intervals(ops: list[Op], values: list[Value], stage: dict[str, int]
                    ) -> dict[int, tuple[int, int, Value]]:
    """value id -> (first def stage, last use stage, value) for values live ops touch."""
    out: dict[int, tuple[int, int, Value]] = {}
    for v in values:
        defs = [stage[unit_of(d).uid] for d in v.defs if not d.dead]
        if v.kind == "extract" or v.zero_init:
            defs = [-1]
        if not defs:
            continue
        uses = [stage[unit_of(u).uid] for u in v.uses if not u.dead]
        d = min(defs)
        u = max(uses + [max(defs) + 1])
        out[v.id] = (d, u, v)
    return out


def allocate(ops: list[Op], values: list[Value], preds: list[Pred], stage: dict[str, int],
             num_containers: int, predicate_bits: int, num_stages: int,
             used_values: set[int]) -> Allocation:
    """Containers for ``used_values`` and bits for the predicates live ops refer to."""
    alloc = Allocation()
    intervals = {k: iv for k, iv in value_intervals(ops, values, stage).items()
                 if k in used_values}
    busy: list[int] = []  # per container: the last boundary it is occupied
    live = [0] * (num_stages + 2)
    for vid, (d, u, _v) in sorted(intervals.items(), key=lambda kv: (kv[1][0], kv[1][1])):
        for b in range(d + 1, u + 1):
            live[b + 1] += 1
        for c, end in enumerate(busy):
            if end <= d:
                busy[c] = u
                alloc.container[vid] = c
                break
        else:
            alloc.container[vid] = len(busy)
            busy.append(u)
    alloc.live_at = live
    alloc.max_live = len(busy)
    if len(busy) > num_containers:
        worst = max(range(len(live)), key=lambda i: live[i])
        raise AllocationError(f"needs {len(busy)} containers (at most {max(live)} live values "
                              f"entering stage {worst - 1}); the target has "
                              f"{num_containers}")
    # predicates
    users: dict[int, list[int]] = {}
    for op in ops:
        if op.dead:
            continue
        for p in _pred_refs(op):
            s = stage[unit_of(op).uid]
            users.setdefault(p.id, []).append(s)
    pbusy: list[int] = []
    spans = []
    for p in preds:
        prod = p.producer
        if prod.dead or p.id not in users:
            continue
        if isinstance(prod, TableOp) and prod.hit is not p:
            continue
        if isinstance(prod, GatewayOp) and prod.out is not p:
            continue
        d = stage[unit_of(prod).uid]
        spans.append((d, max(users[p.id] + [d]), p))
    for d, u, p in sorted(spans, key=lambda x: (x[0], x[1])):
        for c, end in enumerate(pbusy):
            if end < d:
                pbusy[c] = u
                alloc.predicate[p.id] = c + 1
                break
        else:
            pbusy.append(u)
            alloc.predicate[p.id] = len(pbusy)
    alloc.max_preds = len(pbusy)
    if len(pbusy) > predicate_bits - 1:
        raise AllocationError(f"needs {len(pbusy)} predicate bits; the target has "
                              f"{predicate_bits - 1} besides the constant")
    return alloc


_ = (StatefulOp, Any)
