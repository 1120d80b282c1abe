"""hw.cost.host: per-verdict driver cost, shared-path contention, carry-over, measurement."""

from __future__ import annotations

import pytest

from ebpf.kernel.bridge import KernelObject
from ebpf.kernel.load import bpf_permitted
from ebpf.kernel.raw import RawKernelObject, empty_xdp_object
from hw.cost.host import (
    XDP_DROP,
    XDP_PASS,
    XDP_REDIRECT,
    XDP_TX,
    HostCost,
    HostCostError,
    ProgramTimer,
    carry_factor,
    this_machine_mhz,
)
from hw.targets import load_target
from tests.conftest import corpus_object

PERMITTED, REASON = bpf_permitted()
needs_bpf = pytest.mark.skipif(not PERMITTED, reason=f"bpf(2) not usable: {REASON}")
HOST = HostCost.from_target(load_target("host"), carry=1.0)

# The XDP paper's published curves (Mpps over 1-6 cores), from its repository's
# benchmarks/bench01_baseline.org: Fig. 3 XDP_DROP (xdp_drop_data_rx_cqe_compress, RX=512),
# Fig. 5 XDP_TX (xdp_tx_data03_256) and XDP_REDIRECT (xdp_redirect_data, RX-size=256).
PUBLISHED = {
    XDP_DROP: (23.86, 45.51, 67.80, 88.82, 99.36, 108.61),
    XDP_TX: (16.90, 34.85, 51.88, 68.95, 70.16, 68.74),
    XDP_REDIRECT: (8.64, 16.74, 25.74, 34.19, 41.46, 46.06),
}


@pytest.mark.parametrize("verdict", sorted(PUBLISHED))
def test_published_multicore_curves_within_5_percent(verdict):
    """A trivial program's capacity on 1-6 cores is each published point within 5 %."""
    for cores, published in enumerate(PUBLISHED[verdict], start=1):
        model = HOST.capacity_mpps(cores, HOST.core_ns(verdict, 0.0), HOST.bus_for(verdict))
        assert model == pytest.approx(published, rel=0.05), (verdict, cores)


def test_tx_flattens_at_the_pcie_limit():
    """XDP_TX stops scaling near 70 Mpps (XDP paper Fig. 5 caption): 6 cores add < 2 %."""
    five, six = (HOST.capacity_mpps(n, HOST.core_ns(XDP_TX, 0), HOST.bus_for(XDP_TX))
                 for n in (5, 6))
    assert six < five * 1.02 and six < 1000 / HOST.bus_for(XDP_TX)


def test_counting_pass_costs_the_stack():
    """A counting XDP_PASS on one core runs at the paper's 4.5 Mpps (sec. 4.1)."""
    mpps = HOST.capacity_mpps(1, HOST.core_ns(XDP_PASS, 0.0), HOST.bus_for(XDP_PASS))
    assert mpps == pytest.approx(4.5, rel=0.05)


def test_capacity_is_the_fixed_point():
    """The capacity solves R = cores x 1000 / (core + c u / (1 - u)), u = R x bus / 1000."""
    core, bus = 60.0, 9.0
    r = HOST.capacity_mpps(4, core, bus)
    u = r * bus / 1000
    assert r == pytest.approx(4000 / (core + HOST.contention_ns * u / (1 - u)), rel=1e-9)


def test_stall_at_the_offered_rate_below_capacity():
    """Below capacity the stall is the one at the offered rate; above, the capacity's."""
    core, bus = HOST.core_ns(XDP_DROP, 0), HOST.bus_for(XDP_DROP)
    assert HOST.operating_stall_ns(6, core, bus, 10.0) == pytest.approx(
        HOST.stall_ns(10.0 * bus / 1000))
    cap = HOST.capacity_mpps(6, core, bus)
    assert HOST.operating_stall_ns(6, core, bus, 500.0) == pytest.approx(
        HOST.stall_ns(cap * bus / 1000))
    with pytest.raises(HostCostError, match="offered rate"):
        HOST.operating_stall_ns(6, core, bus, 0.0)


def test_program_cost_carried_and_added_to_the_driver():
    """core_ns = driver for the verdict + program ns x carry; negative noise counts 0."""
    half = HostCost.from_target(load_target("host"), here_mhz=1800.0)
    assert half.carry == pytest.approx(0.5)
    assert half.core_ns(XDP_TX, 20.0) == pytest.approx(half.verdict_ns["tx"] + 10.0)
    assert half.core_ns(XDP_DROP, -3.0) == half.verdict_ns["drop"]
    assert half.core_ns(0, 0.0) == half.verdict_ns["drop"]  # XDP_ABORTED as XDP_DROP


def test_mix_weights_packets():
    """The mean over packets weights each representative by its share of the traffic."""
    core, bus = HOST.mix([XDP_DROP, XDP_TX], [0.0, 0.0], [3, 1])
    assert core == pytest.approx((3 * HOST.verdict_ns["drop"] + HOST.verdict_ns["tx"]) / 4)
    assert bus == pytest.approx((3 * HOST.bus_ns["drop"] + HOST.bus_ns["tx"]) / 4)


def test_carry_factor_for_host_and_dpu():
    """Same cycles: host ns x here/profile MHz; a NIC's cores against the reference host core
    and slower by relative_speed."""
    assert carry_factor(load_target("host-hxdp"), 3700.0)[0] == pytest.approx(1.0)
    dpu, how = carry_factor(load_target("dpu"), 1800.0)
    assert dpu == pytest.approx(1800 / 3600 / 0.4) and "relative_speed 0.4" in how
    assert carry_factor(load_target("host"), None) == (1.0, pytest.approx(
        "this machine's clock unknown: measured time taken as the profile core's"))
    with pytest.raises(HostCostError, match="'pipe' is a pipeline target, not cpu"):
        carry_factor(load_target("pipe"), 1000.0)


def test_this_machine_mhz_reads_cpuinfo(tmp_path):
    """The first `cpu MHz` line of a cpuinfo file; None without one or without the file."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\ncpu MHz\t\t: 2596.130\ncpu MHz : 1\n")
    assert this_machine_mhz(info) == pytest.approx(2596.13)
    info.write_text("processor\t: 0\n")
    assert this_machine_mhz(info) is None
    assert this_machine_mhz(tmp_path / "missing") is None


def test_profile_without_verdict_table_uses_the_driver_overhead():
    """The DPU profile has no per-verdict table: every verdict costs driver_overhead_ns and
    there is no shared ceiling."""
    dpu = HostCost.from_target(load_target("dpu"), carry=1.0)
    assert set(dpu.verdict_ns.values()) == {104.0} and dpu.bus_ns == {}
    assert dpu.capacity_mpps(7, 104.0, 0.0) == pytest.approx(7000 / 104)


@needs_bpf
@pytest.mark.kernel
def test_timer_runs_each_packet_fresh():
    """ProgramTimer times adjust_tail on fresh copies: every run truncates (the counter
    counts each run) and the result is non-negative."""
    packet = bytes(14) + bytes(186)
    with KernelObject(corpus_object("adjust_tail")) as k, ProgramTimer(runs=7) as timer:
        assert timer.program_ns(k, None, packet) >= 0
        (value,) = [v for _, v in k.items("trunc_stats")]
        assert int.from_bytes(value, "little") == 7


@needs_bpf
@pytest.mark.kernel
def test_empty_program_drops():
    """The empty program is r0 = XDP_DROP; exit, and the kernel says so."""
    with RawKernelObject(empty_xdp_object()) as e:
        assert e.test_run(bytes(64)).retval == XDP_DROP
        assert e.prog_info("empty").insn_cnt == 2
