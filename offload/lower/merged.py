"""Lookups in several maps merged into one helper call, and the value pointers they return.

clang merges ``v = c ? lookup(&tcp_ports, &k) : lookup(&udp_ports, &k)`` into one call whose
r1 is a phi of map pointers (and r2, with different keys, a phi of key pointers; or only r2,
for two keys of one map). On a pipeline every leaf becomes its own table at the call (a lookup is pure, so each runs
whenever the call is reached); the phi's edges say which one the packet asked for:

- the result is a lazy ``Phi`` of the leaves' value pointers, shaped like r1's phi;
- its null check is a ``Cond("anyhit")``: the OR over leaves of (the leaf's edges taken AND
  that leaf's table hit, or index in range for an array) -- ``offload.lower.ifconvert``
  turns it into one predicate;
- a load through it is the phi of the loads from each leaf's value (the leaf's table action
  or stateful read), selected by the same edges when the phi is materialised.

Stores and atomics through such a pointer stay a lowering reason (one stateful unit per map
word, and the write would need the edge in its predicate).
"""

from __future__ import annotations

from typing import Any

from offload.lower.ir import Cond, Const, MapPtr, MapVal, Stack
from offload.lower.memory import Unsupported
from offload.lower.state import Phi, State


def leg_guard(path: tuple) -> tuple:
    """The guard of a phi leaf's edges: the last merge's edge as a ``phi`` guard (exact
    for packets that reach the merge), the edges into earlier merges exactly."""
    last = ("phi",) + path[0]
    if len(path) == 1:
        return last
    return ("and", (last,) + tuple(("edge", a, b) for a, b in path[1:]))


def along(sym: Any, path: tuple) -> Any:
    """``sym`` on the paths of ``path`` (a leaf's edges): phis at those merges resolved."""
    edges = dict((b, a) for a, b in path)
    while isinstance(sym, Phi) and sym.node in edges:
        pred = edges[sym.node]
        sym = next((s for p, s in sym.incoming if p == pred), None)
    return sym


def map_leaves(phi: Phi, fn: Any, path: tuple = ()) -> Phi:
    """A phi shaped like ``phi`` whose leaves are ``fn(edges, leaf)``."""
    out = []
    for pred, sym in phi.incoming:
        p = path + ((pred, phi.node),)
        out.append((pred, map_leaves(sym, fn, p) if isinstance(sym, Phi) else fn(p, sym)))
    return Phi(phi.node, tuple(out), phi.size)


class MergedMixin:
    """Merged map lookups of ``offload.lower.translate.Translator``."""

    obj: Any

    def merged_map_lookup(self, n: int, st: State, slot: int) -> Phi:
        """r0 of a lookup whose map pointer (or key pointer) is a phi: one lookup per leaf,
        the map and the key pointer each leaf's edges lead to."""
        shape = st.regs[1] if isinstance(st.regs[1], Phi) else st.regs[2]
        done: dict[tuple, Any] = {}

        def one(path: tuple, _leaf: Any) -> Any:
            mp, key = along(st.regs[1], path), along(st.regs[2], path)
            if not isinstance(mp, MapPtr):
                raise Unsupported(slot, "a map lookup on a map the lowering cannot name")
            if key is None or isinstance(key, Phi):
                raise Unsupported(slot, "a map lookup whose key pointer the lowering cannot "
                                        "follow to each merged map")
            ident = (mp.map, key if isinstance(key, Stack) else id(key))
            if ident not in done:
                done[ident] = self.lookup_in(n, st, slot, mp, key)  # type: ignore[attr-defined]
            return done[ident]

        return map_leaves(shape, one)

    def merged_null_check(self, n: int, slot: int, phi: Phi, is_eq: bool) -> Cond | bool:
        """``phi == NULL`` (``is_eq``) or ``!= NULL`` for a phi of value pointers: the OR
        over leaves of (edges taken AND leaf not NULL); each leaf's own null check is used,
        so a leaf already checked on its path costs an AND, never a wrong answer."""
        legs = []
        for path, leaf in phi.leaves():
            if leaf == Const(0):
                continue
            sub = self.null_check(n, slot, leaf, False)  # type: ignore[attr-defined]
            if sub is False:
                continue
            legs.append((leg_guard(path), None if sub is True else sub))
        if not legs:
            return is_eq  # NULL on every path
        if all(sub is None for _, sub in legs) and len(legs) == len(phi.leaves()):
            return not is_eq  # never NULL
        return Cond("anyhit", legs, neg=is_eq)

    def merged_load(self, n: int, st: State, slot: int, phi: Phi, off: int, size: int) -> Phi:
        """A load through merged value pointers: the phi of each leaf's load."""
        def one(_path: tuple, leaf: Any) -> Any:
            if not isinstance(leaf, MapVal):  # NULL on that path: the load never runs there
                return Const(0)
            return self.map_load(n, st, slot, leaf, off, size)  # type: ignore[attr-defined]

        return map_leaves(phi, one)
