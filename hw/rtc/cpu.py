"""General-purpose cores running the kernel JIT: the host, and a DPU's cores.

The per-packet cost is ``hw.cost.host``'s (the simulator uses the same model): the driver's
cost for the packet's verdict, plus what the program costs beyond an empty program, carried
to the profile's core, plus the stall of the shared PCIe / memory path when many cores run.

The program's own cost comes from the kernel where bpf(2) is permitted: ``measure_host``
times it with ``hw.cost.host.ProgramTimer`` (single BPF_PROG_TEST_RUNs, each on a fresh copy
of the packet, minus an empty program's runs interleaved with them). Where it is not
permitted, a per-instruction model stands in for it:

    test_run ns = a + b x (instructions the VM executed)

fitted by least squares (``fit_linear``, numpy) over corpus programs, each point one
program's mean measured time against its mean VM instruction count over the same packets
(``calibration_point``, ``calibrate``). ``DEFAULT_MODEL`` is such a fit made on the
development machine; the program's cost beyond the empty program is then
``predict(insns) - predict(2)``. The result says which source it used (``source``:
``"measured"`` or ``"model"``).

Rates: one core runs 1000 / ns Mpps; ``usable`` cores together reach
``HostCost.capacity_mpps`` (linear until the shared path saturates), capped by the line
rate at the chosen frame size; ``CostEstimate.cores_for(mpps)`` gives the cores a rate needs.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ebpf.vm.trace import Trace
from hw.rtc.common import CostEstimate, RtcError, wire_mpps
from hw.targets import CpuTarget, Target

DROP_INSNS = 2  # r0 = XDP_DROP; exit


@dataclass(frozen=True)
class LinearModel:
    """test_run ns = ``a_ns`` + ``b_ns_per_insn`` x instructions; ``r2`` of the fit (None when
    undefined), ``points`` fitted, ``source`` where the coefficients come from."""

    a_ns: float
    b_ns_per_insn: float
    points: int
    r2: float | None
    source: str

    def predict(self, insns: float) -> float:
        """Predicted test_run ns for a packet that executes ``insns`` instructions."""
        return self.a_ns + self.b_ns_per_insn * insns

    def to_dict(self) -> dict[str, Any]:
        return {"a_ns": self.a_ns, "b_ns_per_insn": self.b_ns_per_insn, "points": self.points,
                "r2": self.r2, "source": self.source}


# Fitted with ``calibrate`` on the development machine (2 vCPUs, Linux 6.18, JIT on) over
# the 18 corpus programs other than fib_router (whose FIB differs between VM and kernel),
# empty maps, 200 packets of sim.packets.random_packets(200, seed=1), repeat 1000 each.
# r2 = 0.30: the instruction count explains a third of the variance; helper calls (clock
# reads, hash updates) carry most of the rest. Replace by ``calibrate`` on the machine that
# matters.
DEFAULT_MODEL = LinearModel(
    a_ns=27.97, b_ns_per_insn=0.159, points=18, r2=0.30,
    source="default: corpus fit on the development machine (Linux 6.18, 2 vCPUs, JIT on)")


def fit_linear(insns: Sequence[float], ns: Sequence[float], source: str = "fit",
               ) -> LinearModel:
    """Least-squares ``ns = a + b x insns`` (numpy.linalg.lstsq); needs two distinct
    instruction counts."""
    x = np.asarray(insns, dtype=float)
    y = np.asarray(ns, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise RtcError(f"fit_linear needs two equally long sequences, got {x.shape} and "
                       f"{y.shape}")
    if len(np.unique(x)) < 2:
        raise RtcError(f"fit_linear needs at least two distinct instruction counts, got "
                       f"{sorted(set(x.tolist()))}")
    design = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - (a + b * x)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual ** 2)) / total if total > 0 else None
    return LinearModel(float(a), float(b), int(len(x)), r2, source)


# --- measuring -------------------------------------------------------------------------

@dataclass(frozen=True)
class HostMeasurement:
    """One program timed on this machine, per packet: ``samples_ns`` its ns beyond an empty
    program (``ProgramTimer``, ``repeat`` runs each), ``verdicts`` the kernel's verdicts."""

    path: str
    program: str
    repeat: int
    samples_ns: tuple[float, ...]
    verdicts: tuple[int, ...] = ()

    @property
    def ns_per_packet(self) -> float:
        """Mean over the packets, ns."""
        return statistics.fmean(self.samples_ns)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "program": self.program, "repeat": self.repeat,
                "packets": len(self.samples_ns), "ns_per_packet": self.ns_per_packet}


def kernel_permitted() -> tuple[bool, str]:
    """``ebpf.kernel.load.bpf_permitted()``: whether test_run timing is possible here."""
    from ebpf.kernel.load import bpf_permitted

    return bpf_permitted()


