"""ebpf.analysis.graph: dominators, post-dominators and reachability against brute force."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf.analysis import (
    SINK,
    descendants,
    dominates,
    dominators,
    iter_dominators,
    post_dominators,
    reverse_postorder,
)
from tests.budget import examples


def reach(entry: int, succs: dict[int, list[int]], removed: int | None = None) -> set[int]:
    """Nodes reachable from ``entry`` without passing ``removed`` (plain search)."""
    if entry == removed:
        return set()
    seen, work = {entry}, [entry]
    while work:
        for s in succs[work.pop()]:
            if s != removed and s not in seen:
                seen.add(s)
                work.append(s)
    return seen


def brute_idom(entry: int, succs: dict[int, list[int]]) -> dict[int, int]:
    """Immediate dominators from the definition: a dominates b when removing a cuts b off;
    the immediate one is the strict dominator that every other strict dominator dominates."""
    nodes = reach(entry, succs)
    doms = {b: {a for a in nodes if b not in reach(entry, succs, a)} for b in nodes}
    idom = {entry: entry}
    for b in nodes - {entry}:
        strict = doms[b] - {b}
        idom[b] = next(a for a in strict if strict <= doms[a])
    return idom


@st.composite
def graphs(draw, dag: bool = False) -> dict[int, list[int]]:
    """A graph on nodes 0..n-1 (successors in order, duplicates allowed); forward edges
    only when ``dag``."""
    n = draw(st.integers(2, 9))
    succs = {}
    for a in range(n):
        targets = st.integers(a + 1, n - 1) if dag and a < n - 1 else st.integers(0, n - 1)
        succs[a] = [] if dag and a == n - 1 else draw(st.lists(targets, max_size=3))
    return succs


@settings(max_examples=examples(200), deadline=None)
@given(graphs())
def test_dominators_equal_the_definition(succs):
    """On any graph the immediate dominators are those the definition gives."""
    rpo, idom = dominators(0, succs)
    assert set(rpo) == reach(0, succs) and rpo[0] == 0
    assert idom == brute_idom(0, succs)
    assert list(idom) == rpo  # keys in reverse postorder, as the CFG iterates them
    for b in rpo:
        chain = list(iter_dominators(idom, b))
        assert chain[0] == b and chain[-1] == 0
        assert all(dominates(idom, a, b) for a in chain)


@settings(max_examples=examples(200), deadline=None)
@given(graphs(dag=True))
def test_post_dominators_are_dominators_of_the_reversed_graph(succs):
    """Post-dominators on a DAG: brute force on the reversed graph from a sink."""
    order = reverse_postorder(0, succs)
    live = {n: [s for s in succs[n] if s in order] for n in order}
    reverse = {SINK: [n for n in order if not live[n]], **{n: [] for n in order}}
    for a in order:
        for b in live[a]:
            reverse[b].append(a)
    assert post_dominators(order, live) == {SINK: SINK, **{
        n: p for n, p in brute_idom(SINK, reverse).items() if n != SINK}}


@settings(max_examples=examples(200), deadline=None)
@given(graphs(dag=True))
def test_descendants_are_the_reachable_nodes(succs):
    """Each node's bit set holds exactly the nodes a search reaches from it."""
    order = list(range(len(succs)))
    desc = descendants(order, succs)
    for n in order:
        assert {m for m in order if desc[n] >> m & 1} == reach(n, succs)


def test_dominates_is_false_for_unknown_nodes():
    """A node the map does not hold dominates nothing and is dominated by nothing."""
    idom = {0: 0, 1: 0}
    assert dominates(idom, 0, 1) and not dominates(idom, 1, 0)
    assert not dominates(idom, 0, 7) and not dominates(idom, 7, 0)
