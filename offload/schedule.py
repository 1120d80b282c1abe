"""Scheduling lowered program units onto pipeline stages (docs/pipeline.md, sections 5, 6, 8).

The lowering turns a program into **units** (a table, a gateway, a group of VLIW ops, a
stateful op, an extern call), each with the stage resources it takes, and **dependencies**
between them in the sense of Jose et al., "Compiling Packet Programs to Reconfigurable
Switches" (NSDI 2015):

============== ================================ =========================================
kind           meaning (src -> dst)             stage constraint
============== ================================ =========================================
``match``      dst matches on a field src       stage(dst) > stage(src)
               writes
``action``     dst's action reads or writes a   stage(dst) > stage(src)
               field src's action writes
``successor``  dst runs only on some outcome    stage(dst) >= stage(src): predication
               of src (control dependency)      resolves it in the same stage (5.1, 5.2)
``reverse_match`` dst writes a field src        stage(dst) >= stage(src): every read in a
               matches on (write after read)    stage sees the PHV as it entered (section 5)
============== ================================ =========================================

Match and action dependencies both force a later stage; on RMT hardware a match dependency
costs more latency than an action dependency (the match phases can overlap), which the report
records per dependency (``dependency_latency_cycles``); the pipe target's stages have a fixed
latency, so the constraint is the same strict one for both.

Two schedulers, both reported:

- ``greedy_schedule``: a list scheduler; units in topological order, highest priority first
  (longest dependency path to a sink, then the largest share of a stage's resources, then
  input order), each in the earliest stage its dependencies allow that has room;
- ``solve_schedule``: CP-SAT (OR-Tools, ``offload.schedule_cp``) minimising the number of
  logical stages, warm-started from and bounded by the greedy schedule, so it is never worse;
  under a time limit, falling back to the greedy schedule with a one-line message when the
  solver is missing or finds nothing in time.

Logical stage L runs on physical stage ``L mod S`` in pass ``L div S`` (section 6): per
logical stage the units (tables, gateways, VLIW slots, stateful units, externs) are banked
configurations, while SRAM and TCAM blocks are shared by all passes of a physical stage.
More logical stages than S need ``passes = ceil(N / S)`` <= ``max_passes`` and cost
throughput: initiation interval ``max(passes, beats(L))`` cycles, latency ``parser_cycles +
passes * S * stage_cycles + (passes - 1) * recirc_cycles + deparser_cycles`` (section 8).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hw.pipeline.config import TargetParams
from hw.targets import PipelineTarget, Target
from offload import schedule_cp
from offload.errors import MapperError

RESOURCES = ("tables", "gateways", "alu_slots", "stateful", "sram_blocks", "tcam_blocks",
             "externs.checksum", "externs.hash", "externs.random", "externs.timestamp")
"""Per-stage resources a unit can take, in report order."""
SHARED_RESOURCES = frozenset({"sram_blocks", "tcam_blocks"})
"""Shared by every pass of a physical stage (docs/pipeline.md section 6); the rest is banked."""
UNIT_KINDS = ("table", "gateway", "alu", "stateful", "extern")
DEP_KINDS = ("match", "action", "successor", "reverse_match")
MIN_STAGE_GAP = {"match": 1, "action": 1, "successor": 0, "reverse_match": 0}
"""Least stage(dst) - stage(src) per dependency kind (Jose et al., NSDI 2015)."""
# Share of a stage's latency (four phases on pipe: gateway, match, action, write-back;
# hw/targets/pipe.toml) that a dependency adds on RMT-style hardware where stages overlap.
# Modelling choice after Jose et al. (NSDI 2015): a match dependency waits for the whole
# stage, an action dependency lets dst's gateway and match phases overlap src's action and
# write-back, a successor dependency costs the predicate select, a reverse match nothing.
_DEP_PHASES = {"match": 4, "action": 2, "successor": 1, "reverse_match": 0}
_STAGE_PHASES = 4

STATUS_OPTIMAL = "optimal"
STATUS_FEASIBLE = "feasible"
STATUS_FALLBACK = "greedy-fallback"
STATUS_GREEDY = "greedy"
STATUS_INFEASIBLE = "infeasible"

# docs/pipeline.md section 2: parser and deparser latency are target parameters that the
# profiles do not carry; their one default is the pipeline configuration's (TargetParams).
DEFAULT_PARSER_CYCLES = TargetParams.parser_cycles
DEFAULT_DEPARSER_CYCLES = TargetParams.deparser_cycles


class ScheduleError(MapperError):
    """A malformed scheduling problem: unknown unit, resource or kind, a dependency cycle."""


def dependency_latency_cycles(kind: str, stage_cycles: int) -> int:
    """Cycles a ``kind`` dependency costs on an RMT-style pipeline of ``stage_cycles`` stages."""
    return stage_cycles * _DEP_PHASES[kind] // _STAGE_PHASES


# --- the problem, as data ----------------------------------------------------------------

@dataclass(frozen=True)
class Unit:
    """One piece of the lowered program that must sit in a single stage."""

    id: str
    kind: str
    """``table``, ``gateway``, ``alu``, ``stateful`` or ``extern``."""
    resources: Mapping[str, int] = field(default_factory=dict)
    """Per-stage resources taken, keys from ``RESOURCES``; absent keys are 0."""
    label: str = ""
    """For reports: the source line, the map name."""

    def get(self, resource: str) -> int:
        return int(self.resources.get(resource, 0))


@dataclass(frozen=True)
class Dependency:
    """``dst`` depends on ``src``: a ``match``, ``action``, ``successor`` or ``reverse_match``."""

    src: str
    dst: str
    kind: str

    @property
    def min_gap(self) -> int:
        return MIN_STAGE_GAP[self.kind]


@dataclass(frozen=True)
class StageBudget:
    """What each stage of a target offers, and its stage count, timing and recirculation."""

    name: str
    capacity: Mapping[str, int]
    """Per stage (logical stage for banked resources, physical stage for shared ones)."""
    physical_stages: int
    stage_cycles: int
    recirc_allowed: bool = False
    recirc_cycles: int = 0
    """Extra cycles per extra pass."""
    max_passes: int = 1
    clock_mhz: float = 250.0
    bus_bits: int | None = None
    """None: the payload bypasses the pipeline (a header per clock whatever the length)."""
    parser_cycles: int = DEFAULT_PARSER_CYCLES
    deparser_cycles: int = DEFAULT_DEPARSER_CYCLES

    @property
    def max_logical_stages(self) -> int:
        """Stages x passes when recirculation is allowed, else the physical stages."""
        return self.physical_stages * (self.max_passes if self.recirc_allowed else 1)

    def get_capacity(self, resource: str) -> int:
        return int(self.capacity.get(resource, 0))


def budget_from_target(target: Target, *, parser_cycles: int = DEFAULT_PARSER_CYCLES,
                       deparser_cycles: int = DEFAULT_DEPARSER_CYCLES) -> StageBudget:
    """The per-stage budget of a ``pipeline`` target profile (``hw/targets/*.toml``)."""
    if not isinstance(target, PipelineTarget):
        raise ScheduleError(f"target {target.name!r}: expected a pipeline target, got a "
                            f"{target.kind} target")
    st = target.stages
    ext = st.externs
    capacity = {
        "tables": st.tables, "gateways": st.gateways, "alu_slots": target.alu_slots_per_stage,
        "stateful": st.stateful_alus, "sram_blocks": st.sram.blocks,
        "tcam_blocks": st.tcam.blocks, "externs.checksum": ext.checksum,
        "externs.hash": ext.hash, "externs.random": ext.random,
        "externs.timestamp": ext.timestamp}
    rc = target.recirculation
    return StageBudget(
        name=target.name, capacity=capacity, physical_stages=st.count,
        stage_cycles=st.latency_cycles, recirc_allowed=rc.allowed,
        recirc_cycles=(rc.penalty_cycles or 0) if rc.allowed else 0,
        max_passes=(rc.max_passes or 1) if rc.allowed else 1, clock_mhz=target.clock_mhz,
        bus_bits=target.packet.bus_bits, parser_cycles=parser_cycles,
        deparser_cycles=deparser_cycles)


# --- the problem, indexed ----------------------------------------------------------------

class Problem:
    """Units, dependencies and budget checked and indexed for the schedulers."""

    def __init__(self, units: Sequence[Unit], deps: Iterable[Dependency],
                 budget: StageBudget) -> None:
        self.units = tuple(units)
        self.deps = tuple(deps)
        self.budget = budget
        self.index: dict[str, int] = {}
        for i, u in enumerate(self.units):
            if u.id in self.index:
                raise ScheduleError(f"unit {u.id!r}: defined twice")
            if u.kind not in UNIT_KINDS:
                raise ScheduleError(f"unit {u.id!r}: unknown kind {u.kind!r} (expected one of "
                                    f"{', '.join(UNIT_KINDS)})")
            for r, v in u.resources.items():
                if r not in RESOURCES:
                    raise ScheduleError(f"unit {u.id!r}: unknown resource {r!r} (expected "
                                        f"one of {', '.join(RESOURCES)})")
                if not isinstance(v, int) or v < 0:
                    raise ScheduleError(f"unit {u.id!r}: {r} must be a non-negative "
                                        f"integer, got {v!r}")
            self.index[u.id] = i
        for r in budget.capacity:
            if r not in RESOURCES:
                raise ScheduleError(f"budget {budget.name!r}: unknown resource {r!r}")
        self.n = len(self.units)
        # resources someone uses, with their per-unit demand
        self.resources = tuple(r for r in RESOURCES if any(u.get(r) for u in self.units))
        self.demand = {r: [u.get(r) for u in self.units] for r in self.resources}
        gaps: dict[tuple[int, int], int] = {}
        for d in self.deps:
            if d.kind not in DEP_KINDS:
                raise ScheduleError(f"dependency {d.src!r} -> {d.dst!r}: unknown kind "
                                    f"{d.kind!r} (expected one of {', '.join(DEP_KINDS)})")
            for end in (d.src, d.dst):
                if end not in self.index:
                    raise ScheduleError(f"dependency {d.src!r} -> {d.dst!r}: no unit {end!r}")
            if d.src == d.dst:
                raise ScheduleError(f"dependency {d.src!r} -> {d.dst!r}: a unit cannot "
                                    "depend on itself")
            key = (self.index[d.src], self.index[d.dst])
            gaps[key] = max(gaps.get(key, 0), d.min_gap)
        self.preds: list[list[tuple[int, int]]] = [[] for _ in range(self.n)]
        self.succs: list[list[tuple[int, int]]] = [[] for _ in range(self.n)]
        for (a, b), gap in sorted(gaps.items()):
            self.preds[b].append((a, gap))
            self.succs[a].append((b, gap))
        self.topo = self._topological_order()
        self.earliest = [0] * self.n
        for u in self.topo:
            self.earliest[u] = max((self.earliest[a] + g for a, g in self.preds[u]), default=0)
        self.height = [0] * self.n
        for u in reversed(self.topo):
            self.height[u] = max((self.height[b] + g for b, g in self.succs[u]), default=0)

    def _topological_order(self) -> list[int]:
        indeg = [len(p) for p in self.preds]
        todo = [u for u in range(self.n) if indeg[u] == 0]
        order: list[int] = []
        while todo:
            u = todo.pop()
            order.append(u)
            for b, _ in self.succs[u]:
                indeg[b] -= 1
                if indeg[b] == 0:
                    todo.append(b)
        if len(order) < self.n:
            stuck = sorted(self.units[u].id for u in range(self.n) if indeg[u] > 0)
            raise ScheduleError(f"dependency cycle among units {', '.join(stuck[:8])}"
                                + (" ..." if len(stuck) > 8 else ""))
        return order

    def name(self, u: int) -> str:
        unit = self.units[u]
        return f"{unit.id!r}" + (f" ({unit.label})" if unit.label else "")

    def critical_path_stages(self) -> int:
        """Stages the dependencies alone need: the longest path, plus one."""
        return max((self.earliest[u] + self.height[u] for u in range(self.n)), default=-1) + 1

    def lower_bound(self) -> int:
        """Stages any schedule needs: dependency path, and total demand over a stage's room."""
        bound = self.critical_path_stages()
        for r in self.resources:
            cap = self.budget.get_capacity(r)
            if cap > 0:
                bound = max(bound, -(-sum(self.demand[r]) // cap))
        return bound

    def misfit(self) -> str:
        """Why no schedule exists whatever the stage count, or "" when one may."""
        b = self.budget
        for r in self.resources:
            cap = b.get_capacity(r)
            for u in range(self.n):
                if self.demand[r][u] > cap:
                    return (f"unit {self.name(u)}: needs {self.demand[r][u]} {r}, a stage "
                            f"of {b.name!r} has {cap}")
            if r in SHARED_RESOURCES:
                total, room = sum(self.demand[r]), cap * b.physical_stages
                if total > room:
                    return (f"{r}: the units need {total}, {b.name!r} has {cap} x "
                            f"{b.physical_stages} stages = {room} (shared by all passes)")
        return ""

    def fits(self, used: dict[str, list[int]], u: int, s: int) -> bool:
        """Unit u fits into logical stage s, given the usage so far."""
        S = self.budget.physical_stages
        for r in self.resources:
            d = self.demand[r][u]
            if d and used[r][s % S if r in SHARED_RESOURCES else s] + d > \
                    self.budget.get_capacity(r):
                return False
        return True


# --- greedy list scheduler ---------------------------------------------------------------

def _greedy_assign(p: Problem, horizon: int) -> tuple[list[int] | None, str]:
    """Stage per unit index by list scheduling within ``horizon`` stages, or (None, why)."""
    b = p.budget
    used = {r: [0] * max(horizon, b.physical_stages) for r in p.resources}
    weight = [sum(p.demand[r][u] / b.get_capacity(r) for r in p.resources
                  if b.get_capacity(r)) for u in range(p.n)]
    stage = [-1] * p.n
    indeg = [len(x) for x in p.preds]
    ready = [(-p.height[u], -weight[u], u) for u in range(p.n) if indeg[u] == 0]
    heapq.heapify(ready)
    while ready:
        _, _, u = heapq.heappop(ready)
        lo = max((stage[a] + g for a, g in p.preds[u]), default=0)
        for s in range(lo, horizon):
            if p.fits(used, u, s):
                break
        else:
            return None, (f"unit {p.name(u)}: no room in logical stages {lo}..{horizon - 1}")
        stage[u] = s
        for r in p.resources:
            used[r][s % b.physical_stages if r in SHARED_RESOURCES else s] += p.demand[r][u]
        for w, _ in p.succs[u]:
            indeg[w] -= 1
            if indeg[w] == 0:
                heapq.heappush(ready, (-p.height[w], -weight[w], w))
    return stage, ""


def _greedy_horizon(p: Problem, max_stages: int) -> int:
    """Enough stages for the list scheduler to place everything when anything fits at all."""
    return max(max_stages, p.critical_path_stages()) + p.n * p.budget.physical_stages


# --- results -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """Throughput and latency of N logical stages on the target (docs/pipeline.md section 8).

    Cycles of the core clock; ``packet_bytes`` is the packet length the initiation interval
    is given for.
    """

    logical_stages: int
    physical_stages: int
    passes: int
    packet_bytes: int
    ii_cycles: int
    """Initiation interval: max(passes, beats(packet_bytes))."""
    ii_one_pass_cycles: int
    """The same program on a pipeline deep enough for one pass: max(1, beats)."""
    recirc_penalty_cycles: int
    """(passes - 1) x recirc_cycles: the latency recirculation adds beyond the passes."""
    latency_cycles: int
    """parser + passes x S x stage_cycles + (passes - 1) x recirc_cycles + deparser."""
    clock_mhz: float

    @property
    def throughput_factor(self) -> float:
        """Packet rate against one pass: 1 / passes for short packets."""
        return self.ii_one_pass_cycles / self.ii_cycles

    @property
    def mpps(self) -> float:
        return self.clock_mhz / self.ii_cycles

    @property
    def latency_ns(self) -> float:
        return self.latency_cycles * 1000.0 / self.clock_mhz

    def to_dict(self) -> dict[str, Any]:
        return {"logical_stages": self.logical_stages, "physical_stages": self.physical_stages,
                "passes": self.passes, "packet_bytes": self.packet_bytes,
                "ii_cycles": self.ii_cycles, "ii_one_pass_cycles": self.ii_one_pass_cycles,
                "throughput_factor": self.throughput_factor, "mpps": self.mpps,
                "recirc_penalty_cycles": self.recirc_penalty_cycles,
                "latency_cycles": self.latency_cycles, "latency_ns": self.latency_ns}


def stage_timing(stages: int, budget: StageBudget, packet_bytes: int = 64) -> Timing:
    """Timing of ``stages`` logical stages on ``budget``'s target, recirculating past S."""
    S = budget.physical_stages
    passes = max(1, -(-stages // S))
    beats = 1 if budget.bus_bits is None else max(1, -(-packet_bytes * 8 // budget.bus_bits))
    penalty = (passes - 1) * budget.recirc_cycles
    latency = (budget.parser_cycles + passes * S * budget.stage_cycles + penalty
               + budget.deparser_cycles)
    return Timing(logical_stages=stages, physical_stages=S, passes=passes,
                  packet_bytes=packet_bytes, ii_cycles=max(passes, beats),
                  ii_one_pass_cycles=beats, recirc_penalty_cycles=penalty,
                  latency_cycles=latency, clock_mhz=budget.clock_mhz)


@dataclass(frozen=True)
class PlacedDependency:
    """A dependency as scheduled: the stages it spans and what it costs."""

    src: str
    dst: str
    kind: str
    min_gap: int
    gap: int
    """stage(dst) - stage(src) in the schedule."""
    latency_cycles: int
    """What the dependency costs on RMT-style hardware (``dependency_latency_cycles``)."""


@dataclass(frozen=True)
class Schedule:
    """Units placed on logical stages, with the usage, the solver's story and the timing."""

    target: str
    feasible: bool
    reason: str
    """Why not, when not feasible; "" otherwise."""
    status: str
    """``optimal``, ``feasible`` (time limit hit, not proven optimal), ``greedy-fallback``,
    ``greedy`` (list scheduler only) or ``infeasible``."""
    message: str
    """One line on how the schedule was found."""
    assignment: dict[str, int]
    """Unit id -> logical stage; empty when no schedule was found."""
    num_stages: int
    """Logical stages of ``assignment`` (the solver's when it has one, else greedy's)."""
    greedy_stages: int | None
    """What the list scheduler needs (None: it could place nothing)."""
    solver_stages: int | None
    """CP-SAT's stage count; greedy's when that meets the lower bound (optimal, solver not
    run); None when the solver gave no schedule (fallback, infeasible, greedy only)."""
    lower_bound: int
    solve_time_s: float
    budget: StageBudget
    units: tuple[Unit, ...]
    dependencies: tuple[PlacedDependency, ...]
    timing: Timing | None

    @property
    def passes(self) -> int:
        return self.timing.passes if self.timing else 0

    def get_stage(self, unit_id: str) -> int:
        return self.assignment[unit_id]

    def iter_stage_units(self, stage: int) -> Iterable[Unit]:
        return (u for u in self.units if self.assignment.get(u.id) == stage)

    def stage_usage(self) -> list[dict[str, int]]:
        """Per logical stage, the resources its units take (every key of ``RESOURCES``)."""
        usage = [dict.fromkeys(RESOURCES, 0) for _ in range(self.num_stages)]
        for u in self.units:
            if u.id in self.assignment:
                for r in RESOURCES:
                    usage[self.assignment[u.id]][r] += u.get(r)
        return usage

    def physical_usage(self, resource: str) -> list[int]:
        """Per physical stage, a resource summed over the passes (for SRAM and TCAM)."""
        S = self.budget.physical_stages
        out = [0] * S
        for s, row in enumerate(self.stage_usage()):
            out[s % S] += row[resource]
        return out

    def totals(self) -> dict[str, tuple[int, int]]:
        """Per resource: (used, available) over the passes the schedule makes."""
        b, passes = self.budget, max(1, self.passes)
        out = {}
        for r in RESOURCES:
            banks = 1 if r in SHARED_RESOURCES else passes
            used = sum(u.get(r) for u in self.units if u.id in self.assignment)
            out[r] = (used, b.get_capacity(r) * b.physical_stages * banks)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the resource log of a P4 compiler, plus the scheduling story."""
        S = self.budget.physical_stages
        stages = []
        for s, row in enumerate(self.stage_usage()):
            stages.append({
                "stage": s, "physical": s % S, "pass": s // S,
                "units": [{"id": u.id, "kind": u.kind, "label": u.label}
                          for u in self.iter_stage_units(s)],
                "usage": {r: row[r] for r in RESOURCES},
            })
        return {
            "target": self.target, "feasible": self.feasible, "reason": self.reason,
            "status": self.status, "message": self.message,
            "stages_used": self.num_stages, "greedy_stages": self.greedy_stages,
            "solver_stages": self.solver_stages, "lower_bound": self.lower_bound,
            "solve_time_s": self.solve_time_s, "physical_stages": S,
            "max_logical_stages": self.budget.max_logical_stages,
            "capacity": {r: self.budget.get_capacity(r) for r in RESOURCES},
            "stages": stages,
            "totals": {r: {"used": u, "available": a} for r, (u, a) in self.totals().items()},
            "dependencies": [vars(d).copy() for d in self.dependencies],
            "timing": self.timing.to_dict() if self.timing else None,
            "assignment": dict(self.assignment),
        }


_COLUMN = {"tables": "tables", "gateways": "gw", "alu_slots": "alu", "stateful": "stful",
           "sram_blocks": "sram", "tcam_blocks": "tcam", "externs.checksum": "csum",
           "externs.hash": "hash", "externs.random": "rand", "externs.timestamp": "tstamp"}


def resource_table(schedule: Schedule) -> Any:
    """A rich ``Table`` of per-stage usage against capacity, like a P4 compiler's resource log.

    Rows are logical stages (with their physical stage and pass) and a total row; a column
    per stage resource, extern columns only for the extern kinds the program uses. SRAM and
    TCAM are shared by the passes of a physical stage: with recirculation their cells also
    show, in parentheses, the physical stage's sum over the passes.
    """
    from rich.table import Table

    from ebpf.display import markup

    b = schedule.budget
    usage = schedule.stage_usage()
    cols = [r for r in RESOURCES
            if not r.startswith("externs.") or any(row[r] for row in usage)]
    title = (f"{schedule.target}: {schedule.num_stages} logical stages, "
             f"{schedule.passes} pass{'es' if schedule.passes != 1 else ''} "
             f"({schedule.status})")
    table = Table(title=markup(title), caption=markup(schedule.message) or None)
    for head in ("stage", "phys", "pass"):
        table.add_column(head, justify="right")
    for r in cols:
        table.add_column(_COLUMN[r], justify="right")
    table.add_column("units")
    S = b.physical_stages
    shared = {r: schedule.physical_usage(r) for r in cols if r in SHARED_RESOURCES}
    for s, row in enumerate(usage):
        cells = [str(s), str(s % S), str(s // S)]
        for r in cols:
            cell = f"{row[r]}/{b.get_capacity(r)}"
            if r in shared and schedule.passes > 1:
                cell += f" ({shared[r][s % S]})"
            over = row[r] > b.get_capacity(r) or (r in shared and shared[r][s % S]
                                                  > b.get_capacity(r))
            cells.append(f"[red]{cell}[/red]" if over else cell)
        cells.append(markup(", ".join(u.label or u.id for u in schedule.iter_stage_units(s))))
        table.add_row(*cells)
    totals = schedule.totals()
    table.add_section()
    table.add_row("total", "", "",
                  *[f"{totals[r][0]}/{totals[r][1]}" for r in cols], "")
    return table


# --- entry points ------------------------------------------------------------------------

def _check_limit(p: Problem, max_stages: int | None) -> int:
    limit = p.budget.max_logical_stages if max_stages is None else max_stages
    if limit < 1:
        raise ScheduleError(f"max_stages must be at least 1, got {limit}")
    return limit


def _over_limit_reason(stages: int, limit: int, b: StageBudget) -> str:
    """Why ``stages`` logical stages do not run on the target, or ""."""
    S = b.physical_stages
    passes = max(1, -(-stages // S))
    if passes > 1 and not b.recirc_allowed:
        return (f"needs {stages} logical stages, {b.name!r} has {S} stages and no "
                "recirculation")
    if passes > b.max_passes:
        return (f"needs {stages} logical stages = {passes} passes of {S}, {b.name!r} allows "
                f"at most {b.max_passes} passes ({b.max_logical_stages} logical stages)")
    if stages > limit:
        return f"needs {stages} logical stages, at most {limit} allowed"
    return ""


def _build(p: Problem, *, stage: list[int] | None, limit: int, status: str, message: str,
           greedy: int | None, solver: int | None, lower: int, time_s: float,
           reason: str = "", packet_bytes: int = 64) -> Schedule:
    b = p.budget
    assignment = {} if stage is None else {p.units[u].id: stage[u] for u in range(p.n)}
    num = max(stage, default=-1) + 1 if stage is not None else 0
    if stage is not None and not reason:
        reason = _over_limit_reason(num, limit, b)
    feasible = stage is not None and not reason
    if not feasible:
        status = STATUS_INFEASIBLE
    placed = tuple(
        PlacedDependency(src=d.src, dst=d.dst, kind=d.kind, min_gap=d.min_gap,
                         gap=(assignment[d.dst] - assignment[d.src]) if assignment else 0,
                         latency_cycles=dependency_latency_cycles(d.kind, b.stage_cycles))
        for d in p.deps)
    timing = stage_timing(num, b, packet_bytes) if num else None
    return Schedule(target=b.name, feasible=feasible, reason=reason, status=status,
                    message=message, assignment=assignment, num_stages=num,
                    greedy_stages=greedy, solver_stages=solver, lower_bound=lower,
                    solve_time_s=time_s, budget=b, units=p.units, dependencies=placed,
                    timing=timing)


def greedy_schedule(units: Sequence[Unit], deps: Iterable[Dependency], budget: StageBudget,
                    max_stages: int | None = None, *, packet_bytes: int = 64) -> Schedule:
    """List-schedule the units: earliest stage with room, longest path to a sink first.

    ``max_stages`` (default: stages x passes of the target) bounds the logical stages; a
    schedule needing more is returned as infeasible with its stage count and the reason.
    """
    p = Problem(units, deps, budget)
    limit = _check_limit(p, max_stages)
    lower = p.lower_bound()
    if why := p.misfit():
        return _build(p, stage=None, limit=limit, status=STATUS_INFEASIBLE, message=why,
                      greedy=None, solver=None, lower=lower, time_s=0.0, reason=why)
    stage, why = _greedy_assign(p, _greedy_horizon(p, limit))
    g = None if stage is None else max(stage, default=-1) + 1
    return _build(p, stage=stage, limit=limit, status=STATUS_GREEDY,
                  message=why or f"list scheduler: {g} stages", greedy=g, solver=None,
                  lower=lower, time_s=0.0, reason=why, packet_bytes=packet_bytes)


def solve_schedule(units: Sequence[Unit], deps: Iterable[Dependency], budget: StageBudget,
                   max_stages: int | None = None, time_limit_s: float = 10.0, *,
                   hint: str | None = "greedy", workers: int = 8, seed: int = 0,
                   packet_bytes: int = 64) -> Schedule:
    """Minimise the logical stages with CP-SAT, never worse than the greedy list scheduler.

    The greedy schedule is the solver's hint and upper bound (``hint=None``: no hint, the
    bound stays). When the greedy schedule already meets the lower bound (dependency path,
    total demand over a stage's room) it is optimal and the solver is not run. When OR-Tools
    is missing or finds no solution within ``time_limit_s``, the greedy schedule
    is returned with status ``greedy-fallback`` and a message saying so. The limit is in the
    solver's deterministic time (about seconds), so the assignment is reproducible run to run
    whatever the machine's load (``schedule_cp.solve``).
    """
    p = Problem(units, deps, budget)
    limit = _check_limit(p, max_stages)
    lower = p.lower_bound()
    common = dict(limit=limit, lower=lower, packet_bytes=packet_bytes)
    if why := p.misfit():
        return _build(p, stage=None, status=STATUS_INFEASIBLE, message=why, greedy=None,
                      solver=None, time_s=0.0, reason=why, **common)
    gstage, gwhy = _greedy_assign(p, _greedy_horizon(p, limit))
    g = None if gstage is None else max(gstage, default=-1) + 1
    if g is not None and g <= lower:
        return _build(p, stage=gstage, status=STATUS_OPTIMAL,
                      message=f"greedy meets the lower bound of {lower} stages: optimal "
                              "without the solver", greedy=g, solver=g, time_s=0.0, **common)
    if lower > limit:
        return _build(p, stage=gstage, status=STATUS_INFEASIBLE,
                      message=f"at least {lower} logical stages needed (dependencies, "
                              f"resources), {limit} allowed", greedy=g, solver=None,
                      time_s=0.0, **common,
                      reason=_over_limit_reason(lower, limit, budget)
                      or f"needs at least {lower} logical stages, at most {limit} allowed")
    # Search below the greedy count, within the limit; hint only a schedule in the domain.
    horizon = limit if g is None else min(g, limit)
    use_hint = gstage if (hint == "greedy" and g is not None and g <= horizon) else None
    res = schedule_cp.solve(p, horizon, hint=use_hint, time_limit_s=time_limit_s,
                            workers=workers, seed=seed)
    if res.stage is not None:
        s = max(res.stage) + 1
        status = STATUS_OPTIMAL if res.optimal else STATUS_FEASIBLE
        # No wall-clock figure here: the same input gives the same message (solve_time_s
        # has the time).
        msg = f"CP-SAT {status}: {s} stages (greedy {g}, lower bound {res.bound})"
        if not res.optimal:
            msg += f"; time limit {time_limit_s:g} s reached, not proven optimal"
        msg += res.message.partition(";")[1] + res.message.partition(";")[2]
        return _build(p, stage=res.stage, status=status, message=msg, greedy=g, solver=s,
                      time_s=res.wall_s, **common)
    if res.infeasible:
        why = f"no schedule within {horizon} logical stages"
        if horizon == budget.max_logical_stages:
            why += (f" ({budget.physical_stages} stages x {budget.max_passes} "
                    f"pass{'es' if budget.max_passes != 1 else ''} of {budget.name!r})")
        why += " (CP-SAT proved it)"
        if g is not None:
            why += f"; the list scheduler needs {g}"
        return _build(p, stage=gstage, status=STATUS_INFEASIBLE, message=why, greedy=g,
                      solver=None, time_s=res.wall_s, reason=why, **common)
    # No solver answer: the greedy schedule stands, and the message says why.
    msg = f"{res.message}; using the greedy schedule"
    msg += f" ({g} stages)" if g is not None else f" (which failed: {gwhy})"
    return _build(p, stage=gstage, status=STATUS_FALLBACK, message=msg, greedy=g, solver=None,
                  time_s=res.wall_s, reason=gwhy, **common)
