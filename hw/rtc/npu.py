"""A run-to-completion NPU (Netronome NFP-like): packets per second, with the target's
feasibility verdict (``hw.feasibility.check_target``, the one check of every target kind:
``CostEstimate.feasible`` and ``reasons``, ``details["feasibility"]``).

Cost model. Per packet, from the VM trace and the blocks it executed
(``hw.rtc.common.iter_executed_blocks``):

    compute C = insns x cycles_per_insn + helper_cycles x (non-map helper calls)
    memory  M = sum over memory levels of accesses x level_cycles
                (level "map": the map helper calls; "map_value", "packet", "stack", "ctx",
                "unknown": the loads, stores and atomics by the memory they touch,
                classified by ``hw.rtc.common.memory_levels`` from the shared
                analysis ``ebpf.analysis.analyze``)

By default "map", "map_value" and "unknown" cost ``map_access_cycles`` each (map memory is
off the core, the profile's one memory level); "packet", "stack" and "ctx" cost nothing
beyond their instruction (local memory). ``level_cycles`` overrides any level.

A core with T hardware threads that switch on every memory access keeps its pipeline busy
while the other T - 1 threads wait. With run length C and latency M per packet, its
utilisation is min(1, T x C / (C + M)) (Saavedra-Barrera, Culler and von Eicken, "Analysis
of Multithreaded Architectures for Parallel Computing", SPAA 1990: linear region below the
saturation point T* = (C + M) / C, saturated above it; Agarwal, "Performance Tradeoffs in
Multithreaded Processors", IEEE TPDS 3(5), 1992). Packets per second per core are therefore

    per_core = clock / max(C, (C + M) / T)

compute-bound when T x C >= C + M, memory-bound below; the thread switch cost is taken as
zero (a modelling choice: the microengines swap contexts in hardware). Over a packet
mix C and M are the means (the bound is linear in both). The total is
usable cores x per_core, capped by the line rate at the chosen frame size.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ebpf.analysis import Analysis, analyze
from ebpf.loader.program import ElfObject, ProgramDef
from ebpf.vm.trace import Trace
from hw.feasibility import check_target
from hw.rtc.common import (
    MAP_HELPERS,
    Cfg,
    CostEstimate,
    RtcError,
    iter_executed_blocks,
    memory_levels,
    wire_mpps,
)
from hw.targets import NpuTarget, Target

# --- cost --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NpuPacketCost:
    """One packet on one NPU thread: instructions, helper calls, accesses by memory level,
    and the compute and memory cycles of the module docstring."""

    insns: int
    helper_calls: int
    map_calls: int
    accesses: dict[str, int] = field(default_factory=dict)
    compute_cycles: float = 0.0
    memory_cycles: float = 0.0


def default_level_cycles(target: NpuTarget) -> dict[str, float]:
    """Cycles per access by memory level, from the profile's one memory level."""
    m = float(target.timing.map_access_cycles)
    return {"map": m, "map_value": m, "unknown": m, "packet": 0.0, "stack": 0.0, "ctx": 0.0}


def packet_cost(target: NpuTarget, prog: ProgramDef, trace: Trace, *,
                programs: Mapping[str, ProgramDef] | None = None,
                level_cycles: Mapping[str, float] | None = None,
                cache: dict[str, dict[int, str]] | None = None,
                analyses: Mapping[str, Analysis] | None = None) -> NpuPacketCost:
    """The cost of the packet of ``trace`` (see the module docstring); ``programs`` resolves
    tail-call targets by name; ``cache`` keeps the memory levels by program name across
    calls; ``analyses`` reuses earlier ``analyze`` runs by program name."""
    cache = {} if cache is None else cache
    levels = default_level_cycles(target)
    if level_cycles:
        levels.update(level_cycles)
    accesses: Counter[str] = Counter()
    cfgs: dict[str, Cfg] = {}
    for p, block in iter_executed_blocks(prog, trace, programs, cfgs):
        if p.name not in cache:
            an = (analyses or {}).get(p.name) or analyze(p)
            cache[p.name] = memory_levels(an)
        regions = cache[p.name]
        for slot in block.slots:
            region = regions.get(slot)
            if region is not None:
                accesses[region] += 1
    map_calls = sum(1 for h in trace.helper_calls if h.name in MAP_HELPERS)
    accesses["map"] += map_calls
    helper_calls = len(trace.helper_calls) - map_calls
    t = target.timing
    compute = trace.insns * t.cycles_per_insn + helper_calls * t.helper_cycles
    unknown = [k for k in accesses if k not in levels]
    if unknown:
        raise RtcError(f"no cycles for memory level '{unknown[0]}'")
    memory = sum(n * levels[k] for k, n in accesses.items())
    return NpuPacketCost(trace.insns, helper_calls, map_calls, dict(accesses), compute,
                         memory)


