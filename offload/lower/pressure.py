"""Container pressure after scheduling: ops as late as their readers allow, late fields late.

The schedulers place every unit in the earliest stage its dependencies and resources allow,
which minimises stages but not the containers: a value computed early and read late holds
its container all along. Two remedies, both keeping the stage count:

- ``alap``: an ALU op (no side effect, one definition) moves to the latest stage before its
  first reader that has room, when that does not lengthen more than one of its operands'
  lives (it shortens its own). Units are visited from the last stage back, so readers have
  their final stage first.
- ``rematerialize``: a packet field extracted at parse but first read in a late stage is
  loaded there instead (``wld`` at its constant offset, speculated: it cannot fault when
  the program never moves ``data``), before any store that may overwrite its bytes (a
  write-after-read dependency). Only for programs without adjust ops, whose window
  positions never move.
"""

from __future__ import annotations

from collections import Counter

from hw.pipeline.config import TargetParams
from offload.lower.ir import TRUE, AluOp, Op, Value, replace_all_uses
from offload.lower.units import unit_of
from offload.schedule import MIN_STAGE_GAP, Dependency

_FIXED = ("wst", "wstv", "adjh", "adjt")


def _readers(v: Value) -> list[Op]:
    return [unit_of(u) for u in v.uses if not u.dead]


def alap(ops: list[Op], deps: list[Dependency], stage: dict[str, int], num_stages: int,
         t: TargetParams) -> dict[str, int]:
    """A copy of ``stage`` with movable ALU ops as late as useful (see the module doc)."""
    stage = dict(stage)
    units = {op.uid: op for op in ops if unit_of(op) is op}
    succ: dict[str, list[tuple[str, int]]] = {}
    for d in deps:
        succ.setdefault(d.src, []).append((d.dst, MIN_STAGE_GAP[d.kind]))
    alu = Counter(stage[u] for u, op in units.items() if isinstance(op, AluOp))
    loads = Counter(stage[u] for u, op in units.items()
                    if isinstance(op, AluOp) and op.op in ("wld", "wldv"))
    for uid in sorted(units, key=lambda u: -stage[u]):
        op = units[uid]
        if not (isinstance(op, AluOp) and isinstance(op.dst, Value) and not op.side_effect
                and op.op not in _FIXED and len(op.dst.defs) == 1 and not op.dst.zero_init):
            continue
        after = [stage[d] - g for d, g in succ.get(uid, ())]
        if not after:
            continue
        cur = stage[uid]
        latest = min(min(after), num_stages - 1)
        if latest <= cur:
            continue
        longer = 0
        for v in {id(x): x for x in op.reads() if isinstance(x, Value)}.values():
            others = [stage[r.uid] for r in _readers(v) if r.uid != uid]
            if not others or max(others) < latest:
                longer += 1
        if longer > 1:
            continue
        load = op.op in ("wld", "wldv")
        for s in range(latest, cur, -1):
            if alu[s] < t.num_containers and (not load or loads[s] < t.window_loads):
                alu[cur] -= 1
                alu[s] += 1
                if load:
                    loads[cur] -= 1
                    loads[s] += 1
                stage[uid] = s
                break
    return stage


def rematerialize(ops: list[Op], values: list[Value], stage: dict[str, int],
                  first_stage: int = 2) -> tuple[list[Op], list[tuple[Op, Op, str]]]:
    """Late-read parser extracts become window loads: (new ops, their extra dependencies)."""
    if any(isinstance(op, AluOp) and op.op in ("adjh", "adjt") for op in ops):
        return [], []
    stores = [op for op in ops if isinstance(op, AluOp) and op.op in ("wst", "wstv")]
    next_id = max((op.id for op in ops), default=0) + 1
    new_ops: list[Op] = []
    deps: list[tuple[Op, Op, str]] = []
    for v in values:
        if v.kind != "extract" or v.extract is None:
            continue
        readers = [u for u in v.uses if not u.dead]
        if not readers or min(stage[unit_of(u).uid] for u in readers) < first_stage:
            continue
        x, n = v.extract
        w = Value(len(values) + len(new_ops), f"{v.name}@late", "op", v.bits, slot=v.slot)
        load = AluOp(next_id, readers[0].node, v.slot, TRUE, "wld", dst=w, size=n, offset=x)
        next_id += 1
        w.defs.append(load)
        replace_all_uses(v, w, readers)
        new_ops.append(load)
        for st in stores:
            if st.op == "wstv" or (st.offset < x + n and x < st.offset + st.size):
                deps.append((load, st, "reverse_match"))
    values.extend(op.dst for op in new_ops)  # type: ignore[misc]
    return new_ops, deps
