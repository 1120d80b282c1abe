"""The per-packet service of run-to-completion NICs from VM traces: the NPU (``hw.rtc.npu``'s
multithreaded-core model) and the VLIW soft core (``hw.rtc.vliw``'s row schedule).

One answer for everyone: ``nic_service`` gives each packet's service time on one NIC server
and the number of servers; the simulator queues packets on them (``sim.scenario``), and
``hw.rtc.estimate_npu`` / ``estimate_vliw`` (the mapper, the report) call it and take the
mean of the same values, so the report's capacity is the simulator's uncongested capacity:
``servers x 1000 / mean(service ns)`` Mpps.

- NPU: one server per usable core. A core with T threads runs a packet mix at
  ``clock / max(mean C, (mean C + mean M) / T)`` (``hw.rtc.npu``); per packet the service is
  ``C_i`` when the mix is compute-bound and ``(C_i + M_i) / T`` when it is memory-bound,
  whose mean is that bound exactly.
- VLIW: one server (the core); a packet's service is its ``packet_cycles`` (start latency,
  the scheduled rows of the blocks it executed, helper and map cycles, the pipeline drain
  without early exit; at least the emission of a transmitted packet); the bus bound of long
  frames is the simulator's (``sim.model.NicModel.bus_table``).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ebpf.analysis import Analysis
from ebpf.loader.program import ElfObject, ProgramDef
from ebpf.vm.trace import Trace
from hw.rtc.common import RtcError
from hw.targets import NpuTarget, Target, VliwTarget


@dataclass(frozen=True)
class NicService:
    """Per packet (in the order of the traces): service cycles on one of ``servers`` servers
    (``service_ns`` at the target's ``cycle_ns``); ``latency_cycles`` the packet's time from
    start to verdict (reported, not a queue delay); ``costs`` the model's record of each
    packet (``hw.rtc.npu.NpuPacketCost`` or ``hw.rtc.vliw.VliwPacketCost``); ``bound`` what
    limits one server on this mix (``"compute"`` or ``"memory"``); ``schedules`` the VLIW
    row schedules by program."""

    servers: int
    cycle_ns: float
    service_cycles: tuple[float, ...]
    latency_cycles: tuple[float, ...]
    note: str
    costs: tuple[Any, ...] = ()
    bound: str = "compute"
    schedules: Mapping[str, Any] = field(default_factory=dict)

    @property
    def service_ns(self) -> tuple[float, ...]:
        return tuple(c * self.cycle_ns for c in self.service_cycles)

    @property
    def latency_ns(self) -> tuple[float, ...]:
        return tuple(c * self.cycle_ns for c in self.latency_cycles)

    def mean_service_cycles(self) -> float:
        """Mean service cycles on one server (one packet each trace)."""
        return statistics.fmean(self.service_cycles)

    def capacity_mpps(self) -> float:
        """What the servers process at most, Mpps: servers x 1000 / mean service ns."""
        return self.servers * 1000.0 / (self.mean_service_cycles() * self.cycle_ns)


def _npu(target: NpuTarget, obj: ElfObject, prog: ProgramDef, traces: Sequence[Trace],
         weights: Sequence[float] | None, level_cycles: Mapping[str, float] | None,
         cache: dict | None, analysis: Analysis | None) -> NicService:
    from hw.rtc.npu import core_rate, packet_cost

    programs = {p.name: p for p in obj.programs}
    cache = {} if cache is None else cache
    analyses = {prog.name: analysis} if analysis is not None else None
    costs = [packet_cost(target, prog, t, programs=programs, level_cycles=level_cycles,
                         cache=cache, analyses=analyses) for t in traces]
    threads = target.cores.threads_per_core
    w = list(weights) if weights is not None else [1.0] * len(costs)
    compute = statistics.fmean([c.compute_cycles for c in costs], weights=w)
    memory = statistics.fmean([c.memory_cycles for c in costs], weights=w)
    _, _, bound = core_rate(target.clock_mhz, threads, compute, memory)
    if bound == "memory":
        service = [(c.compute_cycles + c.memory_cycles) / threads for c in costs]
    else:
        service = [c.compute_cycles for c in costs]
    return NicService(
        target.cores.usable, target.cycle_ns, tuple(service),
        tuple(c.compute_cycles + c.memory_cycles for c in costs),
        f"npu: {target.cores.usable} cores, {threads} threads each; the mix is {bound}-bound "
        f"(hw.rtc.npu)", tuple(costs), bound)


def _vliw(target: VliwTarget, obj: ElfObject, prog: ProgramDef, traces: Sequence[Trace],
          optimizations: Iterable[str] | None, analysis: Analysis | None) -> NicService:
    from hw.rtc.vliw import DEFAULT_OPTIMIZATIONS, packet_cycles, schedule_program

    opts = tuple(DEFAULT_OPTIMIZATIONS if optimizations is None else optimizations)
    schedules = {p.name: schedule_program(p, target, optimizations=opts,
                                          analysis=analysis if p.name == prog.name else None)
                 for p in obj.programs}
    costs = [packet_cycles(schedules, t, target) for t in traces]
    return NicService(
        1, target.cycle_ns, tuple(float(c.cycles) for c in costs),
        tuple(float(c.latency_cycles) for c in costs),
        f"vliw: one core, {target.vliw.lanes} lanes, the rows the program's static schedule "
        f"gives the blocks each packet executed (hw.rtc.vliw)", tuple(costs), "compute",
        schedules)


def nic_service(target: Target, obj: ElfObject, prog: ProgramDef,
                traces: Sequence[Trace], weights: Sequence[float] | None = None, *,
                level_cycles: Mapping[str, float] | None = None,
                optimizations: Iterable[str] | None = None,
                cache: dict | None = None,
                analysis: Analysis | None = None) -> NicService:
    """Each packet's service on an NPU or VLIW target (see the module docstring);
    ``weights``: how many packets each trace stands for (the simulator's classes), which
    decides the NPU mix's regime (default one packet per trace). NPU: ``level_cycles``
    overrides cycles per memory level, ``cache`` keeps per-program analyses across calls;
    VLIW: ``optimizations`` names the hXDP optimisations (default: all); ``analysis`` reuses
    an ``ebpf.analysis.analyze(prog, obj)`` of ``prog``."""
    if not traces:
        raise RtcError("nic_service needs at least one trace")
    if isinstance(target, NpuTarget):
        if weights is not None and len(weights) != len(traces):
            raise RtcError(f"{len(weights)} weights for {len(traces)} traces")
        return _npu(target, obj, prog, traces, weights, level_cycles, cache, analysis)
    if isinstance(target, VliwTarget):
        return _vliw(target, obj, prog, traces, optimizations, analysis)
    raise RtcError(f"target '{target.name}' is a {target.kind} target, not npu or vliw")
