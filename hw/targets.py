"""Target profiles: the hardware a program is mapped onto, as data (``hw/targets/*.toml``).

A profile is one TOML file; its ``name`` equals the file name. Every number in a built-in
profile carries its source in a comment (paper, datasheet, driver file) or says that it is a
modelling choice. A user adds a target by adding a file (``--target-file PATH``), never code.

Schema. Common keys, every kind:

- ``name`` (= file stem), ``kind`` (``pipeline`` | ``npu`` | ``vliw`` | ``cpu``),
  ``location`` (``nic`` | ``host``; only a ``cpu`` may be the host), ``description``,
  ``notes`` (optional), ``clock_mhz``, ``line_rate_gbps``.
- ``[pcie]`` on NIC targets (forbidden on the host): ``gen``, ``lanes``, ``bandwidth_gbps``
  (usable, after line encoding), ``tlp_overhead_bytes`` (per TLP), ``max_payload_bytes``.
- ``[ebpf]`` what the target accepts of an eBPF program (required except for ``cpu``, where
  its absence means the kernel JIT: whatever the verifier accepts): ``helpers``, ``map_types``,
  ``verdicts``, ``atomics``, ``stack_bytes``, ``max_insns`` (optional), ``mul_max_bits``
  (0, 32, 64), ``div`` (``none`` | ``constant`` | ``full``), ``variable_stack_access``,
  ``map_value_stores`` (stores through a map value pointer), ``max_map_entry_bytes`` (optional).
- ``[reference]`` (optional): published measurements, ``name = number``, for calibration.

Per kind:

- ``pipeline``: ``[phv]`` ``predicate_bits`` and ``[[phv.containers]]`` (``bits``, ``count``);
  ``[packet]`` ``window_bytes``, ``parse_depth_bytes``, ``bus_bits`` (optional: absent when
  the payload does not stream through the pipeline), ``variable_offset_access``;
  ``[stages]`` ``count``, ``latency_cycles``, ``tables``, ``gateways``, ``stateful_alus``,
  ``max_key_bits`` and ``[stages.sram]`` / ``[stages.tcam]`` (``blocks``, ``entries`` per
  block, ``width_bits``) and ``[stages.externs]`` (``checksum``, ``hash``, ``random``,
  ``timestamp`` units); ``[alu]`` ``width_bits`` (one op per container per stage);
  ``[recirculation]`` ``allowed`` and, when allowed, ``penalty_cycles``, ``max_passes``;
  ``[datapath]`` (optional, each key optional, integers >= 0): ``parser_cycles``,
  ``deparser_cycles``, ``window_headroom``, ``key_slices``, ``action_containers``,
  ``window_loads``, ``window_stores``, ``punt_containers`` (the configuration format's names,
  docs/pipeline.md section 2; an absent key takes ``pipe.toml``'s value).
- ``npu`` (run to completion): ``[cores]`` ``count``, ``usable``, ``threads_per_core``;
  ``[packet]`` ``window_bytes``, ``variable_offset_access``; ``[timing]`` ``cycles_per_insn``,
  ``map_access_cycles``, ``helper_cycles``.
- ``vliw`` (soft core): ``[vliw]`` ``lanes``, ``helper_calls_per_row``, ``pipeline_depth``;
  ``[packet]`` ``window_bytes``, ``bus_bits``, ``variable_offset_access``; ``[timing]``
  ``map_access_cycles``, ``helper_cycles`` (both may be 0), ``start_latency_cycles`` and
  optionally ``tx_cycles`` (emission of a transmitted packet, default 0) and
  ``redirect_cycles`` (emission of a redirected packet, default ``tx_cycles``).
- ``cpu`` (kernel JIT): ``[cores]`` as for ``npu``; ``[cpu]`` ``model``, ``relative_speed``
  (per core, against the host core = 1), ``driver_overhead_ns`` (per packet), ``jit``, and
  optionally ``contention_ns`` and the tables ``[cpu.verdict_ns]`` / ``[cpu.bus_ns]`` (keys
  drop, tx, redirect, pass): the per-verdict cost model of ``hw.cost.host``.

A malformed or inconsistent profile raises one ``TargetError`` line naming the file, the key
and the problem: ``hw/targets/bad.toml: stages.count: expected a positive integer, got -3``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ebpf.kernel_enums import HELPER_IDS, MAP_TYPE_IDS
from hw.errors import TargetError
from hw.tomlfile import TomlTable, read_toml, show_value, suggest

BUILTIN_DIR = Path(__file__).resolve().parent / "targets"
DEFAULT_TARGET = "pipe"

KINDS = ("pipeline", "npu", "vliw", "cpu")
LOCATIONS = ("nic", "host")
XDP_VERDICTS = ("aborted", "drop", "pass", "tx", "redirect")
# The verdicts a host profile prices separately (XDP_ABORTED is priced as XDP_DROP).
HOST_VERDICTS = ("drop", "tx", "redirect", "pass")
ATOMIC_OPS = ("add", "and", "or", "xor", "xchg", "cmpxchg")
DIV_SUPPORT = ("none", "constant", "full")
JITS = ("kernel",)
# The eBPF stack limit, MAX_BPF_STACK in include/linux/filter.h.
EBPF_MAX_STACK_BYTES = 512
# What the PHV must hold at least: the 11 eBPF registers r0-r10 (64 bits each) and the packet
# metadata (length, ingress port, verdict, egress port, punt reason: 64 bits in our layout).
EBPF_REGISTER_BITS = 11 * 64
METADATA_BITS = 64
MIN_PHV_BITS = EBPF_REGISTER_BITS + METADATA_BITS
PHV_CONTAINER_WIDTHS = (8, 16, 32, 64)
# PCIe transfer rate per lane (GT/s) and line-code efficiency, per generation (PCIe base specs).
PCIE_GT_PER_LANE = {1: 2.5, 2: 5.0, 3: 8.0, 4: 16.0, 5: 32.0}
PCIE_ENCODING = {1: 8 / 10, 2: 8 / 10, 3: 128 / 130, 4: 128 / 130, 5: 128 / 130}
PCIE_LANES = (1, 2, 4, 8, 16, 32)
# 1 s / Mpps = ns per packet: 1000 / mpps. Tolerance for a figure given both ways.
_AGREEMENT = 0.01
_NAME_RE = re.compile(r"[a-z][a-z0-9_-]*\Z")


# --- the profile, as data ----------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class PcieLink:
    """The NIC's PCIe link to the host."""

    gen: int
    lanes: int
    bandwidth_gbps: float
    """Usable bandwidth per direction, Gb/s, after line encoding, before TLP overhead."""
    tlp_overhead_bytes: int
    """Bytes each TLP costs on top of its payload (header, sequence number, LCRC, framing)."""
    max_payload_bytes: int

    @property
    def raw_gbps(self) -> float:
        """Lanes x transfer rate x encoding efficiency, Gb/s: the ceiling for bandwidth_gbps."""
        return self.lanes * PCIE_GT_PER_LANE[self.gen] * PCIE_ENCODING[self.gen]


