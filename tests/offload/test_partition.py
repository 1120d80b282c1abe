"""Cuts between NIC and host: legality before the first side effect, and trace punts."""

from __future__ import annotations

from ebpf.analysis import analyze
from ebpf.loader.elf import load
from ebpf.vm.machine import Vm
from offload.feasibility import check
from offload.lower.ir import LowerReason
from offload.partition import lowering_reason, partition, trace_punts
from sim.packets import random_packets
from tests.conftest import corpus_object


def setup(name: str, program: str | None = None, target: str = "pipe"):
    obj = load(corpus_object(name))
    prog = obj.get_program(program)
    an = analyze(prog, obj)
    return obj, prog, an, check(obj, prog.name, target, analysis=an)


def test_check_reasons_alone_give_the_check_verdict():
    """Without lowering reasons the partition repeats the feasibility verdict and cuts."""
    for name, program, target in (("tail_call", "xdp_dispatch", "pipe"),
                                  ("lpm_router", None, "pipe"), ("xdp_tx", None, "rmt")):
        _, _, an, res = setup(name, program, target)
        part = partition(an, res.reasons)
        assert part.verdict == res.verdict
        assert part.cut_slots == {s for r in res.reasons if r.scope == "site" for s in r.insns}


def test_lowering_reason_before_any_side_effect_is_a_legal_cut():
    """A cut inside xdp_tcp's VLAN parsing (before its counter update) is legal: the packets
    with a tag go to the host, the others stay."""
    _, prog, an, res = setup("tail_call", "xdp_tcp")
    first_branch = [s for s in an.reachable_slots() if an.insn_at[s].kind.value == "jcond"][3]
    r = lowering_reason(prog, LowerReason(first_branch, "test cut", "fix"))
    assert (r.kind, r.scope, r.insns) == ("lowering", "site", (first_branch,))
    assert r.file and r.line
    part = partition(an, list(res.reasons) + [r])
    assert part.verdict == "partial"
    assert first_branch in part.cut_slots


def test_lowering_reason_after_a_side_effect_is_host_only():
    """Cutting xdp_tcp after its proto_hits update would repeat the update on the host."""
    _, prog, an, res = setup("tail_call", "xdp_tcp")
    atomic = max(s for s in an.reachable_slots() if an.insn_at[s].kind.value == "atomic")
    later = next(s for s in an.reachable_slots() if s > atomic
                 and an.insn_at[s].kind.value == "jcond")
    part = partition(an, list(res.reasons) + [lowering_reason(prog, LowerReason(later, "x"))])
    assert part.verdict == "host-only"
    assert "runs before the infeasible construct" in part.explanation
    assert not part.cuts


def test_trace_punts_counts_packets_reaching_a_cut():
    """The share of VM runs that execute a cut slot: none without cuts, all for slot 0."""
    obj, prog, an, res = setup("tail_call", "xdp_dispatch")
    vm = Vm(obj, prog)
    traces = [vm.run_xdp(p).trace for p in random_packets(200, seed=1)]
    assert trace_punts(prog, traces, set()) == (0, 200)
    assert trace_punts(prog, traces, {0}) == (200, 200)
    part = partition(an, res.reasons)
    hit, total = trace_punts(prog, traces, part.cut_slots, {p.name: p for p in obj.programs})
    assert 0 < hit < total == 200
