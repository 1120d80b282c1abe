"""Control-flow graphs of a linked program: basic blocks, dominators, natural loops.

One graph per function of the linked program (``ProgramDef.functions``: the entry function
and the sub-programs libbpf appended). Blocks are named by the slot of their first
instruction. A block ends at a jump, an ``exit``, a bpf-to-bpf call and a tail call:

========== =====================================================================
``term``   successors (``Block.succs``)
========== =====================================================================
``fall``   the next block (the block ran into a jump target)
``jump``   the target of ``ja``
``branch`` ``(fallthrough, taken)`` of a conditional jump (the same block twice for ``+0``)
``call``   the block after the call (the callee is ``Block.callee``; its exits return there)
``tail``   the block after ``bpf_tail_call`` (taken when the tail call fails; when it
           succeeds the program ends here, in another program)
``exit``   none
========== =====================================================================

Dominators use the iterative algorithm of Cooper, Harvey and Kennedy ("A Simple, Fast
Dominance Algorithm", 2001) on the reverse postorder of the blocks reachable from the entry.
A back edge goes from a block to one of its dominators; its natural loop is the header plus
every block that reaches the latch without passing the header (loops sharing a header are
merged, as in the kernel and LLVM). A retreating edge of the depth-first search that is not
a back edge closes an irreducible cycle: reported as a loop with ``reducible=False``.

Call strings (``ProgramCfg.contexts``) name each inlined instance of a function: the tuple
of call slots from the entry function down, ``()`` for the entry function itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ebpf.code.isa import CallKind, InsnClass, Kind
from ebpf.kernel_enums import HELPER_IDS
from ebpf.loader.program import Function, ProgramDef
from offload.errors import AnalysisError

TAIL_CALL_ID = HELPER_IDS["tail_call"]
MAX_CALL_DEPTH = 8  # MAX_CALL_FRAMES, include/linux/bpf_verifier.h


@dataclass(frozen=True)
class Block:
    """A maximal straight-line run of instructions; named by its first slot."""

    func: str
    start: int
    end: int
    """The slot after the last instruction."""
    slots: tuple[int, ...]
    """The slot of every instruction (a 64-bit load covers two slots, listed once)."""
    term: str
    succs: tuple[int, ...]
    callee: str | None = None

    @property
    def last(self) -> int:
        return self.slots[-1]


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


@dataclass(frozen=True)
class FunctionCfg:
    """The blocks of one function, their dominator tree and loops."""

    func: Function
    blocks: Mapping[int, Block]
    preds: Mapping[int, tuple[int, ...]]
    rpo: tuple[int, ...]
    """Blocks reachable from the entry, in reverse postorder."""
    idom: Mapping[int, int]
    """Immediate dominator of every reachable block; the entry maps to itself."""
    loops: tuple[Loop, ...]

    @property
    def name(self) -> str:
        return self.func.name

    @property
    def entry(self) -> int:
        return self.func.start

    @property
    def exits(self) -> list[int]:
        return [b for b in self.rpo if self.blocks[b].term == "exit"]

    @property
    def loop_headers(self) -> frozenset[int]:
        return frozenset(loop.header for loop in self.loops)

    def dominates(self, a: int, b: int) -> bool:
        """True when every path from the entry to block ``b`` passes block ``a``."""
        if b not in self.idom or a not in self.idom:
            return False
        while True:
            if a == b:
                return True
            parent = self.idom[b]
            if parent == b:
                return False
            b = parent

    def iter_dominators(self, b: int) -> Iterator[int]:
        """``b`` and its dominators up to the entry."""
        while True:
            yield b
            if self.idom[b] == b:
                return
            b = self.idom[b]


class ProgramCfg:
    """Every function's graph, the call sites and the call strings reachable from the entry."""

    def __init__(self, prog: ProgramDef, functions: dict[str, FunctionCfg],
                 block_at: dict[int, int]) -> None:
        self.prog = prog
        self.functions = functions
        self._block_at = block_at
        self.entry = prog.functions[0].name

    def get_function(self, name: str) -> FunctionCfg:
        return self.functions[name]

    def block_of(self, slot: int) -> Block:
        """The block holding ``slot`` (an instruction's first slot)."""
        try:
            start = self._block_at[slot]
        except KeyError:
            raise AnalysisError(f"slot {slot} does not start an instruction") from None
        return next(f.blocks[start] for f in self.functions.values() if start in f.blocks)

    def iter_blocks(self) -> Iterator[Block]:
        for f in self.functions.values():
            yield from f.blocks.values()

    def iter_loops(self) -> Iterator[Loop]:
        for f in self.functions.values():
            yield from f.loops

    def call_sites(self) -> list[tuple[int, str, str]]:
        """(call slot, caller, callee) of every bpf-to-bpf call."""
        return [(b.last, b.func, b.callee) for b in self.iter_blocks()
                if b.term == "call" and b.callee is not None]

    def contexts(self) -> dict[tuple[int, ...], str]:
        """Every call string reachable from the entry function -> the function it runs."""
        out: dict[tuple[int, ...], str] = {}
        stack: list[tuple[tuple[int, ...], str]] = [((), self.entry)]
        while stack:
            cs, name = stack.pop()
            if len(cs) >= MAX_CALL_DEPTH:
                raise AnalysisError(f"call chain deeper than {MAX_CALL_DEPTH} frames at slot "
                                    f"{cs[-1]} (recursion?)")
            out[cs] = name
            fcfg = self.functions[name]
            for b in fcfg.rpo:
                block = fcfg.blocks[b]
                if block.term == "call" and block.callee is not None:
                    stack.append((cs + (block.last,), block.callee))
        return dict(sorted(out.items()))