# Kept on the host when offloaded (kernel/bpf/offload.c bpf_map_offload_neutral), by helper.
OFFLOAD_NEUTRAL_MAPS = {"perf_event_array": "perf_event_output"}

@dataclass(frozen=True, kw_only=True)
class EbpfLimits:
    """What a NIC target accepts of an eBPF program, beyond what the kernel verifier checks."""

    helpers: tuple[str, ...]
    """Helper names without the bpf_ prefix, as ebpf.kernel_enums names them."""
    map_types: tuple[str, ...]
    verdicts: tuple[str, ...]
    atomics: tuple[str, ...]
    stack_bytes: int
    max_insns: int | None
    mul_max_bits: int
    """Widest multiplication operands, bits: 0 (none), 32 or 64."""
    div: str
    """``none``, ``constant`` (divisor known at load time) or ``full``."""
    variable_stack_access: bool
    map_value_stores: bool
    """Plain stores through a pointer returned by bpf_map_lookup_elem."""
    max_map_entry_bytes: int | None

    def has_helper(self, name: str) -> bool:
        return name.removeprefix("bpf_") in self.helpers

    def has_map_type(self, name: str) -> bool:
        """``name`` is in ``map_types``, or offload-neutral for a helper the target has."""
        return name in self.map_types or self.has_helper(OFFLOAD_NEUTRAL_MAPS.get(name, "-"))