def measure_host(path: str | os.PathLike[str], program: str | None,
                 packets: Sequence[bytes], repeat: int = 1000, *,
                 state: dict[str, Any] | None = None) -> HostMeasurement:
    """Time ``program`` (the object's first when None) beyond an empty program on each
    packet (``hw.cost.host.ProgramTimer``: ``repeat`` single runs, each on a fresh copy).
    ``state`` is a map-state document loaded first. Raises RtcError when bpf(2) is not usable
    or the kernel refuses."""
    from ebpf.errors import KernelError
    from ebpf.kernel.bridge import KernelObject
    from hw.cost.host import ProgramTimer

    if not packets:
        raise RtcError("measure_host needs at least one packet")
    ok, reason = kernel_permitted()
    if not ok:
        raise RtcError(f"cannot measure on the host: bpf(2) not usable: {reason}")
    try:
        with KernelObject(path, state=state) as k, ProgramTimer(repeat) as timer:
            name = program or k.program_names[0]
            verdicts = tuple(k.test_run(p, name).retval for p in packets)
            samples = tuple(timer.program_ns(k, name, p) for p in packets)
    except KernelError as exc:
        raise RtcError(f"{os.fspath(path)}: measurement failed: {exc}") from exc
    return HostMeasurement(os.fspath(path), name, repeat, samples, verdicts)


@dataclass(frozen=True)
class CalibrationPoint:
    """One program: mean VM instructions and mean measured test_run ns over one packet set."""

    program: str
    insns: float
    ns: float


def calibration_point(path: str | os.PathLike[str], program: str | None,
                      packets: Sequence[bytes], repeat: int = 1000, *,
                      state: dict[str, Any] | None = None) -> CalibrationPoint:
    """One program's point: the VM's mean instruction count and the kernel's mean test_run
    time over the same packets, both starting from the same map state (``state``)."""
    from ebpf.loader.elf import load
    from ebpf.maps.state import load_state
    from ebpf.vm.machine import Vm

    obj = load(path)
    prog = obj.get_program(program)
    vm = Vm(obj, prog)
    if state is not None:
        load_state({m.name: m for m in vm.maps}, state)
    insns = statistics.fmean(vm.run_xdp(p).trace.insns for p in packets)
    measured = measure_host(path, prog.name, packets, repeat, state=state)
    return CalibrationPoint(prog.name, insns, measured.ns_per_packet)


def calibrate(points: Sequence[CalibrationPoint], source: str = "calibrated") -> LinearModel:
    """Fit the per-instruction model over calibration points (one per program)."""
    return fit_linear([p.insns for p in points], [p.ns for p in points], source)


# --- estimates -------------------------------------------------------------------------

def estimate_cpu(target: Target, program: str, *, measurement: HostMeasurement | None = None,
                 traces: Sequence[Trace] = (), model: LinearModel = DEFAULT_MODEL,
                 baseline_ns: float | None = None, frame_bytes: int = 64,
                 carry: float | None = None) -> CostEstimate:
    """The cost on a ``cpu`` target (host or DPU) of ``program`` with ``hw.cost.host``: from
    ``measurement`` when given (source "measured"; ``baseline_ns``, default 0, is taken off
    its samples, which are already beyond an empty program), else from the VM ``traces``
    through ``model`` (source "model"; the baseline defaults to the model's 2-instruction
    empty program). ``carry`` overrides the factor from this machine to the profile's core
    (measured ns; modelled ns are on the host core already)."""
    from hw.cost.host import XDP_DROP, HostCost

    if not isinstance(target, CpuTarget):
        raise RtcError(f"target '{target.name}' is a {target.kind} target, not cpu")
    details: dict[str, Any] = {"frame_bytes": frame_bytes}
    trace_verdicts = [t.verdict if t.verdict is not None else XDP_DROP for t in traces]
    if measurement is not None:
        base = 0.0 if baseline_ns is None else baseline_ns
        extras = [s - base for s in measurement.samples_ns]
        verdicts = (list(measurement.verdicts) or
                    (trace_verdicts if len(trace_verdicts) == len(extras) else
                     [XDP_DROP] * len(extras)))
        source = "measured"
        hc = HostCost.from_target(target, carry=carry)
        details["measurement"] = measurement.to_dict()
    elif traces:
        base = model.predict(DROP_INSNS) if baseline_ns is None else baseline_ns
        extras = [model.predict(t.insns) - base for t in traces]
        verdicts = trace_verdicts
        source = "model"
        hc = HostCost.from_target(target, carry=1.0 / target.cpu.relative_speed)
        details["mean_insns"] = statistics.fmean(t.insns for t in traces)
        details["packets"] = len(traces)
    else:
        raise RtcError(f"{program}: give a host measurement or VM traces")
    details["model"] = model.to_dict()
    details["baseline_source"] = "given" if baseline_ns is not None else "empty program"
    core_ns, bus_ns = hc.mix(verdicts, extras)
    units = target.cores.usable
    line = wire_mpps(target.line_rate_gbps, frame_bytes)
    total = hc.capacity_mpps(units, core_ns, bus_ns)
    details.update({"program_extra_ns": statistics.fmean(max(0.0, e) for e in extras),
                    "baseline_ns": base, "host_cost": hc.describe(), "bus_ns": bus_ns,
                    "relative_speed": target.cpu.relative_speed})
    return CostEstimate(
        target=target.name, kind=target.kind, program=program, source=source,
        ns_per_packet=core_ns, cycles_per_packet=None, mpps_per_unit=1000.0 / core_ns,
        units=units, mpps_total=min(total, line), line_rate_mpps=line,
        bound="line rate" if total > line else (
            "shared PCIe / memory" if total < 0.95 * units * 1000.0 / core_ns else "compute"),
        details=details)
