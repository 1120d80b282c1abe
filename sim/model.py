"""The data-path model both engines implement: stations, their parameters, exact semantics.

One model, two engines: ``sim.engine_simpy`` (a simpy process per packet, the reference) and
``sim.engine_fast`` (numpy, time in batches). Both read a ``Workload`` and return a
``SimResult``; on the same workload they give the same ``lost_at`` and the same
``depart_ps``, to the picosecond. The semantics they share are these.

Time
    Every time inside the model is an integer number of **picoseconds** (int64). Traffic
    arrival times are integer ns (``Traffic.arrival_ns``); the model multiplies them by
    1000. Integer ns would be too coarse for the link: a 64 B frame takes 6.72 ns at
    100 Gb/s (148.81 Mpps), which integer ns can only round to 7 ns (142.9 Mpps). All
    results are reported in ns.

Packets
    Packet ``i`` (0 <= i < N) has a frame size (bytes, Ethernet frame with FCS, RFC 2544
    convention: at least 64), a flow id and a representative index ``rep`` whose
    ``Outcome`` says what the program does with it (verdict, punted, costs).
    Arrival times at the link are nondecreasing in ``i``.

Stations
    LINK (1 server), NIC (``servers`` servers), PCIE (1 server) and one HOST station per
    host core (1 server each). Each station is a FIFO queue with identical servers, a
    capacity ``C`` in packets counting those waiting **and** those in service (``None``:
    unbounded), a service time ``s >= 1`` ps per packet, and after service an optional pure
    delay ``delta >= 0`` ps (the pipeline's latency) that holds neither a server nor a
    queue slot. Absent stations (no NIC on the host target, no PCIe there) are skipped.

Route
    LINK -> NIC -> (if the packet goes to the host) PCIE -> HOST[core(i)].
    A packet goes to the host when the NIC punts it or its verdict is XDP_PASS; on a
    workload without a NIC (the host target) every packet goes to the host cores. Without
    NIC and host (a bare link, used by tests) packets leave after the link.
    ``core(i)`` is RSS: ``rss_core(flow_i, cores)``, a fixed integer hash of the flow id.
    A packet *departs* at the end of its last service plus that station's delay; a packet
    that ends on the NIC (drop, tx, redirect, aborted) departs at NIC service end + delay.

Order at a station
    Arrivals at a station are taken in the order of (arrival time at that station, packet
    index): ties between packets arriving at the same picosecond go to the lower index.
    A departure at time t happens before an arrival at the same time t.

Admission (tail drop)
    At its arrival time t, packet i counts the packets admitted to the station before it
    (in the order above) whose service has not ended: service end > t. If that count is
    ``>= C`` the packet is lost at this station (``lost_at`` = the station kind) and goes
    no further; otherwise it is admitted.

Service (FIFO)
    Admitted packets start service in arrival order, each on the earliest free server:
    ``start_i = max(t_i, f)`` where ``f`` is the earliest time a server is free (the
    service end of the last packet it served). ``end_i = start_i + s_i``. For one server
    this is ``end_i = max(t_i, end_prev) + s_i``; for k servers ``start_i = max(t_i, k-th
    largest service end among the packets admitted before i)``.

Results (``SimResult``)
    ``depart_ps[i]``: departure, or -1 when lost; ``lost_at[i]``: the kind of the station
    that dropped it (``LINK``, ``NIC``, ``PCIE``, ``HOST``) or -1.

Service times (computed once, here, for both engines)
    - LINK: ``ceil((max(size, 64) + 8 + 12) * 8 bits / gbps)``: preamble + SFD (8 B) and the
      inter-frame gap (12 B) occupy the wire; frames are padded to 64 B.
    - NIC: ``max(nic_ps(rep), bus_cycles(size) * cycle)`` where ``bus_cycles =
      ceil((size - 4) * 8 / bus_bits)`` when the NIC streams packets over a bus (pipeline,
      VLIW) and the per-representative cost ``nic_ns`` otherwise; for a pipeline
      ``nic_ns = II * passes * cycle`` and the latency is the delay.
    - PCIE: ``ceil(wire * 8 / gbps)`` with ``wire = len + ceil(len / max_payload) *
      tlp_overhead``, ``len = size - 4`` (the MAC strips the FCS).
    - HOST: ``host_ns(rep)`` = driver overhead + program cost when the program runs there.
    Nanosecond costs become ps by rounding to the nearest ps, byte-derived ones by ceiling;
    every service is at least 1 ps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ebpf.kernel_enums import MAP_HELPERS
from hw.ethernet import (  # noqa: F401  (re-exported: sim.traffic, sim.metrics, sim.queueing)
    FCS_BYTES,
    IFG_BYTES,
    MAX_FRAME_BYTES,
    MIN_FRAME_BYTES,
    PREAMBLE_SFD_BYTES,
    WIRE_OVERHEAD_BYTES,
)
from sim.errors import SimError

PS_PER_NS = 1000

# Station kinds: the codes in SimResult.lost_at.
LINK, NIC, PCIE, HOST = 0, 1, 2, 3
STATION_NAMES = {LINK: "link", NIC: "nic", PCIE: "pcie", HOST: "host"}
LOSS_CAUSES = {LINK: "sender queue full (link busy)", NIC: "NIC queue full",
               PCIE: "DMA queue full (PCIe busy)", HOST: "host RX ring full"}
NOT_LOST = -1

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = 0, 1, 2, 3, 4


class ModelError(SimError):
    """Model parameters that cannot be simulated (a zero rate, a negative size, ...)."""


# --- the stations' parameters ------------------------------------------------------------

def _queue(value: int | None, what: str) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ModelError(f"{what}: queue size must be a positive number of packets or "
                         f"None (unbounded), got {value!r}")


def _positive(value: float, what: str) -> None:
    if not value > 0 or not math.isfinite(value):
        raise ModelError(f"{what}: expected a positive number, got {value!r}")


def _ps_table(bits: np.ndarray, gbps: float) -> np.ndarray:
    """ceil(bits / gbps) in ps (1 Gb/s = 1 bit/ns), at least 1; exact for round rates."""
    ps = np.round(bits * (PS_PER_NS / gbps), 6)
    return np.maximum(np.ceil(ps), 1).astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class LinkModel:
    """The ingress Ethernet link: one server, serialisation at ``gbps`` (Gb/s = bits/ns)."""

    gbps: float
    queue: int | None = None
    """Frames the sender may hold while the wire is busy; None: unbounded (never lost)."""

    def __post_init__(self) -> None:
        _positive(self.gbps, "link rate (Gb/s)")
        _queue(self.queue, "link")

    def service_table(self) -> np.ndarray:
        """Wire time in ps for every frame size 0..MAX_FRAME_BYTES."""
        size = np.arange(MAX_FRAME_BYTES + 1, dtype=np.int64)
        return _ps_table((np.maximum(size, MIN_FRAME_BYTES) + WIRE_OVERHEAD_BYTES) * 8,
                         self.gbps)

    def line_rate_pps(self, size: int) -> float:
        """Frames per second at line rate for one frame size."""
        return self.gbps * 1e9 / ((max(size, MIN_FRAME_BYTES) + WIRE_OVERHEAD_BYTES) * 8)


@dataclass(frozen=True, kw_only=True)
class NicModel:
    """The NIC as a queueing station; per-packet costs come from the ``Outcome`` s.

    A pipeline is one server whose service is the issue time (II x passes cycles, or the
    bus beats of a large packet) followed by its latency as a pure delay; run-to-completion
    NICs (NPU, VLIW core, DPU cores) are ``servers`` parallel servers.
    """

    name: str
    servers: int = 1
    queue: int | None = 1024
    """Packets waiting for or in service on the NIC; None: unbounded."""
    clock_mhz: float = 250.0
    bus_bits: int | None = None
    """Width of the packet bus; a packet occupies the NIC for at least its bus beats."""

    def __post_init__(self) -> None:
        if self.servers < 1:
            raise ModelError(f"NIC {self.name}: servers must be >= 1, got {self.servers}")
        _queue(self.queue, f"NIC {self.name}")
        _positive(self.clock_mhz, f"NIC {self.name} clock (MHz)")
        if self.queue is not None and self.queue < self.servers:
            raise ModelError(f"NIC {self.name}: queue {self.queue} is smaller than its "
                             f"{self.servers} servers (the queue counts packets in service)")

    @property
    def cycle_ps(self) -> float:
        return 1e6 / self.clock_mhz

    def bus_table(self) -> np.ndarray | None:
        """Bus occupancy in ps for every frame size (FCS stripped), or None without a bus."""
        if self.bus_bits is None:
            return None
        size = np.arange(MAX_FRAME_BYTES + 1, dtype=np.int64)
        beats = -(-np.maximum(size - FCS_BYTES, 1) * 8 // self.bus_bits)
        return np.maximum(np.ceil(np.round(beats * self.cycle_ps, 6)), 1).astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class PcieModel:
    """DMA from the NIC to host memory: one server at ``gbps``, TLP overhead per payload."""

    gbps: float
    tlp_overhead_bytes: int
    max_payload_bytes: int
    queue: int | None = 1024
    """Packets waiting for or in DMA; None: unbounded."""

    def __post_init__(self) -> None:
        _positive(self.gbps, "PCIe bandwidth (Gb/s)")
        _positive(self.max_payload_bytes, "PCIe max payload (bytes)")
        if self.tlp_overhead_bytes < 0:
            raise ModelError(f"PCIe TLP overhead: expected >= 0 bytes, got "
                             f"{self.tlp_overhead_bytes}")
        _queue(self.queue, "PCIe")

    def wire_bytes(self, length: np.ndarray | int) -> np.ndarray | int:
        """Bytes on the link for a DMA of ``length`` bytes: payload plus one TLP header per
        ``max_payload_bytes`` (bytes = len + ceil(len / max_payload) * tlp_overhead)."""
        tlps = -(-np.asarray(length) // self.max_payload_bytes)
        return length + tlps * self.tlp_overhead_bytes

    def service_table(self) -> np.ndarray:
        """DMA time in ps for every frame size (the FCS is not transferred)."""
        size = np.arange(MAX_FRAME_BYTES + 1, dtype=np.int64)
        length = np.maximum(size - FCS_BYTES, 1)
        return _ps_table(np.asarray(self.wire_bytes(length)) * 8, self.gbps)


@dataclass(frozen=True, kw_only=True)
class HostModel:
    """Host cores running the program, one RX ring per core (RSS by flow)."""

    cores: int
    ring: int | None = 1024
    """RX ring size per core, packets (waiting + in service); None: unbounded."""

    def __post_init__(self) -> None:
        if not isinstance(self.cores, int) or self.cores < 1:
            raise ModelError(f"host cores: expected a positive integer, got {self.cores!r}")
        _queue(self.ring, "host ring")


def rss_core(flow: np.ndarray, cores: int) -> np.ndarray:
    """The host core of each flow: a Fibonacci hash of the flow id (a stand-in for the NIC's
    Toeplitz hash over the 5-tuple), modulo ``cores``."""
    if cores == 1:
        return np.zeros(len(flow), dtype=np.int64)
    h = np.asarray(flow, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return ((h >> np.uint64(32)) % np.uint64(cores)).astype(np.int64)


# --- what the program does with each representative packet -------------------------------

@dataclass(frozen=True)
class Outcome:
    """What happens to one representative packet: from executing the program on it.

    ``nic_ns`` is the NIC's service time for it on one server, size-independent part
    (the model adds the bus bound), ``nic_delay_ns`` the NIC's pure latency after service,
    ``host_ns`` the host core's time per packet (driver overhead + program when it runs
    there). ``punted``: the NIC hands the packet to the host for (the rest of) the program.
    """

    verdict: int
    punted: bool = False
    nic_ns: float = 0.0
    host_ns: float = 0.0
    nic_delay_ns: float = 0.0


def _ns_to_ps(values: Sequence[float]) -> np.ndarray:
    return np.maximum(np.rint(np.asarray(values, dtype=np.float64) * PS_PER_NS), 0).astype(
        np.int64)


@dataclass
class PacketClasses:
    """The outcomes as per-representative arrays, and each packet's representative."""

    rep: np.ndarray
    """Per packet: index into the outcome arrays."""
    verdict: np.ndarray
    to_host: np.ndarray
    nic_ps: np.ndarray
    nic_delay_ps: np.ndarray
    host_ps: np.ndarray
    punted: np.ndarray | None = None
    """Per representative: the NIC punts it to the host (None: no NIC decided, all False)."""

    @classmethod
    def from_outcomes(cls, outcomes: Sequence[Outcome], rep: np.ndarray, *, has_nic: bool,
                      has_host: bool) -> PacketClasses:
        """Map traffic packets (by representative index) onto the representatives' outcomes.

        A packet goes to the host when the NIC punts it or passes it (XDP_PASS); without a
        NIC (the host target) every packet does; without host cores none does.
        """
        if not outcomes:
            raise ModelError("no representative packets: nothing to map the traffic onto")
        rep = np.asarray(rep)
        if rep.dtype.kind not in "iu":
            raise ModelError(f"representative indices must be integers, got {rep.dtype}")
        if len(rep) and (rep.min() < 0 or rep.max() >= len(outcomes)):
            raise ModelError(f"representative index {int(rep.max())} out of range: "
                             f"{len(outcomes)} outcomes")
        verdict = np.array([o.verdict for o in outcomes], dtype=np.int64)
        punted = np.array([o.punted for o in outcomes], dtype=bool)
        if not has_host:
            to_host = np.zeros(len(outcomes), dtype=bool)
        elif not has_nic:
            to_host = np.ones(len(outcomes), dtype=bool)
        else:
            to_host = punted | (verdict == XDP_PASS)
        host_ps = np.maximum(_ns_to_ps([o.host_ns for o in outcomes]), 1)
        nic_ps = np.maximum(_ns_to_ps([o.nic_ns for o in outcomes]), 1)
        return cls(rep=rep, verdict=verdict, to_host=to_host, nic_ps=nic_ps,
                   nic_delay_ps=_ns_to_ps([o.nic_delay_ns for o in outcomes]), host_ps=host_ps,
                   punted=punted & has_nic & has_host)


