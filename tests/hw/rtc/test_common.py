"""hw.rtc.common: basic blocks, the walk from traces to blocks, the memory levels and bounds checks from the shared analysis, results."""

from __future__ import annotations

import json

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from ebpf.analysis import analyze
from ebpf.kernel_enums import HELPER_IDS
from ebpf.vm.machine import Vm
from ebpf.vm.trace import Trace
from hw.rtc.common import (
    CostEstimate,
    RtcError,
    bounds_checks,
    build_cfg,
    iter_executed_blocks,
    memory_levels,
    wire_mpps,
)
from tests.conftest import CORPUS_NAMES
from tests.hw.rtc import corpus, prog, traces


def test_blocks_start_at_targets_and_after_branches_calls_exits():
    """Leaders: slot 0, jump targets, the slot after a branch, a call and an exit."""
    p = prog("""
        mov %r0, 0
        jeq %r1, 0, skip
        call 7
        mov %r0, 1
        exit
    skip:
        lddw %r0, 0x100000000
        exit
    """)
    cfg = build_cfg(p)
    assert sorted(cfg.blocks) == [0, 2, 3, 5]
    assert [len(cfg.block_at(s)) for s in (0, 2, 3, 5)] == [2, 1, 2, 2]
    assert cfg.block_at(5).slots == (5, 7)  # lddw: one instruction, two slots


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_walk_covers_every_executed_instruction(name):
    """Over every corpus program, the executed blocks add up to the trace's insns."""
    obj = corpus(name)
    programs = {p.name: p for p in obj.programs}
    for p in obj.programs:
        for trace in traces(obj, p.name, count=30, seed=7):
            blocks = list(iter_executed_blocks(p, trace, programs))
            assert sum(len(b) for _, b in blocks) == trace.insns
            assert blocks[0][1].start == 0


def test_walk_follows_a_taken_tail_call():
    """A TCP packet tail-calls xdp_tcp: the walk continues in xdp_tcp's blocks."""
    obj = corpus("tail_call")
    dispatch = obj.get_program("xdp_dispatch")
    vm = Vm(obj, dispatch)
    pkt = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80, flags="S"))
    trace = vm.run_xdp(pkt).trace
    assert [t.target for t in trace.tail_calls] == ["xdp_tcp"]
    programs = {p.name: p for p in obj.programs}
    blocks = list(iter_executed_blocks(dispatch, trace, programs))
    assert {p.name for p, _ in blocks} == {"xdp_dispatch", "xdp_tcp"}
    assert sum(len(b) for _, b in blocks) == trace.insns
    with pytest.raises(RtcError, match="tail-calls 'xdp_tcp'"):
        list(iter_executed_blocks(dispatch, trace))


def test_walk_through_bpf_loop_callbacks():
    """bpf_loop with 3 iterations: the callback block is walked 3 times, then the caller."""
    loop = HELPER_IDS["loop"]
    p = prog(f"""
        mov %r1, 3
        lddw %r2, func cb
        mov %r3, 0
        mov %r4, 0
        call {loop}
        mov %r0, 2
        exit
    cb: mov %r0, 0
        exit
    """, functions=[("main", 0, 8), ("cb", 8, 2)])
    trace = Vm(None, p).run_xdp(bytes(64)).trace
    assert trace.insns == 5 + 3 * 2 + 2
    starts = [b.start for _, b in iter_executed_blocks(p, trace)]
    assert starts == [0, 8, 8, 8, 6]


def test_walk_rejects_a_trace_of_another_program():
    """A path that does not fit the program raises RtcError naming the counts."""
    p = prog("mov %r0, 1\nexit")
    with pytest.raises(RtcError, match="covers 2 instructions, the trace counts 5"):
        list(iter_executed_blocks(p, Trace(program="t", path=[0], insns=5)))


def test_memory_levels_tell_regions_apart():
    """ctx, packet, stack and map-value accesses are told apart; the bounds check is found."""
    p = prog("""
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 14
        jgt %r4, %r3, out
        ldxb %r5, [%r2+12]
        stxdw [%r10-16], %r5
        stw [%r10-4], 0
        mov %r2, %r10
        add %r2, -4
        lddw %r1, map_idx 0
        call 1
        jeq %r0, 0, out
        stxdw [%r0+0], %r5
        mov %r0, 3
        exit
    out:
        mov %r0, 1
        exit
    """)
    an = analyze(p)
    assert memory_levels(an) == {0: "ctx", 1: "ctx", 5: "packet", 6: "stack", 7: "stack",
                                 14: "map_value"}
    assert bounds_checks(an) == {4}


def test_memory_level_is_unknown_where_paths_disagree():
    """A load through a packet pointer on one path and a stack pointer on the other touches
    memory no one level names; helper arguments are not memory accesses of the slot."""
    p = prog("""
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 8
        jgt %r4, %r3, out
        ldxw %r5, [%r1+16]
        jeq %r5, 0, use
        mov %r2, %r10
        add %r2, -8
        stdw [%r2+0], 0
    use:
        ldxb %r0, [%r2+0]
        exit
    out:
        mov %r0, 1
        exit
    """)
    an = analyze(p)
    assert memory_levels(an) == {0: "ctx", 1: "ctx", 5: "ctx", 9: "stack", 10: "unknown"}
    assert bounds_checks(an) == {4}


def test_wire_rate_counts_preamble_and_gap():
    """10 GbE at 64 B frames is 14.88 Mpps: 84 B on the wire per frame."""
    assert wire_mpps(10) == pytest.approx(10e9 / (84 * 8) / 1e6)
    assert wire_mpps(100, 1518) == pytest.approx(100e9 / (1538 * 8) / 1e6)


def test_cost_estimate_is_json_and_counts_cores():
    """to_dict() survives json.dumps; cores_for rounds up."""
    est = CostEstimate(target="t", kind="cpu", program="p", source="model",
                       ns_per_packet=50.0, cycles_per_packet=None, mpps_per_unit=20.0,
                       units=4, mpps_total=80.0, line_rate_mpps=148.8, bound="compute",
                       reasons=("a",), details={"x": 1})
    assert json.loads(json.dumps(est.to_dict()))["reasons"] == ["a"]
    assert est.cores_for(40.0) == 2
    assert est.cores_for(41.0) == 3
    assert est.cores_for(0) == 0
