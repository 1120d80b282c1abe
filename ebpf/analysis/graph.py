"""Graph algorithms on control flow: depth-first order, dominators, post-dominators, loops.

The graphs are given as ``succs``: node -> successor nodes, in order (a node may list the
same successor twice, as a conditional jump ``+0`` does). Nodes are slots or block starts
(integers); what they stand for is the caller's business, so the control-flow graph of a
program (``ebpf.analysis.cfg``) and the lowering's DAG of program paths (``offload.lower``)
use the same functions.

Immediate dominators come from networkx (``immediate_dominators``: the iterative algorithm of
Cooper, Harvey and Kennedy, "A Simple, Fast Dominance Algorithm", 2001); the immediate
dominator of a node is unique, so any correct algorithm gives the same map. Post-dominators
are dominators of the reversed graph from a virtual sink that every node without successors
leads to. A back edge goes from a block to one of its dominators; its natural loop is the
header plus every block that reaches the latch without passing the header (loops sharing a
header are merged, as in the kernel and LLVM). A retreating edge of the depth-first search
that is not a back edge closes an irreducible cycle, reported with ``reducible=False``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

SINK = -1
"""The virtual node every exit leads to, for post-dominators (never a slot)."""


@dataclass(frozen=True)
class Loop:
    """A natural loop (or an irreducible cycle, ``reducible`` False) of one function."""

    func: str
    header: int
    latches: tuple[int, ...]
    """Blocks with an edge back to the header."""
    body: frozenset[int]
    """Every block of the loop, the header included."""
    exits: tuple[tuple[int, int], ...]
    """Edges (block inside, block outside) that leave the loop."""
    reducible: bool = True

    @property
    def first_slot(self) -> int:
        return self.header

    @property
    def last_slot(self) -> int:
        return max(self.body)


def reverse_postorder(entry: int, succs: Mapping[int, Sequence[int]]) -> list[int]:
    """Nodes reachable from ``entry``, in reverse postorder of a depth-first search that
    visits each node's successors in their listed order."""
    order: list[int] = []
    seen = {entry}
    stack = [(entry, iter(succs[entry]))]
    while stack:
        node, it = stack[-1]
        for s in it:
            if s not in seen:
                seen.add(s)
                stack.append((s, iter(succs[s])))
                break
        else:
            stack.pop()
            order.append(node)
    return order[::-1]


def immediate_dominators(entry: Hashable, succs: Mapping[int, Sequence[int]],
                         order: Sequence[int]) -> dict[int, int]:
    """Immediate dominator of every node of ``order`` (the nodes reachable from ``entry``,
    ``entry`` first); the entry maps to itself. Keys follow ``order``."""
    graph = nx.DiGraph()
    graph.add_nodes_from(order)
    graph.add_edges_from((a, b) for a in order for b in succs[a])
    found = nx.immediate_dominators(graph, entry)
    found[entry] = entry  # networkx < 3.5 lists the start, later ones leave it out
    return {n: found[n] for n in order}


def dominators(entry: int, succs: Mapping[int, Sequence[int]]) -> tuple[list[int], dict[int, int]]:
    """(reverse postorder, immediate dominators) of the nodes reachable from ``entry``."""
    rpo = reverse_postorder(entry, succs)
    return rpo, immediate_dominators(entry, succs, rpo)


def post_dominators(order: Sequence[int],
                    succs: Mapping[int, Sequence[int]]) -> dict[int, int]:
    """Immediate post-dominator of every node of ``order``; a node whose paths end without a
    common node maps to ``SINK`` (and ``SINK`` to itself)."""
    reverse: dict[int, list[int]] = {SINK: [n for n in order if not succs[n]]}
    for n in order:
        reverse.setdefault(n, [])
        for s in succs[n]:
            reverse.setdefault(s, []).append(n)
    rorder = [SINK, *reversed(order)]
    return immediate_dominators(SINK, reverse, rorder)


def dominates(idom: Mapping[int, int], a: int, b: int) -> bool:
    """True when ``a`` is ``b`` or on ``b``'s dominator chain (``idom``: node -> parent, the
    root mapping to itself); False for nodes ``idom`` does not hold."""
    if a not in idom or b not in idom:
        return False
    while True:
        if a == b:
            return True
        parent = idom[b]
        if parent == b:
            return False
        b = parent


def iter_dominators(idom: Mapping[int, int], b: int) -> Iterator[int]:
    """``b`` and its dominators up to the root."""
    while True:
        yield b
        if idom[b] == b:
            return
        b = idom[b]


def descendants(order: Sequence[int], succs: Mapping[int, Sequence[int]]) -> dict[int, int]:
    """Node -> bit set (bit n for node n) of the nodes it reaches, itself included, for an
    acyclic graph given in topological ``order`` (successors outside it are ignored)."""
    desc: dict[int, int] = {}
    for n in reversed(order):
        bits = 1 << n
        for s in succs[n]:
            bits |= desc.get(s, 0)
        desc[n] = bits
    return desc


def natural_loops(func: str, rpo: Sequence[int], succs: Mapping[int, Sequence[int]],
                  idom: Mapping[int, int]) -> list[Loop]:
    """Natural loops from back edges (merged per header), then irreducible cycles."""
    index = {b: i for i, b in enumerate(rpo)}
    preds: dict[int, set[int]] = {b: set() for b in rpo}
    for b in rpo:
        for s in succs[b]:
            preds[s].add(b)
    latches: dict[int, list[int]] = {}
    irreducible: dict[int, list[int]] = {}
    for b in rpo:
        for s in succs[b]:
            if index[s] <= index[b]:  # retreating edge in this depth-first order
                (latches if dominates(idom, s, b) else irreducible).setdefault(s, []).append(b)
    loops = []
    for header, tails in sorted(latches.items()):
        body = {header}
        work = [t for t in tails if t != header]
        body.update(work)
        while work:
            for p in preds[work.pop()]:
                if p not in body:
                    body.add(p)
                    work.append(p)
        loops.append(_loop(func, header, tails, body, succs, True))
    for header, tails in sorted(irreducible.items()):
        forward = set(reverse_postorder(header, succs))
        body = {header} | {b for b in forward if header in set(reverse_postorder(b, succs))}
        loops.append(_loop(func, header, tails, body, succs, False))
    return loops


def _loop(func: str, header: int, tails: list[int], body: set[int],
          succs: Mapping[int, Sequence[int]], reducible: bool) -> Loop:
    exits = tuple(sorted({(b, s) for b in body for s in succs[b] if s not in body}))
    return Loop(func, header, tuple(sorted(set(tails))), frozenset(body), exits, reducible)
