"""hw.cost.nic: one per-packet NIC service for the simulator and the report's estimates."""

from __future__ import annotations

import numpy as np
import pytest

from ebpf.loader.elf import load
from hw.cost.nic import nic_service
from hw.rtc import estimate_cpu, estimate_npu, estimate_vliw
from hw.rtc.common import RtcError
from hw.targets import load_target
from sim.scenario import Scenario, prepare
from tests.conftest import ROOT, corpus_object

SCENARIOS = ROOT / "examples" / "xdp" / "scenarios"
CORPUS = sorted(p.stem for p in (ROOT / "examples" / "xdp").glob("*.c"))
TARGETS = ("nfp", "hxdp", "dpu", "host")


def _prepared(name: str, target: str, traffic: str = "64B@10G,flows=64"):
    state = SCENARIOS / f"{name}.json"
    sc = Scenario(program=str(corpus_object(name)), maps=str(state) if state.exists() else None,
                  target=target, traffic=traffic, packets=2000, seed=4, host_cost="model")
    return prepare(sc)


def _sim_capacity(prep) -> float:
    """The simulator's capacity, Mpps: its servers x 1000 / the mean service of the
    traffic's packets (the NIC station on a NIC, the host cores on the host)."""
    w = prep.workload
    svc = w.services()
    if w.nic is not None:
        return w.nic.servers * 1e6 / float(np.mean(svc.nic_ps))
    return w.host.cores * 1e6 / float(np.mean(svc.host_ps))


def _report_capacity(prep, target) -> float:
    """The report's estimate on the same packets (the traces repeated as in the traffic),
    before the line-rate cap."""
    beh = prep.behaviour
    traces = [beh.traces[k] for k in beh.klass.tolist()]
    prog = beh.obj.get_program(beh.program)
    if target.kind == "npu":
        est = estimate_npu(target, beh.obj, prog, traces)
    elif target.kind == "vliw":
        est = estimate_vliw(target, beh.obj, prog, traces)
    else:
        est = estimate_cpu(target, beh.program, traces=traces)
        if target.location == "host":  # the shared path's fixed point binds the cores
            assert est.bound != "line rate"
            return est.mpps_total
    return est.units * est.mpps_per_unit


@pytest.mark.parametrize("target_name", TARGETS)
@pytest.mark.parametrize("name", CORPUS)
def test_report_capacity_is_the_simulators(name, target_name):
    """For every corpus program x target, the report's estimate and the simulator's capacity
    agree within 1 % (one cost model in hw.cost); the host is offered more than it takes,
    so its stall is the one at capacity."""
    target = load_target(target_name)
    traffic = "64B@100G,flows=64" if target.location == "host" else "64B@10G,flows=64"
    prep = _prepared(name, target_name, traffic)
    report, sim = _report_capacity(prep, target), _sim_capacity(prep)
    assert report == pytest.approx(sim, rel=0.01), (name, target_name, report, sim)


def test_nic_service_refuses_other_kinds():
    """nic_service answers for NPU and VLIW targets only, and needs traces."""
    obj = load(corpus_object("xdp_drop"))
    with pytest.raises(RtcError, match="needs at least one trace"):
        nic_service(load_target("nfp"), obj, obj.programs[0], [])
    prep = _prepared("xdp_drop", "nfp")
    with pytest.raises(RtcError, match="'pipe' is a pipeline target, not npu or vliw"):
        nic_service(load_target("pipe"), obj, obj.programs[0], prep.behaviour.traces)


def test_npu_mean_service_is_the_bound():
    """The NPU's per-packet services average to the multithreaded-core bound of the mix."""
    prep = _prepared("katran_lb", "nfp")
    target = load_target("nfp")
    beh = prep.behaviour
    prog = beh.obj.get_program(beh.program)
    svc = nic_service(target, beh.obj, prog, beh.traces)
    est = estimate_npu(target, beh.obj, prog, beh.traces)
    assert np.mean(svc.service_ns) == pytest.approx(est.ns_per_packet, rel=1e-9)
    assert svc.servers == target.cores.usable


@pytest.mark.parametrize("name", ["katran_lb", "firewall", "syn_flood"])
def test_npu_classes_weighted_as_packets(name):
    """The simulator's classes, each weighted by its packets, give the NPU bound of the
    per-packet traces: the same mean service as estimate_npu on every packet."""
    prep = _prepared(name, "nfp")
    target, beh = load_target("nfp"), prep.behaviour
    prog = beh.obj.get_program(beh.program)
    per_packet = [beh.traces[k] for k in beh.klass.tolist()]
    est = estimate_npu(target, beh.obj, prog, per_packet)
    svc = nic_service(target, beh.obj, prog, beh.traces, beh.counts)
    assert np.average(svc.service_ns, weights=beh.counts) == pytest.approx(
        est.ns_per_packet, rel=1e-9)
    with pytest.raises(RtcError, match="weights for"):
        nic_service(target, beh.obj, prog, beh.traces, [1.0] * (len(beh.traces) + 1))