# --- the workload: traffic + outcomes + stations -----------------------------------------

@dataclass
class Services:
    """Per-packet inputs of the stations for packets ``lo .. hi-1`` (times in ps)."""

    index: np.ndarray
    arrival_ps: np.ndarray
    link_ps: np.ndarray
    nic_ps: np.ndarray | None
    nic_delay_ps: np.ndarray | None
    to_host: np.ndarray
    pcie_ps: np.ndarray | None
    core: np.ndarray | None
    host_ps: np.ndarray | None


@dataclass
class Workload:
    """Everything an engine needs: packets, what the program does to them, the stations."""

    arrival_ns: np.ndarray
    size: np.ndarray
    flow: np.ndarray
    classes: PacketClasses
    link: LinkModel
    nic: NicModel | None = None
    pcie: PcieModel | None = None
    host: HostModel | None = None
    _tables: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.arrival_ns)
        for name in ("size", "flow"):
            if len(getattr(self, name)) != n:
                raise ModelError(f"{name}: {len(getattr(self, name))} entries for {n} packets")
        if len(self.classes.rep) != n:
            raise ModelError(f"rep: {len(self.classes.rep)} entries for {n} packets")
        self.arrival_ns = np.asarray(self.arrival_ns, dtype=np.int64)
        if n and (np.any(np.diff(self.arrival_ns) < 0) or self.arrival_ns[0] < 0):
            raise ModelError("arrival times must be nonnegative and nondecreasing")
        if n and (self.size.min() < 1 or self.size.max() > MAX_FRAME_BYTES):
            raise ModelError(f"frame sizes must be 1..{MAX_FRAME_BYTES} bytes, got "
                             f"{int(self.size.min())}..{int(self.size.max())}")
        if self.pcie is not None and self.nic is None:
            raise ModelError("a PCIe link needs a NIC in front of it")
        if self.nic is not None and self.host is None and bool(self.classes.to_host.any()):
            raise ModelError("packets go to the host but the workload has no host cores")

    @property
    def num_packets(self) -> int:
        return len(self.arrival_ns)

    def head(self, n: int) -> Workload:
        """The same workload cut to its first ``n`` packets."""
        c = self.classes
        classes = PacketClasses(rep=c.rep[:n], verdict=c.verdict, to_host=c.to_host,
                                nic_ps=c.nic_ps, nic_delay_ps=c.nic_delay_ps,
                                host_ps=c.host_ps, punted=c.punted)
        return Workload(arrival_ns=self.arrival_ns[:n], size=self.size[:n],
                        flow=self.flow[:n], classes=classes, link=self.link, nic=self.nic,
                        pcie=self.pcie, host=self.host)

    def _table(self, name: str) -> np.ndarray | None:
        if name not in self._tables:
            if name == "link":
                self._tables[name] = self.link.service_table()
            elif name == "bus":
                self._tables[name] = self.nic.bus_table() if self.nic else None
            elif name == "pcie":
                self._tables[name] = self.pcie.service_table() if self.pcie else None
        return self._tables[name]

    def services(self, lo: int = 0, hi: int | None = None) -> Services:
        """The stations' per-packet inputs for packets ``lo`` .. ``hi - 1``."""
        hi = self.num_packets if hi is None else hi
        c = self.classes
        size = self.size[lo:hi]
        rep = c.rep[lo:hi]
        to_host = c.to_host[rep]
        nic_ps = nic_delay = pcie_ps = core = host_ps = None
        if self.nic is not None:
            nic_ps = c.nic_ps[rep]
            bus = self._table("bus")
            if bus is not None:
                nic_ps = np.maximum(nic_ps, bus[size])
            nic_delay = c.nic_delay_ps[rep]
        if self.pcie is not None:
            pcie_ps = self._table("pcie")[size]
        if self.host is not None:
            core = rss_core(self.flow[lo:hi], self.host.cores)
            host_ps = c.host_ps[rep]
        return Services(index=np.arange(lo, hi, dtype=np.int64),
                        arrival_ps=self.arrival_ns[lo:hi] * PS_PER_NS,
                        link_ps=self._table("link")[size], nic_ps=nic_ps,
                        nic_delay_ps=nic_delay, to_host=to_host, pcie_ps=pcie_ps, core=core,
                        host_ps=host_ps)

    def describe(self) -> dict[str, Any]:
        """The stations' parameters, JSON-ready."""
        doc: dict[str, Any] = {"link": {"gbps": self.link.gbps, "queue": self.link.queue}}
        if self.nic:
            doc["nic"] = {"name": self.nic.name, "servers": self.nic.servers,
                          "queue": self.nic.queue, "clock_mhz": self.nic.clock_mhz,
                          "bus_bits": self.nic.bus_bits}
        if self.pcie:
            doc["pcie"] = {"gbps": self.pcie.gbps, "tlp_overhead_bytes":
                           self.pcie.tlp_overhead_bytes, "max_payload_bytes":
                           self.pcie.max_payload_bytes, "queue": self.pcie.queue}
        if self.host:
            doc["host"] = {"cores": self.host.cores, "ring": self.host.ring}
        return doc


