"""Timing: II = 1 when the program fits, the latency formula, recirculation, bus bound."""

from __future__ import annotations

import pytest

from hw.pipeline import TargetParams, TimingModel, load_config
from tests.hw.pipeline.helpers import doc


def timing(n_stages: int = 1, **target) -> TimingModel:
    return TimingModel(load_config(doc([{}] * n_stages, target=target)))


def test_fitting_program_has_ii_one():
    """One packet header per clock: 64-byte packets are admitted every cycle."""
    t = timing()
    assert t.passes == 1 and t.initiation_interval(64) == 1
    sim = t.simulate([64] * 200)
    assert set(sim.intervals) == {1} and sim.sustained_ii == 1.0
    assert t.packets_per_second(64) == 250e6


def test_latency_formula():
    """latency = parser + stages x stage latency + deparser, in cycles and ns."""
    t = timing()
    assert t.latency_cycles() == 5 + 12 * 4 + 2 == 55
    assert t.latency_ns() == pytest.approx(220.0)
    assert t.simulate([64]).latency_cycles == (55,)
    small = timing(num_stages=3, stage_cycles=2, parser_cycles=7, deparser_cycles=3,
                   clock_mhz=200)
    assert small.latency_cycles() == 7 + 3 * 2 + 3
    assert small.latency_ns() == pytest.approx(16 * 5.0)


def test_recirculation_halves_throughput():
    """13 logical stages on 12 physical need 2 passes: latency grows, the packet rate halves."""
    t = timing(13)
    assert t.passes == 2
    assert t.latency_cycles() == 5 + 2 * 48 + 8 + 2
    assert t.initiation_interval(64) == 2
    assert t.packets_per_second(64) == timing(1).packets_per_second(64) / 2
    sim = t.simulate([64] * 1000)
    assert sim.sustained_ii == 2.0
    # the first 56 packets fill slots 5..60; their second passes hold 61..116
    assert sim.admit[:3] == (5, 6, 7) and sim.admit[55] == 60 and sim.admit[56] == 117
    assert sim.latency_cycles[0] == 111


def test_three_passes():
    """25 logical stages need 3 passes: a third of the rate."""
    t = timing(25)
    assert t.passes == 3 and t.simulate([64] * 600).sustained_ii == 3.0


def test_bus_width_bounds_large_packets():
    """A 1500-byte packet takes ceil(12000 / 512) = 24 bus cycles: II = 24."""
    t = timing()
    assert t.beats(1500) == 24 and t.beats(64) == 1 and t.beats(65) == 2
    assert t.initiation_interval(1500) == 24
    assert t.simulate([1500] * 100).sustained_ii == 24.0
    assert t.throughput_gbps(1500) == pytest.approx(250e6 / 24 * 12000 / 1e9)
    narrow = timing(bus_bits=256, parser_cycles=9)
    assert narrow.initiation_interval(1500) == 47


def test_bus_and_recirculation_combine():
    """With 2 passes and 128-byte packets (2 beats) the II is max(2, 2) = 2."""
    t = timing(13)
    assert t.initiation_interval(128) == 2
    assert t.initiation_interval(1500) == 24


def test_output_bus_bound():
    """Packets grown on the way out are bounded by the output bus."""
    t = timing()
    sim = t.simulate([64] * 100, out_lengths=[200] * 100)
    assert sim.sustained_ii == 4.0


def test_sparse_arrivals_have_base_latency():
    """Packets that arrive far apart each see the unloaded latency."""
    sim = timing().simulate([64, 1500, 64], arrivals=[0, 100, 1000])
    assert sim.latency_cycles == (55, 55, 55)
    assert sim.start == (0, 100, 1000) and sim.admit == (5, 105, 1005)


def test_stage_occupancy():
    """Physical stage s runs logical stages s, s + 12, ...; unused stages run none."""
    c = load_config(doc([{"ops": [{"slot": 4, "op": "mov", "imm": 1}]}] + [{}] * 12))
    occ = TimingModel(c).stage_occupancy()
    assert occ[0].logical == (0, 12) and occ[0].ops == 1 and occ[11].logical == (11,)


def test_target_only_timing():
    """Timing from target parameters alone, with a given pass count."""
    t = TimingModel(TargetParams(), passes=2)
    assert t.latency_cycles() == 111 and t.initiation_interval(64) == 2
