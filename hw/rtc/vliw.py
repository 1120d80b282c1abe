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

Optional hXDP compiler optimisations (Brunella et al. sec. 3), applied only when named in
``optimizations``:

- ``"mov_alu"``: ``mov rD, rS`` followed at once by an ALU-immediate op on rD becomes one
  three-operand op (reads rS, writes rD) (hXDP's three-operand instructions);
- ``"movi_exit"``: ``mov r0, imm`` followed at once by ``exit`` becomes one exit op
  (hXDP's parametrized exit);
- ``"bounds_checks"``: a conditional jump comparing a packet pointer with the packet end
  (found by ``hw.rtc.common.analyze_pointers``) is removed: Sephirot checks packet bounds in
  hardware. The block keeps its boundary (the model does not merge blocks), so the saving
  is a lower bound. Off by default, as in hXDP's own compiler
  (``REMOVE_MEM_BOUNDARY_CHECKS = False``).

Cost per packet (``packet_cycles``), from the blocks a VM trace executed:

    cycles  = start_latency_cycles + sum(rows of each executed block)
              + helper_cycles x (non-map helper calls) + map_access_cycles x (map helper calls)
    latency = cycles + pipeline_depth - 1

``cycles`` is the issue-rate cost: consecutive packets overlap the pipeline fill (hXDP's
published 52 Mpps XDP_DROP at 156.25 MHz is 3.0 cycles per packet, which a 4-stage fill
per packet could not reach); ``latency`` adds the fill for one packet alone. A packet also
needs ceil(frame bytes / bus bytes) cycles on the packet bus; the rate is
clock / max(cycles, bus cycles), capped by the line rate (``estimate_vliw``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ebpf.code.isa import FRAME_POINTER, AluOp, CallKind, Insn, Kind, Source
from ebpf.loader.program import ElfObject, ProgramDef
from ebpf.vm.trace import Trace
from hw.rtc.common import (
    MAP_HELPERS,
    Block,
    CostEstimate,
    RtcError,
    analyze_pointers,
    build_cfg,
    insn_regs,
    iter_executed_blocks,
    wire_mpps,
)
from hw.rtc.npu import check_feasibility
from hw.targets import Target, VliwTarget

OPTIMIZATIONS = ("mov_alu", "movi_exit", "bounds_checks")


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
    return VliwOp((slot,), reads, writes, mem, stack, control, helper)


def latency(a: VliwOp, b: VliwOp) -> int | None:
    """Rows op ``b`` (later in program order) must follow op ``a``: 1, 0, or None (free)."""
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


def _fusible_mov_alu(first: Insn, second: Insn) -> bool:
    s1, s2 = first.spec, second.spec
    return (first.kind is Kind.ALU and s1.op is AluOp.MOV and s1.source is Source.X
            and first.off == 0 and first.src != first.dst
            and second.kind is Kind.ALU and s2.source is Source.K and s2.op is not AluOp.MOV
            and second.dst == first.dst)


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
        if k + 1 < len(items):
            nxt, nslot = items[k + 1]
            if "mov_alu" in opts and _fusible_mov_alu(insn, nxt):
                ops.append(VliwOp((slot, nslot), frozenset({insn.src}), frozenset({insn.dst})))
                k += 2
                continue
            if ("movi_exit" in opts and insn.kind is Kind.ALU and insn.spec.op is AluOp.MOV
                    and insn.spec.source is Source.K and insn.dst == 0
                    and nxt.kind is Kind.EXIT):
                ops.append(VliwOp((slot, nslot), frozenset(), frozenset({0}), control=True))
                k += 2
                continue
        ops.append(make_op(insn, slot))
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


def schedule_program(prog: ProgramDef, target: VliwTarget | None = None, *,
                     lanes: int | None = None, helper_calls_per_row: int | None = None,
                     optimizations: Iterable[str] = ()) -> VliwSchedule:
    """Schedule every basic block of ``prog`` (lanes and helper limit from ``target`` unless
    given); ``optimizations`` names hXDP optimisations from ``OPTIMIZATIONS``."""
    lanes, per_row = _vliw_params(target, lanes, helper_calls_per_row)
    opts = tuple(sorted(set(optimizations)))
    unknown = [o for o in opts if o not in OPTIMIZATIONS]
    if unknown:
        raise RtcError(f"unknown VLIW optimisation {unknown[0]!r} (expected one of "
                       f"{', '.join(OPTIMIZATIONS)})")
    cfg = build_cfg(prog)
    removed = analyze_pointers(prog, cfg).bounds_checks if "bounds_checks" in opts \
        else frozenset()
    blocks = {}
    for block in cfg:
        ops = block_ops(block, opts, removed)
        rows = schedule_ops(ops, lanes, per_row)
        blocks[block.start] = BlockSchedule(
            block.start, tuple(tuple(ops[i].slot for i in row) for row in rows), len(block),
            tuple(ops))
    return VliwSchedule(prog.name, lanes, per_row, opts, blocks, removed, prog)


# --- cycles per packet -------------------------------------------------------------------

@dataclass(frozen=True)
class VliwPacketCost:
    """One packet on the VLIW core (cycles; see the module docstring for the formula)."""

    rows: int
    blocks: int
    helper_calls: int
    map_calls: int
    cycles: int
    latency_cycles: int


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
    cycles = (t.start_latency_cycles + rows + t.helper_cycles * helper_calls
              + t.map_access_cycles * map_calls)
    return VliwPacketCost(rows, blocks, helper_calls, map_calls, cycles,
                          cycles + target.vliw.pipeline_depth - 1)


def cycles_per_packet(schedules: VliwSchedule | Mapping[str, VliwSchedule], trace: Trace,
                      target: VliwTarget) -> int:
    """``packet_cycles(...).cycles``: issue-rate cycles of one packet."""
    return packet_cycles(schedules, trace, target).cycles


def estimate_vliw(target: Target, obj: ElfObject, prog: ProgramDef, traces: Sequence[Trace],
                  *, optimizations: Iterable[str] = (), frame_bytes: int = 64,
                  ) -> CostEstimate:
    """The VLIW core's packet rate for ``prog`` over the packets of ``traces`` (mean cycles),
    with the target's feasibility verdict (``hw.rtc.npu.check_feasibility``)."""
    if not isinstance(target, VliwTarget):
        raise RtcError(f"target '{target.name}' is a {target.kind} target, not vliw")
    if not traces:
        raise RtcError("estimate_vliw needs at least one trace")
    schedules = {p.name: schedule_program(p, target, optimizations=optimizations)
                 for p in obj.programs}
    costs = [packet_cycles(schedules, t, target) for t in traces]
    cycles = statistics.fmean(c.cycles for c in costs)
    bus_bytes = (target.packet.bus_bits or 0) // 8
    bus_cycles = math.ceil(frame_bytes / bus_bytes) if bus_bytes else 0
    effective = max(cycles, bus_cycles)
    mpps = target.clock_mhz / effective
    line = wire_mpps(target.line_rate_gbps, frame_bytes)
    bound = "bus" if bus_cycles > cycles else "compute"
    if line < mpps:
        bound = "line rate"
    feas = check_feasibility(obj, prog, target)
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
