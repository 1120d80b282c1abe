"""A VLIW soft core (hXDP-like): each basic block packed into rows of L lanes, rows per packet.

hXDP (Brunella et al., "hXDP: Efficient Software Packet Processing on FPGA NICs", OSDI 2020)
runs unmodified XDP programs on Sephirot, a VLIW core whose compiler schedules the eBPF
instructions of each basic block into rows of 4 parallel lanes (sec. 3 and 4.1.3; the
artifact's ``parallelizer/optimizer_core.py`` list-schedules each block separately). This
module does the same, as a model:

Blocks are those of ``hw.rtc.common.build_cfg`` (leaders after every jump, call and exit, as
hXDP's compiler cuts them). Each instruction is one op (``lddw`` too: one op, two slots).

Dependencies between ops i < j of one block (j must go in row(i) + latency or later):

- RAW (j reads a register i writes): latency 1; WAW (both write one register): latency 1;
- WAR (j writes a register i reads): latency 0. All lanes of a row read their operands in
  the same cycle, before any lane writes back, so a reader and a later writer may share a
  row (the VLIW "read at issue, write at commit" rule);
- memory: a store (ST, STX, atomic, call) against any other load or store of the block:
  latency 1, unless both address the stack through r10 at constant offsets whose byte
  ranges are disjoint (r10 is read-only, so those addresses are known at compile time);
  two loads never conflict. A pointer in another register may point anywhere, the stack
  included, so any other pair is ordered;
- control: the block's jump, call or exit goes in the block's last row (latency 0 from every
  other op, more where a dependency above says so).

Calls (helper, bpf-to-bpf) read their argument registers and write r0-r5 (the eBPF calling
convention) and count as memory accesses. A row holds at most ``lanes`` ops and at most
``helper_calls_per_row`` helper calls (hXDP has one helper functions module).

Scheduling is list scheduling (Gibbons and Muchnick, "Efficient instruction scheduling for a
pipelined architecture", SIGPLAN 1986): row by row, ready ops in order of their longest
latency-weighted path to the end of the block (ties: program order). It is optimal for the
shapes the tests pin (independent ops: ceil(n / L) rows; a chain of n: n rows) and a
heuristic in general; ``rows <= instructions`` always.

hXDP compiler and pipeline optimisations (Brunella et al. sec. 3 and 4.2), each switchable
by name in ``optimizations``, all on by default (``DEFAULT_OPTIMIZATIONS``), as in the
paper's measurements ("all the compiler and hardware optimizations", sec. 5.2.1);
``optimization_effects`` reports what each one saves:

- ``"mov_alu"``: ``mov rD, rS`` followed at once by an ALU-immediate op on rD becomes one
  three-operand op (reads rS, writes rD) (sec. 3.2, three-operand instructions);
- ``"movi_exit"``: ``mov r0, imm`` followed at once by ``exit`` becomes one exit op
  (sec. 3.2, parametrized exit);
- ``"bounds_checks"``: a conditional jump comparing a packet pointer with the packet end
  (found by ``hw.rtc.common.bounds_checks``) is removed: Sephirot checks packet bounds in
  hardware (sec. 3.1), and so is what only fed it (the ``data_end`` load, the pointer
  arithmetic: register liveness over the CFG). The block keeps its boundary (blocks are not
  merged at a removed branch), so the saving is a lower bound;
- ``"ldst6"``: a 6-byte copy written as consecutive load/store pairs of one width (six byte
  pairs or three half-word pairs: ``ldx rX, [rA+a+k]; stx [rB+b+k], rX``, the loads covering
  six contiguous bytes in any order, one store offset delta, source and destination disjoint
  when ``rA`` is ``rB``) becomes one 6 B load and one 6 B store (sec. 3.2, 6 B load/store
  for MAC addresses). As hXDP's compiler, the model does not check that the copied value is
  dead in the data register afterwards;
- ``"code_motion"``: a block that ends in a helper call (not ``tail_call``) and the block
  after it, when that block has no other predecessor, are control equivalent (one runs iff
  the other does); they are scheduled as one sequence, so instructions after the call that
  do not depend on it move into earlier rows (sec. 3.4/5.1, "anticipating instructions from
  control equivalent blocks"). The merged block's rows are charged to its first block.
  Below a conditional branch, the join block (the branch block's immediate
  post-dominator, which it dominates, with an acyclic region between holding no exit or
  tail call) is control equivalent too: the join's leading ops that depend on nothing in
  the region nor on the join's ops left behind fill free lanes of the branch block's rows
  (``_hoist_from_joins``; the join keeps the rest). Control equivalence is taken on the
  CFG before bounds-check removal (the removed checks' exits still count, so few joins
  qualify: a lower bound), and ops are not moved into the arms, above a join whose region
  has a loop, or out of loops; "parallel branching" (several branches in one row, sec. 4.2)
  is not modelled;
- ``"helper_args"``: a 64-bit move into an argument register (r1-r5; ``mov`` or a
  ``mov`` + ALU-immediate pair) that gives it the value it already holds on every path is
  removed (``lddw`` and other writes are kept) (a forward analysis of symbolic register values
  over the CFG; a ``mov rD, rS`` + ALU-immediate pair counts as one write). Sephirot's
  helpers read r1-r5 and write only r0 (sec. 4.1.4), and its compiler assigns r1-r5 to
  the helper arguments' symbols (sec. 3.4, physical register assignment), so a call whose
  arguments equal the previous call's needs no set-up: clang re-emits them because the
  eBPF convention says the call clobbered them. The paper does not name this step; Fig. 15
  (about one cycle per further call) is the evidence for it (docs/calibration.md);
- ``"early_exit"``: the exit is recognised at instruction fetch, so a packet does not pay
  the ``pipeline_depth - 1`` cycles of the pipeline's drain (sec. 4.2, "early processor
  exit ... save the 3 remaining clock cycles"); without it every packet pays them.

Off by default (``EXTRA_OPTIMIZATIONS``, named in ``optimizations`` to use it):

- ``"call_args"``: a helper call may share the row of the writes of its own arguments
  (r1-r5, and stores to the memory it reads, such as a map key on the stack), though not
  the row of an earlier helper call or of a write of r0. This is how the hXDP
  artifact's compiler schedules every call (``parallelizer/optimizer_core.py`` gives a call
  no input operands and puts it in its block's last row; all 16 calls of the six
  ``SPH_roms/*.bin.out`` images share a row with an argument write). It is right only if
  the helper module reads its arguments after that row commits, which the paper does not
  say (operands are read at fetch, sec. 4.1.3), and it moves Fig. 15's curve off by a
  cycle, so it is not a default (docs/calibration.md, Fig. 14).

A helper call on Sephirot reads r1-r5 and writes only r0 (sec. 4.1.4: the helper module
returns its value in r0 over the helper bus; the eBPF convention that r1-r5 are clobbered is
a verifier contract, not something the hardware does), so a later write of an argument
register may share the call's row (WAR). bpf-to-bpf calls keep the r0-r5 clobber.

Cost per packet (``packet_cycles``), from the blocks a VM trace executed:

    compute = start_latency_cycles + sum(rows of each executed block)
              + helper_cycles x (non-map helper calls) + map_access_cycles x (map helper calls)
              + (pipeline_depth - 1 unless "early_exit")
    cycles  = max(compute, tx_cycles if the verdict is XDP_TX,
                           redirect_cycles (default tx_cycles) if it is XDP_REDIRECT)
    latency = compute + pipeline_depth - 1

``cycles`` is the issue-rate cost: consecutive packets overlap the pipeline fill, and the
emission of a transmitted packet overlaps the next packet's processing (sec. 4.1.2: "the
emission of a packet happens in parallel with the reading of the next packet"), so a
transmitted packet costs at least ``tx_cycles``. ``latency`` adds the fill for one packet
alone. A packet also needs ceil(frame bytes / bus bytes) cycles on the packet bus; the rate
is clock / max(cycles, bus cycles), capped by the line rate (``estimate_vliw``). The
calibration of these numbers against the paper's microbenchmarks is in docs/calibration.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ebpf.analysis import Analysis, analyze, branch_target
from ebpf.code.isa import FRAME_POINTER, AluOp, CallKind, Insn, Kind, Source
from ebpf.kernel_enums import HELPER_IDS
from ebpf.loader.program import ElfObject, ProgramDef
from ebpf.vm.trace import Trace
from ebpf.vm.xdp import XDP_REDIRECT, XDP_TX
from hw.feasibility import check_target
from hw.rtc.common import (
    MAP_HELPERS,
    Block,
    Cfg,
    CostEstimate,
    RtcError,
    bounds_checks,
    build_cfg,
    insn_regs,
    iter_executed_blocks,
    wire_mpps,
)
from hw.rtc.vliw_dataflow import dead_code, fusible_mov_alu, redundant_arg_writes, successors
from hw.targets import Target, VliwTarget

OPTIMIZATIONS = ("mov_alu", "movi_exit", "bounds_checks", "ldst6", "code_motion",
                 "helper_args", "early_exit")
DEFAULT_OPTIMIZATIONS = OPTIMIZATIONS
EXTRA_OPTIMIZATIONS = ("call_args",)
"""Modelled but off unless named (module docstring)."""
_TAIL_CALL = HELPER_IDS["tail_call"]
_EMITTED = (XDP_TX, XDP_REDIRECT)


# --- ops and dependencies ----------------------------------------------------------------

@dataclass(frozen=True)
class VliwOp:
    """One lane's work: one instruction, or two fused by an optimisation.

    ``mem`` is ``""`` (no memory), ``"load"`` or ``"store"`` (stores include atomics and
    calls); ``stack`` the (offset, size) byte range of an r10-relative access, else None.
    ``control``: the op must end its block (jump, call, exit).
    """

    slots: tuple[int, ...]
    reads: frozenset[int]
    writes: frozenset[int]
    mem: str = ""
    stack: tuple[int, int] | None = None
    control: bool = False
    helper: bool = False
    late_args: bool = False
    """``"call_args"``: a helper call that may share the row of its argument writes."""

    @property
    def slot(self) -> int:
        return self.slots[0]


def make_op(insn: Insn, slot: int) -> VliwOp:
    """The op of one instruction (registers, memory and control, as the module says)."""
    reads, writes = insn_regs(insn)
    kind = insn.kind
    mem, stack = "", None
    if kind in (Kind.LDX, Kind.LDXSX, Kind.LD_ABS, Kind.LD_IND):
        mem = "load"
        if kind in (Kind.LDX, Kind.LDXSX) and insn.src == FRAME_POINTER:
            stack = (insn.off, insn.spec.width)
    elif kind in (Kind.ST, Kind.STX, Kind.ATOMIC):
        mem = "store"
        if insn.dst == FRAME_POINTER:
            stack = (insn.off, insn.spec.width)
    elif kind is Kind.CALL:
        mem = "store"
    control = kind in (Kind.JA, Kind.JCOND, Kind.EXIT, Kind.CALL)
    helper = kind is Kind.CALL and insn.src == CallKind.HELPER
    if helper:
        writes = frozenset({0})  # Sephirot's helper module writes only r0 (module docstring)
    return VliwOp((slot,), reads, writes, mem, stack, control, helper)


def latency(a: VliwOp, b: VliwOp) -> int | None:
    """Rows op ``b`` (later in program order) must follow op ``a``: 1, 0, or None (free)."""
    if b.late_args and not a.helper and not a.writes & b.writes:
        return 0  # "call_args": the call may share the row of its argument writes
    lat: int | None = None
    if a.writes & b.reads or a.writes & b.writes:
        return 1
    if a.mem and b.mem and "store" in (a.mem, b.mem):
        disjoint = (a.stack is not None and b.stack is not None
                    and (a.stack[0] + a.stack[1] <= b.stack[0]
                         or b.stack[0] + b.stack[1] <= a.stack[0]))
        if not disjoint:
            return 1
    if a.reads & b.writes or b.control:
        lat = 0
    return lat


def _copy6(items: Sequence[tuple[Insn, int]], k: int) -> int:
    """Instructions from ``items[k]`` that form a 6-byte copy ``"ldst6"`` fuses (0: none)."""
    for width in (1, 2):
        n = 2 * (6 // width)
        pairs = items[k:k + n]
        if len(pairs) < n:
            continue
        loads = [i for i, _ in pairs[0::2]]
        stores = [i for i, _ in pairs[1::2]]
        if not all(ld.kind is Kind.LDX and ld.spec.width == width for ld in loads):
            continue
        if not all(st.kind is Kind.STX and st.spec.width == width for st in stores):
            continue
        lbase, sbase = loads[0].src, stores[0].dst
        if any(ld.src != lbase or ld.dst in (lbase, sbase) for ld in loads):
            continue
        if any(st.dst != sbase or st.src != ld.dst for ld, st in zip(loads, stores, strict=True)):
            continue
        delta = stores[0].off - loads[0].off
        if any(st.off - ld.off != delta for ld, st in zip(loads, stores, strict=True)):
            continue
        low = min(ld.off for ld in loads)
        if sorted(ld.off for ld in loads) != list(range(low, low + 6, width)):
            continue
        if lbase == sbase and abs(delta) < 6:
            continue  # the copy overlaps itself: its order matters
        return n
    return 0


def _fused_copy(items: Sequence[tuple[Insn, int]]) -> list[VliwOp]:
    """The 6 B load and the 6 B store that replace the copy in ``items``."""
    loads, stores = items[0::2], items[1::2]
    lbase, sbase = loads[0][0].src, stores[0][0].dst
    data = frozenset(i.dst for i, _ in loads)
    low = min(i.off for i, _ in loads)
    slow = min(i.off for i, _ in stores)
    load = VliwOp(tuple(s for _, s in loads), frozenset({lbase}), data, "load",
                  (low, 6) if lbase == FRAME_POINTER else None)
    store = VliwOp(tuple(s for _, s in stores), frozenset({sbase}) | data, frozenset(), "store",
                   (slow, 6) if sbase == FRAME_POINTER else None)
    return [load, store]


def block_ops(block: Block, optimizations: Iterable[str] = (),
              removed: frozenset[int] = frozenset()) -> list[VliwOp]:
    """The ops of ``block`` in program order, after the named optimisations; ``removed``
    lists slots to drop (bounds checks)."""
    opts = set(optimizations)
    items = [(i, s) for i, s in zip(block.insns, block.slots, strict=True) if s not in removed]
    ops: list[VliwOp] = []
    k = 0
    while k < len(items):
        insn, slot = items[k]
        copy = _copy6(items, k) if "ldst6" in opts else 0
        if copy:
            ops.extend(_fused_copy(items[k:k + copy]))
            k += copy
            continue
        if k + 1 < len(items):
            nxt, nslot = items[k + 1]
            if "mov_alu" in opts and fusible_mov_alu(insn, nxt):
                ops.append(VliwOp((slot, nslot), frozenset({insn.src}), frozenset({insn.dst})))
                k += 2
                continue
            if ("movi_exit" in opts and insn.kind is Kind.ALU and insn.spec.op is AluOp.MOV
                    and insn.spec.source is Source.K and insn.dst == 0
                    and nxt.kind is Kind.EXIT):
                ops.append(VliwOp((slot, nslot), frozenset(), frozenset({0}), control=True))
                k += 2
                continue
        op = make_op(insn, slot)
        ops.append(replace(op, late_args=True) if op.helper and "call_args" in opts else op)
        k += 1
    return ops


# --- list scheduling ---------------------------------------------------------------------

def schedule_ops(ops: Sequence[VliwOp], lanes: int, helper_calls_per_row: int = 1,
                 ) -> list[list[int]]:
    """List-schedule ``ops`` (program order) into rows; each row lists op indices."""
    if lanes < 1 or helper_calls_per_row < 1:
        raise RtcError(f"need at least one lane and one helper call per row, got lanes "
                       f"{lanes}, helper_calls_per_row {helper_calls_per_row}")
    n = len(ops)
    preds: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    succs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for j in range(n):
        for i in range(j):
            lat = latency(ops[i], ops[j])
            if lat is not None:
                preds[j].append((i, lat))
                succs[i].append((j, lat))
    height = [0] * n
    for i in reversed(range(n)):
        height[i] = max((lat + height[j] for j, lat in succs[i]), default=0) + 1
    row_of: dict[int, int] = {}
    rows: list[list[int]] = []
    while len(row_of) < n:
        r = len(rows)
        row: list[int] = []
        helpers = 0
        while len(row) < lanes:
            ready = [j for j in range(n) if j not in row_of
                     and all(i in row_of and row_of[i] + lat <= r for i, lat in preds[j])
                     and not (ops[j].helper and helpers >= helper_calls_per_row)
                     and not (ops[j].control
                              and any(k not in row_of for k in range(n) if k != j))]
            if not ready:
                break
            j = min(ready, key=lambda x: (-height[x], x))
            row_of[j] = r
            row.append(j)
            helpers += ops[j].helper
        if not row:  # pragma: no cover - impossible for a DAG (see module docstring)
            raise RtcError("scheduler made no progress")
        rows.append(row)
    return rows


# --- whole programs ----------------------------------------------------------------------

@dataclass(frozen=True)
class BlockSchedule:
    """One block's rows; each row lists the first slot of each of its ops."""

    start: int
    rows: tuple[tuple[int, ...], ...]
    insns: int
    """Instructions in the block before optimisations."""
    ops: tuple[VliwOp, ...] = field(repr=False, compare=False, default=())
    merged_into: int | None = None
    """``"code_motion"``: the block whose rows hold this block's ops (it has none itself)."""

    @property
    def num_rows(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class VliwSchedule:
    """Every block of one program, scheduled for one VLIW core."""

    program: str
    lanes: int
    helper_calls_per_row: int
    optimizations: tuple[str, ...]
    blocks: dict[int, BlockSchedule]
    removed: frozenset[int]
    """Slots the ``bounds_checks`` optimisation removed."""
    prog: ProgramDef | None = field(repr=False, compare=False, default=None)

    @property
    def num_rows(self) -> int:
        """Rows of the whole program (each block once): the instruction memory it fills."""
        return sum(b.num_rows for b in self.blocks.values())

    @property
    def num_insns(self) -> int:
        return sum(b.insns for b in self.blocks.values())

    def rows_at(self, start: int) -> int:
        block = self.blocks.get(start)
        if block is None:
            raise RtcError(f"{self.program}: no block starts at slot {start}")
        return block.num_rows

    def to_dict(self) -> dict[str, Any]:
        return {"program": self.program, "lanes": self.lanes,
                "helper_calls_per_row": self.helper_calls_per_row,
                "optimizations": list(self.optimizations), "removed": sorted(self.removed),
                "rows": self.num_rows, "insns": self.num_insns,
                "blocks": {str(s): [list(r) for r in b.rows] for s, b in self.blocks.items()}}


def _vliw_params(target: VliwTarget | None, lanes: int | None,
                 helper_calls_per_row: int | None) -> tuple[int, int]:
    if target is not None:
        if not isinstance(target, VliwTarget):
            raise RtcError(f"target '{target.name}' is a {target.kind} target, not vliw")
        lanes = lanes or target.vliw.lanes
        helper_calls_per_row = helper_calls_per_row or target.vliw.helper_calls_per_row
    if lanes is None or helper_calls_per_row is None:
        raise RtcError("give a vliw target or both lanes and helper_calls_per_row")
    return lanes, helper_calls_per_row


def _code_motion_chains(cfg: Cfg) -> list[list[Block]]:
    """Blocks in chains of control-equivalent blocks (``"code_motion"``): a block ending in a
    helper call other than ``tail_call`` and the next block, when that one has no other
    predecessor and starts no function. Every block is in exactly one chain."""
    preds: dict[int, int] = {}
    for b in cfg:
        last = b.last
        succ = successors(cfg, b)
        if last.kind is Kind.CALL and last.src == CallKind.LOCAL:
            succ.append(branch_target(last, b.slots[-1]) or 0)
            succ.append(b.end)  # the callee's exit returns here too
        for t in succ:
            preds[t] = preds.get(t, 0) + 1

    def joins_next(b: Block) -> bool:
        last = b.last
        nxt = b.end
        return (last.kind is Kind.CALL and last.src == CallKind.HELPER
                and last.imm != _TAIL_CALL and nxt in cfg.blocks
                and nxt not in cfg.function_starts and preds.get(nxt, 0) == 1)

    followers = {b.end for b in cfg if joins_next(b)}
    chains = []
    for b in cfg:
        if b.start in followers:
            continue
        chain = [b]
        while joins_next(chain[-1]):
            chain.append(cfg.blocks[chain[-1].end])
        chains.append(chain)
    return chains


def _join_pairs(cfg: Cfg, chains: Sequence[Sequence[Block]]) -> list[tuple[int, int, set[int]]]:
    """(branch chain head, join block, blocks between) for each chain ending in a conditional
    branch whose join is control equivalent with it: the join post-dominates the branch
    block, the branch block dominates the join, and the blocks between form an acyclic
    region that every path from the branch crosses to reach the join (no tail call, exit
    or loop inside; ``ebpf.analysis.graph``'s dominator trees over each function)."""
    from ebpf.analysis.graph import SINK, dominates, dominators, post_dominators

    succs: dict[int, list[int]] = {}
    for b in cfg:
        succ = successors(cfg, b)
        last = b.last
        if last.kind is Kind.CALL and last.src == CallKind.HELPER and last.imm == _TAIL_CALL:
            succ = [*succ, SINK - 1]  # a tail call that succeeds does not come back
        succs[b.start] = succ
    succs[SINK - 1] = []
    pairs = []
    for entry in sorted(cfg.function_starts):
        if entry not in cfg.blocks:
            continue
        order, idom = dominators(entry, succs)
        ipdom = post_dominators(order, succs)
        for chain in chains:
            h = chain[-1]
            if h.start not in idom or h.last.kind is not Kind.JCOND:
                continue
            join = ipdom.get(h.start, SINK)
            if join not in cfg.blocks or not dominates(idom, h.start, join):
                continue
            region: set[int] = set()
            stack = [s for s in succs[h.start] if s != join]
            while stack:
                n = stack.pop()
                if n in region:
                    continue
                region.add(n)
                stack.extend(s for s in succs.get(n, ()) if s != join)
            if h.start in region or chain[0].start in region or not region <= set(cfg.blocks):
                continue  # a loop back into the branch, or a way out: not a plain region
            if _reaches(succs, join, join, stop=h.start):
                continue  # the join heads a loop the branch is not in: it runs more often
            pairs.append((chain[0].start, join, region))
    return pairs


def _reaches(succs: Mapping[int, Sequence[int]], start: int, goal: int, stop: int) -> bool:
    """Whether a path of one or more edges leads from ``start`` to ``goal`` avoiding
    ``stop``."""
    seen: set[int] = set()
    stack = [s for s in succs.get(start, ()) if s != stop]
    while stack:
        n = stack.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(s for s in succs.get(n, ()) if s != stop)
    return False


def _hoist_from_joins(cfg: Cfg, chains: Sequence[Sequence[Block]],
                      sched: dict[int, tuple[list[VliwOp], list[list[int]]]],
                      opts: Iterable[str], removed: frozenset[int], lanes: int,
                      per_row: int) -> None:
    """``"code_motion"`` below a branch: the ops at the start of a join block move into free
    lanes of the rows of the control-equivalent block above the branch (hXDP sec. 3.4: the
    scheduler fills the current block's rows with enabled instructions of its control
    equivalent blocks). An op moves when it is no jump, call or exit, depends on no op it
    would pass (the join's ops left behind, every op of the blocks between: no register or
    memory dependency either way) and fits a row of the upper block at or after what it
    depends on there. ``sched`` (chain head -> ops, rows) is updated in place."""
    heads = {c[0].start for c in chains}
    for head, join, region in _join_pairs(cfg, chains):
        if join not in heads or join == head:
            continue
        between = [op for start in sorted(region) for op in block_ops(cfg.blocks[start], opts,
                                                                          removed)]
        up_ops, up_rows = sched[head]
        low_ops, low_rows = sched[join]
        row_of = {i: r for r, row in enumerate(up_rows) for i in row}
        placed: list[tuple[VliwOp, int]] = []
        left: list[VliwOp] = []
        for op in low_ops:
            if (op.control or op.helper or any(latency(o, op) is not None for o in left)
                    or any(latency(o, op) is not None for o in between)):
                left.append(op)
                continue
            earliest = 0
            for i, o in enumerate(up_ops):
                lat = latency(o, op)
                if lat is not None:
                    earliest = max(earliest, row_of[i] + lat)
            for o, r in placed:
                lat = latency(o, op)
                if lat is not None:
                    earliest = max(earliest, r + lat)
            free = [r for r in range(earliest, len(up_rows))
                    if len(up_rows[r]) + sum(pr == r for _, pr in placed) < lanes]
            if not free:
                left.append(op)
                continue
            placed.append((op, free[0]))
        if not placed:
            continue
        new_ops = list(up_ops) + [op for op, _ in placed]
        new_rows = [list(row) for row in up_rows]
        for k, (_, r) in enumerate(placed):
            new_rows[r].append(len(up_ops) + k)
        sched[head] = (new_ops, new_rows)
        sched[join] = (left, schedule_ops(left, lanes, per_row) if left else [])


def schedule_program(prog: ProgramDef, target: VliwTarget | None = None, *,
                     lanes: int | None = None, helper_calls_per_row: int | None = None,
                     optimizations: Iterable[str] = DEFAULT_OPTIMIZATIONS,
                     analysis: Analysis | None = None) -> VliwSchedule:
    """Schedule every basic block of ``prog`` (lanes and helper limit from ``target`` unless
    given); ``optimizations`` names hXDP optimisations from ``OPTIMIZATIONS`` (all by
    default) and ``EXTRA_OPTIMIZATIONS``; ``analysis`` reuses an ``analyze(prog)`` (the
    bounds checks come from it)."""
    lanes, per_row = _vliw_params(target, lanes, helper_calls_per_row)
    opts = tuple(sorted(set(optimizations)))
    unknown = [o for o in opts if o not in OPTIMIZATIONS + EXTRA_OPTIMIZATIONS]
    if unknown:
        raise RtcError(f"unknown VLIW optimisation {unknown[0]!r} (expected one of "
                       f"{', '.join(OPTIMIZATIONS + EXTRA_OPTIMIZATIONS)})")
    cfg = build_cfg(prog)
    removed: frozenset[int] = frozenset()
    if "bounds_checks" in opts:
        removed = bounds_checks(analysis if analysis is not None else analyze(prog))
        if removed:  # what only the checks read (hXDP Fig. 3); code dead anyway stays
            removed |= dead_code(cfg, removed) - dead_code(cfg, frozenset())
    if "helper_args" in opts:
        removed |= redundant_arg_writes(cfg, removed)
    chains = _code_motion_chains(cfg) if "code_motion" in opts else [[b] for b in cfg]
    sched: dict[int, tuple[list[VliwOp], list[list[int]]]] = {}
    for chain in chains:
        ops: list[VliwOp] = []
        for i, block in enumerate(chain):
            part = block_ops(block, opts, removed)
            if i < len(chain) - 1 and part and part[-1].helper:
                part[-1] = replace(part[-1], control=False)  # the call returns in place
            ops.extend(part)
        sched[chain[0].start] = (ops, schedule_ops(ops, lanes, per_row))
    if "code_motion" in opts:
        _hoist_from_joins(cfg, chains, sched, opts, removed, lanes, per_row)
    blocks = {}
    for chain in chains:
        head = chain[0]
        ops, rows = sched[head.start]
        blocks[head.start] = BlockSchedule(
            head.start, tuple(tuple(ops[i].slot for i in row) for row in rows), len(head),
            tuple(ops))
        for block in chain[1:]:
            blocks[block.start] = BlockSchedule(block.start, (), len(block),
                                                merged_into=head.start)
    return VliwSchedule(prog.name, lanes, per_row, opts, dict(sorted(blocks.items())),
                        removed, prog)


# --- cycles per packet -------------------------------------------------------------------

@dataclass(frozen=True)
class VliwPacketCost:
    """One packet on the VLIW core (cycles; see the module docstring for the formula)."""

    rows: int
    blocks: int
    helper_calls: int
    map_calls: int
    cycles: int
    """Issue-rate cycles: max(compute, emission of a transmitted packet)."""
    latency_cycles: int
    compute_cycles: int = 0
    emit_cycles: int = 0


def packet_cycles(schedules: VliwSchedule | Mapping[str, VliwSchedule], trace: Trace,
                  target: VliwTarget) -> VliwPacketCost:
    """Cycles the packet of ``trace`` costs; ``schedules`` by program name when the trace
    tail-calls other programs."""
    if isinstance(schedules, VliwSchedule):
        schedules = {schedules.program: schedules}
    by_name = dict(schedules)
    main = by_name.get(trace.program)
    if main is None or main.prog is None:
        raise RtcError(f"no schedule for program '{trace.program}' (have: "
                       f"{', '.join(by_name) or 'none'})")
    programs = {name: s.prog for name, s in by_name.items() if s.prog is not None}
    rows = blocks = 0
    for prog, block in iter_executed_blocks(main.prog, trace, programs):
        sched = by_name.get(prog.name)
        if sched is None:
            raise RtcError(f"the trace runs '{prog.name}', which has no schedule")
        rows += sched.rows_at(block.start)
        blocks += 1
    map_calls = sum(1 for h in trace.helper_calls if h.name in MAP_HELPERS)
    helper_calls = len(trace.helper_calls) - map_calls
    t = target.timing
    drain = 0 if "early_exit" in main.optimizations else target.vliw.pipeline_depth - 1
    compute = (t.start_latency_cycles + rows + t.helper_cycles * helper_calls
               + t.map_access_cycles * map_calls + drain)
    emit = t.emit_cycles(trace.verdict == XDP_REDIRECT) if trace.verdict in _EMITTED else 0
    return VliwPacketCost(rows, blocks, helper_calls, map_calls, max(compute, emit),
                          compute + target.vliw.pipeline_depth - 1, compute, emit)


def cycles_per_packet(schedules: VliwSchedule | Mapping[str, VliwSchedule], trace: Trace,
                      target: VliwTarget) -> int:
    """``packet_cycles(...).cycles``: issue-rate cycles of one packet."""
    return packet_cycles(schedules, trace, target).cycles


def estimate_vliw(target: Target, obj: ElfObject, prog: ProgramDef, traces: Sequence[Trace],
                  *, optimizations: Iterable[str] = DEFAULT_OPTIMIZATIONS,
                  frame_bytes: int = 64, analysis: Analysis | None = None,
                  ) -> CostEstimate:
    """The VLIW core's packet rate for ``prog`` over the packets of ``traces`` (mean cycles),
    with the target's feasibility verdict (``hw.feasibility.check_target``); ``analysis``
    reuses an ``analyze(prog, obj)``."""
    if not isinstance(target, VliwTarget):
        raise RtcError(f"target '{target.name}' is a {target.kind} target, not vliw")
    if not traces:
        raise RtcError("estimate_vliw needs at least one trace")
    an = analysis if analysis is not None else analyze(prog, obj)
    from hw.cost.nic import nic_service  # the one per-packet service the simulator uses

    svc = nic_service(target, obj, prog, traces, optimizations=optimizations, analysis=an)
    schedules = svc.schedules
    costs: list[VliwPacketCost] = list(svc.costs)
    cycles = svc.mean_service_cycles()
    bus_bytes = (target.packet.bus_bits or 0) // 8
    bus_cycles = math.ceil(frame_bytes / bus_bytes) if bus_bytes else 0
    effective = max(cycles, bus_cycles)
    mpps = svc.capacity_mpps() if effective == cycles else target.clock_mhz / effective
    line = wire_mpps(target.line_rate_gbps, frame_bytes)
    bound = "bus" if bus_cycles > cycles else "compute"
    if line < mpps:
        bound = "line rate"
    feas = check_target(obj, prog, target, analysis=an)
    sched = schedules[prog.name]
    return CostEstimate(
        target=target.name, kind=target.kind, program=prog.name, source="model",
        ns_per_packet=effective * target.cycle_ns, cycles_per_packet=effective,
        mpps_per_unit=mpps, units=1, mpps_total=min(mpps, line), line_rate_mpps=line,
        bound=bound, feasible=feas.ok, reasons=tuple(r.message for r in feas.reasons),
        details={
            "packets": len(costs), "frame_bytes": frame_bytes,
            "mean_rows": statistics.fmean(c.rows for c in costs),
            "mean_insns": statistics.fmean(t.insns for t in traces),
            "mean_helper_calls": statistics.fmean(c.helper_calls for c in costs),
            "mean_map_calls": statistics.fmean(c.map_calls for c in costs),
            "mean_cycles": cycles, "bus_cycles": bus_cycles,
            "mean_latency_cycles": statistics.fmean(c.latency_cycles for c in costs),
            "program_rows": sched.num_rows, "program_insns": sched.num_insns,
            "optimizations": list(sched.optimizations),
        })


def optimization_effects(target: VliwTarget, obj: ElfObject, prog: ProgramDef,
                         traces: Sequence[Trace]) -> dict[str, dict[str, float]]:
    """What each optimisation is worth for ``prog`` on these packets: the program's rows and
    the packets' mean cycles with every optimisation (``"all"``), with none (``"none"``), and
    with all but one (``"-name"``: the saving of that one given the others)."""
    variants: dict[str, tuple[str, ...]] = {"all": OPTIMIZATIONS, "none": ()}
    for name in OPTIMIZATIONS:
        variants[f"-{name}"] = tuple(o for o in OPTIMIZATIONS if o != name)
    out = {}
    for label, opts in variants.items():
        schedules = {p.name: schedule_program(p, target, optimizations=opts)
                     for p in obj.programs}
        costs = [packet_cycles(schedules, t, target) for t in traces]
        out[label] = {"rows": float(schedules[prog.name].num_rows),
                      "cycles": statistics.fmean(c.cycles for c in costs)}
    return out
