"""hw.cost.hxdp_bench: the hXDP microbenchmark programs do what the paper describes (the VM
is the oracle), and their cost is the VLIW model's."""

from __future__ import annotations

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.kernel_enums import MAP_TYPE_IDS
from ebpf.loader.program import ElfObject, MapDef, ProgramDef
from ebpf.vm.machine import Vm
from hw.cost import hxdp_bench as hb
from hw.rtc.vliw import OPTIMIZATIONS, packet_cycles, schedule_program
from hw.targets import load_target

HXDP = load_target("hxdp")


def runs(text: str, key_bytes: int = 0, times: int = 2):
    """VM traces of ``times`` runs of the benchmark on hb.PACKET, maps kept between runs."""
    maps = [MapDef("m", MAP_TYPE_IDS["hash"], key_bytes, 8, 256)] if key_bytes else []
    p = ProgramDef("b", "xdp", "xdp", assemble_insns(text), [], {}, [0] if maps else [])
    vm = Vm(ElfObject("<t>", [p], maps), p)
    return p, [vm.run_xdp(hb.PACKET).trace for _ in range(times)]


@pytest.mark.parametrize(("text", "verdict", "helpers"), [
    (hb.drop(), 1, []), (hb.tx(), 3, []), (hb.redirect(), 4, ["redirect"]),
    (hb.helper_calls(3), 3, ["csum_diff"] * 3),
])
def test_benchmarks_verdicts_and_calls(text, verdict, helpers):
    """Each benchmark returns its verdict and calls exactly the helpers it should."""
    _, (trace, _) = runs(text)
    assert trace.verdict == verdict
    assert [h.name for h in trace.helper_calls] == helpers


@pytest.mark.parametrize("key", [1, 2, 4, 8, 16])
def test_map_benchmark_inserts_then_counts(key):
    """The first packet misses and inserts its key, the next ones hit and count; XDP_TX."""
    _, traces = runs(hb.map_access(key), key_bytes=key, times=3)
    assert [h.name for h in traces[0].helper_calls] == ["map_lookup_elem", "map_update_elem"]
    assert all([h.name for h in t.helper_calls] == ["map_lookup_elem"] for t in traces[1:])
    assert all(t.verdict == 3 for t in traces)


def test_run_is_the_vliw_model_in_steady_state():
    """run() gives packet_cycles of the second run and clock / cycles."""
    p, (_, steady) = runs(hb.map_access(4), key_bytes=4)
    cost = hb.run(HXDP, hb.map_access(4), key_bytes=4)
    assert cost.cycles == packet_cycles(schedule_program(p, HXDP), steady, HXDP).cycles
    assert cost.mpps == pytest.approx(HXDP.clock_mhz / cost.cycles)


def test_each_helper_call_adds_the_same_cycles():
    """Past the transmit bound, every extra csum_diff call adds one row (its arguments are
    already in r1-r5: helper_args)."""
    cycles = [hb.run(HXDP, hb.helper_calls(n)).cycles for n in (10, 20, 30, 40)]
    steps = {b - a for a, b in zip(cycles, cycles[1:], strict=False)}
    assert steps == {10}
    opts = tuple(o for o in OPTIMIZATIONS if o != "helper_args")
    off = [hb.run(HXDP, hb.helper_calls(n), optimizations=opts).cycles for n in (10, 20)]
    assert off[1] - off[0] > 10  # without it, each call's five argument moves cost rows
