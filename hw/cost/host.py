"""The per-packet cost of general-purpose cores running XDP under the kernel JIT: the host, and
a DPU's cores. One model, used by the simulator (``sim.scenario``), the mapper and the report
(``hw.rtc.cpu.estimate_cpu``).

Per packet on one core of the profile (ns)::

    core_ns = verdict_ns[verdict] + program_ns x carry
    stall_ns = contention_ns x u / (1 - u),   u = R x mean(bus_ns[verdict]) / 1000
    service  = core_ns + stall_ns

- ``verdict_ns`` (profile ``[cpu.verdict_ns]``): the driver, the XDP hook and a trivial
  program, per verdict (XDP_ABORTED is priced as XDP_DROP: it leaves the same way, plus a
  tracepoint the model ignores). Without the table every verdict costs
  ``driver_overhead_ns``.
- ``program_ns``: what the program costs beyond an empty one: BPF_PROG_TEST_RUN of the
  program minus BPF_PROG_TEST_RUN of ``r0 = XDP_DROP; exit`` on the same packet, both run
  once per call on a fresh copy of the packet, interleaved (``measure_program_ns``). The
  harness (timer, context set-up, about 110 ns per call here) cancels, so the driver is not
  charged twice.
- ``carry`` takes time measured on this machine to the profile's core (``carry_factor``):
  the same cycles on both, i.e. ``this machine's MHz / the profile core's MHz``; a NIC's
  cores (the DPU) count against the host core that ``relative_speed`` refers to
  (``REFERENCE_HOST_MHZ``) and are slower by ``relative_speed``. Modelling choice: both are
  out-of-order x86/Arm server cores running the same JITed code; the IPC difference is not
  modelled.
- The shared path (PCIe and memory): every packet occupies ``bus_ns[verdict]`` of it
  (``1000 / bus_ns`` Mpps is its ceiling: RX DMA for drop and pass; RX and TX DMA on one
  port for tx; the buffer return to another device for redirect). As its utilisation ``u``
  rises the cores stall waiting for it (an M/M/1 waiting factor, ``contention_ns`` its
  scale). ``R`` is the rate the cores achieve: the offered rate when they keep up, else the
  fixed point ``R = cores x 1000 / service(R)`` (``capacity_mpps``).

The host profile's numbers are fitted on the XDP paper's published microbenchmarks only
(docs/calibration.md; ``bench/calibration.py`` prints the fit's error): XDP_DROP, XDP_TX
and XDP_REDIRECT over 1-6 cores and the counting XDP_PASS of section 4.1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw.errors import HwError
from hw.targets import HOST_VERDICTS, CpuTarget, Target

# XDP verdict codes (include/uapi/linux/bpf.h, enum xdp_action) and the price list each uses.
XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
VERDICT_KEYS = {XDP_ABORTED: "drop", XDP_DROP: "drop", XDP_PASS: "pass", XDP_TX: "tx",
                XDP_REDIRECT: "redirect"}
# The host core ``relative_speed`` refers to: the XDP paper's Xeon E5-1650 v4 at 3.6 GHz
# (hw/targets/host.toml).
REFERENCE_HOST_MHZ = 3600.0
# Runs per packet for the fresh-buffer measurement, and the share of the fastest runs kept
# (modelling choice: the slowest 10 % are interrupts and migrations on a shared machine).
MEASURE_RUNS = 1000
KEEP_FRACTION = 0.9
# Utilisation at which the stall formula stops (the fixed point never reaches 1).
_U_MAX = 1.0 - 1e-9


class HostCostError(HwError):
    """A host cost that cannot be computed (no cpu target, a bad rate, no packets)."""


def this_machine_mhz(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> float | None:
    """This machine's core clock from /proc/cpuinfo (``cpu MHz`` of the first core), or None
    when it does not say."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            try:
                mhz = float(value)
            except ValueError:
                return None
            return mhz if mhz > 0 else None
    return None


def carry_factor(target: Target, here_mhz: float | None) -> tuple[float, str]:
    """(factor, how): ns measured on this machine x factor = ns on ``target``'s core."""
    cpu = _cpu(target)
    if here_mhz is None:
        return 1.0 / cpu.cpu.relative_speed, ("this machine's clock unknown: measured time "
                                              "taken as the profile core's")
    ref = cpu.clock_mhz if cpu.location == "host" else REFERENCE_HOST_MHZ
    factor = here_mhz / ref / cpu.cpu.relative_speed
    how = (f"same cycles: ns here x {here_mhz:g} MHz (this machine) / {ref:g} MHz")
    if cpu.cpu.relative_speed != 1.0:
        how += f" / relative_speed {cpu.cpu.relative_speed:g}"
    return factor, how


def _cpu(target: Target) -> CpuTarget:
    if not isinstance(target, CpuTarget):
        raise HostCostError(f"target '{target.name}' is a {target.kind} target, not cpu")
    return target


