"""hw.cost.calibration: every calibrated point within 5 % of its published value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ebpf.vm.xdp import XDP_DROP, XDP_PASS
from hw.cost.calibration import (
    CALIBRATED,
    NOT_MATCHED,
    SOSCON_PACKET,
    TOLERANCE,
    all_points,
    call_args_what_if,
    host_points,
    hxdp_points,
    markdown,
    nfp_points,
    soscon_udp_drop,
)
from hw.cost.hxdp_bench import bench_object
from hw.ethernet import wire_mpps
from tests.conftest import ROOT


@pytest.mark.parametrize("point", [p for p in host_points() if p.model is not None],
                         ids=lambda p: f"{p.target}: {p.what}")
def test_calibrated_point_within_tolerance(point):
    """The model's value for a published microbenchmark is within 5 % of it."""
    assert point.calibrated
    assert abs(point.error) <= TOLERANCE, (point.what, point.published, point.model)


def test_points_cover_the_published_set():
    """The XDP paper's DROP, TX and REDIRECT curves (6 cores each), its counting PASS, and
    the hXDP paper's three x86 baselines are all there, each with a source."""
    points = host_points()
    assert sum(p.target == "host" and p.model is not None for p in points) == 19
    assert sum(p.target == "host-hxdp" for p in points) == 3
    assert all(p.source for p in points) and set(CALIBRATED) == {p.target for p in points}


@pytest.mark.parametrize("point", [p for p in hxdp_points() if p.calibrated],
                         ids=lambda p: p.what)
def test_hxdp_held_point_within_tolerance(point):
    """hXDP's baselines (three fitted numbers, XDP_DROP without the exit optimisations as an
    independent check) and its helper-call curve are within 5 %."""
    assert abs(point.error) <= TOLERANCE, (point.what, point.published, point.model)


def test_hxdp_points_cover_figs_13_to_15():
    """Fig. 13's four baselines, Fig. 14's five key sizes, Fig. 15's five call counts; every
    one is held but the map lookups."""
    points = hxdp_points()
    assert len(points) == 4 + 5 + 5
    assert [p.published for p in points if p.calibrated] == [
        52.0, 22.0, 22.5, 15.0, 22.4, 9.8, 6.05, 4.3, 3.4]
    assert all(p.model is not None and p.model > 0 and p.source for p in points)


@pytest.mark.parametrize("point", [p for p in all_points() if p.model is not None],
                         ids=lambda p: f"{p.target}: {p.what}")
def test_every_point_within_tolerance_or_named(point):
    """Every published point with a model value is within 5 %, or it is marked NOT MATCHED
    (with the reason), is not held, and really is outside: a fix must un-mark it."""
    if point.not_matched:
        assert not point.calibrated and not point.within, point.what
        assert len(point.note) > len(NOT_MATCHED) + 10
    else:
        assert point.within, (point.target, point.what, point.published, point.model)


def test_not_matched_points_are_the_known_ones():
    """The points the model misses are exactly Fig. 14's map lookups."""
    missed = [(p.target, p.what) for p in all_points() if p.not_matched]
    assert missed == [("hxdp", f"map lookup + count, {k} B key") for k in (1, 2, 4, 8, 16)]


def test_hxdp_map_access_is_flat_and_helper_calls_fall():
    """As published: the map lookup's rate does not depend on the key size (1-16 B), and
    each ten more helper calls lower the rate (Figs. 14, 15)."""
    points = hxdp_points()
    maps = [p.model for p in points if "map lookup" in p.what]
    calls = [p.model for p in points if "csum_diff" in p.what]
    assert len(set(maps)) == 1
    assert calls == sorted(calls, reverse=True) and len(set(calls)) == len(calls)


def test_every_point_in_the_full_table():
    """all_points is the host points, then the hXDP ones, then nfp's."""
    assert [p.what for p in all_points()] == [
        p.what for p in host_points() + hxdp_points() + nfp_points()]


def test_nfp_point_is_the_published_line_rate_drop():
    """nfp's one published point (SOSCON 2019, offloaded XDP_DROP on a 10 GbE link) is held:
    the model gives the 10 GbE line rate, its NFP capacity being above it."""
    (point,) = nfp_points()
    assert point.published == 14.88 and point.calibrated and point.within
    assert point.model == pytest.approx(wire_mpps(10, 64))
    assert "lower bound" in point.note and "SOSCON 2019" in point.source


def test_soscon_program_drops_the_test_flow_only():
    """The SOSCON test's program, run by the VM: its UDP flow to 10.1.0.2:1234 is dropped,
    another destination port or a non-IPv4 frame passes, a runt is dropped (bounds check)."""
    def verdict(packet):
        return bench_object(soscon_udp_drop(), packet=packet)[2].verdict

    pkt = SOSCON_PACKET
    assert len(pkt) == 60 and verdict(pkt) == XDP_DROP
    assert verdict(pkt[:37] + b"\x05" + pkt[38:]) == XDP_PASS  # dport 1237
    assert verdict(pkt[:12] + b"\x86\xdd" + pkt[14:]) == XDP_PASS  # IPv6 ethertype
    assert verdict(pkt[:30]) == XDP_DROP  # shorter than the IPv4 header


def test_bench_script_prints_the_table():
    """bench/calibration.py prints the Markdown table the code gives, no held point outside,
    and fails visibly (a FAILING line, exit 1) while a point is NOT MATCHED."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "calibration.py"),
                           "--corpus", "/nonexistent"], capture_output=True, text=True)
    assert markdown(host_points()).splitlines()[2] in proc.stdout
    assert "0 outside" in proc.stdout
    missed = sum(p.not_matched for p in all_points())
    assert proc.returncode == (1 if missed else 0), proc.stderr
    assert (f"FAILING: {missed} published point(s)" in proc.stdout) == bool(missed)


def test_docs_show_the_code_table():
    """docs/calibration.md holds every row of the calibration table as the code gives it."""
    doc = (ROOT / "docs" / "calibration.md").read_text()
    missing = [row for row in markdown(all_points()).splitlines() if row not in doc]
    assert not missing, missing[:3]


def test_call_args_what_if_is_shown_in_the_docs_not_held():
    """The what-if with the artifact compiler's call scheduling: Figs. 14 and 15 (both
    Fig. 15 programs), never held, every row in docs/calibration.md as the code gives it;
    it closes Fig. 14 for 1-8 B keys only and moves Fig. 15's ten calls out of 5 %."""
    points = call_args_what_if()
    assert len(points) == 5 + 2 * 5 and not any(p.calibrated for p in points)
    maps = [p for p in points if "map lookup" in p.what]
    assert [p.within for p in maps] == [True, True, True, True, False]
    assert not any(p.within for p in points if p.what.startswith("10 csum_diff"))
    doc = (ROOT / "docs" / "calibration.md").read_text()
    missing = [row for row in markdown(points).splitlines() if row not in doc]
    assert not missing, missing[:3]
