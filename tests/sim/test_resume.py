"""Convergence extensions that go on from the last attempt (sim.resume) against the same
run from scratch: the longer attempt's behaviour and report equal those of a fresh run on
the same traffic, on a mapped pipeline (its model carried on), clock-reading and
map-writing programs, and classes split by path."""

from __future__ import annotations

import numpy as np
import pytest

import sim.metrics
import sim.resume
import sim.scenario
from offload.sim_cost import mapped_nic_cost
from sim.resume import Resumable, is_prefix
from sim.scenario import RunCache, Scenario, prepare, run_behaviour, run_prepared, simulate
from sim.spec import parse_traffic
from sim.traffic import generate
from tests.conftest import ROOT, corpus_object

SCENARIOS = ROOT / "examples" / "xdp" / "scenarios"


def _view(beh) -> tuple:
    """Everything of a behaviour the costs and the engines read."""
    return (beh.executor, beh.klass.tolist(), beh.verdicts, beh.costs, beh.labels,
            beh.counts, beh.packets,
            [(t.program, t.verdict, list(t.path), t.insns,
              [(h.slot, h.id, h.name) for h in t.helper_calls]) for t in beh.traces])


@pytest.mark.parametrize("name, target, traffic", [
    ("rate_limiter", "pipe", "64B@100G,flows=64"),
    ("rate_limiter", "nfp", "imix@100%,flows=64"),
    ("katran_lb", "dpu", "imix@100G,proto=udp/tcp/icmp,flows=64"),
    ("bpf2bpf_loop", "rmt", "imix@100G,proto=udp/tcp/icmp/udp6/tcp6,flows=64"),
])
def test_resumed_run_equals_the_run_from_scratch(name, target, traffic, monkeypatch):
    """An unconverged run extended twice goes on from the last attempt each time (the
    executor's maps, the clock, the pipeline model), and its last attempt's behaviour and
    report equal a fresh ``prepare`` on traffic of the same length."""
    monkeypatch.setattr(sim.metrics, "CONVERGED", -1.0)  # never steady: always extended
    monkeypatch.setattr(sim.scenario, "MAX_EXTENSIONS", 2)
    monkeypatch.setattr(sim.scenario, "DEFAULT_PACKETS", 1500)
    monkeypatch.setattr(sim.scenario, "DEFAULT_DURATION_NS", 10_000.0)
    made: list[Resumable] = []
    real = sim.resume.Resumable

    def tracked():
        made.append(real())
        return made[-1]

    monkeypatch.setattr(sim.resume, "Resumable", tracked)
    sc = Scenario(program=str(corpus_object(name)), maps=str(SCENARIOS / f"{name}.json"),
                  target=target, traffic=traffic, seed=4, host_cost="model")
    prep, doc = run_prepared(sc, nic_cost_for=mapped_nic_cost)
    assert made[0].resumed == 2 and prep.traffic.num_packets > 3 * 1500
    own = generate(parse_traffic(traffic, line_rate_gbps=prep.target.line_rate_gbps),
                   prep.traffic.num_packets, sc.seed, line_rate_gbps=prep.target.line_rate_gbps)
    assert np.array_equal(own.arrival_ns, prep.traffic.arrival_ns)
    fresh_sc = Scenario(**{**sc.__dict__, "packets": prep.traffic.num_packets})
    fresh = prepare(fresh_sc, cache=RunCache(), nic_cost_for=mapped_nic_cost)
    assert _view(prep.behaviour) == _view(fresh.behaviour)
    if target == "pipe":
        assert any(c.punted for c in prep.behaviour.costs)  # the model decided punts
    timing = ("wall_s", "simulated_pps")  # the engine's own speed, not a result
    want = {k: v for k, v in simulate(fresh)["metrics"].items() if k not in timing}
    assert {k: v for k, v in doc["metrics"].items() if k not in timing} == want


def test_prefix_of_the_generators_series():
    """The generator's shorter series is a prefix of its longer one; another seed's, a
    longer series or one of other packets is not."""
    spec = parse_traffic("imix@100G,proto=udp/tcp/icmp,flows=64,poisson", line_rate_gbps=100)
    short, long = (generate(spec, n, 1, line_rate_gbps=100) for n in (500, 1200))
    assert is_prefix(short, long) and is_prefix(short, short)
    assert not is_prefix(long, short)
    assert not is_prefix(short, generate(spec, 1200, 2, line_rate_gbps=100))
    other = parse_traffic("imix@100G,proto=udp/tcp/icmp,flows=65,poisson", line_rate_gbps=100)
    assert not is_prefix(short, generate(other, 1200, 1, line_rate_gbps=100))


def test_other_traffic_starts_afresh():
    """Traffic that does not begin with the open run's packets runs from scratch: the
    same behaviour as ``run_behaviour`` on it alone."""
    spec = parse_traffic("64B@100G,flows=300", line_rate_gbps=100)
    sc = Scenario(program=str(corpus_object("rate_limiter")),
                  maps=str(SCENARIOS / "rate_limiter.json"), target="host", seed=1)
    first, other = (generate(spec, 2000, seed, line_rate_gbps=100) for seed in (1, 2))
    resume = Resumable()
    try:
        resume.behaviour(sc, first, "compiled")
        got = resume.behaviour(sc, other, "compiled")
    finally:
        resume.close()
    assert resume.resumed == 0
    assert _view(got) == _view(run_behaviour(sc, other, "compiled"))
