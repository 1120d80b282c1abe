"""hw.rtc.cpu: host and DPU cost, kernel-measured or from the per-instruction model."""

from __future__ import annotations

import json
import math

import pytest

import hw.rtc.cpu as cpu
from ebpf.vm.trace import Trace
from hw.rtc.common import RtcError
from hw.rtc.cpu import (
    CalibrationPoint,
    HostMeasurement,
    LinearModel,
    calibrate,
    calibration_point,
    estimate_cpu,
    fit_linear,
    measure_host,
)
from hw.targets import load_target
from sim.packets import random_packets
from tests.conftest import corpus_object

needs_bpf = pytest.mark.kernel  # skips, or fails under REQUIRE_BPF=1 (tests/conftest.py)
HOST, DPU = load_target("host"), load_target("dpu")
MODEL = LinearModel(a_ns=20.0, b_ns_per_insn=1.0, points=2, r2=1.0, source="test")


# --- the linear model ----------------------------------------------------------------------

def test_fit_recovers_known_coefficients():
    """Points on ns = 3 + 0.5 x insns give back a = 3, b = 0.5 and r2 = 1."""
    insns = [2, 10, 25, 60, 140]
    model = fit_linear(insns, [3 + 0.5 * x for x in insns])
    assert model.a_ns == pytest.approx(3.0, abs=1e-9)
    assert model.b_ns_per_insn == pytest.approx(0.5, abs=1e-12)
    assert model.r2 == pytest.approx(1.0)
    assert model.points == 5
    assert model.predict(100) == pytest.approx(53.0)


def test_fit_of_symmetric_noise_keeps_the_line():
    """+-1 ns around ns = 10 + 2 x at x = 1, 1, 3, 3: least squares gives a = 10, b = 2."""
    model = fit_linear([1, 1, 3, 3], [13, 11, 17, 15])
    assert (model.a_ns, model.b_ns_per_insn) == (pytest.approx(10), pytest.approx(2))
    assert model.r2 == pytest.approx(1 - 4 / 20)  # residual 4, total 20


def test_calibrate_fits_program_points():
    """calibrate() over CalibrationPoints is the same least-squares line."""
    points = [CalibrationPoint("a", 2, 26), CalibrationPoint("b", 102, 36)]
    model = calibrate(points, source="two points")
    assert (model.a_ns, model.b_ns_per_insn) == (pytest.approx(25.8), pytest.approx(0.1))
    assert model.source == "two points"


def test_fit_needs_two_instruction_counts():
    """One distinct x, or sequences of different lengths, raise RtcError."""
    with pytest.raises(RtcError, match="two distinct instruction counts"):
        fit_linear([5, 5], [1, 2])
    with pytest.raises(RtcError, match="equally long"):
        fit_linear([1, 2, 3], [1, 2])


# --- estimates from the model and from measurements ----------------------------------------

def model_traces(*insns: int) -> list[Trace]:
    return [Trace(program="p", insns=n) for n in insns]


DROP_NS = dict(HOST.cpu.verdict_ns)["drop"]


def test_model_estimate_by_hand():
    """Mean 20 insns: 40 ns, minus the empty program's 22 ns = 18 ns over the driver's
    XDP_DROP cost; six cores reach the fixed point of the shared-path stall."""
    est = estimate_cpu(HOST, "p", traces=model_traces(10, 30), model=MODEL)
    assert est.source == "model"
    core = DROP_NS + 18
    assert est.ns_per_packet == pytest.approx(core)
    assert est.mpps_per_unit == pytest.approx(1000 / core)
    assert est.units == 6
    # the total solves R = 6 x 1000 / (core + c x u / (1 - u)), u = R x bus / 1000
    bus, c = dict(HOST.cpu.bus_ns)["drop"], HOST.cpu.contention_ns
    r = est.mpps_total
    u = r * bus / 1000
    assert r == pytest.approx(6 * 1000 / (core + c * u / (1 - u)), rel=1e-6)
    assert r < 6 * 1000 / core
    assert est.cores_for(50) == math.ceil(50 / (1000 / core))
    json.dumps(est.to_dict())