@dataclass
class SimResult:
    """What an engine returns: per packet, departure (ps, -1 if lost) and where it was lost."""

    depart_ps: np.ndarray
    lost_at: np.ndarray
    engine: str = ""
    wall_s: float = 0.0

    @classmethod
    def empty(cls, n: int, engine: str) -> SimResult:
        return cls(np.full(n, -1, dtype=np.int64), np.full(n, NOT_LOST, dtype=np.int8), engine)


# --- costs from the program's behaviour: the trace-driven part ---------------------------


@dataclass(frozen=True)
class TraceCost:
    """What the cost models read from one VM run: instructions, map and other helper calls,
    and, when a pipeline mapping decides it, whether the pipeline model punts the packet."""

    insns: int
    map_helpers: int
    helpers: int
    helper_names: tuple[str, ...] = ()
    punted: bool | None = None
    """The mapped configuration on the pipeline model punts this packet (``NicCost.punt ==
    "model"``, see ``sim.mapping``); None: no mapping ran on it."""

    @classmethod
    def from_trace(cls, trace: Any) -> TraceCost:
        names = tuple(h.name for h in trace.helper_calls)
        maps = sum(1 for n in names if n in MAP_HELPERS)
        return cls(insns=int(trace.insns), map_helpers=maps, helpers=len(names) - maps,
                   helper_names=names)


