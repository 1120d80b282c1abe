"""The pipe NIC's cost from the program's mapping (the mapper passed as the simulator's
``nic_cost_for`` hook, as the command line does): punts per packet, rate, latency."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ebpf.loader.elf import load
from ebpf.maps.state import dump_state
from hw.pipeline import PipelineModel, load_config
from hw.targets import load_target
from offload.equivalence import _vm, check_equivalence, load_scenario, scenario_cpus
from offload.mapper import map_program
from offload.sim_cost import mapped_cost, mapped_nic_cost
from sim import engine_fast, engine_simpy
from sim.mapping import MappingCache
from sim.model import NicCost, TraceCost
from sim.scenario import Scenario, prepare, run
from sim.spec import parse_traffic
from sim.traffic import generate
from tests.conftest import ROOT, corpus_object

SCENARIOS = ROOT / "examples" / "xdp" / "scenarios"
MIXED = "imix@100G,proto=udp/tcp/icmp/udp6/tcp6/random,flows=256"
UNBOUNDED = {"link": None, "nic": None, "pcie": None, "host_ring": None}


def _scenario(name: str, traffic: str, packets: int, **kw) -> Scenario:
    return Scenario(program=str(corpus_object(name)), maps=str(SCENARIOS / f"{name}.json"),
                    target=kw.pop("target", "pipe"), traffic=traffic, packets=packets,
                    seed=kw.pop("seed", 1), host_cost="model", **kw)


def _model_punts(name: str, reps: list[bytes]) -> tuple[list[bool], list[TraceCost]]:
    """Oracle: the mapped configuration on a PipelineModel whose maps start from the
    scenario (prepared as offload.equivalence does), the packets in order; and the VM's
    traces of the same packets for the old helper rule."""
    obj = load(corpus_object(name))
    report = map_program(obj, "pipe", equivalence=False)
    assert report.config is not None
    scenario = load_scenario(SCENARIOS / f"{name}.json")
    vm, maps = _vm(obj, report.program, scenario, scenario_cpus(scenario))
    config = load_config(report.config)
    model = PipelineModel(config)
    bound = {m.name for m in config.maps}
    if bound:
        model.state.load_maps(dump_state({n: maps[n] for n in bound}))
    punts = [model.process(p).punted for p in reps]
    traces = [TraceCost.from_trace(vm.run_xdp(p).trace) for p in reps]
    return punts, traces


@pytest.mark.parametrize("name", ["katran_lb", "lpm_router"])
def test_punted_share_is_the_pipeline_models(name):
    """Packets reaching the host by a punt = the pipeline model's punts on the same packets
    (not the old rule: punt when the path calls a helper the target lacks)."""
    sc = _scenario(name, MIXED, 6000, queues=dict(UNBOUNDED))
    doc = run(sc, progress_enabled=False, nic_cost_for=mapped_nic_cost)
    traffic = generate(parse_traffic(MIXED, line_rate_gbps=100), 6000, 1, line_rate_gbps=100)
    packets = [traffic.reps[r] for r in traffic.rep.tolist()]
    punts, traces = _model_punts(name, packets)
    expected = int(np.sum(punts))
    m = doc["metrics"]
    assert 0 < expected < 6000  # a partial mapping on mixed traffic: some, not all
    assert m["punted"]["packets"] == expected
    assert m["finished_on"]["host_punted"] == expected  # unbounded queues: all get there
    assert m["lost"]["total"] == 0
    assert sum(r["packets"] for r in doc["classes"] if r["punted"]) == expected
    target = load_target("pipe")
    helpers = np.array([NicCost(punt="helpers").is_punted(target, t) for t in traces])
    assert int(helpers.sum()) != expected


def test_punts_agree_with_the_equivalence_check():
    """The punts the simulator counts on every packet are the equivalence check's (which
    runs punted packets on a host VM and shares the maps back)."""
    sc = _scenario("katran_lb", MIXED, 2000)
    prep = prepare(sc, nic_cost_for=mapped_nic_cost)
    obj = load(corpus_object("katran_lb"))
    report = map_program(obj, "pipe", equivalence=False)
    eq = check_equivalence(obj, report.program, report.config,
                           load_scenario(SCENARIOS / "katran_lb.json"),
                           [prep.traffic.reps[r] for r in prep.traffic.rep.tolist()])
    assert eq.ok, eq.failure
    assert prep.behaviour is not None
    punted = np.array([o.punted for o in prep.outcomes])[prep.behaviour.klass]
    assert eq.punted == int(punted.sum()) > 0


def test_host_only_punts_everything():
    """A host-only mapping sends every packet to the host and says so."""
    doc = run(_scenario("globals", "64B@10G", 2000, queues=dict(UNBOUNDED)),
              progress_enabled=False, nic_cost_for=mapped_nic_cost)
    assert doc["nic_cost"]["verdict"] == "host-only" and doc["nic_cost"]["punt"] == "all"
    assert doc["nic_cost"]["source"].startswith("mapper: host-only on pipe (")
    assert doc["metrics"]["punted"]["packets"] == 2000
    assert doc["metrics"]["finished_on"] == {"nic": 0, "host": 2000, "host_punted": 2000}


def _line_pps(size: int) -> float:
    return 100e9 / ((size + 20) * 8)  # 100 Gb/s, preamble + SFD + gap = 20 B


@pytest.mark.parametrize("name, traffic, size", [
    ("icmp_echo", "64B@100G,proto=icmp", 64),  # two passes: half the clock, < line rate
    ("xdp_tx", "64B@100G", 64),                # one pass: the line rate binds
    ("xdp_tx", "69B@100G", 69),                # 65 bytes on a 512-bit bus: two beats
])
def test_full_program_saturated_rate(name, traffic, size):
    """At saturation the NIC sustains clock / max(passes, bus beats), capped by the line."""
    target = load_target("pipe")
    passes = max(1, map_program(corpus_object(name), "pipe", equivalence=False).passes)
    beats = -(-(size - 4) * 8 // target.packet.bus_bits)
    nic_pps = target.clock_mhz * 1e6 / max(passes, beats)
    expected = min(_line_pps(size), nic_pps)
    doc = run(_scenario(name, traffic, 40_000), progress_enabled=False,
              nic_cost_for=mapped_nic_cost)
    m = doc["metrics"]
    assert doc["nic_cost"]["verdict"] == "full" and m["punted"]["packets"] == 0
    assert set(m["verdicts"]) == {"XDP_TX"}  # every packet leaves from the NIC
    assert m["achieved"]["mpps"] * 1e6 == pytest.approx(expected, rel=0.01)
    nic_bound = nic_pps < _line_pps(size)
    assert (m["lost"]["nic"] > 0) == nic_bound
    assert doc["nic_cost"]["passes"] == passes


@pytest.mark.parametrize("name, traffic", [("icmp_echo", "64B@1G,proto=icmp"),
                                           ("xdp_tx", "64B@1G")])
def test_full_program_latency(name, traffic):
    """Unloaded, a packet takes link + issue + parser + passes x physical stages x stage
    cycles + recirculations + deparser (docs/pipeline.md section 8), to the picosecond."""
    target = load_target("pipe")
    report = map_program(corpus_object(name), "pipe", equivalence=False)
    t = report.config["target"]
    passes = max(1, report.passes)
    latency = (t["parser_cycles"] + passes * target.stages.count * target.stages.latency_cycles
               + (passes - 1) * target.recirculation.penalty_cycles + t["deparser_cycles"])
    if report.resources["timing"] is not None:  # the mapper's own figure agrees
        assert report.resources["timing"]["latency_cycles"] == latency
    prep = prepare(_scenario(name, traffic, 500), nic_cost_for=mapped_nic_cost)
    res = engine_fast.run(prep.workload)
    cycle_ps = 1e6 / target.clock_mhz
    expect_ps = (64 + 20) * 8 * 10 + passes * cycle_ps + latency * cycle_ps  # link at 100G
    assert np.all(res.depart_ps - prep.workload.arrival_ns * 1000 == round(expect_ps))
    assert prep.nic_cost is not None and prep.nic_cost.latency_cycles == latency


@pytest.mark.parametrize("name, traffic", [
    ("katran_lb", "64B@100G,proto=udp/tcp/icmp/udp6/tcp6/random,flows=64,poisson"),
    ("icmp_echo", "imix@100G,proto=icmp/udp,flows=64"),
])
def test_engines_agree_on_mapped_cost(name, traffic):
    """Both engines, the mapping's cost (passes, latency, punts), small queues: identical."""
    sc = _scenario(name, traffic, 6000,
                   queues={"link": None, "nic": 16, "pcie": 8, "host_ring": 8}, host_cores=1)
    prep = prepare(sc, nic_cost_for=mapped_nic_cost)
    cost = prep.nic_cost
    assert cost is not None and cost.punt == "model"
    cycle_ps = 1e6 / prep.target.clock_mhz
    c = prep.workload.classes
    assert np.all(c.nic_ps == round(cost.passes * cycle_ps))
    assert np.all(c.nic_delay_ps == round(cost.latency_cycles * cycle_ps))
    punted = np.array([o.punted for o in prep.outcomes])
    assert np.array_equal(c.to_host, punted | (c.verdict == 2))
    fast = engine_fast.run(prep.workload, batch=97)
    ref = engine_simpy.run(prep.workload)
    assert np.array_equal(fast.depart_ps, ref.depart_ps)
    assert np.array_equal(fast.lost_at, ref.lost_at)
    assert (fast.lost_at >= 0).any()  # congested: the queues matter


