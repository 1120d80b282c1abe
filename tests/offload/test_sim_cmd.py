"""`offload sim` says where the NIC cost came from, in JSON and in the text."""

from __future__ import annotations

import argparse
import json

from offload.sim_cmd import register
from tests.conftest import ROOT, corpus_object

SCENARIOS = ROOT / "examples" / "xdp" / "scenarios"


def _sim(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["sim", *argv])


def _katran(*extra: str) -> list[str]:
    return [str(corpus_object("katran_lb")), "--maps", str(SCENARIOS / "katran_lb.json"),
            "--target", "pipe", "--traffic", "64B@10G,proto=udp/tcp/random,flows=128",
            "--packets", "3000", "--host-cost", "model", "--seed", "1", *extra]


def test_json_names_the_mapping(capsys):
    """The JSON's nic_cost: the mapper's stages, passes, verdict and this traffic's punts."""
    args = _sim(_katran("--json"))
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    cost, m = doc["nic_cost"], doc["metrics"]
    assert cost["verdict"] == "partial" and cost["punt"] == "model"
    pct = 100 * m["punted"]["packets"] / m["packets"]
    assert 0 < pct < 100
    assert cost["source"] == (f"mapper: {cost['stages']} stages, 1 pass, partial "
                              f"({pct:.3g} % punted on this traffic)")
    assert cost["punted_fraction"] == m["punted"]["fraction"]
    assert cost["latency_cycles"] == 55  # parser 5 + 12 stages x 4 + deparser 2
    assert any(cost["source"] in a for a in doc["assumptions"])
    assert sum(r["packets"] for r in doc["classes"] if r["punted"]) == m["punted"]["packets"]


def test_text_names_the_mapping(capsys):
    """The text output prints the NIC cost's source on its own line."""
    args = _sim(_katran())
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "NIC cost: mapper: " in out and "partial (" in out


def test_host_target_has_no_nic_cost(capsys):
    """On the host target there is no NIC, hence no NIC cost."""
    args = _sim([str(corpus_object("xdp_pass")), "--target", "host", "--packets", "500",
                 "--host-cost", "model", "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["nic_cost"] is None