@dataclass(frozen=True, kw_only=True)
class Target:
    """Fields every target has; one subclass per kind adds its sections."""

    name: str
    kind: str
    location: str
    description: str
    notes: str
    clock_mhz: float
    line_rate_gbps: float
    pcie: PcieLink | None
    ebpf: EbpfLimits | None
    """None: no restriction beyond the kernel verifier (a CPU running the kernel JIT)."""
    reference: tuple[tuple[str, float], ...]
    source: str
    """The profile file, as the error messages name it."""

    @property
    def cycle_ns(self) -> float:
        """One clock cycle, ns."""
        return 1000.0 / self.clock_mhz

    def get_reference(self, name: str) -> float | None:
        return dict(self.reference).get(name)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (tuples become lists, ``reference`` a mapping)."""
        doc = dataclasses.asdict(self)
        doc["reference"] = dict(self.reference)
        cpu = getattr(self, "cpu", None)
        if cpu is not None:  # per-verdict tables as mappings, as the TOML spells them
            doc["cpu"]["verdict_ns"] = dict(cpu.verdict_ns)
            doc["cpu"]["bus_ns"] = dict(cpu.bus_ns)
        return doc


@dataclass(frozen=True, kw_only=True)
class PhvGroup:
    bits: int
    count: int


@dataclass(frozen=True, kw_only=True)
class Phv:
    """The packet header vector: groups of equal-width containers, plus predicate bits."""

    containers: tuple[PhvGroup, ...]
    predicate_bits: int

    @property
    def num_containers(self) -> int:
        return sum(g.count for g in self.containers)

    @property
    def total_bits(self) -> int:
        return sum(g.bits * g.count for g in self.containers)

    @property
    def widest_bits(self) -> int:
        return max(g.bits for g in self.containers)


@dataclass(frozen=True, kw_only=True)
class PacketWindow:
    """The first ``window_bytes`` of each packet, the part the program can see cheaply."""

    window_bytes: int
    variable_offset_access: bool
    parse_depth_bytes: int | None = None
    """Pipelines: how deep the parser extracts fields (at most the window)."""
    bus_bits: int | None = None
    """Width of the packet bus (AXI-Stream), bits per cycle; None: payload bypasses the core."""


@dataclass(frozen=True, kw_only=True)
class MemoryBlocks:
    """One stage's SRAM or TCAM: ``blocks`` blocks of ``entries`` x ``width_bits``."""

    blocks: int
    entries: int
    width_bits: int

    @property
    def total_entries(self) -> int:
        return self.blocks * self.entries

    @property
    def total_bits(self) -> int:
        return self.blocks * self.entries * self.width_bits


@dataclass(frozen=True, kw_only=True)
class Externs:
    """Extern units per stage."""

    checksum: int
    hash: int
    random: int
    timestamp: int


@dataclass(frozen=True, kw_only=True)
class StageResources:
    """The stage count and what each stage has."""

    count: int
    latency_cycles: int
    tables: int
    gateways: int
    stateful_alus: int
    max_key_bits: int
    sram: MemoryBlocks
    tcam: MemoryBlocks
    externs: Externs


@dataclass(frozen=True, kw_only=True)
class Alu:
    width_bits: int
    """Widest operation one action slot performs; wider eBPF operations take several slots."""


@dataclass(frozen=True, kw_only=True)
class Recirculation:
    allowed: bool
    penalty_cycles: int | None
    """Cycles one more pass costs on top of a pass through the stages."""
    max_passes: int | None


@dataclass(frozen=True, kw_only=True)
class Datapath:
    """Pipeline details the configuration format names (docs/pipeline.md, section 2).

    Keys as ``hw.pipeline.TargetParams`` spells them; None: the profile leaves it to the
    reference pipeline's value (``pipe.toml``, where every key is given).
    """

    parser_cycles: int | None = None
    deparser_cycles: int | None = None
    window_headroom: int | None = None
    key_slices: int | None = None
    action_containers: int | None = None
    window_loads: int | None = None
    window_stores: int | None = None
    punt_containers: int | None = None


@dataclass(frozen=True, kw_only=True)
class PipelineTarget(Target):
    phv: Phv
    packet: PacketWindow
    stages: StageResources
    alu: Alu
    recirculation: Recirculation
    datapath: Datapath = Datapath()

    @property
    def alu_slots_per_stage(self) -> int:
        """One predicated ALU op per container per stage."""
        return self.phv.num_containers

    @property
    def pipeline_latency_cycles(self) -> int:
        """Latency of one pass: stages x stage latency."""
        return self.stages.count * self.stages.latency_cycles


