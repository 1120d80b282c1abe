"""The generated stages (hw.pipeline.fast, ``PipelineModel.process``) against the
interpreted reference (``process_reference``): the same results and state, packet by
packet, on random configurations exercising every unit and on the corpus programs'
mappings with their scenarios' state."""

from __future__ import annotations

import random

import pytest

from hw.pipeline import PipelineModel, load_config
from sim.packets import random_packets
from tests.budget import examples


def _state(model: PipelineModel) -> tuple:
    st = model.state
    return ({k: list(v) for k, v in st.registers.items()}, dict(st.rng))


def _same_on(doc: dict, packets: list[bytes], load: object = None) -> int:
    """Run ``packets`` through a fast and a reference model of ``doc``; every result and
    the state after each packet must agree. Returns how many packets punted."""
    fast, ref = PipelineModel(load_config(doc)), PipelineModel(load_config(doc))
    if load is not None:
        fast.state.load_maps(load)
        ref.state.load_maps(load)
    punts = 0
    for i, p in enumerate(packets):
        a = fast.process(p, ingress_ifindex=1 + i % 3, rx_queue=i % 2, cycle=7 * i)
        b = ref.process_reference(p, ingress_ifindex=1 + i % 3, rx_queue=i % 2, cycle=7 * i)
        assert a == b, f"packet {i}"
        assert _state(fast) == _state(ref), f"state after packet {i}"
        punts += a.punted
    return punts


@pytest.mark.parametrize("seed", range(examples(12)))
def test_random_configs_equal_reference(seed):
    """Random three-stage configurations using every unit (gateways, tables, VLIW ops,
    window loads and stores, adjustments, stateful units, externs) on the test packets."""
    from rtl_models.tbkit.configs import random_config

    rng = random.Random(seed)
    packets = [p for p in random_packets(60, seed) if len(p) >= 14]
    for _ in range(4):
        _same_on(random_config(rng, packets, stages=3), packets)


@pytest.mark.parametrize("name", ["firewall", "parser_counters", "rate_limiter"])
def test_corpus_mappings_equal_reference(name):
    """A corpus program's mapping onto the pipe target, its scenario's maps in the tables
    and registers (as ``sim.mapping.PipelinePunts`` loads them), on 600 random packets."""
    from ebpf.differential import Scenario
    from ebpf.executor import open_executor
    from ebpf.loader.elf import load as load_elf
    from ebpf.maps.state import dump_state
    from hw.targets import load_target
    from offload.mapper import map_program
    from tests.conftest import ROOT, corpus_object

    path = corpus_object(name)
    scen = ROOT / "examples" / "xdp" / "scenarios" / f"{name}.json"
    state = str(scen) if scen.exists() else None
    report = map_program(str(path), load_target("pipe"), None, scenario=state)
    assert report.config is not None, f"{name}: no configuration ({report.verdict})"
    bound = sorted(m.name for m in load_config(report.config).maps)
    with open_executor("vm", str(path), load_elf(str(path)), None,
                       Scenario.load(scen) if state else None) as ex:
        load = dump_state({n: ex.maps[n] for n in bound}) if bound else None
    packets = [p for p in random_packets(600, 5) if len(p) >= 14]
    _same_on(report.config, packets, load)
