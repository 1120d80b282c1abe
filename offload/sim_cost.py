"""The simulator's NIC cost of a pipeline target from the program's mapping.

``sim`` does not depend on ``offload``: ``sim.scenario.prepare`` / ``run`` take the mapping
as a hook (``sim.mapping.NicCostFor``), and the command-line layers (``offload sim``,
``make sim``, ``offload report``) pass ``mapped_nic_cost``. It maps the program onto the
pipeline target (``offload.mapper.map_program`` without the equivalence run: the
simulator's pipeline model decides the punts on the simulated packets instead) and turns the
``MapReport`` into a ``sim.model.NicCost`` with ``sim.mapping.cost_from_report`` (see
``sim.mapping`` for what the cost holds).
"""

from __future__ import annotations

from typing import Any

from sim.mapping import MappingCache, MappingError, cached_cost, cost_from_report
from sim.model import NicCost


def mapped_nic_cost(obj_path: str, program: str | None, target: Any) -> NicCost:
    """The mapping's NIC cost of ``program`` (None: the object's first) on a pipeline
    ``target`` (a loaded ``hw.targets`` profile): the ``sim.mapping.NicCostFor`` hook."""
    from offload.errors import MapperError
    from offload.mapper import map_program

    try:
        report = map_program(obj_path, target, program, equivalence=False)
    except MapperError as exc:
        raise MappingError(f"{obj_path}: mapping onto {target.name}: {exc}") from exc
    return cost_from_report(report, target)


def mapped_cost(obj_path: str, program: str | None, target: Any,
                cache: MappingCache | None = None) -> NicCost:
    """``mapped_nic_cost``, from ``cache`` when it has it (one mapping per object, program
    and target)."""
    return cached_cost(mapped_nic_cost, obj_path, program, target, cache)