@dataclass(frozen=True)
class HostCost:
    """The cost model of one cpu profile with one carry factor (see the module docstring)."""

    target: str
    verdict_ns: dict[str, float]
    bus_ns: dict[str, float]
    contention_ns: float
    carry: float
    carry_note: str

    @classmethod
    def from_target(cls, target: Target, *, here_mhz: float | None = None,
                    carry: float | None = None) -> HostCost:
        """The model of ``target``; ``carry`` given, or from ``here_mhz`` (None: read from
        /proc/cpuinfo)."""
        cpu = _cpu(target)
        if carry is None:
            carry, note = carry_factor(cpu, this_machine_mhz() if here_mhz is None
                                       else here_mhz)
        else:
            note = f"carry factor {carry:g} given"
        c = cpu.cpu
        verdict = dict(c.verdict_ns) or {v: c.driver_overhead_ns for v in HOST_VERDICTS}
        return cls(target=cpu.name, verdict_ns=verdict, bus_ns=dict(c.bus_ns),
                   contention_ns=c.contention_ns, carry=carry, carry_note=note)

    # -- per packet ---------------------------------------------------------------------
    def driver_ns(self, verdict: int) -> float:
        """The driver's ns for a packet with this verdict (unknown codes: as XDP_DROP)."""
        return self.verdict_ns[VERDICT_KEYS.get(verdict, "drop")]

    def bus_for(self, verdict: int) -> float:
        """ns of the shared path the packet occupies (0 without a shared ceiling)."""
        return self.bus_ns.get(VERDICT_KEYS.get(verdict, "drop"), 0.0)

    def core_ns(self, verdict: int, program_ns_here: float) -> float:
        """Uncontended ns on one core: driver + the program's measured extra carried over."""
        return self.driver_ns(verdict) + max(0.0, program_ns_here) * self.carry

    def stall_ns(self, utilisation: float) -> float:
        """Stall per packet at a utilisation of the shared path."""
        if not self.bus_ns or utilisation <= 0:
            return 0.0
        u = min(utilisation, _U_MAX)
        return self.contention_ns * u / (1.0 - u)

    # -- rates --------------------------------------------------------------------------
    def capacity_mpps(self, cores: int, core_ns: float, bus_ns: float) -> float:
        """What ``cores`` cores process at most, Mpps, for packets of mean ``core_ns`` and
        mean ``bus_ns``: the fixed point R = cores x 1000 / (core_ns + stall(R x bus_ns))."""
        if cores < 1 or not core_ns > 0:
            raise HostCostError(f"capacity needs cores >= 1 and core_ns > 0, got {cores} and "
                                f"{core_ns}")
        linear = cores * 1000.0 / core_ns
        if not self.bus_ns or bus_ns <= 0:
            return linear
        ceiling = 1000.0 / bus_ns
        lo, hi = 0.0, min(linear, ceiling)
        for _ in range(200):  # bisection: f(R) = R - cores*1000/service(R) is increasing
            mid = (lo + hi) / 2
            if mid - cores * 1000.0 / (core_ns + self.stall_ns(mid * bus_ns / 1000.0)) > 0:
                hi = mid
            else:
                lo = mid
        return lo

    def operating_stall_ns(self, cores: int, core_ns: float, bus_ns: float,
                           offered_mpps: float) -> float:
        """The stall per packet at the rate the cores achieve under ``offered_mpps``."""
        if not offered_mpps > 0 or not math.isfinite(offered_mpps):
            raise HostCostError(f"offered rate must be a positive number of Mpps, got "
                                f"{offered_mpps!r}")
        rate = min(offered_mpps, self.capacity_mpps(cores, core_ns, bus_ns))
        return self.stall_ns(rate * bus_ns / 1000.0)

    def mix(self, verdicts: Sequence[int], program_ns_here: Sequence[float],
            weights: Sequence[float] | None = None) -> tuple[float, float]:
        """(mean core_ns, mean bus_ns) over packets, weighted by ``weights`` (their shares)."""
        if not verdicts:
            raise HostCostError("no packets to take the mean over")
        w = list(weights) if weights is not None else [1.0] * len(verdicts)
        total = sum(w)
        if not total > 0:
            raise HostCostError("the packets' weights sum to zero")
        core = sum(wi * self.core_ns(v, p) for wi, v, p in zip(w, verdicts, program_ns_here,
                                                                strict=True))
        bus = sum(wi * self.bus_for(v) for wi, v in zip(w, verdicts, strict=True))
        return core / total, bus / total

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the numbers and how measured time is carried over."""
        return {"target": self.target, "verdict_ns": self.verdict_ns, "bus_ns": self.bus_ns,
                "contention_ns": self.contention_ns, "carry": self.carry,
                "carry_note": self.carry_note}


# --- measuring on this machine ---------------------------------------------------------

def _trimmed_mean(values: list[int]) -> float:
    kept = sorted(values)[: max(1, int(len(values) * KEEP_FRACTION))]
    return sum(kept) / len(kept)


class ProgramTimer:
    """Times programs beyond an empty one with BPF_PROG_TEST_RUN (``with`` closes the empty
    program). Raises ``ebpf.errors.KernelError`` when bpf(2) is not usable."""

    def __init__(self, runs: int = MEASURE_RUNS) -> None:
        from ebpf.kernel.raw import RawKernelObject, empty_xdp_object

        if runs < 1:
            raise HostCostError(f"runs must be at least 1, got {runs}")
        self.runs = runs
        self._empty = RawKernelObject(empty_xdp_object())

    def close(self) -> None:
        self._empty.close()

    def __enter__(self) -> ProgramTimer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def program_ns(self, kobj: Any, prog: str | None, packet: bytes) -> float:
        """The program's ns beyond the empty program on ``packet``: ``runs`` single runs of
        each, interleaved, each on a fresh copy of the packet; the difference of the means of
        the fastest ``KEEP_FRACTION``, at least 0."""
        mine, empty = [], []
        for _ in range(self.runs):
            mine.append(kobj.test_run(packet, prog).duration_ns)
            empty.append(self._empty.test_run(packet).duration_ns)
        return max(0.0, _trimmed_mean(mine) - _trimmed_mean(empty))

    def program_ns_all(self, kobj: Any, prog: str | None,
                       packets: Iterable[bytes]) -> list[float]:
        return [self.program_ns(kobj, prog, p) for p in packets]
