"""A run-to-completion NPU (Netronome NFP-like): feasibility and packets per second.

Feasibility (``check_feasibility``) checks a program against a target profile's ``[ebpf]``
limits, statically, and names every violation with the instruction and its C source line:
helpers, map types, map entry size, the verdicts the program can return, atomic
operations, stack depth, variable-offset stack access, plain stores into map values,
multiply width, division, program length. Verdicts come from the pointer analysis
(constant r0 at the entry function's exits), from the redirect helpers (XDP_REDIRECT) and
from any VM traces given. It is generic: any target with an ``[ebpf]`` section (NPU, VLIW,
pipeline) can be checked; a ``cpu`` target (the kernel JIT) accepts everything the verifier
does. The FETCH forms of add/or/and/xor are named ``fetch_add`` etc.; the profile schema
(``hw.targets.ATOMIC_OPS``) cannot list them, so every NIC target refuses them, as the nfp
driver does (drivers/net/ethernet/netronome/nfp/bpf/verifier.c, nfp_bpf_check_atomic:
anything but a plain BPF_ADD is "atomic op not implemented").

Cost model. Per packet, from the VM trace and the blocks it executed
(``hw.rtc.common.iter_executed_blocks``):

    compute C = insns x cycles_per_insn + helper_cycles x (non-map helper calls)
    memory  M = sum over memory levels of accesses x level_cycles
                (level "map": the map helper calls; "map_value", "packet", "stack", "ctx",
                "unknown": the loads, stores and atomics by the memory they touch,
                classified by ``hw.rtc.common.analyze_pointers``)

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

import os
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ebpf.code.isa import AluOp, AtomicOp, CallKind, Kind, PseudoSrc, Source, slot_offsets
from ebpf.kernel_enums import helper_name
from ebpf.loader.program import ElfObject, ProgramDef
from ebpf.vm.trace import Trace
from hw.rtc.common import (
    MAP_HELPERS,
    MAP_VALUE,
    UNKNOWN,
    Cfg,
    CostEstimate,
    PointerInfo,
    RtcError,
    analyze_pointers,
    describe_slot,
    iter_executed_blocks,
    source_line,
    wire_mpps,
)
from hw.targets import NpuTarget, Target

VERDICTS = {0: "aborted", 1: "drop", 2: "pass", 3: "tx", 4: "redirect"}
REDIRECT_HELPERS = frozenset({"redirect", "redirect_map"})
_ATOMIC_NAMES = {AtomicOp.ADD: "add", AtomicOp.OR: "or", AtomicOp.AND: "and",
                 AtomicOp.XOR: "xor", AtomicOp.XCHG: "xchg", AtomicOp.CMPXCHG: "cmpxchg"}


# --- feasibility -------------------------------------------------------------------------

@dataclass(frozen=True)
class Reason:
    """One thing the target refuses: the rule, a one-line message, where (slot, C line)."""

    rule: str
    message: str
    slot: int | None = None
    line: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "message": self.message, "slot": self.slot,
                "line": self.line}


@dataclass(frozen=True)
class Feasibility:
    """Whether ``target`` accepts ``program``; ``reasons`` is empty when it does."""

    target: str
    program: str
    reasons: tuple[Reason, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "program": self.program, "ok": self.ok,
                "reasons": [r.to_dict() for r in self.reasons]}


def _atomic_name(imm: int) -> str:
    """``add``, ``or``, ``and``, ``xor``, ``xchg``, ``cmpxchg``; ``fetch_add`` etc. for the
    FETCH forms of the first four."""
    if imm in (AtomicOp.XCHG, AtomicOp.CMPXCHG):
        return _ATOMIC_NAMES[AtomicOp(imm)]
    base = _ATOMIC_NAMES.get(AtomicOp(imm & ~AtomicOp.FETCH), f"atomic_0x{imm:x}")
    return f"fetch_{base}" if imm & AtomicOp.FETCH else base


def _call_depths(prog: ProgramDef, info: PointerInfo) -> int:
    """Stack bytes of the deepest chain of bpf-to-bpf calls from the entry function."""
    names = {f.start: f.name for f in prog.functions}
    calls: dict[str, set[str]] = {f.name: set() for f in prog.functions}
    for insn, slot in zip(prog.insns, slot_offsets(prog.insns), strict=True):
        if insn.kind is Kind.CALL and insn.src == CallKind.LOCAL:
            caller = prog.function_at(slot)
            callee = names.get(slot + 1 + insn.imm)
            if caller is not None and callee is not None:
                calls[caller.name].add(callee)

    def total(name: str, seen: frozenset[str]) -> int:
        own = info.stack_depth.get(name, 0)
        deeper = [total(c, seen | {c}) for c in calls.get(name, ()) if c not in seen]
        return own + max(deeper, default=0)

    entry = prog.function_at(0)
    name = entry.name if entry else prog.name
    return total(name, frozenset({name}))


def check_feasibility(obj: ElfObject, prog: ProgramDef, target: Target, *,
                      traces: Sequence[Trace] = (), info: PointerInfo | None = None,
                      ) -> Feasibility:
    """Check ``prog`` (from ``obj``) against ``target.ebpf`` (see the module docstring)."""
    limits = target.ebpf
    if limits is None:
        return Feasibility(target.name, prog.name, ())
    info = info or analyze_pointers(prog)
    reasons: list[Reason] = []
    tname = f"target '{target.name}'"

    def add(rule: str, message: str, slot: int | None = None) -> None:
        where = describe_slot(prog, slot) + ": " if slot is not None else ""
        line = source_line(prog, slot) if slot is not None else None
        reasons.append(Reason(rule, where + message, slot,
                              f"{os.path.basename(line.file)}:{line.line}" if line else None))

    offsets = slot_offsets(prog.insns)
    map_slot: dict[int, int] = {}
    helper_seen: set[int] = set()
    redirect_slot: int | None = None
    for insn, slot in zip(prog.insns, offsets, strict=True):
        kind, spec = insn.kind, insn.spec
        if kind is Kind.LDDW and insn.src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_IDX_VALUE,
                                               PseudoSrc.MAP_FD, PseudoSrc.MAP_VALUE):
            map_slot.setdefault(insn.imm, slot)
        elif kind is Kind.CALL and insn.src == CallKind.HELPER:
            name = helper_name(insn.imm)
            if name in REDIRECT_HELPERS and redirect_slot is None:
                redirect_slot = slot
            if not limits.has_helper(name) and insn.imm not in helper_seen:
                helper_seen.add(insn.imm)
                add("helper", f"helper bpf_{name} (id {insn.imm}) is not supported by "
                    f"{tname}", slot)
        elif kind is Kind.CALL and insn.src == CallKind.KFUNC:
            add("helper", f"kfunc call (BTF id {insn.imm}) is not supported by {tname}",
                slot)
        elif kind is Kind.ATOMIC:
            name = _atomic_name(insn.imm)
            if name not in limits.atomics:
                add("atomic", f"atomic {name} is not supported by {tname} "
                    f"(supported: {', '.join(limits.atomics) or 'none'})", slot)
        elif kind is Kind.ALU and spec.op is AluOp.MUL:
            bits = 64 if spec.is64 else 32
            if bits > limits.mul_max_bits:
                add("mul", f"{bits}-bit multiply; {tname} multiplies at most "
                    f"{limits.mul_max_bits} bits", slot)
        elif kind is Kind.ALU and spec.op in (AluOp.DIV, AluOp.MOD):
            what = "division" if spec.op is AluOp.DIV else "modulo"
            if limits.div == "none":
                add("div", f"{what}; {tname} has no divider", slot)
            elif limits.div == "constant" and spec.source is Source.X:
                add("div", f"{what} by a register; {tname} divides by constants only", slot)

    for index in prog.map_indices:
        if not 0 <= index < len(obj.maps):
            continue
        m = obj.maps[index]
        slot = map_slot.get(index)
        if not limits.has_map_type(m.type_name):
            add("map_type", f"map '{m.name}' of type {m.type_name} is not supported by "
                f"{tname} (supported: {', '.join(limits.map_types)})", slot)
        entry = m.key_size + m.value_size
        if m.type_name not in limits.map_types:
            continue  # offload-neutral (has_map_type): held on the host
        if limits.max_map_entry_bytes is not None and entry > limits.max_map_entry_bytes:
            add("map_entry", f"map '{m.name}': key {m.key_size} + value {m.value_size} = "
                f"{entry} bytes per entry exceeds the limit of {limits.max_map_entry_bytes} "
                f"on {tname}", slot)

    verdicts: dict[int, int | None] = {}  # verdict -> a slot that returns it
    for slot, values in info.exit_values.items():
        for v in values or ():
            verdicts.setdefault(v, slot)
    if redirect_slot is not None:
        verdicts.setdefault(4, redirect_slot)
    for trace in traces:
        if trace.verdict is not None:
            verdicts.setdefault(trace.verdict, None)
    for v, slot in sorted(verdicts.items()):
        name = VERDICTS.get(v, f"unknown action {v}")
        if name not in limits.verdicts:
            add("verdict", f"returns XDP_{name.upper()}, which {tname} does not support "
                f"(supported: {', '.join('XDP_' + x.upper() for x in limits.verdicts)})",
                slot)

    depth = _call_depths(prog, info)
    if depth > limits.stack_bytes:
        add("stack", f"uses {depth} bytes of stack, more than the {limits.stack_bytes} of "
            f"{tname}")
    if not limits.variable_stack_access:
        for slot in sorted(info.variable_stack):
            add("variable_stack", f"stack access at an offset not known at load time; "
                f"{tname} needs constant stack offsets", slot)
    if not limits.map_value_stores:
        for slot in sorted(info.map_value_stores):
            add("map_value_store", f"store through a map value pointer; {tname} updates "
                f"map values only through helpers or atomic add", slot)
    if limits.max_insns is not None:
        size = prog.num_slots
        cpi = target.timing.cycles_per_insn if isinstance(target, NpuTarget) else 1.0
        native = size * cpi
        if native > limits.max_insns:
            add("max_insns", f"{size} eBPF instructions (about {native:g} target "
                f"instructions) exceed the limit of {limits.max_insns} on {tname}")
    return Feasibility(target.name, prog.name, tuple(reasons))


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
    return {"map": m, MAP_VALUE: m, UNKNOWN: m, "packet": 0.0, "stack": 0.0, "ctx": 0.0}


def packet_cost(target: NpuTarget, prog: ProgramDef, trace: Trace, *,
                programs: Mapping[str, ProgramDef] | None = None,
                level_cycles: Mapping[str, float] | None = None,
                cache: dict[str, tuple[Cfg, PointerInfo]] | None = None) -> NpuPacketCost:
    """The cost of the packet of ``trace`` (see the module docstring); ``programs`` resolves
    tail-call targets by name; ``cache`` keeps block tables and pointer analyses by program
    name across calls."""
    cache = {} if cache is None else cache
    levels = default_level_cycles(target)
    if level_cycles:
        levels.update(level_cycles)
    accesses: Counter[str] = Counter()
    cfgs: dict[str, Cfg] = {}
    for p, block in iter_executed_blocks(prog, trace, programs, cfgs):
        if p.name not in cache:
            cfg = cfgs[p.name]
            cache[p.name] = (cfg, analyze_pointers(p, cfg))
        regions = cache[p.name][1].regions
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
                 frame_bytes: int = 64) -> CostEstimate:
    """The NPU's packet rate for ``prog`` over the packets of ``traces``, with feasibility."""
    if not isinstance(target, NpuTarget):
        raise RtcError(f"target '{target.name}' is a {target.kind} target, not npu")
    if not traces:
        raise RtcError("estimate_npu needs at least one trace")
    from hw.cost.nic import nic_service  # the one per-packet service the simulator uses

    cache: dict[str, tuple[Cfg, PointerInfo]] = {}
    svc = nic_service(target, obj, prog, traces, level_cycles=level_cycles, cache=cache)
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
    info = cache[prog.name][1] if prog.name in cache else analyze_pointers(prog)
    feas = check_feasibility(obj, prog, target, traces=traces, info=info)
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