# --- building --------------------------------------------------------------------------------

def _jump_target(slot: int, insn) -> int:
    spec = insn.spec
    rel = insn.imm if spec.kind is Kind.JA and spec.cls is InsnClass.JMP32 else insn.off
    return slot + 1 + rel


def _is_tail_call(insn) -> bool:
    return insn.kind is Kind.CALL and insn.src == CallKind.HELPER and insn.imm == TAIL_CALL_ID


def build_cfg(prog: ProgramDef) -> ProgramCfg:
    """Blocks, dominators and loops of every function of ``prog``."""
    slots = prog.get_slot_offsets()
    insn_at = dict(zip(slots, prog.insns, strict=True))
    starts = {f.start: f for f in prog.functions}
    functions: dict[str, FunctionCfg] = {}
    block_at: dict[int, int] = {}
    for func in prog.functions:
        own = [s for s in slots if func.start <= s < func.start + func.size]
        if not own or own[0] != func.start:
            raise AnalysisError(f"function {func.name} at slot {func.start} does not start "
                                f"an instruction")
        leaders = {func.start}
        for s in own:
            insn = insn_at[s]
            kind = insn.kind
            nxt = s + insn.slots
            if kind in (Kind.JA, Kind.JCOND):
                target = _jump_target(s, insn)
                if not func.start <= target < func.start + func.size or target not in insn_at:
                    raise AnalysisError(f"slot {s}: jump target {target} is outside "
                                        f"{func.name} or inside an lddw")
                leaders.update((target, nxt))
            elif kind is Kind.EXIT or (kind is Kind.CALL and (insn.src == CallKind.LOCAL
                                                               or _is_tail_call(insn))):
                leaders.add(nxt)
        end = func.start + func.size
        blocks: dict[int, Block] = {}
        current: list[int] = []
        for i, s in enumerate(own):
            current.append(s)
            insn = insn_at[s]
            nxt = own[i + 1] if i + 1 < len(own) else end
            if nxt not in leaders and nxt != end:
                continue
            blocks[current[0]] = _close(func, current, insn, nxt, end, starts)
            for c in current:
                block_at[c] = current[0]
            current = []
        functions[func.name] = _analyse(func, blocks)
    return ProgramCfg(prog, functions, block_at)


