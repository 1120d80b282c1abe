"""Control-flow graphs of a linked program: branch targets, basic blocks, dominators, loops.

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

``build_cfg(prog, cut_calls=True)`` cuts finer, as hXDP's compiler does (Brunella et al.,
OSDI 2020, sec. 3; its ``optimizer_core.py`` makes the slot after each jump, call and exit a
leader): a block also ends after every helper or kfunc call and every legacy packet load
(``LD_ABS``/``LD_IND``, which may leave the program), with ``term`` ``fall``, and the entry
of a callback (``lddw rX, func``) starts a block. The run-to-completion cost models
(``hw.rtc``) count on those blocks; the offload compiler on the coarser ones.

``branch_target`` is the one reading of a jump's or call's relative offset (the CFG, the
disassembler's labels and the cost models use it). Dominators and loops come from
``ebpf.analysis.graph``. Call strings (``ProgramCfg.contexts``) name each inlined instance
of a function: the tuple of call slots from the entry function down, ``()`` for the entry
function itself. A program whose jumps leave their function, land inside an ``lddw`` or run
off its end raises ``CfgError`` naming the slot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ebpf.analysis.graph import Loop, dominates, dominators, iter_dominators, natural_loops
from ebpf.code.isa import CallKind, Insn, InsnClass, Kind, PseudoSrc
from ebpf.errors import EbpfError
from ebpf.kernel_enums import HELPER_IDS
from ebpf.loader.program import Function, ProgramDef

TAIL_CALL_ID = HELPER_IDS["tail_call"]
MAX_CALL_DEPTH = 8  # MAX_CALL_FRAMES, include/linux/bpf_verifier.h


class AnalysisError(EbpfError):
    """A program the analysis cannot take apart: the message names the slot and the problem."""


class CfgError(AnalysisError):
    """A program whose control flow cannot be taken apart: names the slot and the problem."""


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
        return dominates(self.idom, a, b)

    def iter_dominators(self, b: int) -> Iterator[int]:
        """``b`` and its dominators up to the entry."""
        return iter_dominators(self.idom, b)


class ProgramCfg:
    """Every function's graph, the call sites and the call strings reachable from the entry."""

    def __init__(self, prog: ProgramDef, functions: dict[str, FunctionCfg],
                 block_at: dict[int, int]) -> None:
        self.prog = prog
        self.functions = functions
        self._block_at = block_at
        self.entry = next(iter(functions))

    def get_function(self, name: str) -> FunctionCfg:
        return self.functions[name]

    def block_of(self, slot: int) -> Block:
        """The block holding ``slot`` (an instruction's first slot)."""
        try:
            start = self._block_at[slot]
        except KeyError:
            raise CfgError(f"slot {slot} does not start an instruction") from None
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
                raise CfgError(f"call chain deeper than {MAX_CALL_DEPTH} frames at slot "
                                    f"{cs[-1]} (recursion?)")
            out[cs] = name
            fcfg = self.functions[name]
            for b in fcfg.rpo:
                block = fcfg.blocks[b]
                if block.term == "call" and block.callee is not None:
                    stack.append((cs + (block.last,), block.callee))
        return dict(sorted(out.items()))


# --- building --------------------------------------------------------------------------------

def branch_target(insn: Insn, slot: int) -> int | None:
    """The slot a jump or bpf-to-bpf call at ``slot`` transfers to; None for other
    instructions (``gotol``, JMP32 ``ja``, holds its offset in ``imm``)."""
    kind = insn.kind
    if kind is Kind.JA:
        delta = insn.imm if insn.spec.cls is InsnClass.JMP32 else insn.off
        return slot + 1 + delta
    if kind is Kind.JCOND:
        return slot + 1 + insn.off
    if kind is Kind.CALL and insn.src == CallKind.LOCAL:
        return slot + 1 + insn.imm
    return None


def is_tail_call(insn: Insn) -> bool:
    return insn.kind is Kind.CALL and insn.src == CallKind.HELPER and insn.imm == TAIL_CALL_ID


def _ends_block(insn: Insn, cut_calls: bool) -> bool:
    """Does the slot after ``insn`` start a new block?"""
    kind = insn.kind
    if kind in (Kind.JA, Kind.JCOND, Kind.EXIT):
        return True
    if cut_calls:
        return kind in (Kind.CALL, Kind.LD_ABS, Kind.LD_IND)
    return kind is Kind.CALL and (insn.src == CallKind.LOCAL or is_tail_call(insn))


def build_cfg(prog: ProgramDef, *, cut_calls: bool = False) -> ProgramCfg:
    """Blocks, dominators and loops of every function of ``prog`` (``cut_calls``: the finer
    blocks of the module docstring)."""
    slots = prog.get_slot_offsets()
    insn_at = dict(zip(slots, prog.insns, strict=True))
    # A program built without function records (assembler text) is one function.
    funcs = prog.functions or [Function(prog.name, 0, prog.num_slots, prog.section)]
    starts = {f.start: f for f in funcs}
    functions: dict[str, FunctionCfg] = {}
    block_at: dict[int, int] = {}
    for func in funcs:
        own = [s for s in slots if func.start <= s < func.start + func.size]
        if not own or own[0] != func.start:
            raise CfgError(f"function {func.name} at slot {func.start} does not start "
                           f"an instruction")
        leaders = {func.start}
        for s in own:
            insn = insn_at[s]
            kind = insn.kind
            nxt = s + insn.slots
            if kind in (Kind.JA, Kind.JCOND):
                target = branch_target(insn, s)
                assert target is not None
                if not func.start <= target < func.start + func.size or target not in insn_at:
                    raise CfgError(f"slot {s}: jump target {target} is outside "
                                   f"{func.name} or inside an lddw")
                leaders.add(target)
            elif cut_calls and kind is Kind.LDDW and insn.src == PseudoSrc.FUNC:
                leaders.add(s + 1 + insn.imm)  # a callback's entry
            if _ends_block(insn, cut_calls):
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
        term, succs = "jump", (branch_target(insn, last),)
    elif kind is Kind.JCOND:
        term, succs = "branch", (nxt, branch_target(insn, last))
    elif kind is Kind.CALL and insn.src == CallKind.LOCAL:
        target = last + 1 + insn.imm
        if target not in starts:
            raise CfgError(f"slot {last}: call target {target} is not a function start")
        term, succs, callee = "call", (nxt,), starts[target].name
    elif is_tail_call(insn):
        term, succs = "tail", (nxt,)
    else:
        term, succs = "fall", (nxt,)
    if any(s >= end for s in succs):
        raise CfgError(f"slot {last}: {func.name} runs off its end without exit")
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
