"""The equivalence gate: the pipeline (+ host for punts) against the VM, and what it catches."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import pytest

from ebpf.analysis import analyze
from ebpf.loader.elf import load
from offload.equivalence import (
    check_equivalence,
    load_scenario,
    scenario_cpus,
    scenario_path,
)
from offload.mapper import map_program, written_maps
from sim.packets import random_packets
from tests.conftest import ROOT, corpus_object

PACKETS = 600


@cache
def packets() -> list[bytes]:
    return random_packets(PACKETS, seed=1)


@cache
def mapped(name: str, program: str | None = None) -> tuple:
    path = corpus_object(name)
    report = map_program(path, "pipe", program, packets=packets(), time_limit_s=2)
    obj = load(path)
    prog = obj.get_program(program)
    return obj, prog, report, load_scenario(scenario_path(path)), written_maps(
        analyze(prog, obj))


def run(name: str, config: dict, program: str | None = None):
    obj, prog, _, scen, written = mapped(name, program)
    return check_equivalence(obj, prog.name, config, scen, packets(), written)


def test_mapped_config_is_equivalent():
    """The mapper's configuration of firewall equals the VM, maps included."""
    _, _, report, _, _ = mapped("firewall")
    res = run("firewall", report.config)
    assert res.ok, res.failure
    assert res.packets + res.refused == PACKETS
    assert res.punt_reasons.get(3, 0) == res.punted  # only frames too long


def test_wrong_default_verdict_is_caught_with_the_packet():
    """Flip the deparser's default verdict: the first packet that relies on it is named."""
    _, _, report, _, _ = mapped("tail_call", "xdp_tcp")
    bad = copy.deepcopy(report.config)
    bad["deparser"]["default_verdict"] ^= 3
    res = run("tail_call", bad, "xdp_tcp")
    assert not res.ok
    assert res.failure.startswith("packet ") and "verdict" in res.failure


def test_wrong_counter_increment_is_caught_in_the_map_state():
    """A stateful add of 2 instead of 1: packets agree, the final map state does not."""
    _, _, report, _, _ = mapped("adjust_tail")
    bad = copy.deepcopy(report.config)
    units = [u for st in bad["stages"] for u in st["stateful"]]
    assert units and units[0]["op"] == "add"
    units[0]["imm"] = 2
    res = run("adjust_tail", bad)
    assert not res.ok
    assert res.failure.startswith("map 'trunc_stats'")


def test_punted_packets_are_finished_by_the_host():
    """A configuration that punts every packet (reason 16) is equivalent: the host runs all."""
    _, _, report, _, _ = mapped("xdp_tx")
    punt_all = copy.deepcopy(report.config)
    punt_all["stages"] = [{"ops": [{"slot": 53, "op": "mov", "imm": 16}]}]
    res = run("xdp_tx", punt_all)
    assert res.ok, res.failure
    assert res.punted == res.packets and res.punt_reasons[16] == res.packets - \
        res.punt_reasons.get(3, 0)


def test_punt_after_a_packet_write_is_caught():
    """Punting a packet after a window store would send a modified packet to the host."""
    _, _, report, _, _ = mapped("xdp_tx")
    bad = copy.deepcopy(report.config)
    bad["stages"].append({"ops": [{"slot": 53, "op": "mov", "imm": 16}]})
    res = run("xdp_tx", bad)
    assert not res.ok and "modified packet" in res.failure


@pytest.mark.parametrize("name,cpus", [("firewall", 2), ("xdp_tx", 1)])
def test_scenario_cpus_from_per_cpu_values(name, cpus):
    """Per-CPU values in a scenario fix the VM's CPU count (firewall's file assumes 2)."""
    assert scenario_cpus(load_scenario(scenario_path(corpus_object(name)))) == cpus


def test_default_scenario_is_found_beside_the_object_or_under_the_current_directory(
        tmp_path, monkeypatch):
    """scenario_path: <stem>.json in scenarios/ beside the object first, then in
    examples/xdp/scenarios/ of the current directory; None elsewhere (no checkout path)."""
    obj = corpus_object("firewall")
    monkeypatch.chdir(ROOT)
    assert scenario_path(obj) == Path("examples/xdp/scenarios/firewall.json")
    monkeypatch.chdir(tmp_path)
    assert scenario_path(obj) is None
    beside = tmp_path / "objs"
    (beside / "scenarios").mkdir(parents=True)
    (beside / "scenarios" / "firewall.json").write_text("{}")
    assert scenario_path(beside / "firewall.o") == beside / "scenarios" / "firewall.json"
