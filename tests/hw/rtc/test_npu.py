"""hw.rtc.npu: the multithreaded-core packet rate (feasibility: tests/hw/test_feasibility.py)."""

from __future__ import annotations

import json

import pytest

from ebpf.kernel_enums import MAP_TYPE_IDS
from ebpf.loader.program import MapDef
from ebpf.vm.machine import Vm
from ebpf.vm.trace import HelperCall, Trace
from hw.rtc.common import RtcError
from hw.rtc.npu import core_rate, estimate_npu, packet_cost
from hw.targets import load_target
from tests.conftest import ROOT
from tests.hw.rtc import corpus, prog, traces

NFP = load_target("nfp")

# A map lookup, a load and an atomic add through the value, a stack store:
# blocks [0-5] (ends at the call), [6] (branch), [7-8], [9-10].
LOOKUP = """
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_idx 0
    call 1
    jeq %r0, 0, +2
    ldxdw %r3, [%r0+0]
    lock add [%r0+0], %r3
    mov %r0, 2
    exit
"""


def c_line(name: str, needle: str) -> int:
    """The 1-based line of examples/xdp/<name>.c that contains ``needle``."""
    lines = (ROOT / "examples" / "xdp" / f"{name}.c").read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if needle in text)


# --- the cost formula ----------------------------------------------------------------------

def test_lookup_trace_by_hand_matches_the_vm():
    """The hand-built trace of LOOKUP (hit) is what the VM records."""
    p = prog(LOOKUP, map_indices=[0])
    array = MapDef("m", MAP_TYPE_IDS["array"], 4, 8, 1)
    trace = Vm([array], p).run_xdp(bytes(64)).trace
    assert (trace.path, trace.insns) == ([0, 7], 10)
    assert [h.name for h in trace.helper_calls] == ["map_lookup_elem"]


def hand_trace() -> Trace:
    return Trace(program="t", verdict=2, path=[0, 7], insns=10,
                 helper_calls=[HelperCall(5, 1, "map_lookup_elem", [0, 0], 1)])


def test_npu_formula_on_a_hand_built_trace():
    """C = 10 x 2, M = 300 (lookup) + 2 x 300 (value load, atomic): 800 / ((20 + 900) / 8)."""
    cost = packet_cost(NFP, prog(LOOKUP, map_indices=[0]), hand_trace())
    assert cost.compute_cycles == 20
    assert cost.accesses == {"stack": 1, "map_value": 2, "map": 1}
    assert cost.memory_cycles == 900
    mpps, cycles, bound = core_rate(800, 8, 20, 900)
    assert (mpps, cycles, bound) == (pytest.approx(800 / 115), 115, "memory")


def test_level_cycles_override_one_level():
    """Map values in local memory (0 cycles): M = 300, (20 + 300) / 8 = 40 cycles."""
    cost = packet_cost(NFP, prog(LOOKUP, map_indices=[0]), hand_trace(),
                       level_cycles={"map_value": 0})
    assert cost.memory_cycles == 300
    assert core_rate(800, 8, cost.compute_cycles, cost.memory_cycles)[1] == 40


def test_compute_bound_when_threads_hide_latency():
    """C = 100, M = 100, 8 threads: (C + M) / 8 = 25 < C, so 800 / 100 = 8 Mpps."""
    assert core_rate(800, 8, 100, 100) == (8.0, 100, "compute")


def test_non_map_helpers_count_as_compute():
    """get_prandom_u32 costs helper_cycles (100) on the core, not memory."""
    p = prog("call 7\nmov %r0, 2\nexit")
    trace = Vm(None, p).run_xdp(bytes(64)).trace
    cost = packet_cost(NFP, p, trace)
    assert (cost.compute_cycles, cost.memory_cycles) == (3 * 2 + 100, 0)


def test_estimate_scales_cores_and_caps_at_line_rate():
    """xdp_drop: 2 insns = 4 cycles, 200 Mpps per core, 48 cores, capped at 40 GbE."""
    obj = corpus("xdp_drop")
    est = estimate_npu(NFP, obj, obj.programs[0], traces(obj, count=3))
    assert est.cycles_per_packet == 4
    assert est.mpps_per_unit == pytest.approx(200)
    assert est.units == 48
    assert est.mpps_total == pytest.approx(40e9 / (84 * 8) / 1e6)
    assert est.bound == "line rate" and est.feasible
    json.dumps(est.to_dict())


def test_estimate_refuses_other_kinds():
    """estimate_npu on the hxdp profile raises RtcError."""
    obj = corpus("xdp_drop")
    with pytest.raises(RtcError, match="'hxdp' is a vliw target, not npu"):
        estimate_npu(load_target("hxdp"), obj, obj.programs[0], traces(obj, count=1))
