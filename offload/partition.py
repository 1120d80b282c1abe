"""Partitioning a program between NIC and host: where the cuts are, and whether they are legal.

A **cut** is a slot whose packets the NIC does not finish: an infeasible construct that
``offload.feasibility.check`` found for the target, or one the lowering could not express
(``offload.lower``: a ``LowerReason``). The pipeline punts a packet that reaches a cut to
the host (punt reason 16 and up, docs/pipeline.md section 7), which runs the **whole
program from the start** on the packet as it arrived. So a cut is legal only before the
first visible side effect on every path through it (map writes, packet writes, output,
tail calls): the packet must not be processed twice with visible effect. The legality test
is the feasibility check's own (``offload.feasibility.decide_verdict``), run again with the
lowering's reasons added, so the verdict rules of docs/mapping.md section 3 hold for the
combined set:

- ``full``: no cut; ``partial``: some path stays on the NIC and every cut is legal;
- ``host-only``: a program-wide reason, every path cut, or a cut after a side effect.

What the host needs from a punted packet is the packet itself (unchanged: the cut is
before any packet write) and the cut's reason code; the punt header carries both.
``trace_punts`` measures, on the VM, which packets of a trace reach a cut (run-to-completion
targets, where nothing is compiled to count punts with); ``trace_shares`` also the executed
instructions the NIC finishes (the packets that reach no cut) against all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ebpf.analysis.dataflow import Analysis
from ebpf.analysis.effects import find_effects
from ebpf.loader.program import ProgramDef
from offload.feasibility import (
    VERDICT_FULL,
    VERDICT_HOST,
    VERDICT_PARTIAL,
    Reason,
    decide_verdict,
    source_line,
)
from offload.lower.ir import LowerReason

__all__ = ["Cut", "Partition", "partition", "lowering_reason", "trace_punts", "trace_shares",
           "VERDICT_FULL", "VERDICT_HOST", "VERDICT_PARTIAL"]


@dataclass(frozen=True)
class Cut:
    """One cut: the slot where packets leave the NIC, and why."""

    slot: int
    kind: str
    what: str
    file: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"slot": self.slot, "kind": self.kind, "what": self.what, "file": self.file,
                "line": self.line}


@dataclass
class Partition:
    verdict: str
    explanation: str
    cuts: list[Cut] = field(default_factory=list)
    nic_insns: int = 0

    @property
    def cut_slots(self) -> set[int]:
        return {c.slot for c in self.cuts}

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "explanation": self.explanation,
                "cuts": [c.to_dict() for c in self.cuts], "nic_insns": self.nic_insns}


def lowering_reason(prog: ProgramDef, r: LowerReason) -> Reason:
    """A lowering reason as a feasibility ``Reason`` (kind ``lowering``, scope ``site``)."""
    src = source_line(prog, r.slot)
    return Reason(r.slot, src.file if src else None, src.line if src else None, r.what,
                  r.fix or "keep this path on the host", r.kind, (r.slot,),
                  src.text.strip() if src else "", "site")


def partition(an: Analysis, reasons: Sequence[Reason]) -> Partition:
    """The verdict and the cuts for ``reasons`` (the check's and the lowering's)."""
    effects = find_effects(an)
    verdict, why, nic = decide_verdict(an, list(reasons), effects)
    cuts: dict[int, Cut] = {}
    if verdict != VERDICT_HOST:
        for r in reasons:
            if r.scope != "site":
                continue
            for s in r.insns:
                cuts.setdefault(s, Cut(s, r.kind, r.what, r.file, r.line))
    return Partition(verdict, why, sorted(cuts.values(), key=lambda c: c.slot), len(nic))


def trace_punts(prog: ProgramDef, traces: Iterable[Any], cuts: set[int],
                programs: dict[str, ProgramDef] | None = None) -> tuple[int, int]:
    """(packets whose run reaches a cut slot, packets) over VM ``traces``."""
    hit, total, _, _ = trace_shares(prog, traces, cuts, programs)
    return hit, total


def trace_shares(prog: ProgramDef, traces: Iterable[Any], cuts: set[int],
                 programs: dict[str, ProgramDef] | None = None) -> tuple[int, int, int, int]:
    """(packets punted, packets, instructions the NIC finishes, instructions) over VM
    ``traces``: the executed instructions of the packets that reach no cut, and of all."""
    from hw.rtc.common import iter_executed_blocks

    hit = total = nic = work = 0
    for tr in traces:
        total += 1
        work += tr.insns
        punted = bool(cuts) and any(
            p.name == prog.name and any(block.start <= s < block.end for s in cuts)
            for p, block in iter_executed_blocks(prog, tr, programs or {prog.name: prog}))
        hit += punted
        nic += 0 if punted else tr.insns
    return hit, total, nic, work
