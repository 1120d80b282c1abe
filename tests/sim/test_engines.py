"""The two engines implement one model: identical losses and departures, to the picosecond."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import engine_fast, engine_simpy
from sim.model import (
    HOST,
    LINK,
    NIC,
    NOT_LOST,
    PCIE,
    HostModel,
    LinkModel,
    ModelError,
    NicModel,
    Outcome,
    PacketClasses,
    PcieModel,
    Workload,
    rss_core,
)
from sim.spec import parse_traffic
from sim.traffic import generate
from tests.budget import examples
from tests.conftest import corpus_object


def _assert_same(workload: Workload, batch: int = 64) -> tuple:
    fast = engine_fast.run(workload, batch=batch)
    ref = engine_simpy.run(workload)
    diff = np.flatnonzero((fast.depart_ps != ref.depart_ps) | (fast.lost_at != ref.lost_at))
    assert len(diff) == 0, (f"packet {diff[0]}: fast depart {fast.depart_ps[diff[0]]} lost "
                            f"{fast.lost_at[diff[0]]}, simpy depart {ref.depart_ps[diff[0]]} "
                            f"lost {ref.lost_at[diff[0]]}")
    return fast, ref


outcome_st = st.builds(
    Outcome, verdict=st.integers(0, 4), punted=st.booleans(),
    nic_ns=st.sampled_from([0.5, 1.0, 4.0, 6.72, 13.3, 40.0, 150.0]),
    host_ns=st.sampled_from([1.0, 10.0, 41.67, 90.0, 300.0]),
    nic_delay_ns=st.sampled_from([0.0, 0.0, 3.0, 48.0]))


@st.composite
def workloads(draw) -> Workload:
    n = draw(st.integers(1, 120))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    pattern = draw(st.sampled_from(["spread", "bursts", "ties", "line"]))
    if pattern == "spread":
        arrival = np.sort(rng.integers(0, n * draw(st.sampled_from([2, 10, 60])), n))
    elif pattern == "bursts":  # on/off: bunches of packets, then silence
        arrival = np.sort((rng.integers(0, 4, n) * 2000) + rng.integers(0, 30, n))
    elif pattern == "ties":
        arrival = np.sort(rng.choice([0, 5, 7, 100], n))
    else:
        arrival = (np.arange(n) * 672) // 100
    size = rng.choice([64, 128, 594, 1518, 9000], n).astype(np.int32)
    flow = rng.integers(0, draw(st.integers(1, 40)), n).astype(np.int32)
    outcomes = draw(st.lists(outcome_st, min_size=1, max_size=5))
    rep = rng.integers(0, len(outcomes), n).astype(np.int32)
    queue = st.one_of(st.none(), st.integers(1, 6))
    link = LinkModel(gbps=draw(st.sampled_from([10.0, 40.0, 100.0, 400.0])), queue=draw(queue))
    shape = draw(st.sampled_from(["nic", "nic+pcie", "host", "link"]))
    nic = pcie = host = None
    if shape.startswith("nic"):
        servers = draw(st.integers(1, 4))
        nic_queue = draw(st.one_of(st.none(), st.integers(servers, servers + 6)))
        nic = NicModel(name="n", servers=servers, queue=nic_queue,
                       clock_mhz=draw(st.sampled_from([100.0, 156.25, 250.0, 1000.0])),
                       bus_bits=draw(st.sampled_from([None, 256, 512])))
        if shape == "nic+pcie":
            pcie = PcieModel(gbps=draw(st.sampled_from([4.0, 16.0, 63.0, 126.0])),
                             tlp_overhead_bytes=24, max_payload_bytes=256, queue=draw(queue))
    if shape != "link":
        host = HostModel(cores=draw(st.integers(1, 4)), ring=draw(queue))
    classes = PacketClasses.from_outcomes(outcomes, rep, has_nic=nic is not None,
                                          has_host=host is not None)
    return Workload(arrival_ns=arrival, size=size, flow=flow, classes=classes, link=link,
                    nic=nic, pcie=pcie, host=host)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(), st.integers(1, 200))
def test_engines_agree(workload, batch):
    """Any workload, any batch size: same losses at the same places, same departures."""
    # congested or not, 1-4 NIC servers, PCIe, 1-4 host cores, bursts, simultaneous arrivals
    _assert_same(workload, batch)


def _from_spec(text: str, n: int, outcomes: list[Outcome], *, nic=None, pcie=None, host=None,
               seed: int = 1) -> Workload:
    t = generate(parse_traffic(text, line_rate_gbps=100), n, seed, line_rate_gbps=100)
    rep = t.flow % len(outcomes)
    classes = PacketClasses.from_outcomes(outcomes, rep, has_nic=nic is not None,
                                          has_host=host is not None)
    return Workload(arrival_ns=t.arrival_ns, size=t.size, flow=t.flow, classes=classes,
                    link=LinkModel(gbps=100.0), nic=nic, pcie=pcie, host=host)


def test_congested_multicore_host():
    """64B at line rate into 3 slow host cores: most packets are lost at the rings."""
    w = _from_spec("64B@100G,flows=64", 3000, [Outcome(verdict=2, host_ns=60.0)],
                   host=HostModel(cores=3, ring=16))
    fast, _ = _assert_same(w)
    assert (fast.lost_at == HOST).sum() > 1000
    assert set(rss_core(w.flow, 3).tolist()) == {0, 1, 2}


def test_pcie_limited():
    """A narrow PCIe link behind a fast NIC drops at the DMA queue."""
    w = _from_spec("64B@100G", 3000, [Outcome(verdict=2, nic_ns=4.0, host_ns=5.0)],
                   nic=NicModel(name="p", servers=1, queue=32, clock_mhz=250),
                   pcie=PcieModel(gbps=20.0, tlp_overhead_bytes=24, max_payload_bytes=256,
                                  queue=8), host=HostModel(cores=4, ring=64))
    fast, _ = _assert_same(w)
    assert (fast.lost_at == PCIE).sum() > 1000 and (fast.lost_at == NIC).sum() == 0


def test_bursts_into_npu():
    """On/off bursts into a multi-server NIC with mixed costs: losses only in bursts."""
    outcomes = [Outcome(verdict=1, nic_ns=30.0), Outcome(verdict=3, nic_ns=75.0),
                Outcome(verdict=2, nic_ns=50.0, host_ns=40.0)]
    w = _from_spec("64B@100G,onoff(1us,4us),poisson", 4000, outcomes,
                   nic=NicModel(name="npu", servers=4, queue=12, clock_mhz=800),
                   pcie=PcieModel(gbps=63.0, tlp_overhead_bytes=24, max_payload_bytes=256,
                                  queue=64), host=HostModel(cores=2, ring=32))
    fast, _ = _assert_same(w)
    assert (fast.lost_at == NIC).sum() > 0


def test_pipeline_latency_and_punt():
    """Punted and passed packets cross PCIe; the others leave after the pipeline latency."""
    outcomes = [Outcome(verdict=1, nic_ns=4.0, nic_delay_ns=192.0),
                Outcome(verdict=1, punted=True, nic_ns=4.0, nic_delay_ns=192.0, host_ns=80.0)]
    w = _from_spec("512B@10G", 500, outcomes,
                   nic=NicModel(name="pipe", servers=1, queue=64, clock_mhz=250, bus_bits=512),
                   pcie=PcieModel(gbps=126.0, tlp_overhead_bytes=24, max_payload_bytes=256,
                                  queue=64), host=HostModel(cores=2, ring=64))
    fast, _ = _assert_same(w)
    on_nic = w.classes.rep == 0
    arrival_ps = w.arrival_ns * 1000
    link_ps = (512 + 20) * 8 * 1000 // 100  # the link runs at 100 Gb/s
    bus_ps = 8 * 4000  # ceil(508 * 8 / 512) = 8 cycles of 4 ns
    assert np.all(fast.depart_ps[on_nic] - arrival_ps[on_nic] == link_ps + bus_ps + 192_000)
    assert np.all(fast.lost_at == NOT_LOST)
    assert np.all(fast.depart_ps[~on_nic] - arrival_ps[~on_nic] > link_ps + bus_ps + 192_000)


def test_bounded_link_queue():
    """A bounded sender queue loses frames offered above the line rate."""
    t = generate(parse_traffic("64B@100G"), 1000, 0, line_rate_gbps=100)
    classes = PacketClasses.from_outcomes([Outcome(verdict=1)], np.zeros(1000, np.int32),
                                          has_nic=False, has_host=False)
    w = Workload(arrival_ns=t.arrival_ns // 2, size=t.size, flow=t.flow, classes=classes,
                 link=LinkModel(gbps=100.0, queue=4))
    fast, _ = _assert_same(w)
    assert (fast.lost_at == LINK).sum() == pytest.approx(500, abs=10)


def test_batch_size_does_not_matter():
    """The fast engine gives the same answer for any batch size."""
    outcomes = [Outcome(verdict=2, nic_ns=20.0, host_ns=45.0), Outcome(verdict=3, nic_ns=9.0)]
    w = _from_spec("imix@100G,poisson,flows=32,zipf=1.2", 20_000, outcomes,
                   nic=NicModel(name="n", servers=3, queue=16, clock_mhz=500),
                   pcie=PcieModel(gbps=63.0, tlp_overhead_bytes=24, max_payload_bytes=256,
                                  queue=32), host=HostModel(cores=3, ring=32))
    base = engine_fast.run(w, batch=1 << 17)
    for batch in (1, 7, 1000):
        other = engine_fast.run(w, batch=batch)
        assert np.array_equal(base.depart_ps, other.depart_ps)
        assert np.array_equal(base.lost_at, other.lost_at)


def test_outcomes_map_onto_packets():
    """Packets take their representative's verdict and costs; PASS and punted go up."""
    outcomes = [Outcome(verdict=1, nic_ns=2.0), Outcome(verdict=2, nic_ns=3.0, host_ns=7.0),
                Outcome(verdict=3, punted=True, nic_ns=1.0, host_ns=9.5)]
    c = PacketClasses.from_outcomes(outcomes, np.array([2, 0, 1, 1]), has_nic=True,
                                    has_host=True)
    assert list(c.verdict[c.rep]) == [3, 1, 2, 2]
    assert list(c.to_host[c.rep]) == [True, False, True, True]
    assert list(c.host_ps[c.rep]) == [9500, 1, 7000, 7000]  # at least 1 ps
    on_host = PacketClasses.from_outcomes(outcomes, np.array([0]), has_nic=False,
                                          has_host=True)
    assert on_host.to_host.all()
    with pytest.raises(ModelError, match="representative index 5 out of range: 3 outcomes"):
        PacketClasses.from_outcomes(outcomes, np.array([5]), has_nic=True, has_host=True)


