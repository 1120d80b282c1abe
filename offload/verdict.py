"""One verdict for ``offload check``: the mapper's for pipelines, the kernel's above all.

``check_program`` starts from the feasibility check (``offload.feasibility.check``). For a
pipeline target (``pipe``, ``rmt``) that check is only the first step of the mapper, which
also cuts what the lowering cannot express, what the stages cannot hold, and refuses a
mapping whose equivalence with the VM fails: so the verdict, the explanation and the
reasons become ``offload.mapper.map_program``'s, the ones ``offload map`` prints. Run-to-
completion targets keep the check's verdict and reasons (the mapper uses them unchanged);
the explanation of a ``partial`` verdict gains the share of the trace's packets and of its
executed instructions that stay on the NIC (``stats.nic_share``), as for pipelines.

Then the kernel (``offload.kernel_check``, where bpf(2) is permitted): a program its
verifier rejects runs nowhere, so the verdict is ``rejected`` with the verifier's line as
a program-wide reason, whatever the target. A refusal before the verifier ran (an object
name, a map, BTF the kernel refuses) is said in ``stats.kernel`` and the output, and
leaves the verdict alone: it is about this kernel, not about the code.

Where the kernel is not asked (bpf(2) not permitted, ``--no-kernel``, a loader-sized map),
``ebpf.analysis.packet_bounds`` proves the packet accesses path by path as the verifier
does; a program it refuses is ``rejected`` with its reason (kind ``packet_bounds``, scope
``program``); ``stats.bounds`` says what it found.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ebpf.analysis import analyze
from ebpf.analysis.packet_bounds import check_packet_bounds
from ebpf.differential import loader_sized
from ebpf.loader.elf import load
from hw.targets import PipelineTarget
from offload.feasibility import VERDICT_HOST, CheckResult, Reason, check, source_line
from offload.kernel_check import kernel_verdict
from offload.mapper import get_object, get_target, map_program
from offload.partition import partition

VERDICT_REJECTED = "rejected"


def check_program(path: str | os.PathLike[str], program: str | None = None,
                  target: str = "pipe", *, extra_targets: Iterable[str] = (),
                  scenario: str | None = None, kernel: bool = True) -> CheckResult:
    """The check of ``program`` on ``target`` with the mapper's and the kernel's verdicts."""
    extra = list(extra_targets)
    tgt = get_target(target, extra)
    obj, prog = get_object(path, program)
    an = analyze(prog, obj)
    result = check(obj, prog.name, tgt, analysis=an)
    rep = map_program(path, tgt, prog.name, scenario=scenario, extra_targets=extra)
    result.verdict, result.explanation = rep.verdict, rep.explanation
    result.stats["nic_share"] = rep.nic_share
    if isinstance(tgt, PipelineTarget):
        result.reasons = list(rep.reasons)
        nic = 0 if rep.verdict == VERDICT_HOST else partition(an, rep.reasons).nic_insns
        result.stats["nic_insns"] = nic
        result.stats["infeasible_insns"] = len({s for r in rep.reasons for s in r.insns})
        result.stats["mapper"] = _mapper_stats(rep)
    kv = None
    if kernel:
        sized = [m.name for m in load(path).maps if loader_sized(m)]
        kv = kernel_verdict(path, prog.name, sized)
        result.stats["kernel"] = kv.to_dict()
    if kv is None or kv.loaded is None:  # the kernel was not asked: our own bounds check
        _bounds_verdict(result, prog, obj,
                        "--no-kernel" if kv is None else kv.why.removeprefix("not loaded: "))
    elif kv.verifier:  # a refusal before verifying (a name, a map) is the environment's
        where = f" at insn {kv.insn}" if kv.insn is not None else ""
        what = f"{kv.why}{where}: {kv.message}"
        src = source_line(prog, kv.insn) if kv.insn is not None else None
        result.verdict, result.explanation = VERDICT_REJECTED, what
        result.reasons.insert(0, Reason(kv.insn or 0, kv.file, kv.line, what,
                                        "change the code until the kernel verifier "
                                        "accepts it", "verifier",
                                        (kv.insn,) if kv.insn is not None else (),
                                        src.text.strip() if src else "", "program"))
        result.stats["nic_insns"] = 0
    return result


def _bounds_verdict(result: CheckResult, prog: Any, obj: Any, why: str) -> None:
    """Without the kernel's verifier, a program whose packet accesses our path-sensitive
    bounds check (``ebpf.analysis.packet_bounds``) cannot prove is ``rejected``: the
    verifier refuses it too."""
    res = check_packet_bounds(prog, obj.maps)
    ref = res.refusal
    result.stats["bounds"] = {
        "refused": res.refused, "complete": res.complete, "why": res.why,
        "insns_walked": res.insns_walked, "insn": ref.insn if ref else None,
        "message": ref.message if ref else "", "kernel_not_asked": why}
    if ref is None:
        return
    what = (f"the packet-bounds check (the kernel was not asked: {why}) refuses it at insn "
            f"{ref.insn}, as the kernel verifier would: {ref.message}")
    src = source_line(prog, ref.insn)
    result.verdict, result.explanation = VERDICT_REJECTED, what
    result.reasons.insert(0, Reason(ref.insn, src.file if src else ref.file,
                                    src.line if src else ref.line, what,
                                    "compare the pointer with data_end before the access, on "
                                    "every path that reaches it", "packet_bounds", (ref.insn,),
                                    src.text.strip() if src else ref.source, "program"))
    result.stats["nic_insns"] = 0


def _mapper_stats(rep: Any) -> dict[str, Any]:
    eq = rep.equivalence
    return {"stages": rep.stages, "passes": rep.passes, "punted": rep.punted,
            "packets": rep.packets, "punted_fraction": rep.punted_fraction,
            "equivalence": ("not checked" if eq is None else
                            "holds" if eq.get("ok") else "failed")}
