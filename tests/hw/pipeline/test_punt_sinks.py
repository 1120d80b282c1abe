"""The static bound on where a configuration can punt (hw.pipeline.punt_sinks) against the
pipeline model: a configuration it calls punt-free punts exactly the frames longer than the
window on every packet the model is given; the places it lists are the real ones."""

from __future__ import annotations

import random

import pytest

from hw.pipeline import PipelineModel, load_config
from hw.pipeline.punt_sinks import decisive_maps, punt_sinks
from sim.packets import random_packets
from tests.budget import examples

EXTRACTS = [(0, 12, 2), (1, 14, 1), (2, 23, 1), (3, 16, 4)]  # container, offset, size


def _packets(seed: int, n: int = 150) -> list[bytes]:
    """Random packets, the extremes of every byte (all zeros, all ones) and frames just
    under and over the target's frame_end (3,520 bytes)."""
    rng = random.Random(seed)
    out = [p for p in random_packets(n, seed) if len(p) >= 14]
    out += [bytes(64), b"\xff" * 64, b"\xff" * 300, bytes(300), b"\xff" * 3520,
            b"\xff" * 3521, bytes(9000)]
    out += [bytes(rng.randrange(256) for _ in range(rng.randrange(14, 400)))
            for _ in range(20)]
    return out


def _doc(stages: list[dict]) -> dict:
    return {"format": "xdp-offload-pipeline", "version": 1, "program": "test",
            "target": {"name": "pipe", "mul_max_bits": 64, "div": "full"},
            "parser": {"extracts": [{"container": c, "offset": o, "size": s}
                                    for c, o, s in EXTRACTS]},
            "stages": stages, "deparser": {"default_verdict": 2, "punt_containers": []}}


def _offset_chain(rng: random.Random) -> list[dict]:
    """Stages of random ALU ops on the extracted fields (some predicated by a gateway on a
    field), ending in variable-offset window loads and stores whose offsets come from them:
    near the window's edge, so that some configurations can fault and some cannot."""
    stages = []
    for _ in range(rng.randrange(2, 5)):
        ops = []
        for dst in rng.sample(range(4, 8), rng.randrange(1, 4)):
            a = rng.randrange(0, 8)
            kind = rng.choice(["mov", "and", "lsh", "rsh", "add", "sub", "le", "ext", "or",
                               "sel", "mul", "xor"])
            op = {"slot": dst, "op": kind, "a": a, "width": rng.choice([32, 64])}
            if kind in ("le", "ext"):
                op |= {"size": rng.choice([2, 4] if kind == "le" else [1, 2, 4]), "width": 64}
            elif rng.random() < 0.5:
                op["b"] = rng.randrange(0, 8)
            else:
                op["imm"] = rng.choice([0, 1, 2, 3, 15, 60, 63, 200, 255])
            if rng.random() < 0.3:
                op["pred"] = 1
            ops.append(op)
        stages.append({"gateways": [{"dst": 1, "cmp": "ugt", "a": 1, "imm": 0x45}],
                       "ops": ops})
    window = []
    for slot in (8, 58):
        op = "wldv" if slot == 8 else "wstv"
        entry = {"slot": slot, "op": op, "a": rng.randrange(4, 8),
                 "offset": rng.choice([0, 14, 100, 180, 250]), "size": rng.choice([1, 2, 4])}
        if op == "wstv":
            entry["b"] = 0
        window.append(entry)
    stages.append({"ops": window})
    return stages


def _punts(doc: dict, packets: list[bytes], maps: dict | None = None) -> list[bool]:
    model = PipelineModel(load_config(doc))
    if maps is not None:
        model.state.load_maps(maps)
    return [model.process(p).punted for p in packets]


@pytest.mark.parametrize("seed", range(examples(8)))
def test_punt_free_configurations_punt_only_long_frames(seed):
    """Random offset computations feeding window accesses: where no place is listed, the
    model punts exactly the frames longer than frame_end; where a window access is listed,
    its configuration is the kind that faults (both kinds occur)."""
    rng = random.Random(seed)
    packets = _packets(seed)
    kinds = {"free": 0, "listed": 0}
    for _ in range(15):
        doc = _doc(_offset_chain(rng))
        config = load_config(doc)
        sinks = punt_sinks(config)
        punts = _punts(doc, packets)
        long = [len(p) > config.target.frame_end for p in packets]
        if not sinks:
            kinds["free"] += 1
            assert punts == long
        else:
            kinds["listed"] += 1
            assert all("window" in s for s in sinks), sinks
    assert kinds["free"] and kinds["listed"], kinds