def test_mapping_cache(tmp_path):
    """One mapping per (object, program, target); a rebuilt object is mapped again."""
    obj = tmp_path / "xdp_tx.o"
    obj.write_bytes(corpus_object("xdp_tx").read_bytes())
    target = load_target("pipe")
    cache = MappingCache()
    first = mapped_cost(str(obj), None, target, cache)
    assert mapped_cost(str(obj), None, target, cache) is first and cache.mapped == 1
    mapped_cost(str(obj), None, load_target("rmt"), cache)
    assert cache.mapped == 2
    st = obj.stat()
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    again = mapped_cost(str(obj), None, target, cache)
    assert cache.mapped == 3 and again is not first and again == first


def test_full_program_punts_frames_beyond_the_window():
    """A full mapping still punts what the pipeline cannot hold: frames longer than its
    frame buffer (config target frame_end, bytes as XDP sees them, FCS stripped)."""
    report = map_program(corpus_object("xdp_tx"), "pipe", equivalence=False)
    frame_end = report.config["target"]["frame_end"]
    traffic = "mix(64:1,1518:1,9000:1)@10G,flows=64"
    doc = run(_scenario("xdp_tx", traffic, 3000), progress_enabled=False,
              nic_cost_for=mapped_nic_cost)
    sizes = generate(parse_traffic(traffic, line_rate_gbps=100), 3000, 1,
                     line_rate_gbps=100).size
    expected = int(np.count_nonzero(sizes - 4 > frame_end))
    assert doc["nic_cost"]["verdict"] == "full"
    assert 0 < expected < 3000 and doc["metrics"]["punted"]["packets"] == expected


