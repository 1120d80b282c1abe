"""The simulator's NIC cost of a pipeline target from the program's mapping.

``sim`` does not depend on ``offload``: ``sim.scenario.prepare`` / ``run`` take the mapping
as a hook (``sim.mapping.NicCostFor``), and the command-line layers (``offload sim``,
``make sim``, ``offload report``) pass ``mapped_nic_cost``. It maps the program onto the
pipeline target (``offload.mapper.map_program`` with its equivalence run on the mapper's
trace, the simulation's map state when it has one: a mapping whose equivalence fails is
``host-only`` and every packet is punted, so the simulator never runs a configuration that
is not equivalent; on the simulated packets the pipeline model then decides the punts) and
turns the ``MapReport`` into a ``sim.model.NicCost`` with ``sim.mapping.cost_from_report``
(see ``sim.mapping`` for what the cost holds).
"""

from __future__ import annotations

from typing import Any

from sim.mapping import MappingCache, MappingError, cached_cost, cost_from_report
from sim.model import NicCost


def mapped_nic_cost(obj_path: str, program: str | None, target: Any,
                    maps: str | None = None) -> NicCost:
    """The mapping's NIC cost of ``program`` (None: the object's first) on a pipeline
    ``target`` (a loaded ``hw.targets`` profile), ``maps`` the state file (its map contents
    and loader sizes; None: the object's default scenario): the ``sim.mapping.NicCostFor``
    hook."""
    from offload.errors import MapperError
    from offload.mapper import map_program

    try:
        report = map_program(obj_path, target, program, scenario=maps)
    except MapperError as exc:
        raise MappingError(f"{obj_path}: mapping onto {target.name}: {exc}") from exc
    return cost_from_report(report, target)


def mapped_cost(obj_path: str, program: str | None, target: Any,
                cache: MappingCache | None = None, maps: str | None = None) -> NicCost:
    """``mapped_nic_cost``, from ``cache`` when it has it (one mapping per object, program,
    target and state file)."""
    return cached_cost(mapped_nic_cost, obj_path, program, target, cache, maps)
