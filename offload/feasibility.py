"""Can this program run on that target, which part of it, and why not: ``check``.

The constructs come from ``hw.feasibility.check_target`` (the one check per target kind,
shared with the cost models); the table of constructs is there.

The verdict (docs/mapping.md): a packet the NIC cannot finish is punted to the host, which
runs the whole program from the start. So

- ``full``: no reason at all;
- ``partial``: some path from the entry to an exit has no infeasible construct (those
  packets stay on the NIC) **and** no visible side effect (map write, packet write, output,
  tail call) can run before the first infeasible construct of any path (the host's re-run
  would repeat it);
- ``host-only``: otherwise, or when a program-wide reason holds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ebpf.analysis import Analysis, Effect, analyze, find_effects
from ebpf.loader.elf import ElfObject, load
from hw.feasibility import Reason, check_target, source_line
from hw.targets import Target, load_target

VERDICT_FULL, VERDICT_PARTIAL, VERDICT_HOST = "full", "partial", "host-only"
__all__ = ["VERDICT_FULL", "VERDICT_HOST", "VERDICT_PARTIAL", "CheckResult", "Reason", "check",
           "decide_verdict", "source_line"]


@dataclass
class CheckResult:
    program: str
    target: str
    verdict: str
    reasons: list[Reason]
    explanation: str
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"program": self.program, "target": self.target, "verdict": self.verdict,
                "explanation": self.explanation,
                "reasons": [r.to_dict() for r in self.reasons], "stats": self.stats}


def check(obj_or_path: ElfObject | str | os.PathLike[str], program: str | None = None,
          target: Target | str = "pipe", *, analysis: Analysis | None = None,
          extra_targets: Iterable[str | os.PathLike[str]] = ()) -> CheckResult:
    """The feasibility of ``program`` (default: the object's first) on ``target``.

    ``analysis`` reuses an earlier ``analyze`` of the same program (it does not depend on
    the target). Raises ``ElfError`` / ``TargetError`` / ``AnalysisError`` on bad input.
    """
    obj = obj_or_path if isinstance(obj_or_path, ElfObject) else load(obj_or_path)
    prog = obj.get_xdp_program(program)
    if not isinstance(target, Target):
        target = load_target(target, extra=extra_targets)
    an = analysis if analysis is not None else analyze(prog, obj)
    feas = check_target(obj, prog, target, analysis=an, extra_targets=extra_targets)
    reasons = feas.reasons
    effects = find_effects(an)
    verdict, why, nic = decide_verdict(an, reasons, effects)
    stats = {
        "insns": prog.num_slots, "reachable_insns": len(an.reachable_slots()),
        "infeasible_insns": len({s for r in reasons for s in r.insns}),
        "nic_insns": len(nic), "functions": len(an.cfg.functions),
        "blocks": sum(len(f.rpo) for f in an.cfg.functions.values()),
        "stack_bytes": an.max_stack_depth()[0], "side_effects": len(effects),
        "loops": feas.loops, "maps": feas.maps,
    }
    return CheckResult(prog.name, target.name, verdict, reasons, why, stats)


# --- the verdict ---------------------------------------------------------------------------

def decide_verdict(an: Analysis, reasons: list[Reason], effects: list[Effect]
                   ) -> tuple[str, str, set[int]]:
    """(verdict, why, slots on paths that stay on the NIC)."""
    program = [r for r in reasons if r.scope == "program"]
    bad = {s for r in reasons if r.scope == "site" for s in r.insns}
    visible = {e.slot: e for e in effects if e.visible}
    cfg = an.cfg
    contexts = cfg.contexts()
    reached = set(an.contexts())
    start = ((), cfg.get_function(cfg.entry).entry)
    seen: dict[tuple, int | None] = {(start, False): None}
    work: list[tuple[tuple, int | None]] = [(start, None)]
    graph: dict[tuple, set[tuple]] = {}
    passed: set[tuple] = set()
    exits: set[tuple] = set()
    blocked: list[tuple[int, int]] = []
    while work:
        node, eff = work.pop()
        cs, b = node
        fcfg = cfg.get_function(contexts[cs])
        block = fcfg.blocks[b]
        cut = False
        for slot in block.slots:
            if slot in bad:
                if eff is not None:
                    blocked.append((slot, eff))
                cut = True
                break
            if slot in visible and eff is None:
                eff = slot
        if cut:
            continue
        passed.add(node)
        nxt: list[tuple] = []
        if block.term == "exit":
            if cs == ():
                exits.add(node)
            else:
                call = cfg.block_of(cs[-1])
                ret = call.succs[0]
                if (call.start, ret) in an.feasible_edges(cs[:-1]):
                    nxt.append((cs[:-1], ret))
        elif block.term == "call":
            inner = cs + (block.last,)
            if inner in reached:
                nxt.append((inner, cfg.get_function(contexts[inner]).entry))
        else:
            if block.term == "tail":
                exits.add(node)
            nxt += [(cs, d) for d in block.succs if (b, d) in an.feasible_edges(cs)]
        for n in nxt:
            graph.setdefault(node, set()).add(n)
            key = (n, eff is not None)
            if key not in seen:
                seen[key] = eff
                work.append((n, eff))
    back: dict[tuple, set[tuple]] = {}
    for src, dsts in graph.items():
        for d in dsts:
            back.setdefault(d, set()).add(src)
    good, stack = set(exits), list(exits)
    while stack:
        for p in back.get(stack.pop(), ()):
            if p in passed and p not in good:
                good.add(p)
                stack.append(p)
    nic = {s for cs, b in good for s in cfg.get_function(contexts[cs]).blocks[b].slots}

    def at(slot: int) -> str:
        src = source_line(an.prog, slot)
        return f"slot {slot}" + (f" ({os.path.basename(src.file)}:{src.line})" if src else "")

    if program:
        return VERDICT_HOST, "the whole program: " + "; ".join(r.what for r in program), set()
    if not bad:
        return VERDICT_FULL, "every construct fits the target", nic
    if not exits:
        return (VERDICT_HOST, "every path from the entry meets an infeasible construct "
                f"(the first at {at(min(bad))})", set())
    if blocked:
        x, e = min(blocked, key=lambda p: (p[1], p[0]))
        return (VERDICT_HOST, f"{visible[e].what} at {at(e)} runs before the infeasible "
                f"construct at {at(x)} on some path: punting there would repeat it on the "
                f"host", nic)
    return (VERDICT_PARTIAL, f"{len(nic)} of {len(an.reachable_slots())} reachable instructions "
            f"lie on paths that stay on the NIC; packets reaching an infeasible construct "
            f"(first at {at(min(bad))}) are punted before any side effect", nic)
