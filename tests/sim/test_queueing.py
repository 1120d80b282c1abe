"""The simulator against closed-form queueing results: M/D/1, line rate, pipeline bounds."""

from __future__ import annotations

import numpy as np
import pytest

from sim import engine_fast
from sim.metrics import summarize
from sim.model import (
    HostModel,
    LinkModel,
    NicModel,
    Outcome,
    PacketClasses,
    PcieModel,
    Workload,
)
from sim.queueing import (
    bus_bound_pps,
    line_rate_pps,
    md1_mean_wait,
    pcie_pps,
    pipeline_pps,
    servers_pps,
)
from sim.spec import parse_traffic
from sim.traffic import generate

XDP_DROP, XDP_PASS = 1, 2


def _traffic(text: str, n: int, seed: int = 3):
    return generate(parse_traffic(text, line_rate_gbps=100), n, seed, line_rate_gbps=100)


def _workload(traffic, *, verdict=XDP_DROP, nic: NicModel | None = None, nic_ns=4.0,
              pcie: PcieModel | None = None, host: HostModel | None = None, host_ns=10.0,
              arrival_ns=None):
    outcome = Outcome(verdict=verdict, nic_ns=nic_ns, host_ns=host_ns)
    classes = PacketClasses.from_outcomes([outcome], np.zeros(traffic.num_packets, np.int32),
                                          has_nic=nic is not None, has_host=host is not None)
    return Workload(arrival_ns=traffic.arrival_ns if arrival_ns is None else arrival_ns,
                    size=traffic.size, flow=traffic.flow, classes=classes,
                    link=LinkModel(gbps=100.0), nic=nic, pcie=pcie, host=host)


def _achieved_mpps(workload) -> float:
    return summarize(workload, engine_fast.run(workload))["achieved"]["mpps"]


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_md1_mean_wait(rho):
    """Poisson arrivals on the link (deterministic service): W = rho / (2 mu (1 - rho))."""
    traffic = _traffic(f"1000B@{rho * 100:g}%,poisson", 8_000_000, seed=0)
    workload = _workload(traffic)  # a bare link: no NIC, no host
    result = engine_fast.run(workload)
    service_ns = (1000 + 20) * 8 / 100  # 81.6 ns
    sojourn = (result.depart_ps - traffic.arrival_ns * 1000).mean() / 1000
    assert sojourn - service_ns == pytest.approx(md1_mean_wait(rho, 1 / service_ns), rel=0.01)


def test_line_rate_offered():
    """64B@100G offers 148.81 Mpps and the link carries exactly that."""
    traffic = _traffic("64B@100G", 200_000)
    m = summarize(_workload(traffic), engine_fast.run(_workload(traffic)),
                  offered_pps=traffic.offered_pps)
    assert m["offered"]["mpps"] == pytest.approx(148.8095, rel=1e-5)
    assert m["achieved"]["mpps"] == pytest.approx(line_rate_pps(64, 100) / 1e6, rel=1e-4)
    assert m["achieved"]["gbps"] == pytest.approx(100.0, rel=1e-4)


def test_link_cannot_exceed_line_rate():
    """Frames offered at twice the line rate still leave the link at 148.81 Mpps."""
    traffic = _traffic("64B@100G", 200_000)
    arrival = (np.arange(200_000) * 336) // 100  # 3.36 ns apart
    workload = _workload(traffic, arrival_ns=arrival)
    assert _achieved_mpps(workload) == pytest.approx(line_rate_pps(64, 100) / 1e6, rel=1e-6)


@pytest.mark.parametrize("clock_mhz, ii, passes", [(250, 1, 1), (100, 1, 1), (250, 1, 2),
                                                   (250, 3, 1)])
def test_pipeline_initiation_interval_bound(clock_mhz, ii, passes):
    """A pipeline that fits finishes min(offered, clock / (II x passes)) packets per second."""
    traffic = _traffic("64B@100G", 300_000)
    nic = NicModel(name="p", servers=1, queue=64, clock_mhz=clock_mhz, bus_bits=512)
    workload = _workload(traffic, nic=nic, nic_ns=ii * passes * 1000 / clock_mhz)
    expected = min(traffic.offered_pps, pipeline_pps(clock_mhz, ii, passes))
    assert _achieved_mpps(workload) == pytest.approx(expected / 1e6, rel=0.01)


@pytest.mark.parametrize("bus_bits", [256, 512])
def test_bus_width_bound_for_1500B(bus_bits):
    """1500 B frames: 47 beats of a 256-bit bus at 250 MHz cap the rate; 512 bits do not."""
    traffic = _traffic("1500B@100G", 100_000)
    nic = NicModel(name="p", servers=1, queue=64, clock_mhz=250, bus_bits=bus_bits)
    expected = min(traffic.offered_pps, bus_bound_pps(1500, bus_bits, 250))
    assert _achieved_mpps(_workload(traffic, nic=nic)) == pytest.approx(expected / 1e6,
                                                                       rel=0.01)
    if bus_bits == 256:
        assert expected == pytest.approx(250e6 / 47)


def test_pcie_bound():
    """Passed packets cannot reach the host faster than PCIe carries them (TLP overhead)."""
    traffic = _traffic("64B@100G", 200_000)
    nic = NicModel(name="p", servers=1, queue=64, clock_mhz=250)
    pcie = PcieModel(gbps=10.0, tlp_overhead_bytes=24, max_payload_bytes=256, queue=64)
    workload = _workload(traffic, verdict=XDP_PASS, nic=nic, pcie=pcie,
                         host=HostModel(cores=8, ring=256), host_ns=10.0)
    expected = pcie_pps(64, 10.0, 24, 256)
    assert expected == pytest.approx(10e9 / ((60 + 24) * 8))
    assert _achieved_mpps(workload) == pytest.approx(expected / 1e6, rel=0.01)


def test_parallel_servers_bound():
    """k run-to-completion servers of S ns each finish k / S packets per second."""
    traffic = _traffic("64B@100G", 200_000)
    nic = NicModel(name="npu", servers=16, queue=256, clock_mhz=800)
    workload = _workload(traffic, nic=nic, nic_ns=200.0)
    assert _achieved_mpps(workload) == pytest.approx(servers_pps(16, 200.0) / 1e6, rel=0.01)


def test_host_cores_bound():
    """On the host target, N cores of S ns each carry N / S when RSS spreads flows evenly."""
    traffic = _traffic("64B@100G,flows=4096", 300_000)
    workload = _workload(traffic, host=HostModel(cores=4, ring=512), host_ns=50.0)
    assert _achieved_mpps(workload) == pytest.approx(servers_pps(4, 50.0) / 1e6, rel=0.02)
