"""System test of pipe_top on a mapped program (driven by ``rtl_models.system``).

The images in PIPE_IMAGES are a mapper configuration whose tables and registers already
hold the program's scenario state (the control plane's initial load); COSIM_PACKETS lists
the packets (hex, one trace). One cocotb test, three phases:

1. traffic: the trace through s_axis with random idle cycles, m_axis / m_axis_punt with
   random back-pressure; every output packet, verdict, redirect and punt frame compared
   with PipelineModel, in order (differences counted, not fatal);
2. timing: the trace's first COSIM_TIMED packets cut or padded to 64 bytes, back to back
   into always-ready sinks: each packet's latency (first input beat to first output beat)
   and the sustained initiation interval against TimingModel;
3. state: every table and register word of the RTL against the model's state.

The measurements go to COSIM_RESULT (JSON) before the test asserts, so that a failing run
still reports what differed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout

from rtl_models.tbkit.top import BatchTiming, TopTB, measure_batch

MAX_LISTED = 20  # differences written to the result per kind


def _budget_ns(tb: TopTB, packets: list[bytes], slack: float) -> int:
    """A generous bound on a phase's simulated time: every packet's beats and passes at
    ``slack`` times the rate, plus the pipeline's latency; past it the RTL has stalled."""
    t = tb.timing
    cycles = sum(max(t.beats(len(p)), tb.config.num_passes) for p in packets)
    return int((slack * cycles + 4 * t.latency_cycles() + 1000) * 4)


def _stimulus_slack(idle: float, backpressure: float) -> float:
    """Slack of the random-stimulus phase, from the configuration's cycle bound: a beat
    waits on average 1 / (1 - idle) cycles for input and 1 / (1 - backpressure) for a
    ready output (geometric waits), so the expected cycles are the bound times both; the
    budget allows 8 times that (modelling choice, at least the former fixed 20): back-
    pressure 0.99 gets 800 times the rate, not a false "stalled"."""
    return max(20.0, 8.0 / ((1.0 - min(idle, 0.999)) * (1.0 - min(backpressure, 0.999))))


@cocotb.test()
async def test_system(dut):
    """Mapped program: outputs, cycles and final state against the pipeline model."""
    started = time.perf_counter()
    idle = float(os.environ.get("COSIM_IDLE", "0.2"))
    backpressure = float(os.environ.get("COSIM_BACKPRESSURE", "0.2"))
    slack = _stimulus_slack(idle, backpressure)
    tb = TopTB(dut, idle=idle, backpressure=backpressure, strict=False)
    await tb.reset()
    await RisingEdge(tb.clk)
    packets = [bytes.fromhex(h) for h in json.loads(Path(os.environ["COSIM_PACKETS"])
                                                    .read_text())]
    stalled = []
    try:
        results = await with_timeout(tb.traffic([(p, 1, 0) for p in packets]),
                                     _budget_ns(tb, packets, slack), "ns")
    except SimTimeoutError:
        results = []
        stalled.append(f"traffic: the RTL stalled (no result within "
                       f"{_budget_ns(tb, packets, slack)} ns for {len(packets)} packets)")
    traffic_mismatches = len(tb.mismatches)
    # phase 2 on always-ready sinks
    for bus in (tb.sink, tb.punt_sink, tb.source):
        bus.clear_pause_generator()
        bus.pause = False  # the generator may have stopped in a paused cycle
    await tb.cycles(4)
    n_timed = int(os.environ.get("COSIM_TIMED", "64"))
    frames = [p[:64].ljust(64, b"\0") for p in packets[:n_timed]]
    timing = BatchTiming()
    if frames and not stalled:
        try:
            timing = await with_timeout(measure_batch(tb, frames), _budget_ns(tb, frames, 8),
                                        "ns")
        except SimTimeoutError:
            stalled.append(f"timing: the RTL stalled (no result within "
                           f"{_budget_ns(tb, frames, 8)} ns for {len(frames)} packets)")
    state = tb.final_state_differences()
    for text in state:
        tb.log.error("%s", text)
    punted = sum(r.punted for r in results)
    # packets of the trace that hit a table entry: the scenario's state is exercised
    hits = sum(any(index is not None for _, _, index in r.table_hits) for r in results)
    doc = {
        "packets": len(results) + len(frames),
        "traffic_packets": len(results), "timed_packets": len(frames),
        "refused": len(packets) - len(results), "punted": punted, "table_hits": hits,
        "mismatches": len(tb.mismatches) + len(state) + len(stalled),
        "stalled": stalled,
        "output_mismatches": len(tb.mismatches),
        "traffic_mismatches": traffic_mismatches,
        "state_mismatches": len(state),
        "timing_mismatches": len(timing.differences),
        "differences": (stalled + tb.mismatches[:MAX_LISTED] + state[:MAX_LISTED]
                        + timing.differences[:MAX_LISTED]),
        "latency_cycles": timing.latency, "model_latency_cycles": timing.model_latency,
        "ii": timing.ii, "model_ii": timing.model_ii,
        "cycles": tb.cycle, "wall_s": time.perf_counter() - started,
    }
    Path(os.environ["COSIM_RESULT"]).write_text(json.dumps(doc, indent=1) + "\n")
    tb.log.info("%d packets (%d punted), %d output / %d state / %d timing differences; "
                "II %.3f (model %.3f)", doc["packets"], punted, doc["output_mismatches"],
                doc["state_mismatches"], doc["timing_mismatches"], timing.ii, timing.model_ii)
    assert not doc["mismatches"], doc["differences"][0]
    assert not timing.differences, timing.differences[0]
