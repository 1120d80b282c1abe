"""The per-packet service of run-to-completion NICs from VM traces: the NPU (``hw.rtc.npu``'s
multithreaded-core model) and the VLIW soft core (``hw.rtc.vliw``'s row schedule).

One answer for everyone: ``nic_service`` gives each packet's service time on one NIC server
and the number of servers; the simulator queues packets on them (``sim.scenario``), and
``hw.rtc.estimate_npu`` / ``estimate_vliw`` (the mapper, the report) take the mean of the
same values, so the report's capacity is the simulator's uncongested capacity:
``servers x 1000 / mean(service ns)`` Mpps.

- NPU: one server per usable core. A core with T threads runs a packet mix at
  ``clock / max(mean C, (mean C + mean M) / T)`` (``hw.rtc.npu``); per packet the service is
  ``C_i`` when the mix is compute-bound and ``(C_i + M_i) / T`` when it is memory-bound,
  whose mean is that bound exactly.
- VLIW: one server (the core); a packet's service is its ``packet_cycles`` (start latency,
  the scheduled rows of the blocks it executed, helper and map cycles); the bus bound of long
  frames is the simulator's (``sim.model.NicModel.bus_table``).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ebpf.loader.program import ElfObject, ProgramDef
from ebpf.vm.trace import Trace
from hw.rtc.common import RtcError
from hw.targets import NpuTarget, Target, VliwTarget


@dataclass(frozen=True)
class NicService:
    """Per packet (in the order of the traces): service ns on one of ``servers`` servers;
    ``latency_ns`` the packet's time from start to verdict (reported, not a queue delay)."""

    servers: int
    service_ns: tuple[float, ...]
    latency_ns: tuple[float, ...]
    note: str

    def capacity_mpps(self) -> float:
        """What the servers process at most, Mpps: servers x 1000 / mean service ns."""
        return self.servers * 1000.0 / statistics.fmean(self.service_ns)


def npu_cycles(target: NpuTarget, obj: ElfObject, prog: ProgramDef,
               traces: Sequence[Trace], weights: Sequence[float] | None = None
               ) -> tuple[list[float], list[float], str]:
    """(service cycles per packet, latency cycles per packet, bound of the mix);
    ``weights``: how many packets each trace stands for (default one each)."""
    from hw.rtc.npu import packet_cost

    programs = {p.name: p for p in obj.programs}
    cache: dict = {}
    costs = [packet_cost(target, prog, t, programs=programs, cache=cache) for t in traces]
    threads = target.cores.threads_per_core
    w = list(weights) if weights is not None else [1.0] * len(costs)
    compute = statistics.fmean([c.compute_cycles for c in costs], weights=w)
    memory = statistics.fmean([c.memory_cycles for c in costs], weights=w)
    memory_bound = (compute + memory) / threads > compute
    if memory_bound:
        service = [(c.compute_cycles + c.memory_cycles) / threads for c in costs]
    else:
        service = [c.compute_cycles for c in costs]
    latency = [c.compute_cycles + c.memory_cycles for c in costs]
    return service, latency, "memory" if memory_bound else "compute"


def vliw_cycles(target: VliwTarget, obj: ElfObject, traces: Sequence[Trace],
                optimizations: Iterable[str] = ()) -> tuple[list[float], list[float]]:
    """(service cycles per packet, latency cycles per packet) on the VLIW core."""
    from hw.rtc.vliw import packet_cycles, schedule_program

    opts = tuple(optimizations)
    schedules = {p.name: schedule_program(p, target, optimizations=opts) for p in obj.programs}
    costs = [packet_cycles(schedules, t, target) for t in traces]
    return [float(c.cycles) for c in costs], [float(c.latency_cycles) for c in costs]


def nic_service(target: Target, obj: ElfObject, prog: ProgramDef,
                traces: Sequence[Trace], weights: Sequence[float] | None = None
                ) -> NicService:
    """Each packet's service on an NPU or VLIW target (see the module docstring);
    ``weights``: how many packets each trace stands for (the simulator's classes), which
    decides the NPU mix's regime (default one packet per trace)."""
    if not traces:
        raise RtcError("nic_service needs at least one trace")
    ns = target.cycle_ns
    if isinstance(target, NpuTarget):
        if weights is not None and len(weights) != len(traces):
            raise RtcError(f"{len(weights)} weights for {len(traces)} traces")
        service, latency, bound = npu_cycles(target, obj, prog, traces, weights)
        return NicService(target.cores.usable, tuple(s * ns for s in service),
                          tuple(x * ns for x in latency),
                          f"npu: {target.cores.usable} cores, {target.cores.threads_per_core} "
                          f"threads each; the mix is {bound}-bound (hw.rtc.npu)")
    if isinstance(target, VliwTarget):
        service, latency = vliw_cycles(target, obj, traces)
        return NicService(1, tuple(s * ns for s in service), tuple(x * ns for x in latency),
                          f"vliw: one core, {target.vliw.lanes} lanes, the rows the program's "
                          f"static schedule gives the blocks each packet executed "
                          f"(hw.rtc.vliw)")
    raise RtcError(f"target '{target.name}' is a {target.kind} target, not npu or vliw")
