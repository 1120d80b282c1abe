"""Timing: II = 1 when the program fits, the latency formula, recirculation, bus bound,
the finite buffers (credits, payload FIFO, window records)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.pipeline import TargetParams, TimingModel, load_config
from hw.pipeline.timing import BufferDepths
from tests.budget import examples
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


# -- finite buffers (docs/pipeline.md 8, 8.1): the RTL's s_axis_tready --------------------


def test_buffer_depths_follow_the_rtl():
    """OUT_DEPTH = PAY_DEPTH = pow2_at_least(latency + 8) unless given; the parser's window
    FIFO holds OUT_DEPTH records for several passes, else 8 / 16 / 32 by parser_cycles."""
    assert TimingModel(TargetParams(), passes=1).buffers == BufferDepths(64, 64, 8)
    assert TimingModel(TargetParams(), passes=2).buffers == BufferDepths(128, 128, 128)
    assert timing(parser_cycles=9).buffers.windows == 16
    small = TimingModel(TargetParams(), passes=3, out_fifo_depth=4, payload_fifo_depth=2)
    assert small.buffers == BufferDepths(4, 2, 4)
    for bad in (1, 3, -2):
        with pytest.raises(ValueError, match="power of two"):
            TimingModel(TargetParams(), out_fifo_depth=bad)


def test_credits_hold_back_the_input():
    """Two packets in flight: packet i starts once packet i - 2's last output beat is on
    the bus (55 = packet 0's only output beat); the latency stays 55."""
    sim = TimingModel(TargetParams(), passes=1, out_fifo_depth=2).simulate([64] * 6)
    assert sim.out_end[:3] == (56, 57, 111)
    assert sim.start == (0, 1, 55, 56, 110, 111)
    assert sim.latency_cycles == (55,) * 6


def test_payload_fifo_holds_back_payload_beats():
    """Two payload beats: a 384-byte packet has 6 beats, beats 4 and 5 go to the payload
    FIFO and are read when output beats 4 and 5 leave (59, 60 for packet 0); packet 1's
    payload beats wait for them, packet 2's for packet 1's (output beats 65, 66)."""
    t = TimingModel(TargetParams(), passes=1, payload_fifo_depth=2)
    sim = t.simulate([384] * 3)
    assert sim.start == (0, 6, 61) and sim.in_end == (6, 61, 67)
    assert sim.admit == (5, 11, 66) and sim.out_end == (61, 67, 122)
    # a packet with more payload beats than the FIFO waits for its own output: beat 6
    # for output beat 4 (cycle 59), beat 7 for output beat 5; output beats 6 and 7 then
    # leave two cycles after their input beats (61, 62)
    sim = t.simulate([512])
    assert sim.in_end == (61,) and sim.out_end == (63,)


def test_window_records_hold_back_the_input():
    """One pass and parser_cycles 40: 32 window records; packet 32 waits for packet 0's
    record to leave at 0 + 39."""
    sim = timing(parser_cycles=40).simulate([64] * 40)
    assert sim.start[:32] == tuple(range(32)) and sim.start[32:34] == (40, 41)


def test_two_passes_saturated_fill_the_credits():
    """The RTL's 200 64-byte packets on two passes: 128 credits run out, packet 184
    starts at 223 instead of 184; admission and output cycles stay the same."""
    t = TimingModel(TargetParams(), passes=2)
    sim = t.simulate([64] * 200)
    free = TimingModel(TargetParams(), passes=2, out_fifo_depth=256).simulate([64] * 200)
    assert sim.start[:184] == free.start[:184] == tuple(range(184))
    assert sim.start[184:] == tuple(range(223, 239))
    assert sim.admit == free.admit and sim.out_end == free.out_end
    assert sim.sustained_ii == free.sustained_ii == 2.0


@settings(max_examples=examples(150), deadline=None)
@given(st.integers(1, 3), st.sampled_from([2, 4, 8, 16]), st.sampled_from([2, 4, 8, 32]),
       st.lists(st.tuples(st.integers(14, 1600), st.integers(14, 1600), st.integers(0, 6)),
                min_size=1, max_size=60))
def test_buffers_property(passes: int, depth: int, pay: int,
                          pkts: list[tuple[int, int, int]]) -> None:
    """Any stream: no packet starts while ``depth`` are in flight (first beat .. last
    output beat), starts are increasing and never earlier than with unbounded buffers,
    and the latency is never below the unloaded one."""
    lengths = [p[0] for p in pkts]
    outs = [p[1] for p in pkts]
    arrivals = list(itertools.accumulate(p[2] for p in pkts))
    t = TimingModel(TargetParams(num_stages=2), passes=passes, out_fifo_depth=depth,
                    payload_fifo_depth=pay)
    sim = t.simulate(lengths, arrivals=arrivals, out_lengths=outs)
    big = 1 << 16
    free = TimingModel(TargetParams(num_stages=2), passes=passes, out_fifo_depth=big,
                       payload_fifo_depth=big).simulate(lengths, arrivals, outs)
    for i, s in enumerate(sim.start):
        # the credit counter at the cycle of the first beat: started before, not yet back
        # (a credit returns the cycle of the last output beat, out_end - 1)
        assert sum(1 for j in range(i) if sim.out_end[j] - 1 > s) < depth
        assert s >= max(arrivals[i], free.start[i])
        assert i == 0 or s >= sim.in_end[i - 1]
        assert sim.in_end[i] >= s + t.beats(lengths[i])
    assert all(a >= b for a, b in zip(sim.out_end, free.out_end, strict=True))
    assert min(sim.latency_cycles) >= t.latency_cycles()