def test_model_rejects_bad_parameters():
    """Impossible parameters are one ModelError line."""
    with pytest.raises(ModelError, match="queue 2 is smaller than its 4 servers"):
        NicModel(name="n", servers=4, queue=2)
    with pytest.raises(ModelError, match=r"link rate \(Gb/s\): expected a positive number"):
        LinkModel(gbps=0)


def _sim_args(argv: list[str]) -> argparse.Namespace:
    from offload.sim_cmd import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["sim", *argv])


@pytest.mark.parametrize("engine", ["fast", "simpy"])
def test_command_end_to_end(capsys, engine):
    """`offload sim` on a corpus program: JSON with metrics and the assumptions used."""
    obj = corpus_object("xdp_drop")
    args = _sim_args([str(obj), "--target", "pipe", "--traffic", "64B@100G", "--packets",
                      "3000", "--engine", engine, "--host-cost", "model", "--json"])
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    m = doc["metrics"]
    assert doc["program"] == "xdp_drop_prog" and doc["target"] == "pipe"
    assert m["verdicts"] == {"XDP_DROP": 3000} and m["lost"]["total"] == 0
    assert m["achieved"]["mpps"] == pytest.approx(148.81, rel=1e-3)
    assert any("II 1 cycle" in a for a in doc["assumptions"])
    assert any("per-instruction model" in a for a in doc["assumptions"])


def test_command_table(capsys):
    """The table names program, target, offered and achieved rates, drops, p99, cores."""
    obj = corpus_object("xdp_pass")
    args = _sim_args([str(obj), "--target", "host", "--traffic", "64B@100G,flows=256",
                      "--packets", "20000", "--host-cost", "model", "--host-cores", "2"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for word in ("offered Mpps", "achieved Mpps", "drops", "p99 latency",
                 "host cores needed", "xdp_pass", "host RX ring full", "assumptions:"):
        assert word in out