@dataclass(frozen=True, kw_only=True)
class Cores:
    count: int
    usable: int
    """Cores that run the XDP program (the rest run firmware, control plane or the OS)."""
    threads_per_core: int

    @property
    def num_threads(self) -> int:
        return self.usable * self.threads_per_core


@dataclass(frozen=True, kw_only=True)
class NpuTiming:
    cycles_per_insn: float
    """Core cycles per eBPF instruction after the target's JIT."""
    map_access_cycles: int
    helper_cycles: int


@dataclass(frozen=True, kw_only=True)
class NpuTarget(Target):
    cores: Cores
    packet: PacketWindow
    timing: NpuTiming


@dataclass(frozen=True, kw_only=True)
class VliwCore:
    lanes: int
    """eBPF instructions per VLIW row."""
    helper_calls_per_row: int
    pipeline_depth: int


@dataclass(frozen=True, kw_only=True)
class VliwTiming:
    map_access_cycles: int
    helper_cycles: int
    start_latency_cycles: int
    """Cycles from the first bus frame of a packet to the first instruction."""
    tx_cycles: int = 0
    """Cycles to emit a transmitted (XDP_TX / XDP_REDIRECT) packet; overlaps the next one."""
    redirect_cycles: int | None = None
    """Cycles to emit a redirected packet when they differ from ``tx_cycles`` (None: the
    same)."""

    def emit_cycles(self, redirect: bool) -> int:
        """Cycles to emit a transmitted packet (``redirect``: an XDP_REDIRECT one)."""
        if redirect and self.redirect_cycles is not None:
            return self.redirect_cycles
        return self.tx_cycles


@dataclass(frozen=True, kw_only=True)
class VliwTarget(Target):
    vliw: VliwCore
    packet: PacketWindow
    timing: VliwTiming


@dataclass(frozen=True, kw_only=True)
class CpuCost:
    model: str
    relative_speed: float
    """Per-core speed running JITed eBPF, against the host core (= 1.0)."""
    driver_overhead_ns: float
    """Fixed per-packet cost of the driver and XDP hook, ns (an XDP_DROP program costs this)."""
    jit: str
    verdict_ns: tuple[tuple[str, float], ...] = ()
    """Per verdict (drop, tx, redirect, pass): the driver's ns per packet on one uncontended
    core with a trivial program; empty: ``driver_overhead_ns`` for every verdict."""
    bus_ns: tuple[tuple[str, float], ...] = ()
    """Per verdict: ns of the shared PCIe / memory path one packet occupies (1000 / bus_ns
    is that path's ceiling in Mpps); empty: no shared ceiling."""
    contention_ns: float = 0.0
    """Stall per packet on a core = contention_ns x u / (1 - u), u the shared path's
    utilisation (``hw.cost.host``)."""


@dataclass(frozen=True, kw_only=True)
class CpuTarget(Target):
    cores: Cores
    cpu: CpuCost


# --- reading and validating --------------------------------------------------------------

_COMMON_KEYS = ("name", "kind", "location", "description", "notes", "clock_mhz",
                "line_rate_gbps", "pcie", "ebpf", "reference")
_KIND_SECTIONS = {
    "pipeline": ("phv", "packet", "stages", "alu", "recirculation", "datapath"),
    "npu": ("cores", "packet", "timing"),
    "vliw": ("vliw", "packet", "timing"),
    "cpu": ("cores", "cpu"),
}


def _read_pcie(t: TomlTable) -> PcieLink:
    gen = t.integer("gen")
    if gen not in PCIE_GT_PER_LANE:
        t.fail("gen", f"expected a PCIe generation 1-{max(PCIE_GT_PER_LANE)}, got {gen}")
    lanes = t.integer("lanes")
    if lanes not in PCIE_LANES:
        t.fail("lanes", f"expected one of {', '.join(map(str, PCIE_LANES))}, got {lanes}")
    link = PcieLink(gen=gen, lanes=lanes, bandwidth_gbps=t.number("bandwidth_gbps"),
                    tlp_overhead_bytes=t.integer("tlp_overhead_bytes"),
                    max_payload_bytes=t.integer("max_payload_bytes"))
    if link.bandwidth_gbps > link.raw_gbps * (1 + _AGREEMENT):
        t.fail("bandwidth_gbps", f"{link.bandwidth_gbps:g} Gb/s exceeds what PCIe {gen}.0 "
               f"x{lanes} carries ({link.raw_gbps:.1f} Gb/s after encoding)")
    return link