def _close(func: Function, slots: list[int], insn, nxt: int, end: int,
           starts: dict[int, Function]) -> Block:
    last = slots[-1]
    kind = insn.kind
    callee = None
    if kind is Kind.EXIT:
        term, succs = "exit", ()
    elif kind is Kind.JA:
        term, succs = "jump", (_jump_target(last, insn),)
    elif kind is Kind.JCOND:
        term, succs = "branch", (nxt, _jump_target(last, insn))
    elif kind is Kind.CALL and insn.src == CallKind.LOCAL:
        target = last + 1 + insn.imm
        if target not in starts:
            raise AnalysisError(f"slot {last}: call target {target} is not a function start")
        term, succs, callee = "call", (nxt,), starts[target].name
    elif _is_tail_call(insn):
        term, succs = "tail", (nxt,)
    else:
        term, succs = "fall", (nxt,)
    if any(s >= end for s in succs):
        raise AnalysisError(f"slot {last}: {func.name} runs off its end without exit")
    return Block(func.name, slots[0], last + insn.slots, tuple(slots), term, succs, callee)


def _analyse(func: Function, blocks: dict[int, Block]) -> FunctionCfg:
    succs = {b: blocks[b].succs for b in blocks}
    rpo, idom = dominators(func.start, succs)
    preds: dict[int, list[int]] = {b: [] for b in blocks}
    for b in rpo:
        for s in dict.fromkeys(succs[b]):
            preds[s].append(b)
    loops = natural_loops(func.name, rpo, succs, idom)
    return FunctionCfg(func, blocks, {b: tuple(p) for b, p in preds.items()}, tuple(rpo),
                       idom, tuple(loops))


def reverse_postorder(entry: int, succs: Mapping[int, Sequence[int]]) -> list[int]:
    """Nodes reachable from ``entry``, in reverse postorder of a depth-first search."""
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


def dominators(entry: int, succs: Mapping[int, Sequence[int]]) -> tuple[list[int], dict[int, int]]:
    """(reverse postorder, immediate dominators) by Cooper-Harvey-Kennedy."""
    rpo = reverse_postorder(entry, succs)
    index = {b: i for i, b in enumerate(rpo)}
    preds: dict[int, list[int]] = {b: [] for b in rpo}
    for b in rpo:
        for s in succs[b]:
            preds[s].append(b)
    idom = {entry: entry}

    def intersect(a: int, b: int) -> int:
        while a != b:
            while index[a] > index[b]:
                a = idom[a]
            while index[b] > index[a]:
                b = idom[b]
        return a

    changed = True
    while changed:
        changed = False
        for b in rpo[1:]:
            done = [p for p in preds[b] if p in idom]
            new = done[0]
            for p in done[1:]:
                new = intersect(p, new)
            if idom.get(b) != new:
                idom[b] = new
                changed = True
    return rpo, idom


def natural_loops(func: str, rpo: Sequence[int], succs: Mapping[int, Sequence[int]],
                  idom: Mapping[int, int]) -> list[Loop]:
    """Natural loops from back edges (merged per header), then irreducible cycles."""
    index = {b: i for i, b in enumerate(rpo)}
    preds: dict[int, set[int]] = {b: set() for b in rpo}
    for b in rpo:
        for s in succs[b]:
            preds[s].add(b)

    def dominates(a: int, b: int) -> bool:
        while True:
            if a == b:
                return True
            if idom[b] == b:
                return False
            b = idom[b]

    latches: dict[int, list[int]] = {}
    irreducible: dict[int, list[int]] = {}
    for b in rpo:
        for s in succs[b]:
            if index[s] <= index[b]:  # retreating edge in this depth-first order
                (latches if dominates(s, b) else irreducible).setdefault(s, []).append(b)
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