def core_rate(clock_mhz: float, threads: int, compute_cycles: float,
              memory_cycles: float) -> tuple[float, float, str]:
    """(Mpps per core, effective cycles per packet, bound) of the multithreaded-core model:
    clock / max(C, (C + M) / T)."""
    if compute_cycles <= 0:
        raise RtcError(f"compute cycles must be positive, got {compute_cycles}")
    hidden = (compute_cycles + memory_cycles) / threads
    cycles = max(compute_cycles, hidden)
    return clock_mhz / cycles, cycles, "memory" if hidden > compute_cycles else "compute"


def estimate_npu(target: Target, obj: ElfObject, prog: ProgramDef, traces: Sequence[Trace],
                 *, level_cycles: Mapping[str, float] | None = None,
                 frame_bytes: int = 64, analysis: Analysis | None = None) -> CostEstimate:
    """The NPU's packet rate for ``prog`` over the packets of ``traces``, with feasibility
    (``hw.feasibility.check_target``); ``analysis`` reuses an ``analyze(prog, obj)``."""
    if not isinstance(target, NpuTarget):
        raise RtcError(f"target '{target.name}' is a {target.kind} target, not npu")
    if not traces:
        raise RtcError("estimate_npu needs at least one trace")
    an = analysis if analysis is not None else analyze(prog, obj)
    from hw.cost.nic import nic_service  # the one per-packet service the simulator uses

    svc = nic_service(target, obj, prog, traces, level_cycles=level_cycles, analysis=an)
    costs: list[NpuPacketCost] = list(svc.costs)
    compute = statistics.fmean(c.compute_cycles for c in costs)
    memory = statistics.fmean(c.memory_cycles for c in costs)
    threads = target.cores.threads_per_core
    cycles = svc.mean_service_cycles()
    per_core = svc.capacity_mpps() / svc.servers
    bound = core_bound = svc.bound
    units = svc.servers
    line = wire_mpps(target.line_rate_gbps, frame_bytes)
    total = units * per_core
    if total > line:
        bound = "line rate"
    feas = check_target(obj, prog, target, analysis=an)
    accesses: Counter[str] = Counter()
    for c in costs:
        accesses.update(c.accesses)
    return CostEstimate(
        target=target.name, kind=target.kind, program=prog.name, source="model",
        ns_per_packet=cycles * target.cycle_ns, cycles_per_packet=cycles,
        mpps_per_unit=per_core, units=units, mpps_total=min(total, line), line_rate_mpps=line,
        bound=bound, feasible=feas.ok, reasons=tuple(r.message for r in feas.reasons),
        details={
            "packets": len(costs), "frame_bytes": frame_bytes, "threads_per_core": threads,
            "mean_insns": statistics.fmean(c.insns for c in costs),
            "mean_compute_cycles": compute, "mean_memory_cycles": memory,
            "core_bound": core_bound,
            "mean_accesses": {k: v / len(costs) for k, v in sorted(accesses.items())},
            "level_cycles": dict(sorted({**default_level_cycles(target),
                                         **(level_cycles or {})}.items())),
            "latency_ns": (compute + memory) * target.cycle_ns,
            "feasibility": feas.to_dict(),
        })
