"""Simulation scenarios: what to run (TOML or arguments), and running it end to end.

A scenario file (paths in it are relative to the file)::

    program = "../build/xdp/firewall.o"   # the XDP object
    program_name = "xdp_firewall"         # optional: which program in it (default: first)
    maps = "../examples/xdp/scenarios/firewall.json"   # optional map state (docs/state.md)
    target = "pipe"                       # target name or profile path
    host = "host"                         # host profile behind a NIC target
    traffic = "64B@100G,flows=1000,zipf=1.1"
    packets = 1000000
    seed = 1
    engine = "fast"                       # fast | simpy
    executor = "auto"                     # auto | vm | kernel (ebpf.executor)
    behaviour = "exact"                   # exact | sampled (an approximation)
    host_cost = "auto"                    # auto | kernel | model
    host_cores = 4                        # default: the host profile's usable cores

    [queues]                              # packets, waiting + in service; 0 = unbounded
    link = 0
    nic = 1024
    pcie = 1024
    host_ring = 1024

    [nic]                                 # optional: explicit NIC cost instead of the
    ii_cycles = 1                         # mapping (an empty table: the simulator's
    passes = 1                            # defaults, II 1, one pass, all stages, punt
    stages = 12                           # on missing helpers)
    punt = "helpers"                      # none | all | helpers

Running one (``prepare`` then an engine then ``sim.metrics.summarize``):

1. traffic from the spec (``sim.spec``), checked against the target's line rate;
2. the NIC cost: on a pipeline target without a ``[nic]`` table, the program's mapping
   from the caller's ``nic_cost_for`` hook (``sim.mapping.NicCostFor``; the command line
   passes ``offload.sim_cost.mapped_nic_cost``: stages, passes, latency, the
   configuration), or without a hook the simulator's defaults, whose source says that no
   mapping was supplied; otherwise the ``[nic]`` values or the simulator's defaults;
3. the behaviour (``run_behaviour``): every packet runs on an executor (``ebpf.executor``:
   the compiled code, or the VM for a program it does not compile, where the cost models
   read per-packet paths, else compiled / kernel / VM) in arrival order, maps persisting,
   the clock reading its arrival time, and gives a verdict (and on the VM and the compiled
   code a trace); with a mapping, the configuration runs on the pipeline model beside it
   and decides whether the packet is punted (``sim.mapping.PipelinePunts``). Packets with
   the same verdict and path cost (the kernel: verdict and length) form a class. The
   compiled executor runs the stream in batches that record each packet's instruction
   count and path (``sim.behaviour``: the same classes as one packet at a time);
   ``behaviour = "sampled"`` runs only each distinct packet's first occurrence (an
   approximation, said so in the assumptions);
4. the host's cost of the program per class: BPF_PROG_TEST_RUN on this machine of the
   class's first packet (``host_cost = "kernel"``, or ``"auto"`` when bpf(2) is permitted
   and the object loads: ``hw.cost.host.ProgramTimer``, fresh copies minus an empty
   program) or the per-instruction model of ``hw.rtc.cpu`` (``"model"``, or the fallback);
5. per class an ``Outcome`` (``sim.model``): NIC service from ``hw.cost`` (NPU and VLIW:
   ``hw.cost.nic`` on the class's trace; the DPU's cores: ``hw.cost.host``; pipelines: the
   ``NicCost``), punt decision, host service from ``hw.cost.host.HostCost`` (the verdict's
   driver cost + the program beyond an empty one when it runs on the host, the stack's
   PASS price otherwise, + the shared-path stall at the operating point on the host);
6. the ``Workload`` and the engine.

Mappings and kernel timings repeat across runs: a ``RunCache`` passed to ``prepare`` /
``run`` keeps them (``make sim`` shares one over the whole set). Kernel timings are kept
per (object path, mtime and size; program; map state file, mtime and size; packet bytes),
so a class's packet is timed once however often it appears; without a cache, a fresh one
per run still times each distinct packet once.

Every assumption this rests on is listed in the result's ``assumptions``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hw.cost.host import XDP_PASS, HostCost
from hw.tomlfile import read_toml
from sim.errors import SimError
from sim.mapping import (
    MappingCache,
    NicCostFor,
    PipelinePunts,
    cached_cost,
    no_mapping_cost,
    object_key,
)
from sim.model import (
    HostModel,
    LinkModel,
    NicCost,
    Outcome,
    PacketClasses,
    TraceCost,
    Workload,
    nic_model,
    pcie_model,
    pipeline_service,
)
from sim.spec import parse_traffic
from sim.traffic import Traffic, generate

ENGINES = ("fast", "simpy")
BEHAVIOURS = ("exact", "sampled")
EXECUTORS = ("auto", "kernel", "compiled", "vm")  # ebpf.executor.EXECUTORS (sim does not import it early)
HOST_COSTS = ("auto", "kernel", "model")
KERNEL_RUNS = 1000
DEFAULT_TRAFFIC = "64B@10G"
DEFAULT_PACKETS = 100_000
# Steady state (modelling choices): without a packet count a synthetic run covers at least
# DEFAULT_DURATION_NS of traffic; the first WARMUP_FRACTION of it (queues filling) is left
# out of ``metrics.steady``; a run whose steady rate has not converged is run again, at most
# MAX_EXTENSIONS times, each time on traffic at least twice as long as the last attempt's.
DEFAULT_DURATION_NS = 1_250_000.0
WARMUP_FRACTION = 0.2
MAX_EXTENSIONS = 3
# Ranges checked where a scenario's values enter (file or command line). Modelling choice:
# 10^7 packets per run (the fast engine keeps a few numpy columns per packet, ~1 GB);
# seeds are u32 so that a printed seed can be typed back; host cores as many as a host has.
MAX_PACKETS = 10_000_000
MAX_SEED = 0xFFFFFFFF
MAX_HOST_CORES = 4096
MAX_QUEUE = 1 << 24
MAX_NIC_CYCLES = 1 << 20  # ii_cycles, passes, stages of a [nic] table
# Modelling choices: typical default ring sizes (ethtool -g on mlx5 shows 1024 RX entries).
DEFAULT_QUEUES = {"link": None, "nic": 1024, "pcie": 1024, "host_ring": 1024}


class ScenarioError(SimError):
    """A scenario file or argument set that cannot be run; names the file and key."""


@dataclass
class Scenario:
    """Everything one simulation run needs."""

    program: str | None = None
    program_name: str | None = None
    maps: str | None = None
    target: str = "pipe"
    target_files: tuple[str, ...] = ()
    host: str = "host"
    traffic: str = DEFAULT_TRAFFIC
    packets: int | None = None
    seed: int = 0
    engine: str = "fast"
    executor: str = "auto"
    behaviour: str = "exact"
    """exact: every packet runs the program; sampled: each distinct packet once (an
    approximation for stateful programs, marked as such in every output)."""
    host_cost: str = "auto"
    host_cores: int | None = None
    queues: dict[str, int | None] = field(default_factory=lambda: dict(DEFAULT_QUEUES))
    nic_cost: NicCost | None = None
    """None: the mapping's on a pipeline target, the simulator's defaults on other NICs."""
    base_dir: str = "."
    source: str = "<arguments>"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Scenario:
        file = os.fspath(path)
        doc = read_toml(file, ScenarioError)
        return cls.from_dict(doc, source=file, base_dir=str(Path(file).resolve().parent))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, source: str = "<scenario>",
                  base_dir: str = ".") -> Scenario:
        r = _Reader(doc, source)
        known = ("program", "program_name", "maps", "target", "target_files", "host",
                 "traffic", "packets", "seed", "engine", "executor", "behaviour", "host_cost",
                 "host_cores",
                 "queues", "nic")
        r.only(known)
        sc = cls(base_dir=base_dir, source=source)
        for key in ("program", "program_name", "maps", "target", "host", "traffic"):
            if key in doc:
                setattr(sc, key, r.string(key))
        if "target_files" in doc:
            sc.target_files = tuple(r.strings("target_files"))
        limits = {"packets": (1, MAX_PACKETS), "seed": (0, MAX_SEED),
                  "host_cores": (1, MAX_HOST_CORES)}
        for key, (lo, hi) in limits.items():
            if key in doc:
                setattr(sc, key, r.integer(key, minimum=lo, maximum=hi))
        if "engine" in doc:
            sc.engine = r.choice("engine", ENGINES)
        if "host_cost" in doc:
            sc.host_cost = r.choice("host_cost", HOST_COSTS)
        if "executor" in doc:
            sc.executor = r.choice("executor", EXECUTORS)
        if "behaviour" in doc:
            sc.behaviour = r.choice("behaviour", BEHAVIOURS)
        if "queues" in doc:
            q = r.table("queues")
            q.only(tuple(DEFAULT_QUEUES))
            for key in DEFAULT_QUEUES:
                if key in q.doc:
                    value = q.integer(key, minimum=0, maximum=MAX_QUEUE)
                    sc.queues[key] = value or None
        if "nic" in doc:
            n = r.table("nic")
            n.only(("ii_cycles", "passes", "stages", "punt"))
            kw: dict[str, Any] = {}
            for key in ("ii_cycles", "passes", "stages"):
                if key in n.doc:
                    kw[key] = n.integer(key, minimum=1, maximum=MAX_NIC_CYCLES)
            if "punt" in n.doc:
                kw["punt"] = n.choice("punt", ("none", "all", "helpers"))
            sc.nic_cost = NicCost(**kw, source=f"{source} [nic]")
        for key in ("program", "maps"):
            value = getattr(sc, key)
            if value is not None and not os.path.isabs(value):
                setattr(sc, key, os.path.join(base_dir, value))
        sc.target_files = tuple(p if os.path.isabs(p) else os.path.join(base_dir, p)
                                for p in sc.target_files)
        return sc

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with the non-None ``changes`` applied (command-line flags over a file)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class _Reader:
    def __init__(self, doc: Any, where: str, prefix: str = ""):
        if not isinstance(doc, dict):
            raise ScenarioError(f"{where}: {prefix.rstrip('.') or 'scenario'}: expected a table")
        self.doc, self.where, self.prefix = doc, where, prefix

    def fail(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(f"{self.where}: {self.prefix}{key}: {problem}")

    def only(self, keys: tuple[str, ...]) -> None:
        for key in self.doc:
            if key not in keys:
                raise self.fail(key, f"unknown key (expected one of {', '.join(keys)})")

    def string(self, key: str) -> str:
        value = self.doc[key]
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.doc[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {value!r}")
        return value

    def integer(self, key: str, minimum: int, maximum: int) -> int:
        value = self.doc[key]
        if isinstance(value, bool) or not isinstance(value, int) or \
                not minimum <= value <= maximum:
            raise self.fail(key, f"expected an integer in {minimum}..{maximum}, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.doc[key]
        if value not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def table(self, key: str) -> _Reader:
        return _Reader(self.doc[key], self.where, f"{self.prefix}{key}.")


# --- running ------------------------------------------------------------------------------

@dataclass
class RunCache:
    """What repeats across runs in one process: mappings and kernel timings (ns per run)."""

    mappings: MappingCache = field(default_factory=MappingCache)
    host_ns: dict[tuple[Any, ...], float] = field(default_factory=dict)
    kernel_errors: dict[tuple[Any, ...], Exception] = field(default_factory=dict)
    """Programs the kernel refused to load, by the host_ns key without the packet."""
    behaviours: dict[tuple[Any, ...], Behaviour] = field(default_factory=dict)
    """Behaviours by ``sim.reuse.behaviour_key``, split by path (see ``sim.reuse``)."""
    timed: int = 0
    """Packets actually timed with BPF_PROG_TEST_RUN (misses)."""


Step = Callable[[str], None]


@dataclass
class Prepared:
    """A scenario made concrete: the workload and what it rests on."""

    scenario: Scenario
    target: Any
    host_target: Any
    traffic: Traffic
    workload: Workload
    outcomes: list[Outcome]
    traces: list[TraceCost]
    program: str
    assumptions: list[str]
    host_cost_source: str
    behaviour: Behaviour | None = None
    nic_cost: NicCost | None = None
    """The NIC cost the run used (None on the host target); its ``source`` says where from."""


@dataclass
class Behaviour:
    """Every traffic packet run through the program, grouped into classes for the costs.

    ``klass[i]`` is packet i's class; per class: the verdict, the cost the models read
    (``TraceCost``: the path of the class's packets on the VM; from the kernel executor,
    which gives no path, only the verdict), one packet of the class (its first) and a label.
    On the VM ``traces`` holds each class's first whole trace (``hw.cost`` reads the blocks
    it executed; from the compiled executor's batches a trace rebuilt from its path,
    ``sim.behaviour``) and ``obj`` the object it ran.
    """

    program: str
    executor: str
    clock: bool
    klass: np.ndarray
    verdicts: list[int]
    costs: list[TraceCost]
    packets: list[bytes]
    labels: list[str]
    counts: list[int]
    stateless: bool = False
    """The program keeps no state (no maps, no helpers): each distinct packet ran once."""
    traces: list[Any] = field(default_factory=list)
    obj: Any = None


def executor_for(sc: Scenario, on_host: bool) -> str:
    """The executor the run uses. The cost models read per-packet paths (NIC targets and
    the host cost model), which the VM and the compiled code give: there ``auto`` is
    compiled where the program compiles, else vm; otherwise ``auto`` lets
    ``ebpf.executor.open_executor`` choose (compiled, else kernel, else vm)."""
    needs_paths = not on_host or sc.host_cost == "model"
    if sc.executor == "auto":
        if not needs_paths:
            return "auto"
        from ebpf.compiled import unsupported_reason
        from ebpf.loader.elf import load

        assert sc.program is not None
        return "vm" if unsupported_reason(load(sc.program).programs) else "compiled"
    if sc.executor == "kernel" and needs_paths:
        why = "the NIC cost model" if not on_host else "host_cost = \"model\""
        raise ScenarioError(f"{sc.source}: executor: the kernel executor gives no "
                            f"per-packet path, which {why} reads: use the compiled or vm "
                            f"executor")
    return sc.executor


def run_behaviour(sc: Scenario, traffic: Traffic, kind: str, cost: NicCost | None = None,
                  step: Step | None = None, paths: bool = False, *,
                  batched: bool = True) -> Behaviour:
    """Run every packet of ``traffic`` on the ``kind`` executor (``ebpf.executor``): in
    arrival order, maps persisting, the clock reading the packet's arrival time. With a
    mapped ``cost`` (punt "model") the pipeline model decides each packet's punt.
    ``sc.behaviour == "sampled"``: only the first packet of each distinct template runs, and
    the later ones take its class (an approximation for a stateful program). A program
    without maps and helper calls keeps no state and reads no clock: its result is a
    function of the packet's bytes, so each distinct packet runs once, exactly.
    ``paths``: packets share a class only if they executed the same blocks (the cost models
    of run-to-completion NICs price the blocks, ``hw.cost.nic``). The compiled executor
    runs the stream in batches (``sim.behaviour``, the same result); ``batched=False``
    runs it one packet at a time with a trace, as the other executors do."""
    from ebpf.differential import Scenario as MapScenario
    from ebpf.executor import open_executor
    from ebpf.loader.elf import load
    from sim.behaviour import batches, behaviour_batched, behaviour_one_by_one

    assert sc.program is not None
    obj = load(sc.program)
    state = MapScenario.load(sc.maps) if sc.maps else MapScenario()
    with open_executor(kind, sc.program, obj, sc.program_name, state, seed=sc.seed) as ex:
        pipe = None
        if cost is not None and cost.punt == "model":
            assert cost.config is not None
            pipe = PipelinePunts(cost.config, ex.maps)
        if step:
            step(f"{ex.name} executor on all {traffic.num_packets} packets")
        stateless = not obj.maps and not any(p.helper_ids() for p in obj.programs)
        sampled = sc.behaviour == "sampled" or stateless
        if batched and not sampled and batches(ex):
            return behaviour_batched(sc, traffic, ex, pipe, paths, stateless)
        return behaviour_one_by_one(sc, traffic, ex, pipe, paths, sampled, stateless)


def _behaviour(sc: Scenario, traffic: Traffic, kind: str, cost: NicCost | None,
               cache: RunCache, step: Step | None, paths: bool,
               resume: Any = None) -> Behaviour:
    """``run_behaviour`` (going on from the last attempt with ``resume``, a
    ``sim.resume.Resumable``), or the same behaviour from an earlier run of ``cache``
    (``sim.reuse``: not beside a mapped pipeline, whose model shares the executor's maps)."""
    from sim.reuse import behaviour_key, without_paths

    run_behaviour_ = resume.behaviour if resume is not None else run_behaviour
    if cost is not None and cost.punt == "model":
        return run_behaviour_(sc, traffic, kind, cost, step, paths)
    assert sc.program is not None
    state = object_key(sc.maps) if sc.maps else None
    key = behaviour_key(sc, traffic, kind, object_key(sc.program), state)
    beh = cache.behaviours.get(key)
    if beh is None:
        beh = cache.behaviours[key] = run_behaviour_(sc, traffic, kind, cost, step, True)
    elif step:
        step(f"{beh.executor} executor: the behaviour of an earlier run on this traffic")
    return beh if paths else without_paths(beh)


def _kernel_costs(sc: Scenario, program: str, reps: list[bytes],
                  cache: RunCache) -> list[float]:
    """Per representative: the program's ns beyond an empty program on this machine
    (``hw.cost.host.ProgramTimer``: KERNEL_RUNS single BPF_PROG_TEST_RUNs each, every one on
    a fresh copy of the packet, interleaved with the empty program), each distinct packet
    timed once per ``cache``, in order of first appearance."""
    from ebpf.differential import Scenario as MapScenario
    from ebpf.differential import kernel_side
    from ebpf.errors import EbpfError
    from ebpf.loader.elf import load
    from hw.cost.host import ProgramTimer

    assert sc.program is not None
    base = (*object_key(sc.program), program, object_key(sc.maps) if sc.maps else None)
    todo = list(dict.fromkeys(p for p in reps if (base, p) not in cache.host_ns))
    if todo:
        if base in cache.kernel_errors:
            raise cache.kernel_errors[base]
        state = MapScenario.load(sc.maps) if sc.maps else MapScenario()
        obj = load(sc.program)
        timed = 0
        try:
            with kernel_side(sc.program, obj, state, raw=False) as kobj, \
                    ProgramTimer(KERNEL_RUNS) as timer:
                for p in todo:
                    cache.host_ns[(base, p)] = timer.program_ns(kobj, program, p)
                    timed += 1
        except EbpfError as exc:
            if not timed:  # the program does not load here: do not try again
                cache.kernel_errors[base] = exc
            raise
        finally:
            cache.timed += timed
    return [cache.host_ns[(base, p)] for p in reps]


def host_program_costs(sc: Scenario, program: str, reps: list[bytes],
                       costs: list[TraceCost], cache: RunCache | None = None
                       ) -> tuple[list[float], str, bool]:
    """The program's ns per packet beyond an empty program, per representative, where from,
    and whether measured on this machine (True: to be carried to the profile's core) or
    modelled on the profile's core (False)."""
    from hw.rtc.cpu import DEFAULT_MODEL, DROP_INSNS

    m = DEFAULT_MODEL
    model_note = (f"per-instruction model of hw.rtc.cpu ({m.b_ns_per_insn:g} ns per "
                  f"instruction beyond the {DROP_INSNS}-instruction empty program; {m.source})")

    def host_program_ns_model(c: TraceCost) -> float:
        return max(0.0, m.predict(c.insns) - m.predict(DROP_INSNS))

    if sc.host_cost != "model":
        from ebpf.errors import EbpfError

        try:
            ns = _kernel_costs(sc, program, reps, cache if cache is not None else RunCache())
            return ns, (f"measured on this machine with BPF_PROG_TEST_RUN ({KERNEL_RUNS} "
                        f"single runs of one packet per class, each on a fresh copy, minus "
                        f"an empty program's runs interleaved; kernel JIT)"), True
        except EbpfError as exc:
            if sc.host_cost == "kernel":
                raise
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return ([host_program_ns_model(c) for c in costs],
                    f"{model_note}; the kernel could not time it: {reason}", False)
    return [host_program_ns_model(c) for c in costs], model_note, False


def _nic_cost(sc: Scenario, target: Any, cache: RunCache, step: Step | None,
              nic_cost_for: NicCostFor | None = None) -> NicCost:
    """The scenario's NIC cost: explicit, the mapping's (pipelines, from ``nic_cost_for``),
    or the defaults (saying so on a pipeline without a hook)."""
    if sc.nic_cost is not None:
        return sc.nic_cost
    if target.kind != "pipeline":
        refused = _refusal(sc, target)
        if refused:  # what `offload check` refuses does not run on the NIC here either
            return NicCost(punt="all", source=f"the target refuses the program "
                                              f"(hw.feasibility.check_target: {refused}): "
                                              f"every packet runs on the host")
        return NicCost(source="simulator rule for run-to-completion NICs: punt a packet "
                              "whose path calls a helper the target lacks")
    if nic_cost_for is None:
        return no_mapping_cost(target)
    assert sc.program is not None
    if step:
        step(f"mapping onto {target.name}")
    return cached_cost(nic_cost_for, sc.program, sc.program_name, target, cache.mappings,
                       maps=sc.maps)


def _refusal(sc: Scenario, target: Any) -> str:
    """The first reason the target's ``[ebpf]`` limits refuse the program, or ""."""
    from ebpf.loader.elf import load
    from hw.feasibility import check_target

    assert sc.program is not None
    obj = load(sc.program)
    feas = check_target(obj, obj.get_program(sc.program_name), target)
    return "" if feas.ok else feas.reasons[0].message


def _nic_services(target: Any, beh: Behaviour, prog_ns: list[float], measured: bool,
                  cost: NicCost) -> tuple[list[tuple[float, float]], int, str]:
    """Per class (NIC service ns, NIC delay ns), the NIC's servers and a note: from
    ``hw.cost`` (the same model the report's estimates use), or the mapping's pipeline."""
    if target.kind == "pipeline":
        return [pipeline_service(target, cost)] * len(prog_ns), 1, ""
    if target.kind == "cpu":  # the DPU's cores: the host model on its profile
        # modelled ns are on the host core: slower by relative_speed
        dpu = HostCost.from_target(target, carry=None if measured else
                                   1.0 / target.cpu.relative_speed)
        servers = target.cores.usable * target.cores.threads_per_core
        return ([(dpu.core_ns(v, ns), 0.0) for v, ns in zip(beh.verdicts, prog_ns,
                                                              strict=True)],
                servers, f"cpu NIC: {servers} cores, hw.cost.host ({dpu.carry_note})")
    from hw.cost.nic import nic_service

    svc = nic_service(target, beh.obj, beh.obj.get_program(beh.program), beh.traces,
                      [float(c) for c in beh.counts] if sum(beh.counts) else None)
    return [(ns, 0.0) for ns in svc.service_ns], svc.servers, svc.note


def _percent(fraction: float) -> str:
    pct = 100 * fraction
    return f"{pct:.0f}" if pct in (0, 100) else f"{pct:.3g}"


def _pipeline_notes(target: Any, cost: NicCost) -> list[str]:
    latency = cost.pipeline_latency_cycles(target)
    if cost.latency_cycles is not None:
        how = (f"parser + {cost.passes} pass(es) x {target.stages.count} physical stages x "
               f"{target.stages.latency_cycles} cycles + recirculations + deparser, "
               f"hw.pipeline.timing")
    else:
        stages = cost.stages if cost.stages is not None else target.stages.count
        how = (f"{cost.passes} pass(es) x {stages} stages x {target.stages.latency_cycles} "
               f"cycles + recirculation penalties")
    return [f"pipeline latency: {latency} cycles = {latency * target.cycle_ns:g} ns ({how})"]


def _punt_note(cost: NicCost) -> str:
    if callable(cost.punt):
        text = "punt decided by a caller's rule on the packet's trace"
    else:
        text = {"none": "no packet is punted", "all": "every packet is punted",
                "helpers": "a packet is punted when its path calls a helper the target lacks",
                "model": "a packet is punted iff the mapped configuration on the pipeline "
                         "model (hw.pipeline, maps loaded from the scenario) punts it: a "
                         "mapper cut, a window fault or a frame longer than the window"
                }[cost.punt]
    return f"punt: {text}; punted packets run the whole program again on the host"


def _traffic(sc: Scenario, spec: Any, line_rate_gbps: float,
             min_duration_ns: float) -> Traffic:
    """The scenario's traffic: ``sc.packets`` packets, a capture's own, or (by default)
    DEFAULT_PACKETS stretched to cover at least ``min_duration_ns``."""
    if sc.packets is not None or spec.pcap:
        return generate(spec, sc.packets, sc.seed, line_rate_gbps=line_rate_gbps,
                        base_dir=sc.base_dir)
    traffic = generate(spec, DEFAULT_PACKETS, sc.seed, line_rate_gbps=line_rate_gbps,
                       base_dir=sc.base_dir)
    # Stretched by the span's ratio; random gaps (poisson) can fall a little short of the
    # ratio, so stretch again until the span is covered (the series is prefix-stable).
    while 0 < traffic.span_ns < min_duration_ns:
        n = traffic.num_packets
        n = max(n + 1, math.ceil((n - 1) * min_duration_ns / traffic.span_ns) + 1)
        traffic = generate(spec, n, sc.seed, line_rate_gbps=line_rate_gbps,
                           base_dir=sc.base_dir)
    return traffic


def prepare(sc: Scenario, *, cache: RunCache | None = None, step: Step | None = None,
            nic_cost_for: NicCostFor | None = None,
            min_duration_ns: float = DEFAULT_DURATION_NS, resume: Any = None) -> Prepared:
    """Traffic, the trace-driven outcomes and the workload for ``sc``. ``cache`` keeps
    mappings and kernel timings for later runs; ``step(text)`` hears of long steps;
    ``nic_cost_for`` maps the program onto a pipeline target (``sim.mapping.NicCostFor``;
    None: the simulator's defaults, saying that no mapping was supplied); ``resume``
    (``sim.resume.Resumable``) goes on from a shorter attempt's run."""
    from hw.targets import load_target

    if sc.program is None:
        raise ScenarioError(f"{sc.source}: program: no XDP object given")
    if sc.engine not in ENGINES:
        raise ScenarioError(f"{sc.source}: engine: expected one of {', '.join(ENGINES)}, "
                            f"got {sc.engine!r}")
    cache = cache if cache is not None else RunCache()
    target = load_target(sc.target, extra=sc.target_files)
    on_host = target.location == "host"
    host_target = target if on_host else load_target(sc.host, extra=sc.target_files)
    if host_target.location != "host":
        raise ScenarioError(f"{sc.source}: host: {host_target.name!r} is not a host target "
                            f"(location = {host_target.location!r})")
    spec = parse_traffic(sc.traffic, line_rate_gbps=target.line_rate_gbps,
                         where=f"target '{target.name}'")
    traffic = _traffic(sc, spec, target.line_rate_gbps, min_duration_ns)

    kind = executor_for(sc, on_host)  # before the mapping: a refused executor fails fast
    cost = None if on_host else _nic_cost(sc, target, cache, step, nic_cost_for)
    beh = _behaviour(sc, traffic, kind, cost, cache, step, target.kind in ("npu", "vliw"),
                     resume)
    program, verdicts, costs = beh.program, beh.verdicts, beh.costs
    if step and sc.host_cost != "model":
        step("host cost (BPF_PROG_TEST_RUN)")
    prog_ns, cost_note, measured = host_program_costs(sc, program, beh.packets, costs, cache)
    hcost = HostCost.from_target(host_target, carry=None if measured else 1.0)
    if sc.behaviour == "sampled":
        how = (f"APPROXIMATION (behaviour = sampled): only the first packet of each of the "
               f"{len(traffic.reps)} distinct packets runs the program on the {beh.executor} "
               f"executor; later packets repeat its verdict, whatever the program's state")
    elif beh.stateless:
        how = (f"the program has no maps and calls no helper, so its result depends on the "
               f"packet's bytes only: each of the {len(traffic.reps)} distinct packets ran "
               f"once on the {beh.executor} executor and every packet takes its result "
               f"(exact)")
    else:
        how = (f"every packet runs the program on the {beh.executor} executor (in arrival "
               f"order, maps persisting"
               + (", the clock reading the packet's arrival time" if beh.clock else "") + ")")
    notes = [f"traffic: {traffic.description}; {traffic.num_packets} packets, seed {sc.seed}",
             f"behaviour: {how}; {len(verdicts)} class(es) of packets with the same verdict "
             f"and " + ("path cost" if beh.executor in ("vm", "compiled") else "length")
             + " share one cost",
             f"host program cost: {cost_note}; carried to the profile's core: "
             f"{hcost.carry_note}",
             "host driver per verdict (ns, target '" + host_target.name + "'): "
             + ", ".join(f"{k} {v:g}" for k, v in hcost.verdict_ns.items())]
    q = sc.queues
    link = LinkModel(gbps=target.line_rate_gbps, queue=q.get("link"))
    cores = sc.host_cores or host_target.cores.num_threads
    host = HostModel(cores=cores, ring=q.get("host_ring"))
    outcomes = []
    if on_host:
        weights = beh.counts if sum(beh.counts) else [1] * len(verdicts)
        core_ns, bus_ns = hcost.mix(verdicts, prog_ns, weights)
        stall = hcost.operating_stall_ns(cores, core_ns, bus_ns, traffic.offered_pps / 1e6)
        for v, ns in zip(verdicts, prog_ns, strict=True):
            outcomes.append(Outcome(verdict=v, host_ns=hcost.core_ns(v, ns) + stall))
        if hcost.bus_ns:
            cap = hcost.capacity_mpps(cores, core_ns, bus_ns)
            notes.append(f"host shared PCIe / memory path: {bus_ns:.3g} ns per packet on "
                         f"this traffic; stall {stall:.3g} ns per packet at the achieved "
                         f"rate; {cores} cores process at most {cap:.4g} Mpps")
        classes = PacketClasses.from_outcomes(outcomes, beh.klass, has_nic=False,
                                              has_host=True)
        workload = Workload(arrival_ns=traffic.arrival_ns, size=traffic.size,
                            flow=traffic.flow, classes=classes, link=link, host=host)
        notes.append(f"the program runs on {cores} host cores, RSS by flow hash")
    else:
        assert cost is not None
        services, servers, svc_note = _nic_services(target, beh, prog_ns, measured, cost)
        for v, tc, ns, (nic_ns, delay) in zip(verdicts, costs, prog_ns, services, strict=True):
            punted = cost.is_punted(target, tc)
            # on the host: the packet's verdict there when punted, else the stack (PASS)
            host_ns = hcost.core_ns(v, ns) if punted else hcost.core_ns(XDP_PASS, 0.0)
            outcomes.append(Outcome(verdict=v, punted=punted, nic_ns=nic_ns,
                                    nic_delay_ns=delay, host_ns=host_ns))
        classes = PacketClasses.from_outcomes(outcomes, beh.klass, has_nic=True,
                                              has_host=True)
        if cost.verdict is not None:  # a mapping: say how much of this traffic it punts
            assert classes.punted is not None
            share = float(classes.punted[beh.klass].mean()) if len(beh.klass) else 0.0
            cost = replace(cost, source=f"{cost.source} ({_percent(share)} % punted on this "
                                        f"traffic)")
        nic, nic_notes = nic_model(target, cost, q.get("nic"), servers, svc_note)
        notes.extend(nic_notes)
        if target.kind == "pipeline":
            notes.extend(_pipeline_notes(target, cost))
        notes.append(_punt_note(cost))
        workload = Workload(arrival_ns=traffic.arrival_ns, size=traffic.size,
                            flow=traffic.flow, classes=classes, link=link, nic=nic,
                            pcie=pcie_model(target, q.get("pcie")), host=host)
        notes.append(f"XDP_PASS and punted packets cross PCIe (gen {target.pcie.gen} x"
                     f"{target.pcie.lanes}, {target.pcie.bandwidth_gbps:g} Gb/s, "
                     f"{target.pcie.tlp_overhead_bytes} B per TLP of at most "
                     f"{target.pcie.max_payload_bytes} B) to {cores} host cores, RSS by "
                     f"flow hash; drop, tx and redirect leave from the NIC")
    qtext = ", ".join(f"{k} {'unbounded' if v is None else v}" for k, v in q.items())
    notes.append(f"queues (packets, waiting + in service): {qtext}")
    return Prepared(scenario=sc, target=target, host_target=host_target, traffic=traffic,
                    workload=workload, outcomes=outcomes, traces=costs, program=program,
                    behaviour=beh,
                    assumptions=notes, host_cost_source=cost_note, nic_cost=cost)


def simulate(prep: Prepared, *, progress_enabled: bool | None = None) -> dict[str, Any]:
    """Run the prepared workload on the scenario's engine; the JSON-ready report."""
    from sim import engine_fast, engine_simpy
    from sim.metrics import progress_bar, summarize

    sc = prep.scenario
    n = prep.workload.num_packets
    engine = engine_fast if sc.engine == "fast" else engine_simpy
    with progress_bar(n, f"sim ({sc.engine})", min_total=200_000 if sc.engine == "fast"
                      else 20_000, enabled=progress_enabled) as advance:
        result = engine.run(prep.workload, progress=advance)
    arrival = prep.traffic.arrival_ns
    span = float(arrival[-1] - arrival[0]) if len(arrival) else 0.0
    metrics = summarize(prep.workload, result, offered_pps=prep.traffic.offered_pps,
                        warmup_ns=WARMUP_FRACTION * span)
    beh = prep.behaviour
    assert beh is not None
    classes = [{"label": label, "packets": count, "verdict": o.verdict, "punted": o.punted,
                "nic_ns": o.nic_ns, "nic_delay_ns": o.nic_delay_ns, "host_ns": o.host_ns,
                "insns": tc.insns}
               for label, count, o, tc in zip(beh.labels, beh.counts, prep.outcomes,
                                              prep.traces, strict=True)]
    nic_cost = None
    if prep.nic_cost is not None:
        nic_cost = prep.nic_cost.describe() | {"punted_fraction": metrics["punted"]["fraction"]}
        if prep.target.kind == "pipeline":
            nic_cost["latency_cycles"] = prep.nic_cost.pipeline_latency_cycles(prep.target)
    return {"program": prep.program, "object": sc.program, "target": prep.target.name,
            "target_kind": prep.target.kind, "host": prep.host_target.name,
            "traffic": prep.traffic.to_dict(), "engine": sc.engine,
            "model": prep.workload.describe(), "nic_cost": nic_cost,
            "executor": beh.executor, "behaviour": sc.behaviour, "assumptions": prep.assumptions, "classes": classes,
            "metrics": metrics}


def run(sc: Scenario, **options: Any) -> dict[str, Any]:
    """The report of ``run_prepared`` (same options)."""
    return run_prepared(sc, **options)[1]


def run_prepared(sc: Scenario, *, progress_enabled: bool | None = None,
                 cache: RunCache | None = None, step: Step | None = None,
                 nic_cost_for: NicCostFor | None = None) -> tuple[Prepared, dict[str, Any]]:
    """Prepare and simulate ``sc`` (``prepare``: ``nic_cost_for``): the last ``Prepared`` and
    its report. Without a packet count a synthetic run lasts at least DEFAULT_DURATION_NS; while
    its steady rate has not converged it runs again (at most MAX_EXTENSIONS times) on traffic
    covering at least twice the span the last attempt's traffic covered (not twice what that
    attempt asked for: DEFAULT_PACKETS of large frames already cover more, and the same
    traffic again would give the same unconverged result). A longer attempt's program run
    goes on from where the last one stopped (``sim.resume``: the traffic is prefix-stable)."""
    from sim.resume import Resumable

    cache = cache if cache is not None else RunCache()
    duration = DEFAULT_DURATION_NS
    resume = Resumable()
    try:
        for attempt in range(MAX_EXTENSIONS + 1):
            prep = prepare(sc, cache=cache, step=step, nic_cost_for=nic_cost_for,
                           min_duration_ns=duration, resume=resume)
            report = simulate(prep, progress_enabled=progress_enabled)
            steady = report["metrics"].get("steady", {})
            auto = sc.packets is None and "pcap_packets" not in prep.traffic.info
            if not auto or steady.get("converged", True) or attempt == MAX_EXTENSIONS:
                break
            duration = 2 * max(duration, prep.traffic.span_ns)
    finally:
        resume.close()
    report["assumptions"].append(
        f"run length: {report['metrics']['duration_ns'] / 1e6:.3g} ms of traffic; the first "
        f"{WARMUP_FRACTION:.0%} is warm-up, left out of metrics.steady (steady rate "
        + ("converged" if steady.get("converged") else "NOT converged") + ")")
    return prep, report
