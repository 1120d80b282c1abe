"""Lowering an XDP program onto a pipeline target (docs/pipeline.md, docs/mapping.md 5-7).

``lower_program`` turns the analysed program, with the cut slots removed, into scheduler
units and dependencies (or the reasons it cannot); ``compile_pipeline`` schedules them
(greedy and CP-SAT, ``offload.schedule``), allocates containers and predicates by liveness
and writes the configuration document. The phases, one module each:

============== ==========================================================================
``ir``         symbolic values, virtual containers, ops, predicates; the target's params
``dag``        sub-programs inlined per call string, loops unrolled to their trip bound,
               cut slots end their paths (``punt``)
``translate``  symbolic execution: registers, branches, calls, helpers -> ops on virtual
``alu``        containers; ALU folding and byte shuffles; stack, packet and map-value
``memory``     memory; bounds checks -> data_len gateways
``state``      the symbolic machine state, its join (lazy phis), byte views
``ifconvert``  control dependence -> predicates (gateways), exits -> verdict writes
``tables``     map lookups -> tables, written map words -> stateful units, map bindings
``units``      dead-code removal, scheduler units, Jose et al. dependencies
``pressure``   after scheduling: ops as late as useful, late fields reloaded late
``containers`` virtual containers and predicates onto the PHV by liveness
``emit``       the configuration document
``passes``     named passes and the one fixed-point driver of every retry loop
============== ==========================================================================

After translation the lowering runs ``LOWER_PASSES`` in order (``if-convert``, ``prune``,
``merge-stateful``, ``check-widths``, ``plan-maps``, ``check-sizes``, ``memory-rows``,
``check-stage-memory``, ``build-problem``; ``Lowered.passes`` lists those that ran). The
scheduling repairs and the container-pressure retry of ``compile_pipeline`` are fixed points
of ``passes.fixed_point`` (at most ``MAX_REPAIRS`` and ``MAX_REMATERIALIZE`` refinements),
as are the mapper's partition-and-lower rounds (``offload.mapper.MAX_ROUNDS``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ebpf.analysis import descendants
from ebpf.analysis.dataflow import Analysis
from ebpf.loader.elf import ElfObject
from ebpf.loader.program import ProgramDef
from hw.pipeline.config import TargetParams, target_params
from hw.targets import PipelineTarget
from offload.lower.containers import Allocation, AllocationError, allocate
from offload.lower.dag import Dag, LowerError, build_dag
from offload.lower.emit import emit_config, used_values
from offload.lower.ifconvert import IfConverter
from offload.lower.ir import (
    AluOp,
    LowerParams,
    LowerReason,
    Op,
    Pred,
    Value,
    lower_params,
)
from offload.lower.memory import Unsupported
from offload.lower.passes import Pass, fixed_point, run_passes
from offload.lower.pressure import alap, rematerialize
from offload.lower.tables import MapPlan, memory_rows, merge_stateful, plan_maps
from offload.lower.translate import Translator
from offload.lower.units import build_problem, prune
from offload.schedule import (
    Dependency,
    Schedule,
    StageBudget,
    Unit,
    budget_from_target,
    greedy_schedule,
    solve_schedule,
)

__all__ = ["LOWER_PASSES", "Compiled", "Lowered", "LowerError", "LowerReason",
           "compile_pipeline", "lower_params", "lower_program"]

MAX_REPAIRS = 12
MAX_REMATERIALIZE = 1  # late packet fields are reloaded once; then the program does not fit


@dataclass
class Lowered:
    """A program lowered to units, or the reasons it could not be (``reasons``)."""

    reasons: list[LowerReason] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    values: list[Value] = field(default_factory=list)
    preds: list[Pred] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    deps: list[Dependency] = field(default_factory=list)
    plans: dict[int, MapPlan] = field(default_factory=dict)
    default_verdict: int = 0
    dag: Dag | None = None
    params: LowerParams | None = None
    tparams: TargetParams | None = None
    cut_nodes: int = 0
    explicit: list = field(default_factory=list)  # translation's ordering dependencies
    memory: dict = field(default_factory=dict)
    reach: Any = None
    passes: list[str] = field(default_factory=list)  # the named passes that ran, in order

    @property
    def ok(self) -> bool:
        return not self.reasons


def _reach(dag: Dag, live: list[int]) -> Any:
    live_set = set(live)
    order = [n for n in dag.order if n in live_set]
    desc = descendants(order, {n: dag.nodes[n].succs for n in order})
    return lambda a, b: bool(desc.get(a, 0) >> b & 1)


@dataclass
class _State:
    """What the lowering passes share: the translation and what each pass adds."""

    tr: Translator
    obj: ElfObject
    params: LowerParams
    tparams: TargetParams
    ifc: Any = None
    default: int = 0
    reach: Any = None
    live: list[Op] = field(default_factory=list)
    plans: dict[int, MapPlan] = field(default_factory=dict)
    mem: dict = field(default_factory=dict)
    units: list[Unit] = field(default_factory=list)
    deps: list[Dependency] = field(default_factory=list)


def _if_convert(st: _State) -> None:
    st.ifc = IfConverter(st.tr)
    st.default = st.ifc.run()


def _merge_stateful(st: _State) -> None:
    st.reach = _reach(st.tr.dag, st.tr.live)
    if merge_stateful(st.tr, st.ifc, st.reach):
        prune(st.tr.ops)
    st.live = [op for op in st.tr.ops if not op.dead]


def _plan_maps(st: _State) -> None:
    st.plans = plan_maps(st.obj, st.live, st.tr.lookups)


def _memory_rows(st: _State) -> None:
    st.mem = memory_rows(st.tparams, st.plans, st.live)


def _build_problem(st: _State) -> None:
    st.units, st.deps = build_problem(st.live, st.tr.deps, st.tparams, st.mem, st.reach)


# After translation, in this order; each raises ``Unsupported`` for what it cannot lower.
LOWER_PASSES: tuple[Pass[_State], ...] = (
    Pass("if-convert", _if_convert),
    Pass("prune", lambda st: prune(st.tr.ops)),
    Pass("merge-stateful", _merge_stateful),
    Pass("check-widths", lambda st: _check_widths(st.live, st.params)),
    Pass("plan-maps", _plan_maps),
    Pass("check-sizes", lambda st: _check_sizes(st.plans, st.live)),
    Pass("memory-rows", _memory_rows),
    Pass("check-stage-memory",
         lambda st: _check_stage_memory(st.live, st.plans, st.mem, st.tparams)),
    Pass("build-problem", _build_problem),
)


def lower_program(an: Analysis, obj: ElfObject, prog: ProgramDef, target: PipelineTarget,
                  cuts: set[int]) -> Lowered:
    """Units and dependencies of ``prog`` on ``target`` with ``cuts`` punted to the host."""
    params = lower_params(target)
    tparams = target_params(target)
    trips = {}
    for loop in an.cfg.iter_loops():
        if an.is_reachable(loop.header):
            trips[(loop.func, loop.header)] = an.loop_trips(loop, 1024)
    dag = build_dag(an, cuts, {k: v for k, v in trips.items() if v is not None})
    tr = Translator(an, obj, prog, params, dag)
    tr.run()
    ran = ["translate"]
    if tr.reasons:
        return Lowered(reasons=sorted(tr.reasons.values(), key=lambda r: r.slot), dag=dag,
                       passes=ran)
    st = _State(tr, obj, params, tparams)
    try:
        run_passes(LOWER_PASSES, st, ran)
    except Unsupported as exc:
        return Lowered(reasons=[LowerReason(exc.slot, exc.what, exc.fix)], dag=dag, passes=ran)
    return Lowered(ops=st.live, values=tr.values, preds=st.ifc.preds_made, units=st.units,
                   deps=st.deps, plans=st.plans, default_verdict=st.default, dag=dag,
                   params=params, tparams=tparams, cut_nodes=len(tr.punts),
                   explicit=list(tr.deps), memory=st.mem, reach=st.reach, passes=ran)


def _check_widths(ops: list[Op], params: LowerParams) -> None:
    if params.max_value_bits >= 64:
        return
    for v in {id(x): x for op in ops for x in op.reads() if isinstance(x, Value)}.values():
        if v.bits > params.max_value_bits:
            raise Unsupported(v.slot or 0, f"a {v.bits}-bit value ({v.name}); {params.target}'s "
                                           f"PHV words hold at most {params.max_value_bits} "
                                           f"bits", "use 32-bit arithmetic")


def _check_sizes(plans: dict[int, MapPlan], ops: list[Op]) -> None:
    for p in plans.values():
        if p.max_entries > 65535 or any(h.words > 65536 for h in p.homes):
            op = (p.tables or [h.op for h in p.homes])[0]
            raise Unsupported(op.slot or 0, f"map '{p.name}' has {p.max_entries} entries; a "
                                            f"table or register memory holds at most 65535",
                              "lower max_entries")


def _check_stage_memory(ops: list[Op], plans: dict[int, MapPlan],
                        mem: dict[int, tuple[int, int]], t: TargetParams) -> None:
    """A table (with its registers) lives in one stage: it must fit one stage's memory."""
    from offload.lower.ir import StatefulOp, TableOp

    for op in ops:
        if op.id not in mem or not isinstance(op, (TableOp, StatefulOp)):
            continue
        sram, tcam = mem[op.id]
        name = plans[op.lookup.map].name
        entries = plans[op.lookup.map].max_entries
        for what, rows, per, blocks in (("SRAM", sram, t.sram_entries, t.sram_blocks),
                                        ("TCAM", tcam, t.tcam_entries, t.tcam_blocks)):
            need = -(-rows // per)
            if need > blocks:
                fit = entries * blocks * per // rows
                raise Unsupported(op.slot or 0, f"map '{name}' ({entries} entries) needs {need} "
                                                f"{what} blocks in one stage; {t.name} has "
                                                f"{blocks} per stage",
                                  f"lower max_entries to about {fit}")


# --- scheduling, allocation, emission ----------------------------------------------------

@dataclass
class Compiled:
    """A scheduled and allocated lowering, with its configuration document."""

    config: dict[str, Any] | None
    greedy: Schedule
    solver: Schedule
    chosen: Schedule
    allocation: Allocation | None
    reason: str = ""  # why there is no configuration
    repairs: int = 0
    stage: dict[str, int] = field(default_factory=dict)  # unit -> stage, after ``alap``


def pipeline_budget(target: PipelineTarget, tparams: TargetParams) -> StageBudget:
    b = budget_from_target(target)
    cap = dict(b.capacity)
    cap["alu_slots"] = tparams.num_containers
    cap["tables"] = tparams.tables
    cap["stateful"] = tparams.stateful_alus
    cap["gateways"] = tparams.gateways
    return dataclasses.replace(b, capacity=cap)


def _stage_limits(low: Lowered, sched: Schedule) -> list[Dependency]:
    """Extra dependencies for stages over the per-stage window / adjust / discard limits."""
    t = low.tparams
    assert t is not None
    per: dict[tuple[int, str], list[Op]] = {}
    for op in low.ops:
        if not isinstance(op, AluOp) or op.uid not in sched.assignment:
            continue
        s = sched.assignment[op.uid]
        if op.op in ("wld", "wldv"):
            per.setdefault((s, "load"), []).append(op)
        elif op.op in ("wst", "wstv"):
            per.setdefault((s, "store"), []).append(op)
            per.setdefault((s, "discard"), []).append(op)
        elif op.op in ("adjh", "adjt"):
            per.setdefault((s, "adjust"), []).append(op)
            if not any(not u.dead for u in op.dst.uses):  # type: ignore[union-attr]
                per.setdefault((s, "discard"), []).append(op)
    limits = {"load": t.window_loads, "store": t.window_stores, "adjust": 1, "discard": 6}
    extra = []
    for (_stage, what), group in per.items():
        if len(group) > limits[what]:
            group.sort(key=lambda o: o.id)
            keep, move = group[:limits[what]], group[limits[what]:]
            for m in move:
                extra.append(Dependency(keep[-1].uid, m.uid, "action"))
    return extra


def _schedule(low: Lowered, budget: StageBudget, time_limit_s: float
              ) -> tuple[Schedule, Schedule, Schedule, list[Dependency], int]:
    """(greedy, solver, chosen, dependencies, repairs): both schedulers, then the per-stage
    limits the scheduler does not know (window ports, one adjust) repaired by extra
    dependencies and scheduling again, to a fixed point (at most ``MAX_REPAIRS`` times)."""

    def evaluate(deps: list[Dependency]) -> tuple[Schedule, Schedule, Schedule]:
        greedy = greedy_schedule(low.units, deps, budget)
        solver = solve_schedule(low.units, deps, budget, time_limit_s=time_limit_s)
        return greedy, solver, solver if solver.feasible else greedy

    def refine(deps: list[Dependency], scheds: tuple[Schedule, Schedule, Schedule]
               ) -> list[Dependency] | None:
        chosen = scheds[2]
        extra = _stage_limits(low, chosen) if chosen.feasible else []
        return deps + extra if extra else None

    fp = fixed_point(evaluate, refine, list(low.deps), limit=MAX_REPAIRS)
    greedy, solver, chosen = fp.result
    return greedy, solver, chosen, fp.state, fp.refinements


@dataclass
class _Fit:
    """One scheduling and allocation attempt of ``compile_pipeline``."""

    greedy: Schedule
    solver: Schedule
    chosen: Schedule
    deps: list[Dependency]
    repairs: int
    alloc: Allocation | None = None
    reason: str = ""
    stage: dict[str, int] = field(default_factory=dict)


def compile_pipeline(low: Lowered, target: PipelineTarget, program: str,
                     time_limit_s: float = 10.0) -> Compiled:
    """Schedule (greedy and CP-SAT), allocate, emit. Never raises for a misfit: ``reason``.

    Containers are allocated on the chosen schedule with its ops moved as late as useful
    (``pressure.alap``); when they do not fit, late-read packet fields are reloaded late
    (``pressure.rematerialize``) and the program is scheduled once more.
    """
    assert low.tparams is not None
    t = low.tparams
    budget = pipeline_budget(target, t)

    def evaluate(low: Lowered) -> _Fit:
        fit = _Fit(*_schedule(low, budget, time_limit_s))
        if not fit.chosen.feasible:
            return fit
        used = used_values(low.ops)
        scheds = (fit.chosen, fit.greedy) if fit.chosen is not fit.greedy else (fit.chosen,)
        for sched in scheds:
            if not sched.feasible:
                continue
            stage = alap(low.ops, fit.deps, sched.assignment, sched.num_stages, t)
            try:
                fit.alloc = allocate(low.ops, low.values, low.preds, stage, t.num_containers,
                                     t.predicate_bits, sched.num_stages, used)
                fit.chosen, fit.stage = sched, stage
                break
            except AllocationError as exc:
                fit.reason, fit.stage = str(exc), stage
        return fit

    def refine(low: Lowered, fit: _Fit) -> Lowered | None:
        """Containers short: late-read packet fields reloaded late (``rematerialize``)."""
        if not fit.chosen.feasible or fit.alloc is not None:
            return None
        new_ops, new_deps = rematerialize(low.ops, low.values, fit.chosen.assignment)
        if not new_ops:
            return None
        low.ops = low.ops + new_ops
        low.explicit = low.explicit + new_deps
        low.units, low.deps = build_problem(low.ops, low.explicit, t, low.memory, low.reach)
        return low

    fit = fixed_point(evaluate, refine, low, limit=MAX_REMATERIALIZE).result
    greedy, solver, chosen, repairs = fit.greedy, fit.solver, fit.chosen, fit.repairs
    if not chosen.feasible:
        return Compiled(None, greedy, solver, chosen, None, chosen.reason or greedy.reason,
                        repairs)
    if fit.alloc is None:
        return Compiled(None, greedy, solver, chosen, None, fit.reason, repairs)
    alloc, stage = fit.alloc, fit.stage
    config = emit_config(program, t, low.ops, low.values, stage, alloc, low.plans,
                         low.default_verdict, chosen.num_stages)
    placed = tuple(dataclasses.replace(d, gap=stage[d.dst] - stage[d.src])
                   for d in chosen.dependencies)
    final = dataclasses.replace(chosen, assignment=stage, dependencies=placed)
    return Compiled(config, greedy, solver, final, alloc, "", repairs, stage)


_ = (AllocationError, LowerError)
