"""The mapper: an XDP program onto a target, whole or in part, with the evidence.

``map_program(path, target)`` runs, for a pipeline target (``pipe``, ``rmt``):

1. **check** (``offload.feasibility.check``): the constructs the target cannot do;
2. **lower** (``offload.lower``): the rest becomes tables, gateways, VLIW and stateful ops;
   what the lowering cannot express is a reason too, and the loop starts again with it cut;
3. **partition** (``offload.partition``): the cuts and their legality (before the first side
   effect on their paths), hence the verdict;
4. **schedule** (``offload.schedule``): the list scheduler and CP-SAT (never worse than the
   list scheduler; on a timeout the greedy schedule is used and the report says so);
   recirculation when the stages are more than the physical ones;
5. **emit**: the configuration document of docs/pipeline.md (validated by
   ``hw.pipeline.load_config``), containers and predicates allocated by liveness;
6. **equivalence** (``offload.equivalence``): the pipeline model with the configuration,
   plus the VM for punted packets, against the VM alone on the trace
   (``random_packets(2000, seed=1)`` with the program's scenario): verdicts, bytes, maps.
   A mapping that fails it is reported ``host-only`` with ``equivalence failed: ...``.

For a run-to-completion target (``nfp``, ``hxdp``, ``dpu``, ``host``) the verdict is the
feasibility check's, the punted fraction the share of the trace's packets whose VM run
reaches a construct the target lacks, and the cost comes from ``hw.rtc`` over the same VM
runs (``estimate_npu``, ``estimate_vliw``, ``estimate_cpu``).

Bad input raises a ``MapperError`` subclass with one line (unknown target, an object or
program that does not load); everything about the program itself is a reason in the report.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebpf.analysis import analyze
from ebpf.analysis.effects import EffectKind, find_effects
from ebpf.differential import size_maps
from ebpf.errors import EbpfError
from ebpf.loader.elf import ElfObject, load
from hw.errors import HwError
from hw.pipeline import ConfigError, load_config
from hw.targets import (
    XDP_VERDICTS,
    CpuTarget,
    NpuTarget,
    PipelineTarget,
    Target,
    VliwTarget,
    load_target,
)
from offload.errors import MapperError
from offload.feasibility import VERDICT_HOST, VERDICT_PARTIAL, Reason, check
from offload.partition import Partition, lowering_reason, partition, trace_shares

MAX_ROUNDS = 8  # partition-and-lower rounds (offload.lower.passes.fixed_point)
DEFAULT_TIME_LIMIT_S = 10.0


class UnknownTargetError(MapperError):
    """The target name or file names no target profile."""


class ProgramLoadError(MapperError):
    """The object does not load, or has no such program."""


@dataclass
class MapReport:
    """What ``map_program`` found; ``to_dict`` is the ``offload map --json`` document."""

    program: str
    object: str
    target: str
    kind: str
    verdict: str
    explanation: str
    reasons: list[Reason] = field(default_factory=list)
    cuts: list[dict[str, Any]] = field(default_factory=list)
    stages: int | None = None
    greedy_stages: int | None = None
    solver_stages: int | None = None
    solver_status: str | None = None
    physical_stages: int | None = None
    passes: int | None = None
    recirculations: int | None = None
    punted_fraction: float | None = None
    punted: int | None = None
    packets: int | None = None
    punt_reasons: dict[str, int] = field(default_factory=dict)
    nic_share: dict[str, float | None] | None = None
    """Of the trace: ``packets`` the NIC finishes, and (run-to-completion targets) ``work``,
    the executed instructions of those packets over all executed instructions."""
    equivalence: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    containers: int | None = None
    predicates: int | None = None
    cost: dict[str, Any] | None = None
    messages: list[str] = field(default_factory=list)
    mapping_time_s: float = 0.0
    config: dict[str, Any] | None = None
    schedule: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "program": self.program, "object": self.object, "target": self.target,
            "kind": self.kind, "verdict": self.verdict, "explanation": self.explanation,
            "reasons": [r.to_dict() for r in self.reasons], "cuts": self.cuts,
            "stages": self.stages, "greedy_stages": self.greedy_stages,
            "solver_stages": self.solver_stages, "solver_status": self.solver_status,
            "physical_stages": self.physical_stages, "passes": self.passes,
            "recirculations": self.recirculations, "punted_fraction": self.punted_fraction,
            "punted": self.punted, "packets": self.packets, "punt_reasons": self.punt_reasons,
            "nic_share": self.nic_share,
            "equivalence": self.equivalence, "containers": self.containers,
            "predicates": self.predicates, "resources": self.resources, "cost": self.cost,
            "messages": self.messages, "mapping_time_s": round(self.mapping_time_s, 4),
        }


def get_target(target: Target | str, extra: Any = ()) -> Target:
    if isinstance(target, Target):
        return target
    try:
        return load_target(target, extra=extra)
    except HwError as exc:
        raise UnknownTargetError(str(exc)) from exc


def get_object(obj_or_path: ElfObject | str | os.PathLike[str], program: str | None
               ) -> tuple[ElfObject, Any]:
    try:
        obj = obj_or_path if isinstance(obj_or_path, ElfObject) else load(obj_or_path)
        return obj, obj.get_xdp_program(program)
    except EbpfError as exc:
        raise ProgramLoadError(str(exc)) from exc
    except OSError as exc:
        raise ProgramLoadError(f"{os.fspath(obj_or_path)}: cannot read: "  # type: ignore[arg-type]
                               f"{exc.strerror or exc}") from exc


def written_maps(an: Any) -> set[str]:
    """Maps the program may write (on any path): the state equivalence must share."""
    return {e.map for e in find_effects(an) if e.kind is EffectKind.MAP_WRITE and e.map}


def default_trace(path: str | os.PathLike[str] | None, scenario: Any = None,
                  packets: list[bytes] | None = None) -> tuple[Any, list[bytes]]:
    """The scenario (given, or examples/xdp/scenarios/<stem>.json) and the packets
    (given, or random_packets(2000, seed=1))."""
    from offload.equivalence import (
        DEFAULT_PACKETS,
        DEFAULT_SEED,
        load_scenario,
        scenario_path,
    )
    from sim.packets import random_packets

    if scenario is None or isinstance(scenario, (str, os.PathLike)):
        where = scenario if scenario is not None else (scenario_path(path) if path else None)
        try:
            scenario = load_scenario(where)
        except EbpfError as exc:
            raise ProgramLoadError(str(exc)) from exc
    if packets is None:
        packets = random_packets(DEFAULT_PACKETS, seed=DEFAULT_SEED)
    return scenario, packets


def map_program(obj_or_path: ElfObject | str | os.PathLike[str], target: Target | str = "pipe",
                program: str | None = None, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S,
                scenario: Any = None, packets: list[bytes] | None = None,
                equivalence: bool = True, extra_targets: Any = (),
                executor: str = "vm") -> MapReport:
    """Map ``program`` of the object onto ``target``; see the module docstring. The VM runs
    (equivalence, traces) use ``executor``: vm, compiled or auto (``ebpf.compiled``)."""
    started = time.perf_counter()
    tgt = get_target(target, extra_targets)
    obj, prog = get_object(obj_or_path, program)
    path = obj.path if isinstance(obj_or_path, ElfObject) else os.fspath(obj_or_path)
    try:  # maps its loader sizes (max_entries 0) take their size from the scenario
        obj = size_maps(obj, default_trace(path, scenario, [])[0])
    except EbpfError as exc:
        raise ProgramLoadError(str(exc)) from exc
    prog = obj.get_program(prog.name)
    an = analyze(prog, obj)
    res = check(obj, prog.name, tgt, analysis=an)
    report = MapReport(prog.name, path, tgt.name, tgt.kind, res.verdict, res.explanation,
                       list(res.reasons))
    need_trace = equivalence or not isinstance(tgt, PipelineTarget)
    scen, pkts = default_trace(path, scenario, packets) if need_trace else (None, [])
    if not need_trace and scenario is not None:
        default_trace(path, scenario, [])  # a scenario given is read (and refused if bad)
    if isinstance(tgt, PipelineTarget):
        _map_pipeline(report, an, obj, prog, tgt, time_limit_s, scen, pkts, equivalence,
                      executor)
    else:
        _map_rtc(report, an, obj, prog, tgt, scen, pkts, executor)
    report.mapping_time_s = time.perf_counter() - started
    return report


# --- pipelines --------------------------------------------------------------------------

def _map_pipeline(report: MapReport, an: Any, obj: ElfObject, prog: Any,
                  tgt: PipelineTarget, time_limit_s: float, scen: Any, pkts: list[bytes],
                  equivalence: bool, executor: str = "vm") -> None:
    from offload.lower import compile_pipeline, lower_program
    from offload.lower.passes import fixed_point

    def evaluate(reasons: list[Reason]) -> tuple[Partition, Any]:
        part = partition(an, reasons)
        if part.verdict == VERDICT_HOST:
            return part, None
        return part, lower_program(an, obj, prog, tgt, part.cut_slots)

    def refine(reasons: list[Reason], result: tuple[Partition, Any]) -> list[Reason] | None:
        """What the lowering could not express becomes a reason to cut, and a new round."""
        low = result[1]
        if low is None or low.ok:
            return None
        known = {s for r in reasons for s in r.insns}
        new = [lowering_reason(prog, r) for r in low.reasons if r.slot not in known]
        return reasons + new if new else None

    fp = fixed_point(evaluate, refine, list(report.reasons), limit=MAX_ROUNDS - 1)
    part, low = fp.result
    report.reasons = fp.state
    report.verdict, report.explanation = part.verdict, part.explanation
    report.cuts = [c.to_dict() for c in part.cuts]
    if part.verdict == VERDICT_HOST or low is None or not low.ok:
        if part.verdict != VERDICT_HOST:
            report.verdict = VERDICT_HOST
            report.explanation = "the lowering could not place the program"
        return
    compiled = compile_pipeline(low, tgt, prog.name, time_limit_s)
    greedy, solver, chosen = compiled.greedy, compiled.solver, compiled.chosen
    report.greedy_stages = greedy.greedy_stages
    report.solver_stages = solver.solver_stages if solver.feasible else None
    report.solver_status = solver.status
    report.physical_stages = tgt.stages.count
    report.schedule = chosen
    if solver.status == "greedy-fallback":
        report.messages.append(f"solver: {solver.message}")
    if compiled.repairs:
        report.messages.append(f"{compiled.repairs} rescheduling round(s) for the per-stage "
                               f"window / adjust limits")
    if compiled.config is None:
        report.verdict = VERDICT_HOST
        report.explanation = f"does not fit {tgt.name}: {compiled.reason}"
        report.reasons.append(Reason(0, None, None, f"does not fit {tgt.name}: "
                                     f"{compiled.reason}", "cut more of the program to the "
                                     "host, or simplify it", "resources", scope="program"))
        return
    report.stages = chosen.num_stages
    report.passes = chosen.passes
    report.recirculations = max(0, chosen.passes - 1)
    report.resources = _resources(chosen)
    assert compiled.allocation is not None
    report.containers = compiled.allocation.max_live
    report.predicates = compiled.allocation.max_preds
    try:
        config = load_config(compiled.config)
    except ConfigError as exc:
        report.verdict = VERDICT_HOST
        report.explanation = f"internal: the emitted configuration is invalid: {exc}"
        return
    report.config = compiled.config
    if not equivalence:
        report.messages.append("equivalence not checked")
        return
    from offload.equivalence import check_equivalence

    eq = check_equivalence(obj, prog.name, config, scen, pkts, written_maps(an),
                           executor=executor)
    report.equivalence = eq.to_dict()
    report.punted, report.packets = eq.punted, eq.packets
    report.punted_fraction = round(eq.punted_fraction, 6)
    report.punt_reasons = {str(k): v for k, v in sorted(eq.punt_reasons.items())}
    if eq.ok and report.verdict == VERDICT_PARTIAL and eq.packets:
        _state_share(report, 1 - eq.punted_fraction, None)
    if not eq.ok:
        report.verdict = VERDICT_HOST
        report.explanation = f"equivalence failed: {eq.failure}"
        report.reasons.append(Reason(0, None, None, f"equivalence failed: {eq.failure}",
                                     "a lowering bug: keep the program on the host",
                                     "equivalence", scope="program"))


def _resources(sched: Any) -> dict[str, Any]:
    doc = sched.to_dict()
    return {k: doc[k] for k in ("stages_used", "greedy_stages", "solver_stages", "lower_bound",
                                "status", "message", "physical_stages", "max_logical_stages",
                                "capacity", "totals", "timing")} | {
        "stages": [{"stage": s["stage"], "physical": s["physical"], "pass": s["pass"],
                    "usage": s["usage"], "units": len(s["units"])} for s in doc["stages"]]}


# --- run-to-completion targets ------------------------------------------------------------

def _map_rtc(report: MapReport, an: Any, obj: ElfObject, prog: Any, tgt: Target, scen: Any,
             pkts: list[bytes], executor: str = "vm") -> None:
    from offload.equivalence import _vm, scenario_cpus

    part = partition(an, report.reasons)
    report.cuts = [c.to_dict() for c in part.cuts]
    vm, _ = _vm(obj, prog.name, scen, scenario_cpus(scen), executor)
    traces = []
    for p in pkts:
        if len(p) < 14:
            continue
        try:
            traces.append(vm.run_xdp(p).trace)
        except EbpfError as exc:
            report.messages.append(f"VM failed on a trace packet: {exc}")
            break
    programs = {p.name: p for p in obj.programs}
    if report.verdict == VERDICT_HOST:
        hit, total = len(traces), len(traces)
    else:
        hit, total, nic, work = trace_shares(prog, traces, part.cut_slots, programs)
        if report.verdict == VERDICT_PARTIAL and total:
            _state_share(report, 1 - hit / total, nic / work if work else None)
    report.punted, report.packets = hit, total
    report.punted_fraction = round(hit / total, 6) if total else None
    lim = tgt.ebpf
    if lim is not None:  # verdicts the code computes are reasons; these came from data
        seen = Counter(tr.verdict for tr in traces if tr.verdict is not None)
        for code, n in sorted(seen.items()):
            name = XDP_VERDICTS[code] if 0 <= code < len(XDP_VERDICTS) else f"action {code}"
            if name not in lim.verdicts:
                report.messages.append(
                    f"{n} of {len(traces)} trace packets returned XDP_{name.upper()} ({code}), "
                    f"which {tgt.name} does not support (a value the program read from a map "
                    f"or the packet)")
    try:
        if isinstance(tgt, NpuTarget):
            from hw.rtc import estimate_npu
            est = estimate_npu(tgt, obj, prog, traces, analysis=an)
        elif isinstance(tgt, VliwTarget):
            from hw.rtc import estimate_vliw
            est = estimate_vliw(tgt, obj, prog, traces, analysis=an)
        elif isinstance(tgt, CpuTarget):
            from hw.rtc import estimate_cpu
            est = estimate_cpu(tgt, prog.name, traces=traces)
        else:
            return
        report.cost = est.to_dict()
    except HwError as exc:
        report.messages.append(f"cost model: {exc}")


def _state_share(report: MapReport, packets: float, work: float | None) -> None:
    """Record the NIC's share of a partial mapping and say it in the explanation."""
    report.nic_share = {"packets": round(packets, 6),
                        "work": round(work, 6) if work is not None else None}
    said = f"{100 * packets:.1f} % of the trace's packets"
    if work is not None:
        said += f" and {100 * work:.1f} % of its executed instructions"
    report.explanation += f"; on the NIC: {said}"


def write_config(report: MapReport, path: str | os.PathLike[str],
                 images: str | os.PathLike[str] | None = None) -> None:
    """Write the configuration (``hw.pipeline.save_config``) and optionally its images."""
    from hw.pipeline import save_config, write_memory_images

    if report.config is None:
        raise MapperError(f"{report.program} on {report.target}: no configuration to write "
                          f"({report.verdict}: {report.explanation})")
    config = load_config(report.config)
    save_config(config, path)
    if images is not None:
        Path(images).mkdir(parents=True, exist_ok=True)
        write_memory_images(config, images)