def test_a_mapping_whose_equivalence_failed_is_never_simulated(monkeypatch):
    """A planted equivalence failure: the mapping is host-only and the simulator punts every
    packet (its configuration never decides a packet), and the source says why."""
    import dataclasses

    import offload.equivalence as equivalence

    real = equivalence.check_equivalence

    def planted(*args, **kw):
        return dataclasses.replace(real(*args, **kw), ok=False, failure="planted: packet 3")

    monkeypatch.setattr(equivalence, "check_equivalence", planted)
    prep = prepare(_scenario("xdp_tx", "64B@10G", 300), nic_cost_for=mapped_nic_cost)
    cost = prep.nic_cost
    assert cost is not None and cost.punt == "all" and cost.verdict == "host-only"
    assert "equivalence failed: planted: packet 3" in cost.source
    assert all(o.punted for o in prep.outcomes)


LOADER_SIZED_STATE = {"maps": {}, "max_entries": {"counts": 8}}


def test_loader_sized_map_maps_with_the_state_size(tmp_path):
    """A map sized by its loader: sim on pipe maps it with the state's max_entries (the
    mapper's equivalence, the VM against the pipeline model, holds: the mapping is full)
    and simulates its configuration."""
    import json

    from tests.conftest import compile_bpf
    from tests.ebpf.test_differential import LOADER_SIZED_SOURCE

    obj = compile_bpf(tmp_path, LOADER_SIZED_SOURCE, "sized")
    state = tmp_path / "sized.json"
    state.write_text(json.dumps(LOADER_SIZED_STATE))
    sc = Scenario(program=str(obj), maps=str(state), target="pipe", traffic="64B@10G",
                  packets=200, seed=1, host_cost="model")
    prep = prepare(sc, nic_cost_for=mapped_nic_cost)
    assert prep.nic_cost is not None and prep.nic_cost.verdict == "full"
    assert prep.nic_cost.punt == "model"


@pytest.mark.parametrize("name", ["lpm_router", "katran_lb", "parser_counters", "firewall"])
def test_remembered_punts_equal_the_model_on_every_packet(name, monkeypatch):
    """PipelinePunts' decisions, remembered per distinct packet while the pipeline's state
    is unchanged, equal the model run on every packet (remembering switched off); a
    program whose pipeline writes no register runs fewer packets through the model."""
    import sim.mapping
    import sim.scenario

    made: list[sim.mapping.PipelinePunts] = []
    real = sim.mapping.PipelinePunts

    def tracked(*args, remember: bool = True):
        punts = real(*args)
        if not remember:
            punts._known = None
        made.append(punts)
        return punts
    sc = _scenario(name, MIXED, 1500)
    cost = mapped_nic_cost(sc.program, None, load_target("pipe"))
    assert cost.punt == "model"  # mapped: the model decides every punt
    traffic = generate(parse_traffic(MIXED, line_rate_gbps=100), 1500, 1, line_rate_gbps=100)
    monkeypatch.setattr(sim.scenario, "PipelinePunts", lambda *a: tracked(*a))
    fast = sim.scenario.run_behaviour(sc, traffic, "vm", cost)
    monkeypatch.setattr(sim.scenario, "PipelinePunts", lambda *a: tracked(*a, remember=False))
    slow = sim.scenario.run_behaviour(sc, traffic, "vm", cost)
    assert fast.klass.tolist() == slow.klass.tolist()
    assert (fast.costs, fast.verdicts, fast.counts) == (slow.costs, slow.verdicts, slow.counts)
    assert made[0].punts == made[1].punts and made[1].modelled == 1500
    writes = any(st.stateful for st in made[0].config.stages)
    assert made[0].modelled < 1500 or writes