def test_random_unit_configurations_listed_when_they_punt():
    """On the RTL testbenches' random configurations (every unit), a configuration the
    model punts a short frame of is never called punt-free."""
    from rtl_models.tbkit.configs import random_config

    packets = _packets(7, 80)
    free = 0
    for seed in range(examples(40)):
        rng = random.Random(seed)
        doc = random_config(rng, packets, stages=1 + seed % 3, adjust=seed % 2 == 0)
        config = load_config(doc)
        punts = _punts(doc, packets)
        if not punt_sinks(config):
            free += 1
            assert punts == [len(p) > config.target.frame_end for p in packets], seed
    assert free  # some are punt-free: the check above ran


@pytest.mark.parametrize("stage, why", [
    ({"ops": [{"slot": 8, "op": "wld", "offset": 254, "size": 4}]}, "may leave the window"),
    ({"ops": [{"slot": 8, "op": "wldv", "a": 3, "offset": 0, "size": 1}]},
     "may leave the window"),
    ({"ops": [{"slot": 53, "op": "mov", "imm": 16, "pred": 1}]}, "writes punt_reason"),
    ({"ops": [{"slot": 8, "op": "adjh", "imm": 4}]}, "adjustment"),
])
def test_each_kind_of_punt_is_listed(stage, why):
    """A window access that can leave the window, a write of punt_reason and a head
    adjustment are listed, and the model does punt a short frame of each."""
    doc = _doc([{"gateways": [{"dst": 1, "cmp": "ugt", "a": 1, "imm": 0x45}]}, stage])
    sinks = punt_sinks(load_config(doc))
    assert len(sinks) == 1 and why in sinks[0]
    if why != "adjustment":  # adjh by +4 never faults: listed because positions move
        assert any(_punts(doc, _packets(1))[:-2])


def test_bounded_offsets_are_not_listed():
    """A variable offset bounded by its ops (a nibble x 4 + 14, the IPv4 header length)
    keeps its accesses in the window: nothing is listed, whatever the packet."""
    doc = _doc([{"ops": [{"slot": 4, "op": "and", "a": 1, "imm": 15, "width": 32}]},
                {"ops": [{"slot": 4, "op": "lsh", "a": 4, "imm": 2, "width": 32}]},
                {"ops": [{"slot": 5, "op": "add", "a": 4, "imm": 14}]},
                {"ops": [{"slot": 8, "op": "wldv", "a": 5, "offset": 12, "size": 4}]}])
    assert punt_sinks(load_config(doc)) == []
    packets = _packets(2)
    assert _punts(doc, packets) == [len(p) > 3520 for p in packets]


def _scenario_maps(name: str, report) -> dict:
    """The bound maps of the program's scenario, as sim.mapping.PipelinePunts loads them."""
    from ebpf.loader.elf import load as load_elf
    from ebpf.maps.state import dump_state
    from offload.equivalence import _vm, load_scenario, scenario_cpus
    from tests.conftest import ROOT, corpus_object

    scenario = load_scenario(ROOT / "examples" / "xdp" / "scenarios" / f"{name}.json")
    _vm_, maps = _vm(load_elf(corpus_object(name)), report.program, scenario,
                     scenario_cpus(scenario))
    bound = {m.name for m in load_config(report.config).maps}
    return dump_state({n: maps[n] for n in bound})


@pytest.mark.parametrize("name", ["firewall", "parser_counters", "lpm_router", "katran_lb"])
def test_corpus_mappings(name):
    """The corpus mappings on pipe: firewall's (full) is punt-free; a partial mapping that
    punts on mixed traffic (lpm_router, katran_lb) is not; whatever the answer, a punt-free
    one punts only long frames (random and mixed-protocol packets)."""
    from ebpf.loader.elf import load as load_elf
    from hw.targets import load_target
    from offload.mapper import map_program
    from tests.conftest import corpus_object

    report = map_program(load_elf(corpus_object(name)), load_target("pipe"),
                         equivalence=False)
    assert report.config is not None
    config = load_config(report.config)
    sinks = punt_sinks(config)
    from sim.spec import parse_traffic
    from sim.traffic import generate

    mixed = generate(parse_traffic("imix@100G,proto=udp/tcp/icmp/udp6/tcp6/random,flows=64",
                                   line_rate_gbps=100), 400, 3, line_rate_gbps=100)
    packets = _packets(3, 200) + [mixed.reps[r] for r in mixed.rep.tolist()]
    punts = _punts(report.config, packets, _scenario_maps(name, report))
    if name == "firewall":
        assert sinks == []
    if not sinks:
        assert punts == [len(p) > config.target.frame_end for p in packets]
    if name in ("lpm_router", "katran_lb"):
        assert sinks and any(p for p, q in zip(punts, packets, strict=True) if len(q) <= 3520)


