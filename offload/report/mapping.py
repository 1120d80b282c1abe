"""Which blocks stay on the NIC, and the stage map: from the mapper where it maps.

The mapper (``offload.mapper.map_program(obj, target, program, scenario=..., time_limit_s=...)``)
maps a program onto a pipeline target: feasibility, lowering (whose failures are more
reasons), partition (the cuts and their legality), scheduling, emission, and equivalence of
the pipeline model against the VM on a trace. The report asks it for pipeline targets and
takes from its ``MapReport``:

- ``verdict``, ``explanation``, ``reasons`` (feasibility plus lowering reasons), ``cuts``,
  ``punted_fraction`` (over the equivalence trace), ``equivalence``, ``stages``,
  ``passes``; ``to_dict()`` is kept whole (``feasibility[].mapper``);
- ``schedule``: an ``offload.schedule.Schedule``; its ``to_dict()`` is the stage map
  (``stages[]`` with ``stage``, ``physical``, ``pass``, ``units``, ``usage``; ``capacity``,
  ``totals``, ``timing``).

The blocks that stay on the NIC (``derive_blocks``) follow from a verdict and its reasons:
the mapper's when it answered, else the feasibility check's. A block stays on the NIC when it
holds no reason slot and some path from the entry reaches it without passing one
(context-insensitive over bpf-to-bpf calls); a block holding a reason slot is a punt point.

When the mapper raises ``MapperError`` the stage map is "unavailable" with the reason, and
the report uses the feasibility check.

The simulator's NIC cost (``nic_cost``) of a mapped pipeline is the simulator's own mapped
cost built from this same ``MapReport`` (``sim.mapping.cost_from_report``), so the report's
simulation punts what the mapped configuration punts and takes its latency from the
configuration's timing; the program is mapped once per target for the whole report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ebpf.analysis import Analysis
from hw.errors import HwError
from offload.errors import MapperError
from offload.feasibility import VERDICT_FULL, VERDICT_HOST, CheckResult

NIC, PUNT, HOST, UNREACHABLE = "nic", "punt", "host", "unreachable"
BLOCK_CLASSES = (NIC, PUNT, HOST, UNREACHABLE)


@dataclass
class MapperView:
    """What the report takes from the mapper for one program and target."""

    available: bool
    reason: str
    result: Any = None
    """The mapper's ``MapReport`` (None when unavailable)."""
    stage_map: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """``MapReport.to_dict()``."""

    @property
    def verdict(self) -> str | None:
        return self.result.verdict if self.available else None


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def ask_mapper(obj: Any, program: str, target: Any, *, scenario: str | None = None,
               time_limit_s: float = 10.0) -> MapperView:
    """The mapper's answer for ``program`` on ``target``, or why there is none."""
    from offload.mapper import map_program

    try:
        result = map_program(obj, target, program, scenario=scenario,
                             time_limit_s=time_limit_s)
    except MapperError as exc:
        return MapperView(False, f"the mapper failed: {_one_line(exc)}")
    stage_map = result.schedule.to_dict() if result.schedule is not None else None
    return MapperView(True, "", result, stage_map, result.to_dict())


def as_check(view: MapperView, fallback: CheckResult) -> CheckResult:
    """The mapper's verdict and reasons in the shape of a ``CheckResult``."""
    r = view.result
    return CheckResult(fallback.program, fallback.target, r.verdict, list(r.reasons),
                       r.explanation, fallback.stats)