def test_dpu_scales_the_program_not_the_driver():
    """DPU: 104 ns driver + 18 ns / 0.4 = 149 ns per packet, 7 usable cores."""
    est = estimate_cpu(DPU, "p", traces=model_traces(10, 30), model=MODEL)
    assert est.ns_per_packet == pytest.approx(104 + 18 / 0.4)
    assert est.units == 7


def test_verdict_prices_the_driver():
    """A trace that ends in XDP_TX pays the profile's TX driver cost, not DROP's."""
    tx = [Trace(program="p", insns=2, verdict=3)]
    est = estimate_cpu(HOST, "p", traces=tx, model=MODEL)
    assert est.ns_per_packet == pytest.approx(dict(HOST.cpu.verdict_ns)["tx"])


def test_measurement_wins_over_the_model():
    """Samples 30 and 50 ns beyond the empty program (mean 40), 25 more taken off: the
    driver + 15 ns with carry 1, source measured."""
    m = HostMeasurement("x.o", "p", 1000, (30, 50))
    est = estimate_cpu(HOST, "p", measurement=m, traces=model_traces(500), model=MODEL,
                       baseline_ns=25, carry=1.0)
    assert est.source == "measured"
    assert est.ns_per_packet == pytest.approx(DROP_NS + 15)
    assert est.details["baseline_source"] == "given"


def test_program_cheaper_than_baseline_costs_the_driver_only():
    """A measured time below the baseline is noise: the driver's cost alone remains."""
    m = HostMeasurement("x.o", "p", 1000, (20,))
    est = estimate_cpu(HOST, "p", measurement=m, baseline_ns=25)
    assert est.mpps_per_unit == pytest.approx(1000 / DROP_NS)


def test_estimate_needs_a_cpu_target_and_an_input():
    """A non-cpu target, or neither measurement nor traces, raise RtcError."""
    with pytest.raises(RtcError, match="'nfp' is a npu target, not cpu"):
        estimate_cpu(load_target("nfp"), "p", traces=model_traces(3))
    with pytest.raises(RtcError, match="give a host measurement or VM traces"):
        estimate_cpu(HOST, "p")


def test_measure_host_without_bpf_says_why(monkeypatch):
    """Where bpf(2) is not usable, measure_host raises RtcError with the reason."""
    monkeypatch.setattr(cpu, "kernel_permitted", lambda: (False, "no CAP_BPF"))
    with pytest.raises(RtcError, match="bpf\\(2\\) not usable: no CAP_BPF"):
        measure_host(corpus_object("xdp_drop"), None, [bytes(64)])


# --- the kernel ------------------------------------------------------------------------------

@needs_bpf
@pytest.mark.parametrize("name", ["xdp_drop", "xdp_pass", "katran_lb"])
def test_measure_host_in_the_kernel(name):
    """Each packet gets a time beyond the empty program (>= 0) and the kernel's verdict; the
    estimate says "measured"."""
    packets = random_packets(8, seed=3)
    m = measure_host(corpus_object(name), None, packets, repeat=200)
    assert len(m.samples_ns) == 8
    est = estimate_cpu(HOST, m.program, measurement=m)
    assert est.source == "measured"
    assert est.ns_per_packet >= min(dict(HOST.cpu.verdict_ns).values())
    assert est.mpps_per_unit > 0
    assert len(m.verdicts) == 8 and all(s >= 0 for s in m.samples_ns)


@needs_bpf
def test_calibration_points_from_vm_and_kernel():
    """A calibration point pairs the VM's instruction count with a positive kernel time."""
    packets = random_packets(6, seed=5)
    drop = calibration_point(corpus_object("xdp_drop"), None, packets, repeat=200)
    loop = calibration_point(corpus_object("bpf2bpf_loop"), None, packets, repeat=200)
    assert drop.insns == 2 and drop.ns >= 0
    assert loop.insns > drop.insns and loop.ns > drop.ns
    model = calibrate([drop, loop])
    assert model.points == 2