def _scramble_registers(model: PipelineModel, rng: random.Random) -> None:
    for regs in model.state.registers.values():
        for a in range(len(regs)):
            regs[a] = rng.getrandbits(64)


@pytest.mark.parametrize("seed", range(examples(6)))
def test_registers_no_unit_fetches_never_change_a_punt(seed):
    """On the RTL testbenches' random configurations (tables, stateful units, externs),
    with the fetches taken out of half of them: where ``decisive_maps`` says no unit
    fetches, every packet's punt (and verdict) on registers scrambled before each packet
    equals the model's on its own registers, in order; where a unit fetches it says so."""
    from rtl_models.tbkit.configs import random_config

    rng = random.Random(seed)
    packets = _packets(seed, 60)
    checked = 0
    for k in range(8):
        doc = random_config(rng, packets, stages=1 + k % 3, adjust=k % 2 == 0)
        cut = k % 2 == 0
        for st in doc["stages"]:
            for u in st["stateful"]:
                if cut:
                    u.pop("fetch", None)
        fetches = any("fetch" in u for st in doc["stages"] for u in st["stateful"])
        config = load_config(doc)
        maps, says = decisive_maps(config)
        assert says == fetches and maps == frozenset()
        if fetches:
            continue
        checked += 1
        plain, scrambled = PipelineModel(config), PipelineModel(config)
        for p in packets:
            _scramble_registers(scrambled, rng)
            want, got = plain.process(p), scrambled.process(p)
            assert (got.punted, got.punt_reason, got.action) == \
                (want.punted, want.punt_reason, want.action)
    assert checked  # the property was exercised


def test_a_fetched_register_is_decisive():
    """A stateful unit that fetches a register into the container a variable window load
    uses as its offset: ``decisive_maps`` says so, and the register's value does decide
    whether the packet punts (the reason the rule keeps such configurations exact)."""
    doc = _doc([{"stateful": [{"unit": 0, "op": "read", "words": 256, "size": 8, "offset": 0,
                               "index": {"container": 1}, "base": 0, "stride": 1,
                               "fetch": 4, "init": []}]},
                {"ops": [{"slot": 8, "op": "wldv", "a": 4, "offset": 0, "size": 1}]}])
    config = load_config(doc)
    assert decisive_maps(config) == (frozenset(), True)
    model = PipelineModel(config)
    packet = bytes(64)
    assert not model.process(packet).punted
    model.state.registers[(0, 0)][0] = 1000  # an offset past the 256-byte window
    assert model.process(packet).punted


@pytest.mark.parametrize("name, target", [("bpf2bpf_loop", "pipe"), ("bpf2bpf_loop", "rmt"),
                                          ("katran_lb", "pipe")])
def test_corpus_maps_outside_the_decisive_ones_never_change_a_punt(name, target):
    """A corpus mapping's bound maps that ``decisive_maps`` leaves out (bpf2bpf_loop's
    l4_hits counters: stateful adds without fetch) hold random contents, the listed ones
    (katran_lb's vip_map table) the scenario's, and the registers are scrambled before each
    packet: every packet's punt equals the model's on the scenario's state, on random and
    mixed-protocol packets."""
    from ebpf.loader.elf import load as load_elf
    from hw.targets import load_target
    from offload.mapper import map_program
    from sim.spec import parse_traffic
    from sim.traffic import generate
    from tests.conftest import corpus_object

    report = map_program(load_elf(corpus_object(name)), load_target(target),
                         equivalence=False)
    config = load_config(report.config)
    decisive, fetches = decisive_maps(config)
    bound = {m.name for m in config.maps}
    assert not fetches and bound
    assert decisive == ({"vip_map"} if name == "katran_lb" else set())
    state = _scenario_maps(name, report)
    rng = random.Random(5)
    noisy = {"maps": {n: entries if n in decisive else [
        {**e, **({"value": rng.randbytes(len(bytes.fromhex(e["value"]))).hex()}
                 if "value" in e else {})} for e in entries]
        for n, entries in state["maps"].items()}}
    mixed = generate(parse_traffic("imix@100G,proto=udp/tcp/icmp/udp6/tcp6/random,flows=64",
                                   line_rate_gbps=100), 300, 4, line_rate_gbps=100)
    packets = _packets(4, 100) + [mixed.reps[r] for r in mixed.rep.tolist()]
    plain, other = PipelineModel(config), PipelineModel(config)
    plain.state.load_maps(state)
    other.state.load_maps(noisy)
    for p in packets:
        _scramble_registers(other, rng)  # registers no unit fetches
        assert other.process(p).punted == plain.process(p).punted
