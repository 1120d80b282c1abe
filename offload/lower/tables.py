"""Map lookups as tables, map value writes as stateful units, and where map contents live.

Tables (docs/pipeline.md, section 9): HASH / LRU_HASH (and per-CPU) become exact tables keyed
by the map key, LPM_TRIE an LPM table keyed by the key's data bytes, ARRAY a direct table
indexed by the u32 key. A table is only built when the program needs it: for the hit bit
(``value != NULL``) of a hash or LPM map, or for the action data of value words the program
reads but never writes (array bounds are a gateway comparison of the index).

Words the program writes live in stateful registers; each written word is one stateful unit
(docs/pipeline.md 5.6: one read-modify-write per packet and unit), all accesses to it one
op: several sites that do the same thing on exclusive paths merge into one op under the OR
of their predicates; different operations on one word are a reason. Hash and LPM maps index
their registers by the hit address of a table copy in the same unit; arrays by the key.
The words nobody writes of a written map are parked in the registers of its first unit
(register slices, so that ``dump_maps`` sees whole values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ebpf.loader.elf import ElfObject
from hw.pipeline.config import TargetParams
from offload.lower.ir import TRUE, Lookup, Op, StatefulOp, TableOp
from offload.lower.memory import Unsupported
from offload.lower.units import table_memory


@dataclass
class Home:
    """The registers of one stateful unit: the map words and entries its op updates,
    plus parked ones (``slices``: RegisterSlice fields without stage and unit)."""

    op: StatefulOp
    word: int
    entries: list[int]
    slices: list[dict[str, int]] = field(default_factory=list)
    words: int = 0  # register memory depth


@dataclass
class MapPlan:
    """How one map is held: its tables and, for written maps, its stateful units."""

    index: int
    name: str
    type: str
    key_size: int
    value_size: int
    max_entries: int
    tables: list[TableOp] = field(default_factory=list)
    homes: list[Home] = field(default_factory=list)

    @property
    def value_words(self) -> int:
        return -(-self.value_size // 8)

    def home_of(self, op: StatefulOp) -> Home:
        return next(h for h in self.homes if h.op is op)


def entry_set(op: StatefulOp) -> frozenset[int] | None:
    """The array entries a stateful op may update (its index a constant, or a phi of
    constants), or None: any."""
    from offload.lower.ir import Const
    from offload.lower.state import Phi
    if op.table is not None:
        return None
    if op.lookup.const_key is not None:
        return frozenset([op.lookup.const_key])
    idx = op.lookup.info.get("index")
    if isinstance(idx, Const):
        return frozenset([idx.value])
    if isinstance(idx, Phi):
        leaves = [x for _, x in idx.leaves()]
        if all(isinstance(x, Const) for x in leaves):
            return frozenset(x.value for x in leaves)
    return None


def word_groups(ops: list[StatefulOp]) -> list[tuple[list[StatefulOp], frozenset | None]]:
    """Ops on one map word that must share a unit (their entries meet), with the entries
    the unit holds (None: all)."""
    sets = [entry_set(o) for o in ops]
    if any(s is None for s in sets):
        return [(list(ops), None)]
    groups: list[tuple[list[StatefulOp], set[int]]] = []
    for o, es in zip(ops, sets, strict=False):
        hit = [g for g in groups if g[1] & es]
        merged_ops, merged_set = [o], set(es)
        for g in hit:
            merged_ops = g[0] + merged_ops
            merged_set |= g[1]
            groups.remove(g)
        groups.append((merged_ops, merged_set))
    return [(sorted(g, key=lambda o: o.id), frozenset(es)) for g, es in groups]


def _same_shape(a: StatefulOp, b: StatefulOp) -> bool:
    if (a.op, a.size, a.offset) != (b.op, b.size, b.offset):
        return False
    if a.table is not None or b.table is not None:
        ka = [(id(k.src), k.off, k.size) for k in a.table.key] if a.table else None
        kb = [(id(k.src), k.off, k.size) for k in b.table.key] if b.table else None
        return ka == kb
    return True


def _operand(t: Any, group: list[StatefulOp], get: Any, name: str) -> Any:
    """One source for an operand the merged ops give differently: a container each site
    writes under its own predicate (the sites are on exclusive paths)."""
    first = get(group[0])
    if all(get(o)[0] is first[0] and get(o)[1] == first[1] for o in group[1:]):
        return first
    v = t.value(f"{name}@{group[0].slot}", "phi")
    v.uses.append(group[0])
    for k, o in enumerate(group):  # the first unconditionally, the others over it
        src, imm = get(o)
        mov = t.alu(o.node, o.slot, TRUE if k == 0 else o.guard, "mov", dst=v, b=src,
                    imm=imm)
        mov.pred = (None, False) if k == 0 else o.pred
        mov.exclusive = True  # type: ignore[attr-defined]
    return v, 0


def merge_stateful(t: Any, ifc: Any, reach: Any) -> bool:
    """One stateful op per unit: sites updating the same map word (and the same entry,
    for constant array indices) on exclusive paths merge under the OR of their predicates;
    two on one path are a reason. True when ops were merged (prune again)."""
    groups: list[tuple[int, int, list[StatefulOp], Any]] = []
    by_word: dict[tuple[int, int], list[StatefulOp]] = {}
    for op in t.ops:
        if isinstance(op, StatefulOp) and not op.dead:
            by_word.setdefault((op.lookup.map, op.word), []).append(op)
    for (m, word), ops in by_word.items():
        for group, entries in word_groups(ops):
            groups.append((m, word, group, entries))
    merged = False
    for m, word, group, entries in groups:
        if len(group) < 2:
            continue
        name = t.obj.maps[m].name
        where = f"word {word}" + (f" of entries {sorted(entries)}" if entries else "")
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if reach(a.node, b.node) or reach(b.node, a.node):
                    raise Unsupported(b.slot or 0, f"map '{name}' {where} is updated at slots "
                                                   f"{a.slot} and {b.slot} on one path; a "
                                                   f"stateful unit does one operation per "
                                                   f"packet", "update each field once per "
                                                   "packet")
                if not _same_shape(a, b):
                    raise Unsupported(b.slot or 0, f"map '{name}' {where} is accessed at "
                                                   f"slots {a.slot} and {b.slot} with "
                                                   f"different operations; a stateful unit "
                                                   f"does one operation", "use the same "
                                                   "atomic operation everywhere")
        keep = group[0]
        if keep.op != "read":
            keep.b, keep.imm = _operand(t, group, lambda o: (o.b, o.imm), "operand")
        if keep.table is None and keep.index is not None:
            keep.index, _ = _operand(t, group, lambda o: (o.index, 0), "index")
        fetches = [o.fetch for o in group if o.fetch is not None]
        if fetches:
            target = keep.fetch if keep.fetch is not None else fetches[0]
            keep.fetch = keep.dst = target
            for f in fetches:
                if f is not target:
                    _replace_value(t.ops, f, target)
        keep.pred = ifc.or_preds([o.pred for o in group])
        if keep.table is not None:
            keep.table.pred = ifc.or_preds([o.table.pred for o in group if o.table])
        for other in group[1:]:
            other.dead = True
            other.merged = True  # type: ignore[attr-defined]
            other.side_effect = False
            if other.table is not None:
                other.table.dead = True
                other.table.merged = True  # type: ignore[attr-defined]
                other.table.stateful = []
        merged = True
    return merged


def _replace_value(ops: list[Op], old: Any, new: Any) -> None:
    from offload.lower.ir import AluOp, GatewayOp
    for op in ops:
        if isinstance(op, (AluOp, GatewayOp)):
            if op.a is old:
                op.a = new
            if op.b is old:
                op.b = new
        elif isinstance(op, StatefulOp):
            for f in ("b", "index", "cmp"):
                if getattr(op, f) is old:
                    setattr(op, f, new)
        elif isinstance(op, TableOp):
            for k in op.key:
                if k.src is old:
                    k.src = new
        if any(v is new for v in op.reads()) and op not in new.uses:
            new.uses.append(op)
    old.uses = []


def plan_maps(obj: ElfObject, ops: list[Op], lookups: list[Lookup]) -> dict[int, MapPlan]:
    plans: dict[int, MapPlan] = {}

    def plan(index: int) -> MapPlan:
        if index not in plans:
            m = obj.maps[index]
            mtype = "array" if m.is_global_data else m.type_name
            plans[index] = MapPlan(index, m.name, mtype, m.key_size, m.value_size,
                                   m.max_entries)
        return plans[index]

    for op in ops:
        if op.dead:
            continue
        if isinstance(op, TableOp):
            plan(op.lookup.map).tables.append(op)
    stateful = [op for op in ops if isinstance(op, StatefulOp) and not op.dead]
    by_word: dict[tuple[int, int], list[StatefulOp]] = {}
    for op in stateful:
        by_word.setdefault((op.lookup.map, op.word), []).append(op)
    for (m, word), group in by_word.items():
        p = plan(m)
        many = len(group) > 1
        for op in group:
            es = entry_set(op)
            if many and es is not None:
                p.homes.append(Home(op, word, sorted(es)))
            else:
                p.homes.append(Home(op, word, list(range(p.max_entries))))
    for p in plans.values():
        if p.homes:
            _layout(p)
    return plans


def _layout(p: MapPlan) -> None:
    """Register slices: each home's own entries at their index, the rest parked."""
    for h in p.homes:
        for lo, hi in _runs(h.entries):
            h.slices.append({"base": 0, "stride": 1, "word_offset": h.word, "words": 1,
                             "first_entry": lo, "entries": hi - lo})
        h.words = max(h.entries) + 1
    park = p.homes[0]
    for w in range(p.value_words):
        covered = sorted(r for h in p.homes if h.word == w for r in _runs(h.entries))
        runs, pos = [], 0
        for lo, hi in covered:
            if lo > pos:
                runs.append((pos, lo))
            pos = max(pos, hi)
        if pos < p.max_entries:
            runs.append((pos, p.max_entries))
        for lo, hi in runs:
            base = park.words - lo  # entry lo at the parking unit's next free register
            if base < 0:
                park.words = lo
                base = 0
            park.slices.append({"base": base, "stride": 1, "word_offset": w, "words": 1,
                                "first_entry": lo, "entries": hi - lo})
            park.words = base + hi


def _runs(entries: list[int]) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) runs of sorted entry numbers."""
    out: list[tuple[int, int]] = []
    for e in sorted(entries):
        if out and out[-1][1] == e:
            out[-1] = (out[-1][0], e + 1)
        else:
            out.append((e, e + 1))
    return out


def memory_rows(t: TargetParams, plans: dict[int, MapPlan], ops: list[Op]
                ) -> dict[int, tuple[int, int]]:
    """Op id -> (SRAM rows, TCAM rows) its unit needs (tables and register words)."""
    out: dict[int, tuple[int, int]] = {}
    for op in ops:
        if op.dead:
            continue
        if isinstance(op, TableOp):
            p = plans[op.lookup.map]
            regs = sum(p.home_of(s).words for s in op.stateful)
            out[op.id] = table_memory(t, op, p.value_size, p.max_entries, regs)
        elif isinstance(op, StatefulOp) and op.table is None:
            out[op.id] = (plans[op.lookup.map].home_of(op).words, 0)
    return out
