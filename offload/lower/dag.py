"""The program as an acyclic graph: sub-programs inlined per call string, loops unrolled.

A pipeline has no back edges: every packet crosses the stages once (or a few times, in
passes). So the lowering works on a DAG of **nodes**, one per (call string, basic block,
loop iteration counts): a bpf-to-bpf call continues in the callee's entry block under the
longer call string, its exit returns to the block after the call; a loop's back edge goes
to the header's node of the next iteration, up to the trip bound the analysis proved
(``Analysis.loop_trips``; the back edge of the last iteration is infeasible).

A **cut** (a slot whose packets go to the host: an infeasible construct found by
``offload.feasibility.check`` or by the lowering) ends its node there: the node's
terminator becomes ``punt``. Only edges the analysis found feasible are followed.

Node terminators: ``exit`` (the entry function returns r0), ``punt`` (a cut), ``branch``
(``succs`` = fall-through, taken), ``goto`` (one successor: fall, jump, call, return).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ebpf.analysis import Loop
from ebpf.analysis.dataflow import Analysis
from offload.errors import MapperError

MAX_NODES = 6000


class LowerError(MapperError):
    """The lowering cannot handle a program at all (too large, malformed)."""


@dataclass
class Node:
    id: int
    cs: tuple[int, ...]
    block: int  # first slot of the basic block
    iters: tuple[tuple[tuple[tuple[int, ...], int], int], ...]
    slots: list[int]
    term: str  # exit | punt | branch | goto
    succs: list[int] = field(default_factory=list)
    preds: list[int] = field(default_factory=list)
    cut: int | None = None  # the cut slot of a punt node
    call: int | None = None  # a goto into a callee: the call slot
    ret: bool = False  # a goto returning from a callee

    @property
    def last(self) -> int | None:
        return self.slots[-1] if self.slots else None


@dataclass
class Dag:
    nodes: list[Node]
    entry: int
    order: list[int]  # topological order

    def succ_side(self, a: int, b: int) -> int:
        """0 (fall-through) or 1 (taken) for the edge a -> b of a branch node."""
        return self.nodes[a].succs.index(b)


def build_dag(an: Analysis, cuts: Iterable[int], trips: dict[tuple, int]) -> Dag:
    """The DAG of ``an``'s program with the slots in ``cuts`` cut.

    ``trips`` maps (function name, loop header) to the most times the header runs.
    """
    cut = set(cuts)
    cfg = an.cfg
    contexts = cfg.contexts()
    reached = set(an.contexts())
    loops: dict[str, list[Loop]] = {}
    for f in cfg.functions.values():
        loops[f.name] = list(f.loops)
    nodes: list[Node] = []
    index: dict[tuple, int] = {}

    def get(cs: tuple[int, ...], block: int, iters: tuple) -> int:
        key = (cs, block, iters)
        if key in index:
            return index[key]
        if len(nodes) >= MAX_NODES:
            raise LowerError(f"the inlined and unrolled program has more than {MAX_NODES} "
                             f"blocks")
        n = Node(len(nodes), cs, block, iters, [], "goto")
        nodes.append(n)
        index[key] = n.id
        work.append(n.id)
        return n.id

    work: list[int] = []
    fentry = cfg.get_function(cfg.entry)
    entry = get((), fentry.entry, ())
    while work:
        n = nodes[work.pop()]
        fname = contexts[n.cs]
        fcfg = cfg.get_function(fname)
        block = fcfg.blocks[n.block]
        slots = []
        for s in block.slots:
            if s in cut:
                n.cut = s
                break
            slots.append(s)
        n.slots = slots
        if n.cut is not None:
            n.term = "punt"
            continue
        iters = dict(n.iters)
        if block.term == "exit":
            if not n.cs:
                n.term = "exit"
                continue
            call_slot = n.cs[-1]
            outer = n.cs[:-1]
            ret = cfg.block_of(call_slot).succs[0]
            if (cfg.block_of(call_slot).start, ret) not in an.feasible_edges(outer):
                n.term = "dead"
                continue
            kept = tuple((k, v) for k, v in n.iters if len(k[0]) <= len(outer))
            n.succs = [get(outer, ret, kept)]
            n.ret = True
            continue
        if block.term == "call":
            inner = n.cs + (block.last,)
            if inner not in reached or block.callee is None:
                n.term = "dead"
                continue
            n.succs = [get(inner, cfg.get_function(contexts[inner]).entry, n.iters)]
            n.call = block.last
            continue
        if block.term == "tail":
            raise LowerError(f"slot {block.last}: a tail call that is not cut")
        feasible = an.feasible_edges(n.cs)
        succs = []
        for d in block.succs:
            if (n.block, d) not in feasible:
                succs.append(None)
                continue
            nxt = dict(iters)
            for loop in loops[fname]:
                key = (n.cs, loop.header)
                inside_src = n.block in loop.body
                if d == loop.header:
                    if inside_src:  # back edge
                        count = nxt.get(key, 1) + 1
                        bound = trips.get((fname, loop.header))
                        if bound is None or count > bound:
                            nxt = None  # type: ignore[assignment]
                            break
                        nxt[key] = count
                    else:
                        nxt[key] = 1
                elif inside_src and d not in loop.body:
                    nxt.pop(key, None)
            if nxt is None:
                succs.append(None)
                continue
            succs.append(get(n.cs, d, tuple(sorted(nxt.items()))))
        if block.term == "branch" and len(block.succs) == 2 and block.succs[0] != block.succs[1]:
            n.term = "branch"
            n.succs = [s if s is not None else -1 for s in succs]
        else:
            live = [s for s in succs if s is not None]
            n.term = "goto" if live else "dead"
            n.succs = live[:1]
    for n in nodes:
        for s in n.succs:
            if s >= 0:
                nodes[s].preds.append(n.id)
    return Dag(nodes, entry, topological(nodes, entry))


def topological(nodes: list[Node], entry: int) -> list[int]:
    """Nodes reachable from ``entry`` in topological order (the DAG has no cycles)."""
    indeg = {entry: 0}
    stack = [entry]
    seen = {entry}
    while stack:
        for s in nodes[stack.pop()].succs:
            if s < 0:
                continue
            indeg[s] = indeg.get(s, 0) + 1
            if s not in seen:
                seen.add(s)
                stack.append(s)
    order = []
    ready = [entry]
    while ready:
        n = ready.pop()
        order.append(n)
        for s in reversed(nodes[n].succs):
            if s < 0:
                continue
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(order) != len(seen):
        raise LowerError("the unrolled program still has a cycle (a loop without a bound)")
    return order