PuntRule = Callable[[TraceCost], bool]
PUNT_RULES = ("none", "all", "helpers", "model")
DEFAULT_COST_SOURCE = ("simulator defaults: II 1, one pass through all of the target's "
                       "stages, punt a packet whose path calls a helper the target lacks")


@dataclass(frozen=True)
class NicCost:
    """How the NIC spends time on a packet and which packets it punts to the host.

    On a pipeline target (``pipe``, ``rmt``) the caller's mapping hook (``sim.mapping``; the
    command line passes ``offload.sim_cost.mapped_nic_cost``) builds it from the program's
    mapping: ``passes`` and ``stages`` of the schedule, one packet issued every ``ii_cycles
    x passes`` cycles (the model adds the bus beats of long packets), ``latency_cycles``
    from the configuration's timing (``hw.pipeline.timing``, docs/pipeline.md section 8:
    parser + passes x physical stages x stage cycles + recirculations + deparser), and
    ``punt = "model"`` with the configuration in ``config``: a packet is punted iff the
    pipeline model punts it (a mapper cut, a window fault, a frame longer than the window;
    decided per representative packet and recorded in its ``TraceCost.punted``). A
    ``host-only`` mapping punts every packet (``"all"``). Without the hook a pipeline gets
    the simulator's defaults, whose ``source`` says that no mapping was supplied.

    Without a mapping (a scenario's explicit ``[nic]`` table, the run-to-completion NIC
    targets, a caller's own) the fields are plain parameters: ``punt`` is ``"none"``,
    ``"all"``, ``"helpers"`` (punt a packet whose path calls a helper the target lacks) or a
    callable on the packet's ``TraceCost``; a pipeline's latency is then ``passes x stages
    x stage latency + (passes - 1) x recirculation penalty`` cycles, ``stages`` None
    meaning all of the target's stages. ``source`` says where the numbers came from, and
    every output repeats it.
    """

    ii_cycles: int = 1
    passes: int = 1
    stages: int | None = None
    """Pipeline stages the program uses (the mapping: logical stages over all passes);
    None: all of the target's stages."""
    punt: str | PuntRule = "helpers"
    source: str = DEFAULT_COST_SOURCE
    latency_cycles: int | None = None
    """Pipeline latency per packet, cycles, when the mapping's timing gives it."""
    verdict: str | None = None
    """The mapping's verdict (full / partial / host-only), when a mapping made this cost."""
    config: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """The mapped pipeline configuration (docs/pipeline.md) that decides ``punt = "model"``."""

    def __post_init__(self) -> None:
        if self.ii_cycles < 1 or self.passes < 1:
            raise ModelError(f"NIC cost: ii_cycles and passes must be >= 1, got "
                             f"{self.ii_cycles} and {self.passes}")
        if isinstance(self.punt, str) and self.punt not in PUNT_RULES:
            raise ModelError(f"NIC cost: punt must be one of {', '.join(PUNT_RULES)}, got "
                             f"{self.punt!r}")
        if self.punt == "model" and self.config is None:
            raise ModelError("NIC cost: punt 'model' needs the mapped pipeline configuration")
        if self.latency_cycles is not None and self.latency_cycles < 0:
            raise ModelError(f"NIC cost: latency_cycles must be >= 0, got "
                             f"{self.latency_cycles}")

    def is_punted(self, target: Any, cost: TraceCost) -> bool:
        if callable(self.punt):
            return bool(self.punt(cost))
        if self.punt == "model":
            if cost.punted is None:
                raise ModelError("NIC cost: punt 'model' but the pipeline model did not run "
                                 "on this packet")
            return cost.punted
        if self.punt == "all":
            return True
        if self.punt == "helpers" and target.ebpf is not None:
            return any(not target.ebpf.has_helper(n) for n in cost.helper_names)
        return False

    def pipeline_latency_cycles(self, target: Any) -> int:
        """The pipeline's latency per packet, cycles (see the class docstring)."""
        if self.latency_cycles is not None:
            return self.latency_cycles
        stages = self.stages if self.stages is not None else target.stages.count
        penalty = target.recirculation.penalty_cycles or 0
        return (self.passes * stages * target.stages.latency_cycles
                + (self.passes - 1) * penalty)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the numbers and where they came from."""
        punt = self.punt if isinstance(self.punt, str) else "rule"
        return {"source": self.source, "verdict": self.verdict, "ii_cycles": self.ii_cycles,
                "passes": self.passes, "stages": self.stages,
                "latency_cycles": self.latency_cycles, "punt": punt}


def nic_model(target: Any, cost: NicCost, queue: int | None, servers: int = 1,
              note: str = "") -> tuple[NicModel, list[str]]:
    """The NIC station for a NIC target, with the assumptions it rests on. ``servers`` and
    ``note`` come from the target's cost model (``hw.cost``) on run-to-completion NICs."""
    notes: list[str] = []
    kind = target.kind
    if kind == "pipeline":
        bus = target.packet.bus_bits
        notes.append(f"pipeline: II {cost.ii_cycles} cycle(s) x {cost.passes} pass(es) at "
                     f"{target.clock_mhz:g} MHz ({cost.source})")
        if bus:
            notes.append(f"pipeline bus {bus} b: a packet occupies ceil((size-4)*8/{bus}) "
                         f"cycles at least")
        return NicModel(name=target.name, servers=1, queue=queue, clock_mhz=target.clock_mhz,
                        bus_bits=bus), notes
    if kind in ("npu", "vliw", "cpu"):
        notes.append(f"{note or kind}: {servers} server(s); per-packet service from hw.cost")
        bus = target.packet.bus_bits if kind == "vliw" else None
        if queue is not None and queue < servers:
            queue = servers
        return NicModel(name=target.name, servers=servers, queue=queue,
                        clock_mhz=target.clock_mhz, bus_bits=bus), notes
    raise ModelError(f"target {target.name}: unknown kind {kind!r}")


def pipeline_service(target: Any, cost: NicCost) -> tuple[float, float]:
    """(service ns, pure delay ns) of one packet on a pipeline: the mapping's issue time
    (II x passes cycles) and its latency."""
    cycle_ns = target.cycle_ns
    return (cost.ii_cycles * cost.passes * cycle_ns,
            cost.pipeline_latency_cycles(target) * cycle_ns)


def pcie_model(target: Any, queue: int | None) -> PcieModel:
    p = target.pcie
    return PcieModel(gbps=p.bandwidth_gbps, tlp_overhead_bytes=p.tlp_overhead_bytes,
                     max_payload_bytes=p.max_payload_bytes, queue=queue)
