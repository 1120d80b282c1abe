"""The symbolic machine state of the translation, per DAG node and edge, and its join.

``State`` holds r0-r10 of the current frame, the callers' saved r6-r10, the stack bytes of
every active frame, and what the packet ordering needs: the window loads and stores on the
paths so far (``pkt``), the adjust ops (``adjusts``) and the ops that read the packet's
head or length since (``he_reads``), and the bounds of ``head`` (data's position).

Stack bytes (``ByteSym``) are ``("c", byte)`` a constant, ``("b", src, j)`` byte j of a PHV
source (a virtual container or metadata), ``("s", sym, i)`` byte i of another symbolic
value (a pointer, a lazy phi), or absent (unknown). Joining states where paths meet keeps
what agrees and turns what differs into lazy ``Phi`` values, materialised (copies on the
incoming edges) only when something uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from offload.lower.ir import Const, MapPtr, MapVal, Pkt, Stack, Top, Val, Value

TOP = Top()


@dataclass(frozen=True, eq=False)
class Phi:
    """A lazy phi: the value is ``incoming[i][1]`` on the DAG edge ``incoming[i][0]`` -> node."""

    node: int
    incoming: tuple[tuple[int, Any], ...]
    size: int = 8  # meaningful bytes (a phi of stack byte runs may be narrower)

    def leaves(self, guard: tuple = ()) -> list[tuple[tuple, Any]]:
        """(edges to take, leaf Sym) for every leaf, nested phis flattened."""
        out = []
        for pred, sym in self.incoming:
            path = guard + ((pred, self.node),)
            if isinstance(sym, Phi):
                out += sym.leaves(path)
            else:
                out.append((path, sym))
        return out


def is_merged_value(sym: Any) -> bool:
    """A phi of map value pointers that is not one lookup's: leaves of several lookups, or
    NULL on some paths (``offload.lower.merged``)."""
    if not isinstance(sym, Phi):
        return False
    leaves = [s for _, s in sym.leaves()]
    vals = [s for s in leaves if isinstance(s, MapVal)]
    return bool(vals) and all(isinstance(s, MapVal) or s == Const(0) for s in leaves) and \
        (len(vals) < len(leaves) or len({id(s.lookup) for s in vals}) > 1)


@dataclass(frozen=True)
class Low32:
    """``(u32)ptr``: the low half of a pointer, kept for the differences computed from it
    (clang subtracts packet pointers in 32 bits when the result is an int)."""

    ptr: Any


@dataclass
class State:
    regs: tuple
    frames: tuple = ()  # callers' (r6, r7, r8, r9, r10), innermost last
    stack: dict = field(default_factory=dict)  # (depth, offset) -> ByteSym
    pkt: tuple = ()  # (op, lo, hi | None) window accesses on the path
    adjusts: tuple = ()  # adjust ops on the path
    he_reads: tuple = ()  # ops reading head / length since the last adjust
    head_min: int = 0
    head_max: int = 0
    adjusted: bool = False
    rmw: dict = field(default_factory=dict)  # (lookup id, word) -> last stateful op
    wbytes: dict = field(default_factory=dict)  # (base id or -1, offset) -> ByteSym known

    @property
    def depth(self) -> int:
        return len(self.frames)

    def copy(self) -> State:
        return replace(self, stack=dict(self.stack), rmw=dict(self.rmw),
                       wbytes=dict(self.wbytes))

    def with_reg(self, r: int, sym: Any) -> State:
        regs = list(self.regs)
        regs[r] = sym
        return replace(self, regs=tuple(regs))


def initial_state() -> State:
    from offload.lower.ir import Ctx, Stack
    regs = [TOP] * 11
    regs[1] = Ctx()
    regs[10] = Stack(0, 0)
    return State(tuple(regs))


# --- byte-level view of values ------------------------------------------------------------

def sym_bytes(sym: Any, n: int) -> list:
    """The ByteSyms of the low ``n`` bytes of ``sym``."""
    if isinstance(sym, Const):
        return [("c", (sym.value >> (8 * i)) & 0xFF) for i in range(n)]
    if isinstance(sym, Val):
        return [("b", sym.src, sym.off + i) if i < sym.size else ("c", 0) for i in range(n)]
    return [("s", sym, i) for i in range(n)]


def continues(prev: Any, cur: Any) -> bool:
    """Does byte ``cur`` continue the run of ``prev`` (one value, consecutive bytes)?"""
    if prev is None or cur is None:
        return False
    if prev[0] == "c" and cur[0] == "c":
        return True
    if prev[0] == "b" and cur[0] == "b":
        return prev[1] is cur[1] and cur[2] == prev[2] + 1 and cur[2] < 8
    if prev[0] == "s" and cur[0] == "s":
        return prev[1] is cur[1] and cur[2] == prev[2] + 1
    return False


def run_sym(run: list) -> Any:
    """The Sym of a run of ByteSyms that ``continues`` chains (little-endian), or None."""
    if not run or any(b is None for b in run):
        return None
    kind = run[0][0]
    if kind == "c" and all(b[0] == "c" for b in run):
        return Const(sum(b[1] << (8 * i) for i, b in enumerate(run)))
    if kind == "b":
        src, j = run[0][1], run[0][2]
        n = 1
        while n < len(run) and run[n][0] == "b" and run[n][1] is src and run[n][2] == j + n:
            n += 1
        if j + n <= 8 and all(b == ("c", 0) for b in run[n:]):
            return Val(src, j, n)
        return None
    if kind == "s" and run[0][2] == 0 and all(b[0] == "s" and b[1] is run[0][1] and b[2] == i
                                              for i, b in enumerate(run)):
        sym = run[0][1]
        if len(run) == 8 or (isinstance(sym, Phi) and len(run) == sym.size):
            return sym
    return None


def join_syms(node: int, incoming: list[tuple[int, Any]], size: int = 8) -> Any:
    """The value after paths meet: the common value, else a lazy Phi (Top if any is Top)."""
    first = incoming[0][1]
    if all(s == first for _, s in incoming):
        return first
    if any(isinstance(s, Top) for _, s in incoming):
        return TOP
    kinds = {type(s) for _, s in incoming}
    scalar = {Const, Val, Phi}
    pointers = {Pkt, Phi, Const}  # a constant: NULL on that path
    values = {MapVal, Phi, Const}
    maps = {MapPtr, Phi}  # one helper call on several maps (offload.lower.merged)
    stacks = {Stack, Phi}  # its keys
    if not (kinds <= scalar or kinds <= pointers or kinds <= values or kinds <= maps
            or kinds <= stacks):
        return TOP
    return Phi(node, tuple(incoming), size)


def join_states(node: int, incoming: list[tuple[int, State]]) -> State:
    """The state at the entry of ``node`` from its live incoming edges (pred, state)."""
    if len(incoming) == 1:
        return incoming[0][1].copy()
    states = [s for _, s in incoming]
    first = states[0]
    regs = tuple(join_syms(node, [(p, s.regs[r]) for p, s in incoming]) for r in range(11))
    frames = first.frames
    if any(s.frames != frames for s in states[1:]):
        depth = len(frames)
        frames = tuple(tuple(join_syms(node, [(p, s.frames[d][r]) for p, s in incoming])
                             for r in range(5)) for d in range(depth))
    stack = _join_stack(node, incoming)
    pkt: dict[int, tuple] = {}
    adjusts: dict[int, Any] = {}
    he: dict[int, Any] = {}
    for s in states:
        for e in s.pkt:
            pkt[e[0].id] = e
        for a in s.adjusts:
            adjusts[a.id] = a
        for h in s.he_reads:
            he[id(h)] = h
    rmw = {}
    for key in set().union(*(s.rmw for s in states)):
        ops = {id(s.rmw.get(key)) for s in states}
        if len(ops) == 1:
            rmw[key] = first.rmw[key]
    wbytes = {k: v for k, v in first.wbytes.items()
              if all(s.wbytes.get(k) == v for s in states[1:])}
    return State(regs, frames, stack, tuple(pkt.values()), tuple(adjusts.values()),
                 tuple(he.values()), min(s.head_min for s in states),
                 max(s.head_max for s in states), any(s.adjusted for s in states), rmw,
                 wbytes)


def _join_stack(node: int, incoming: list[tuple[int, State]]) -> dict:
    states = [s for _, s in incoming]
    keys = set()
    for s in states:
        keys.update(s.stack)
    out = {}
    differ = []
    for k in keys:
        vals = [s.stack.get(k) for s in states]
        if all(v == vals[0] for v in vals[1:]) and vals[0] is not None:
            out[k] = vals[0]
        elif all(v is not None for v in vals):
            differ.append(k)
    # runs of differing bytes, split where any incoming state's value breaks
    differ.sort()
    i = 0
    while i < len(differ):
        j = i + 1
        while (j < len(differ) and differ[j][0] == differ[i][0]
               and differ[j][1] == differ[j - 1][1] + 1 and j - i < 8
               and all(continues(s.stack[differ[j - 1]], s.stack[differ[j]]) for s in states)):
            j += 1
        run = differ[i:j]
        syms = [(p, run_sym([s.stack[k] for k in run])) for p, s in incoming]
        if all(sym is not None for _, sym in syms):
            phi = join_syms(node, syms, len(run))
            if not isinstance(phi, Top):
                for idx, k in enumerate(run):
                    out[k] = ("s", phi, idx) if isinstance(phi, Phi) else sym_bytes(
                        phi, len(run))[idx]
        i = j
    return out


# --- byte views ------------------------------------------------------------------------------
#
# clang often builds a field from single bytes (``(p[13] << 8) | p[12]``), masks and shifts by
# whole bytes, and moves 32-bit halves around. A **view** is the list of the 8 bytes of a
# value (the ByteSyms above, plus ``("p", x)``: byte x of the packet as it arrived). Shifts by
# multiples of 8, ORs of disjoint bytes, masks of whole bytes and 32-bit truncation have exact
# views; when a view is a run of consecutive packet bytes (zero above) the value is a parser
# extract, when it is a run of one container's bytes a slice of it, and no op is needed
# (``canonical``). Ops whose view is not canonical still run, and carry the view for the ops
# after them.

ZERO = ("c", 0)


def view_of(sym: Any) -> list | None:
    """The 8 ByteSyms of ``sym`` (a Const or Val), or None."""
    if isinstance(sym, Const):
        return [("c", (sym.value >> (8 * i)) & 0xFF) for i in range(8)]
    if not isinstance(sym, Val):
        return None
    src = sym.src
    if isinstance(src, Value) and src.kind == "extract":
        x, n = src.extract  # type: ignore[misc]
        base = [("p", x + i) if i < n else ZERO for i in range(8)]
    elif isinstance(src, Value) and getattr(src, "view", None) is not None:
        base = src.view
    else:
        base = [("b", src, i) for i in range(8)]
        if isinstance(src, Value) and src.bits < 64:
            base = [b if 8 * i < src.bits else ZERO for i, b in enumerate(base)]
    out = base[sym.off:sym.off + sym.size]
    return out + [ZERO] * (8 - len(out))


def shuffle(op: str, width: int, a: list, b: Any) -> list | None:
    """The view of ``a OP b`` when it is a byte shuffle (``b`` a view or a Const)."""
    if width == 32:
        a = a[:4] + [ZERO] * 4
    if op in ("lsh", "rsh") and isinstance(b, Const):
        k = b.value & (width - 1)
        if k % 8:
            return None
        k //= 8
        out = [ZERO] * k + a[:8 - k] if op == "lsh" else a[k:] + [ZERO] * k
    elif op == "and" and isinstance(b, Const):
        mask = b.value
        out = []
        for i, byte in enumerate(a):
            m = (mask >> (8 * i)) & 0xFF
            if m == 0xFF:
                out.append(byte)
            elif m == 0 or byte == ZERO:
                out.append(ZERO)
            elif byte[0] == "c":
                out.append(("c", byte[1] & m))
            else:
                return None
    elif op == "or":
        bv = view_of(b) if isinstance(b, Const) else b
        if bv is None:
            return None
        if width == 32:
            bv = bv[:4] + [ZERO] * 4
        out = []
        for x, y in zip(a, bv, strict=False):
            if x[0] == "c" and y[0] == "c":
                out.append(("c", x[1] | y[1]))
            elif y == ZERO:
                out.append(x)
            elif x == ZERO:
                out.append(y)
            else:
                return None
    else:
        return None
    if width == 32:
        out = out[:4] + [ZERO] * 4
    return out


def canonical(view: list, extract: Any, window_bytes: int) -> Any:
    """A Sym for ``view`` that needs no op (Const, a slice, a parser extract), or None."""
    if all(b[0] == "c" for b in view):
        return Const(sum(b[1] << (8 * i) for i, b in enumerate(view)))
    n = 1
    first = view[0]
    while n < 8 and view[n] != ZERO and _next(view[n - 1], view[n]):
        n += 1
    if any(b != ZERO for b in view[n:]):
        return None
    if first[0] == "b" and first[2] + n <= 8:
        return Val(first[1], first[2], n)
    if first[0] == "p" and n in (1, 2, 4, 8) and 0 <= first[1] and first[1] + n <= window_bytes:
        return Val(extract(first[1], n))
    return None


def _next(prev: tuple, cur: tuple) -> bool:
    if prev[0] == "b" and cur[0] == "b":
        return prev[1] is cur[1] and cur[2] == prev[2] + 1
    if prev[0] == "p" and cur[0] == "p":
        return cur[1] == prev[1] + 1
    return False