def derive_blocks(an: Analysis, result: CheckResult) -> dict[int, str]:
    """Block start slot -> ``nic`` / ``punt`` / ``host`` / ``unreachable`` from the reasons.

    ``punt``: a reachable block holding a reason slot (the packet leaves the NIC there);
    ``nic``: a block with no reason slot that some clean path reaches; ``host``: the rest of
    the reachable blocks. A host-only verdict puts every reachable block on the host; a full
    verdict every reachable block on the NIC.
    """
    cfg = an.cfg
    blocks = {b.start: b for b in cfg.iter_blocks()}
    reachable = {s for s, b in blocks.items() if an.is_reachable(b.start)}
    if result.verdict == VERDICT_FULL:
        return {s: NIC if s in reachable else UNREACHABLE for s in blocks}
    if result.verdict == VERDICT_HOST:
        bad_all = {s for r in result.reasons for s in r.insns}
        return {s: (UNREACHABLE if s not in reachable else
                    PUNT if bad_all & set(blocks[s].slots) else HOST) for s in blocks}
    bad = {s for r in result.reasons if r.scope == "site" for s in r.insns}
    succs: dict[int, set[int]] = {s: set(b.succs) for s, b in blocks.items()}
    returns: dict[str, set[int]] = {}
    for b in blocks.values():
        if b.term == "call" and b.callee is not None:
            callee = cfg.get_function(b.callee)
            succs[b.start] = {callee.entry}
            returns.setdefault(b.callee, set()).update(b.succs)
    for name, sites in returns.items():
        for e in cfg.get_function(name).exits:
            succs[e] = succs[e] | sites
    entry = cfg.get_function(cfg.entry).entry
    clean: set[int] = set()
    punt: set[int] = set()
    work = [entry]
    seen = {entry}
    while work:
        s = work.pop()
        if s not in reachable:
            continue
        if bad & set(blocks[s].slots):
            punt.add(s)
            continue
        clean.add(s)
        for d in succs.get(s, ()):
            if d not in seen:
                seen.add(d)
                work.append(d)
    out = {}
    for s in blocks:
        out[s] = (UNREACHABLE if s not in reachable else NIC if s in clean else
                  PUNT if s in punt or bad & set(blocks[s].slots) else HOST)
    return out


def nic_cost(result: CheckResult, target: Any, view: MapperView | None = None) -> Any:
    """The simulator's NIC cost of ``target`` (a loaded profile) for the program.

    A pipeline the mapper mapped: the simulator's own mapped cost from the ``MapReport``
    already at hand (``sim.mapping.cost_from_report``): the configuration's passes, the
    latency of ``hw.pipeline.timing.TimingModel`` (parser + passes x physical stages +
    recirculations + deparser), and ``punt = "model"``, so that the simulator punts exactly
    the packets the mapped configuration punts on the pipeline model (``host-only``: every
    packet, one pass of latency). Without a mapping (the mapper unavailable, a report
    without a configuration, other NICs) the punt rule follows the verdict (``full``: punt
    nothing; ``host-only``: punt everything; ``partial``: the simulator's rule, punt a packet
    whose path calls a helper the target lacks) and stages and passes are the mapper's when
    it gave them, else the simulator's defaults. ``source`` says which.
    """
    from sim.model import NicCost

    r = view.result if view is not None and view.available else None
    verdict = r.verdict if r is not None else result.verdict
    why = ""
    if target.kind == "pipeline" and r is not None:
        from sim.mapping import cost_from_report

        try:
            return cost_from_report(r, target)
        except HwError as exc:
            why = f"; the mapped configuration does not load: {_one_line(exc)}"
    elif target.kind == "pipeline":
        why = (f"; {view.reason}" if view is not None and not view.available
               else "; the mapper gave no configuration")
    punt = {VERDICT_FULL: "none", VERDICT_HOST: "all"}.get(verdict, "helpers")
    rule = {"none": "punt nothing", "all": "punt every packet",
            "helpers": "punt a packet whose path calls a helper the target lacks"}[punt]
    origin = "mapper" if r is not None else "feasibility check"
    if target.kind != "pipeline":
        return NicCost(punt=punt, source=f"{origin}: {verdict} on {target.name}; {rule}; "
                       f"service time: the simulator's {target.kind} model")
    stages, passes = (r.stages, r.passes) if r is not None else (None, None)
    if stages is not None and passes:
        return NicCost(ii_cycles=1, passes=max(1, passes), stages=stages, punt=punt,
                       source=f"{origin}: {verdict} on {target.name}, {stages} stages, "
                              f"{passes} pass(es); {rule}{why}")
    return NicCost(punt=punt, source=f"{origin}: {verdict} on {target.name}; {rule}; "
                   f"stages and passes: simulator defaults{why}")