def _read_ebpf(t: TomlTable) -> EbpfLimits:
    stack = t.integer("stack_bytes")
    if stack > EBPF_MAX_STACK_BYTES:
        t.fail("stack_bytes", f"{stack} exceeds the eBPF stack limit of "
               f"{EBPF_MAX_STACK_BYTES} bytes (MAX_BPF_STACK)")
    mul = t.integer("mul_max_bits", minimum=0)
    if mul not in (0, 32, 64):
        t.fail("mul_max_bits", f"expected 0, 32 or 64, got {mul}")
    return EbpfLimits(
        helpers=t.strings("helpers", (n for n in HELPER_IDS if n != "unspec"), "helper"),
        map_types=t.strings("map_types", (n for n in MAP_TYPE_IDS if n != "unspec"),
                            "map type"),
        verdicts=t.strings("verdicts", XDP_VERDICTS, "verdict"),
        atomics=t.strings("atomics", ATOMIC_OPS, "atomic operation"),
        stack_bytes=stack, max_insns=t.optional_integer("max_insns"), mul_max_bits=mul,
        div=t.string("div", DIV_SUPPORT),
        variable_stack_access=t.boolean("variable_stack_access"),
        map_value_stores=t.boolean("map_value_stores"),
        max_map_entry_bytes=t.optional_integer("max_map_entry_bytes"))


def _read_reference(t: TomlTable) -> tuple[tuple[str, float], ...]:
    return tuple((key, t.number(key)) for key in t.data)


def _check_bus(t: TomlTable, bus_bits: int, clock_mhz: float, line_rate_gbps: float) -> None:
    gbps = bus_bits * clock_mhz / 1000
    if gbps < line_rate_gbps:
        t.fail("bus_bits", f"{bus_bits} bits at {clock_mhz:g} MHz carry {gbps:g} Gb/s, "
               f"below line_rate_gbps {line_rate_gbps:g}")


