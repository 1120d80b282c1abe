"""The NIC cost of a pipeline target from the program's mapping.

The simulator does not map programs itself (``sim`` does not depend on ``offload``): the
caller supplies the mapping as a hook, ``nic_cost_for(obj_path, program, target[, maps=
state file]) -> NicCost`` (``NicCostFor``), passed to ``sim.scenario.prepare`` / ``run``.
The command line (``offload sim``, ``make sim``, ``offload report``) passes
``offload.sim_cost.mapped_nic_cost``, which maps the program onto the pipeline target once
(``map_program`` with its equivalence run; the punts on the simulated packets then come from
the pipeline model) and turns the ``MapReport`` into a ``sim.model.NicCost`` with
``cost_from_report``. A ``host-only`` report (an equivalence that failed included) gives
``punt="all"``: its configuration is never simulated.

- ``passes``: the schedule's passes (at least 1: a program of no stages still crosses the
  pipeline once); the NIC issues one packet every ``passes`` cycles, or every bus beat
  count of a long packet, whichever is more (the model adds the bus bound);
- ``latency_cycles``: the configuration's latency without queueing, from
  ``hw.pipeline.timing.TimingModel`` (docs/pipeline.md section 8): ``parser_cycles +
  passes x physical stages x stage_cycles + (passes - 1) x recirc_cycles +
  deparser_cycles``; a packet crosses every physical stage of each pass, however few of
  them the program uses;
- punt: ``full`` and ``partial`` mappings carry the configuration (``punt = "model"``) and
  ``PipelinePunts`` decides per packet; ``host-only`` punts every packet (the pipeline only
  parses and hands it over: one pass of latency).

``PipelinePunts`` runs the configuration on ``hw.pipeline.PipelineModel`` beside the
simulator's reference VM, packet by packet in the VM's order. Its tables and registers
start from the VM's maps after the scenario's state is loaded (``dump_state`` of the bound
maps, as ``offload.equivalence`` prepares its model); a packet is punted iff the model
punts it (a mapper cut, a window fault, a frame longer than the window). A punted packet
runs on the host, which may write maps the pipeline holds: afterwards the bound maps are
loaded from the reference VM, the logical state the NIC and the host share (the state
``offload.equivalence`` checks is the same).

Most configurations cannot punt a packet at all except for its length: no window access
can leave the window, nothing writes the punt reason, no head adjustment
(``hw.pipeline.punt_sinks``, a static bound on every container's value, tested against
the model). For those (``PipelinePunts.static``) a packet is punted iff it is longer than
the window's ``frame_end``, which is what the model answers whatever its state, so the
simulator decides every packet from its length (``punted_by_length``) and runs no model.
Otherwise the model decides each packet before the executor runs it: the batched
simulation (``sim.behaviour``) runs the model ahead up to the next punted packet,
then the executor up to and including it, then ``after_host``: the order of the
packet-by-packet loop. Where a reload can never bring anything a decision reads
(``ahead``: no watched map, see below, or no fetching stateful unit and a program that
writes no watched map, by the static analysis of its writes, ``ebpf.analysis.effects``,
checked after each span), the model decides a whole span and the executor runs it in one
batch, punts included.

The model is a function of its state and the packet (the timestamp extern reads cycle 0
here), and of its state a decision reads only the tables and the registers a stateful unit
fetches (``hw.pipeline.punt_sinks.decisive_maps``; a counter the pipeline adds to is
written, never read back): ``PipelinePunts`` watches only those maps. It remembers each
distinct packet's decision while they stay as they were: until a packet writes a register
some unit fetches, a reload from the VM brings other contents of a watched map, or for
ever when the configuration has no random extern (whose generator is state too: then
nothing is remembered). A program whose pipeline half reads no state it or the host
writes (routers, load balancers, a pipeline that only counts) runs each distinct packet
through the model once per run, and the model decides whole spans ahead of the executor.

Without a hook, a pipeline target gets the simulator's defaults and its ``source`` says that
no mapping was supplied (``no_mapping_cost``).

Costs are cached in a ``MappingCache`` per (object path and mtime, program, target;
``cached_cost``), so a set of runs maps each program once per target.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim.errors import SimError
from sim.model import DEFAULT_COST_SOURCE, NicCost

NicCostFor = Callable[..., NicCost]
"""``nic_cost_for(obj_path, program, target)``: the NIC cost of ``program`` (None: the
object's first) in the XDP object at ``obj_path`` on a pipeline ``target`` (a loaded
``hw.targets`` profile), from its mapping; raises ``MappingError`` when it cannot map."""


class MappingError(SimError):
    """The mapping could not be made for the program (bad object, unknown program)."""


@dataclass
class MappingCache:
    """NIC costs by (object path, mtime and size, program, target name, the target
    profile's path, mtime and size)."""

    costs: dict[tuple[Any, ...], NicCost] = field(default_factory=dict)
    mapped: int = 0
    """How many times the mapper actually ran (misses)."""


def object_key(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """(real path, mtime in ns, size) of a file: changes when the file is rebuilt."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return real, -1, -1
    return real, st.st_mtime_ns, st.st_size


def _passes_text(passes: int) -> str:
    return f"{passes} pass" + ("es" if passes != 1 else "")


def cost_from_report(report: Any, target: Any) -> NicCost:
    """The ``NicCost`` of a pipeline ``MapReport`` (see the module docstring)."""
    from hw.pipeline import load_config
    from hw.pipeline.timing import TimingModel

    if report.config is None or report.verdict == "host-only":
        # a configuration whose equivalence failed is never simulated: every packet punts
        from hw.pipeline.config import target_params

        latency = TimingModel(target_params(target), passes=1).latency_cycles()
        why = report.explanation.splitlines()[0] if report.explanation else "no configuration"
        return NicCost(ii_cycles=1, passes=1, stages=None, punt="all", latency_cycles=latency,
                       verdict=report.verdict,
                       source=f"mapper: {report.verdict} on {target.name} ({why}); every "
                              f"packet is punted")
    config = load_config(report.config)
    timing = TimingModel(config)
    passes = timing.passes
    stages = report.stages if report.stages is not None else len(config.stages)
    return NicCost(ii_cycles=1, passes=passes, stages=stages, punt="model",
                   latency_cycles=timing.latency_cycles(), verdict=report.verdict,
                   config=report.config,
                   source=f"mapper: {stages} stages, {_passes_text(passes)}, "
                          f"{report.verdict}")


def cached_cost(nic_cost_for: NicCostFor, obj_path: str, program: str | None, target: Any,
                cache: MappingCache | None = None, maps: str | None = None) -> NicCost:
    """``nic_cost_for(obj_path, program, target)`` (with ``maps=`` the state file, when
    given), from ``cache`` when it has it (keyed by the object's, the target profile's and
    the state file's path, mtime and size, the program and the target's name)."""
    key = (*object_key(obj_path), program, target.name, *object_key(target.source),
           *(object_key(maps) if maps is not None else ()))
    if cache is not None and key in cache.costs:
        return cache.costs[key]
    cost = nic_cost_for(obj_path, program, target, **({"maps": maps} if maps else {}))
    if cache is not None:
        cache.costs[key] = cost
        cache.mapped += 1
    return cost


def no_mapping_cost(target: Any) -> NicCost:
    """The NIC cost of a pipeline ``target`` when the caller supplied no mapping hook: the
    simulator's defaults, saying so."""
    return NicCost(source=f"no mapping supplied for {target.name} (no nic_cost_for hook); "
                          f"{DEFAULT_COST_SOURCE}")


class PipelinePunts:
    """The mapped configuration on the pipeline model beside the reference VM.

    Call ``process`` before the VM runs a packet and, when it says punted, ``after_host``
    after the VM ran it (see the module docstring).
    """

    def __init__(self, config: dict[str, Any], vm_maps: dict[str, Any]):
        from ebpf.maps.state import dump_state
        from hw.pipeline import PipelineModel, load_config

        self.config = load_config(config)
        self.model = PipelineModel(self.config)
        self.bound = sorted(m.name for m in self.config.maps)
        self.vm_maps = vm_maps
        self._dump = dump_state
        self.punts = 0
        self.modelled = 0
        """Packets the model actually ran (the others repeated a remembered decision)."""
        random = any(e.kind == "random" for st in self.config.stages for e in st.externs)
        self._known: dict[bytes, bool] | None = None if random else {}
        self.remembers = not random
        """Decisions are remembered per distinct packet (no random extern)."""
        self._loaded: Any = None
        self._written = False  # a register written since the last load
        from hw.pipeline.punt_sinks import decisive_maps, punt_sinks

        decisive, self.fetches = decisive_maps(self.config)
        self.watched = sorted(decisive)
        """The bound maps a decision can read (``decisive_maps``): only a change in these
        reloads the model and forgets the remembered decisions; ``fetches``: a register
        the pipeline writes can reach a decision."""
        self.sinks = punt_sinks(self.config)
        self.static = not self.sinks
        """Nothing but a frame longer than the window can punt (``punted_by_length``)."""
        self.ahead = False
        """The model may decide many packets before the executor runs them
        (``allow_ahead``)."""
        if self.bound:
            self.model.state.load_maps(self._dump({n: vm_maps[n] for n in self.bound}))
            self._loaded = self._dump({n: vm_maps[n] for n in self.watched})

    def process(self, packet: bytes) -> bool:
        """Whether the pipeline punts ``packet`` (its bytes as XDP sees them, no FCS)."""
        known = self._known.get(packet) if self._known is not None else None
        if known is None:
            result = self.model.process(packet)
            self.modelled += 1
            known = result.punted
            if result.register_writes and self.fetches:
                self._forget()
                self._written = True
            elif self._known is not None:
                self._known[packet] = known
        self.punts += known
        return known

    def allow_ahead(self, obj: Any, program: Any) -> None:
        """Decide ``ahead``: whether the model's decisions never depend on the host's runs,
        so that it may decide a whole span before the executor runs it. True when a
        decision reads no bound map (``watched`` is empty: ``after_host`` has nothing to
        load that matters), or when no stateful unit fetches, no watched map is an LRU map,
        and the program (``ebpf.analysis.effects``: helper and pointer writes,
        conservatively) writes none of the watched maps, so a reload would load what the
        model already holds. ``check_unchanged`` verifies the latter after each span."""
        from ebpf.analysis.dataflow import analyze
        from ebpf.analysis.effects import EffectKind, find_effects
        from ebpf.kernel_enums import map_type_name

        if not self.watched:
            self.ahead = True
            return
        if self.fetches or any(
                "lru" in (map_type_name(self.vm_maps[n].defn.type) or "")
                for n in self.watched):  # an LRU lookup reorders its map: a write of sorts
            return
        bound = set(self.watched)
        for e in find_effects(analyze(program, obj)):
            if e.kind in (EffectKind.UNKNOWN, EffectKind.TAIL_CALL) or (
                    e.kind is EffectKind.MAP_WRITE and (e.map is None or e.map in bound)):
                return
        self.ahead = True

    def check_unchanged(self) -> None:
        """After a span decided ``ahead``: the watched maps still hold what the model loaded
        (raises ``SimError`` otherwise: the static analysis would have been wrong)."""
        if self.watched:
            state = self._dump({n: self.vm_maps[n] for n in self.watched})
            if state != self._loaded:
                raise SimError("the program changed a map the pipeline holds, which the "
                               "analysis of its writes ruled out: its punts would be wrong")

    def punted_by_length(self, lengths: Any) -> Any:
        """Of a ``static`` configuration: whether each packet of ``lengths`` (a numpy
        array) is punted, the model's answer without running it (``hw.pipeline.punt_sinks``:
        only a frame longer than ``frame_end`` is punted, whatever the tables and registers
        hold, so the model's state need not be kept). Counted in ``punts`` as ``process``
        counts."""
        assert self.static
        punted = lengths > self.config.target.frame_end
        self.punts += int(punted.sum())
        return punted

    def after_host(self) -> None:
        """The host ran a punted packet: the pipeline's watched maps take the shared state
        (the others a decision never reads)."""
        if self.watched:
            state = self._dump({n: self.vm_maps[n] for n in self.watched})
            if self._written or state != self._loaded:
                self.model.state.load_maps(state)
                self._loaded, self._written = state, False
                self._forget()

    def _forget(self) -> None:
        if self._known:
            self._known.clear()