def _read_pipeline(top: TomlTable, common: dict[str, Any]) -> PipelineTarget:
    p = top.table("phv", ("containers", "predicate_bits"))
    groups = []
    for g in p.tables("containers", ("bits", "count")):
        bits = g.integer("bits")
        if bits not in PHV_CONTAINER_WIDTHS:
            g.fail("bits", f"expected one of {', '.join(map(str, PHV_CONTAINER_WIDTHS))}, "
                   f"got {bits}")
        groups.append(PhvGroup(bits=bits, count=g.integer("count")))
    phv = Phv(containers=tuple(groups), predicate_bits=p.integer("predicate_bits"))
    if phv.total_bits < MIN_PHV_BITS:
        layout = " + ".join(f"{g.count} x {g.bits} b" for g in phv.containers)
        p.fail("containers", f"{layout} = {phv.total_bits} bits, fewer than the "
               f"{MIN_PHV_BITS} bits the eBPF registers (11 x 64 b) and the packet metadata "
               f"({METADATA_BITS} b) need")

    k = top.table("packet", ("window_bytes", "parse_depth_bytes", "bus_bits",
                             "variable_offset_access"))
    packet = PacketWindow(window_bytes=k.integer("window_bytes"),
                          parse_depth_bytes=k.integer("parse_depth_bytes"),
                          bus_bits=k.optional_integer("bus_bits"),
                          variable_offset_access=k.boolean("variable_offset_access"))
    assert packet.parse_depth_bytes is not None
    if packet.parse_depth_bytes > packet.window_bytes:
        k.fail("parse_depth_bytes", f"{packet.parse_depth_bytes} is larger than window_bytes "
               f"{packet.window_bytes}: the parser only sees the window")
    if packet.bus_bits is not None:
        if packet.bus_bits % 8:
            k.fail("bus_bits", f"expected a whole number of bytes, got {packet.bus_bits}")
        if packet.window_bytes % (packet.bus_bits // 8):
            k.fail("window_bytes", f"{packet.window_bytes} is not a whole number of "
                   f"{packet.bus_bits // 8}-byte bus beats (bus_bits {packet.bus_bits})")
        _check_bus(k, packet.bus_bits, common["clock_mhz"], common["line_rate_gbps"])

    s = top.table("stages", ("count", "latency_cycles", "tables", "gateways", "stateful_alus",
                             "max_key_bits", "sram", "tcam", "externs"))
    mem_keys = ("blocks", "entries", "width_bits")

    def blocks(name: str, minimum: int) -> MemoryBlocks:
        m = s.table(name, mem_keys)
        return MemoryBlocks(blocks=m.integer("blocks", minimum=minimum),
                            entries=m.integer("entries"), width_bits=m.integer("width_bits"))

    e = s.table("externs", ("checksum", "hash", "random", "timestamp"))
    stages = StageResources(
        count=s.integer("count"), latency_cycles=s.integer("latency_cycles"),
        tables=s.integer("tables"), gateways=s.integer("gateways", minimum=0),
        stateful_alus=s.integer("stateful_alus", minimum=0),
        max_key_bits=s.integer("max_key_bits"), sram=blocks("sram", 1), tcam=blocks("tcam", 0),
        externs=Externs(checksum=e.integer("checksum", minimum=0),
                        hash=e.integer("hash", minimum=0),
                        random=e.integer("random", minimum=0),
                        timestamp=e.integer("timestamp", minimum=0)))

    a = top.table("alu", ("width_bits",))
    alu = Alu(width_bits=a.integer("width_bits"))
    if alu.width_bits > phv.widest_bits:
        a.fail("width_bits", f"{alu.width_bits} is wider than the widest PHV container "
               f"({phv.widest_bits} b)")

    r = top.table("recirculation", ("allowed", "penalty_cycles", "max_passes"))
    allowed = r.boolean("allowed")
    if not allowed:
        for key in ("penalty_cycles", "max_passes"):
            if r.has(key):
                r.fail(key, "only meaningful when recirculation.allowed = true")
    recirc = Recirculation(allowed=allowed,
                           penalty_cycles=r.integer("penalty_cycles") if allowed else None,
                           max_passes=r.integer("max_passes") if allowed else None)
    datapath = Datapath()
    if top.has("datapath"):
        names = tuple(f.name for f in dataclasses.fields(Datapath))
        d = top.table("datapath", names)
        datapath = Datapath(**{n: d.integer(n, minimum=0) for n in names if d.has(n)})
    return PipelineTarget(**common, phv=phv, packet=packet, stages=stages, alu=alu,
                          recirculation=recirc, datapath=datapath)


def _read_cores(top: TomlTable) -> Cores:
    c = top.table("cores", ("count", "usable", "threads_per_core"))
    cores = Cores(count=c.integer("count"), usable=c.integer("usable"),
                  threads_per_core=c.integer("threads_per_core"))
    if cores.usable > cores.count:
        c.fail("usable", f"{cores.usable} is more than cores.count {cores.count}")
    return cores


def _read_npu(top: TomlTable, common: dict[str, Any]) -> NpuTarget:
    k = top.table("packet", ("window_bytes", "variable_offset_access"))
    packet = PacketWindow(window_bytes=k.integer("window_bytes"),
                          variable_offset_access=k.boolean("variable_offset_access"))
    m = top.table("timing", ("cycles_per_insn", "map_access_cycles", "helper_cycles"))
    timing = NpuTiming(cycles_per_insn=m.number("cycles_per_insn"),
                       map_access_cycles=m.integer("map_access_cycles"),
                       helper_cycles=m.integer("helper_cycles"))
    return NpuTarget(**common, cores=_read_cores(top), packet=packet, timing=timing)


def _read_vliw(top: TomlTable, common: dict[str, Any]) -> VliwTarget:
    v = top.table("vliw", ("lanes", "helper_calls_per_row", "pipeline_depth"))
    core = VliwCore(lanes=v.integer("lanes"),
                    helper_calls_per_row=v.integer("helper_calls_per_row"),
                    pipeline_depth=v.integer("pipeline_depth"))
    if core.helper_calls_per_row > core.lanes:
        v.fail("helper_calls_per_row", f"{core.helper_calls_per_row} is more than the "
               f"{core.lanes} lanes of a row")
    k = top.table("packet", ("window_bytes", "bus_bits", "variable_offset_access"))
    packet = PacketWindow(window_bytes=k.integer("window_bytes"), bus_bits=k.integer("bus_bits"),
                          variable_offset_access=k.boolean("variable_offset_access"))
    assert packet.bus_bits is not None
    _check_bus(k, packet.bus_bits, common["clock_mhz"], common["line_rate_gbps"])
    m = top.table("timing", ("map_access_cycles", "helper_cycles", "start_latency_cycles",
                             "tx_cycles", "redirect_cycles"))
    timing = VliwTiming(map_access_cycles=m.integer("map_access_cycles", minimum=0),
                        helper_cycles=m.integer("helper_cycles", minimum=0),
                        start_latency_cycles=m.integer("start_latency_cycles"),
                        tx_cycles=m.integer("tx_cycles", minimum=0) if m.has("tx_cycles")
                        else 0,
                        redirect_cycles=m.integer("redirect_cycles", minimum=0)
                        if m.has("redirect_cycles") else None)
    return VliwTarget(**common, vliw=core, packet=packet, timing=timing)


def _read_cpu(top: TomlTable, common: dict[str, Any]) -> CpuTarget:
    c = top.table("cpu", ("model", "relative_speed", "driver_overhead_ns", "jit", "verdict_ns",
                          "bus_ns", "contention_ns"))
    per_verdict = {}
    for key in ("verdict_ns", "bus_ns"):
        if c.has(key):
            t = c.table(key, HOST_VERDICTS)
            per_verdict[key] = tuple((v, t.number(v)) for v in HOST_VERDICTS)
    cost = CpuCost(model=c.string("model"), relative_speed=c.number("relative_speed"),
                   driver_overhead_ns=c.number("driver_overhead_ns"), jit=c.string("jit", JITS),
                   contention_ns=c.number("contention_ns") if c.has("contention_ns") else 0.0,
                   **per_verdict)
    if cost.bus_ns and not cost.contention_ns:
        c.fail("contention_ns", "missing: bus_ns needs the stall per packet it causes")
    if common["location"] == "host" and cost.relative_speed != 1.0:
        c.fail("relative_speed", f"the host core is the reference: expected 1.0, got "
               f"{cost.relative_speed:g}")
    drop_mpps = dict(common["reference"]).get("xdp_drop_mpps")
    if drop_mpps is not None:
        implied = 1000.0 / drop_mpps
        if abs(cost.driver_overhead_ns - implied) > _AGREEMENT * implied:
            c.fail("driver_overhead_ns", f"{cost.driver_overhead_ns:g} ns disagrees with "
                   f"reference.xdp_drop_mpps {drop_mpps:g} (1000 / {drop_mpps:g} = "
                   f"{implied:.2f} ns per packet)")
    return CpuTarget(**common, cores=_read_cores(top), cpu=cost)


_READERS = {"pipeline": _read_pipeline, "npu": _read_npu, "vliw": _read_vliw, "cpu": _read_cpu}


def _display(path: Path) -> str:
    """The path as messages show it: relative to the working directory when below it."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def parse_target(data: dict[str, Any], file: str, *, stem: str | None = None) -> Target:
    """Validate a parsed TOML document; ``file`` names it in errors, ``stem`` is its file name."""
    kind = data.get("kind")
    if "kind" not in data:
        raise TargetError(f"{file}: kind: missing (expected one of {', '.join(KINDS)})")
    if kind not in KINDS:
        hint = suggest(kind, KINDS) if isinstance(kind, str) else ""
        raise TargetError(f"{file}: kind: unknown kind {show_value(kind)} (expected one of "
                          f"{', '.join(KINDS)}){hint}")
    other = sorted({s for k, secs in _KIND_SECTIONS.items() if k != kind for s in secs}
                   - set(_KIND_SECTIONS[kind]))
    for key in data:
        if key in other:
            raise TargetError(f"{file}: {key}: a {kind} target has no [{key}] section "
                              f"(sections: {', '.join(sorted(_KIND_SECTIONS[kind]))})")
    top = TomlTable(data, file, "", _COMMON_KEYS + _KIND_SECTIONS[kind])

    name = top.string("name")
    if not _NAME_RE.match(name):
        top.fail("name", f"expected lower-case letters, digits, '-' or '_', got {name!r}")
    if stem is not None and name != stem:
        top.fail("name", f"{name!r} does not match the file name {stem!r}")
    location = top.string("location", LOCATIONS)
    if location == "host" and kind != "cpu":
        top.fail("location", f"only a cpu target can be the host, this is a {kind}")
    common: dict[str, Any] = dict(
        name=name, kind=kind, location=location, description=top.string("description"),
        notes=top.string("notes") if top.has("notes") else "",
        clock_mhz=top.number("clock_mhz"), line_rate_gbps=top.number("line_rate_gbps"),
        source=file)
    if location == "nic":
        common["pcie"] = _read_pcie(top.table("pcie", ("gen", "lanes", "bandwidth_gbps",
                                                       "tlp_overhead_bytes",
                                                       "max_payload_bytes")))
    elif top.has("pcie"):
        top.fail("pcie", "only NIC targets have a PCIe link (location = 'nic')")
    else:
        common["pcie"] = None
    ebpf_keys = ("helpers", "map_types", "verdicts", "atomics", "stack_bytes", "max_insns",
                 "mul_max_bits", "div", "variable_stack_access", "map_value_stores",
                 "max_map_entry_bytes")
    if kind == "cpu" and not top.has("ebpf"):
        common["ebpf"] = None
    else:
        common["ebpf"] = _read_ebpf(top.table("ebpf", ebpf_keys))
    common["reference"] = ()
    if top.has("reference"):
        names = data["reference"] if isinstance(data["reference"], dict) else {}
        common["reference"] = _read_reference(top.table("reference", tuple(names)))
    return _READERS[kind](top, common)


def load_target_file(path: str | os.PathLike[str]) -> Target:
    """Load and validate one profile file."""
    path = Path(path)
    file = _display(path)
    data = read_toml(path, TargetError, name=file)
    return parse_target(data, file, stem=path.stem)


# --- finding profiles --------------------------------------------------------------------

def iter_target_files(extra: Iterable[str | os.PathLike[str]] = ()) -> Iterator[Path]:
    """The built-in profiles, then each extra path: a file, or a directory of ``*.toml``."""
    yield from sorted(BUILTIN_DIR.glob("*.toml"))
    for entry in extra:
        path = Path(entry)
        if path.is_dir():
            yield from sorted(path.glob("*.toml"))
        else:
            yield path


def _check_unique(paths: Iterable[Path]) -> dict[str, Path]:
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen and seen[path.stem].resolve() != path.resolve():
            raise TargetError(f"{_display(path)}: name: target {path.stem!r} is already "
                              f"defined by {_display(seen[path.stem])}")
        seen.setdefault(path.stem, path)
    return seen


def _looks_like_path(name: str | os.PathLike[str]) -> bool:
    text = os.fspath(name)
    return not isinstance(name, str) or os.sep in text or "/" in text or text.endswith(".toml")


def load_target(name_or_path: str | os.PathLike[str] = DEFAULT_TARGET,
                extra: Iterable[str | os.PathLike[str]] = ()) -> Target:
    """A target by name (built-in or from ``extra`` files and directories) or by file path."""
    if _looks_like_path(name_or_path):
        return load_target_file(name_or_path)
    name = os.fspath(name_or_path)
    files = _check_unique(iter_target_files(extra))
    if name not in files:
        known = ", ".join(sorted(files))
        raise TargetError(f"unknown target {name!r} (known: {known})" + suggest(name, files))
    return load_target_file(files[name])


_KIND_ORDER = {("pipeline", "nic"): 0, ("npu", "nic"): 1, ("vliw", "nic"): 2,
               ("cpu", "nic"): 3, ("cpu", "host"): 4}


def list_targets(extra: Iterable[str | os.PathLike[str]] = ()) -> list[Target]:
    """Every profile: built-in and extra, NIC styles first, the host last."""
    files = _check_unique(iter_target_files(extra))
    targets = [load_target_file(path) for path in files.values()]
    return sorted(targets, key=lambda t: (_KIND_ORDER[(t.kind, t.location)],
                                          t.name != DEFAULT_TARGET, t.name))
