"""pipe_top's testbench: AXI-Stream in and out, the control-plane port, the model as oracle.

``TopTB`` drives s_axis (random idle cycles), takes m_axis and m_axis_punt (random
back-pressure) and compares every output with ``hw.pipeline.PipelineModel`` on the
configuration of ``$PIPE_IMAGES/config.json``, in order. ``strict`` testbenches assert on
the first difference; the co-simulation of mapped programs (``offload.cosim``) counts
them in ``mismatches`` instead, so that a regression row can say how many packets differ.
``measure_batch`` sends a batch back to back into always-ready sinks and measures each
packet's latency and the sustained initiation interval against ``TimingModel``.
``final_state_differences`` reads the table and register memories back (simulator
hierarchy, the RTL has no read port) and compares them with the model's state.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cocotb.triggers import FallingEdge, RisingEdge, Timer

from hw.pipeline import PipelineModel, TimingModel, write_memory_images
from hw.pipeline.images import read_hexfile
from rtl_models.tbkit.axis import BeatMonitor, frame, make_sink, make_source
from rtl_models.tbkit.images import read_config
from rtl_models.tbkit.tb import TB

# One model for the whole simulation: table entries and registers persist in the RTL from
# one cocotb test to the next (a reset clears neither), so they must in the model too.
_MODELS: dict[str, PipelineModel] = {}


class TopTB(TB):
    def __init__(self, dut, *, idle: float = 0.0, backpressure: float = 0.0,
                 strict: bool = True) -> None:
        super().__init__(dut)
        images = os.environ["PIPE_IMAGES"]
        self.images = Path(images)
        self.config = read_config(images)
        if images not in _MODELS:
            _MODELS[images] = PipelineModel(self.config)
        self.model = _MODELS[images]
        self.timing = TimingModel(self.config)
        self.strict = strict
        self.mismatches: list[str] = []
        for sig in ("cfg_valid", "cfg_kind", "cfg_stage", "cfg_unit", "cfg_addr",
                    "cfg_entry_valid", "cfg_key", "cfg_mask", "cfg_data", "img_valid",
                    "img_stage", "img_mem", "img_addr", "img_data"):
            getattr(dut, sig).value = 0
        self.source = make_source(dut, "s_axis", self.clk, self.rst, rng=self.rng, idle=idle)
        self.sink = make_sink(dut, "m_axis", self.clk, self.rst, rng=self.rng,
                              backpressure=backpressure)
        self.punt_sink = make_sink(dut, "m_axis_punt", self.clk, self.rst, rng=self.rng,
                                   backpressure=backpressure)
        self.in_mon = BeatMonitor(dut, "s_axis", self.clk, stamp=dut.cycle_reg).start()
        self.out_mon = BeatMonitor(dut, "m_axis", self.clk).start()
        self.punt_mon = BeatMonitor(dut, "m_axis_punt", self.clk).start()

    @staticmethod
    def tuser(length: int, ingress: int, queue: int) -> int:
        return length | (ingress << 16) | (queue << 48)

    async def reset(self, cycles: int = 4) -> None:
        """Reset the DUT; random externs restart from their seeds, in the model too."""
        await super().reset(cycles)
        for s, st in enumerate(self.config.stages):
            for e in st.externs:
                if e.kind == "random":
                    self.model.state.rng[(s, e.unit)] = e.seed

    def mismatch(self, text: str) -> None:
        """One difference: logged; raised when strict, else counted."""
        self.log.error("%s", text)
        self.mismatches.append(text)
        assert not self.strict, text

    async def traffic(self, packets: list[tuple[bytes, int, int]]) -> list:
        """Send, then compare every output with the model's result (in order).

        The model needs each packet's admission cycle (the timestamp extern reads it): it is
        TimingModel's admission for the first-beat cycles observed on s_axis (stamped with
        the DUT's cycle counter), so that idle cycles and back-pressure are accounted for.
        """
        t = self.config.target
        n0 = len(self.in_mon.first)
        for data, ingress, queue in packets:
            self.source.send_nowait(frame(data, self.tuser(len(data), ingress, queue)))
        await self.source.wait()
        await self.cycles(2)
        stamps = self.in_mon.stamps[n0:]
        kept = [p for p in packets if len(p[0]) >= t.min_packet_bytes]
        kept_stamps = [st for st, p in zip(stamps, packets, strict=True)
                       if len(p[0]) >= t.min_packet_bytes]
        sim = self.timing.simulate([len(p[0]) for p in kept], arrivals=kept_stamps)
        results = [self.model.process(data, ingress_ifindex=ing, rx_queue=q, cycle=adm)
                   for (data, ing, q), adm in zip(kept, sim.admit, strict=True)]
        await self.receive(results)
        return results

    async def receive(self, results) -> None:
        """Every result from its stream, in order, compared with the model's."""
        for i, r in enumerate(results):
            if r.punted:
                got = bytes((await self.punt_sink.recv()).tdata)
                if got != r.punt.frame:
                    self.mismatch(f"packet {i}: punt frame {got.hex()} (expected "
                                  f"{r.punt.frame.hex()})")
                continue
            f = await self.sink.recv()
            got = bytes(f.tdata)
            user = f.tuser if isinstance(f.tuser, int) else f.tuser[0]
            verdict, redirect = user & 0xFFFFFFFF, user >> 32
            if verdict != r.verdict:
                self.mismatch(f"packet {i}: verdict {verdict} (expected {r.verdict})")
            elif r.redirect is not None and redirect != r.redirect:
                self.mismatch(f"packet {i}: redirect {redirect} (expected {r.redirect})")
            elif got != r.packet_out:
                self.mismatch(f"packet {i}: output {got.hex()} (expected "
                              f"{r.packet_out.hex()})")

    async def cfg_write(self, *, kind: int, stage: int, unit: int, addr: int,
                        entry_valid: int = 1, key: int = 0, mask: int = 0, data: int = 0
                        ) -> None:
        """One control-plane transaction (valid / ready handshake)."""
        d = self.dut
        await FallingEdge(self.clk)
        d.cfg_valid.value = 1
        d.cfg_kind.value = kind
        d.cfg_stage.value = stage
        d.cfg_unit.value = unit
        d.cfg_addr.value = addr
        d.cfg_entry_valid.value = entry_valid
        d.cfg_key.value = key
        d.cfg_mask.value = mask
        d.cfg_data.value = data
        while True:
            await RisingEdge(self.clk)
            if str(d.cfg_ready.value) == "1":
                break
        await FallingEdge(self.clk)
        d.cfg_valid.value = 0

    # -- final state ---------------------------------------------------------------------------

    def final_state_differences(self) -> list[str]:
        """Table and register memories of the RTL against the model's state, word by word.

        The expected words are the memory images of the model's state
        (``PipelineState.to_config`` written by ``write_memory_images``): the very encoding
        the RTL loads at start, so a difference is a difference in contents.
        """
        t = self.config.target
        depth = max([tb.size for st in self.config.stages for tb in st.tables] or [1])
        reg_words = max([u.words for st in self.config.stages for u in st.stateful] or [1])
        out: list[str] = []
        with tempfile.TemporaryDirectory(prefix="pipe-state-") as tmp:
            write_memory_images(self.model.state.to_config(), tmp)
            for s, st in enumerate(self.config.stages):
                phys, bank = s % t.num_stages, s // t.num_stages
                stage = self.dut.g_stage[phys].stage
                for tb in st.tables:
                    unit = stage.g_tbl[tb.slot].table_unit
                    name = f"st{s:02d}_t{tb.slot}"
                    mems = [("key", unit.key_mem, t.key_bits + 4)] if tb.kind != "direct" else []
                    if tb.kind in ("ternary", "lpm"):
                        mems.append(("mask", unit.mask_mem, t.key_bits))
                    if tb.action:
                        mems.append(("data", unit.data_mem, 64 * t.action_containers))
                    for what, mem, width in mems:
                        want = read_hexfile(Path(tmp) / f"{name}_{what}.hex", width)
                        for i in range(tb.size):
                            got = self.value(mem[bank * depth + i])
                            if got != want[i]:
                                out.append(f"stage {s} table {tb.slot} ({tb.name}) {what} "
                                           f"word {i}: 0x{got:x} (expected 0x{want[i]:x})")
                for u in st.stateful:
                    mem = stage.g_sfu[u.unit].stateful.mem
                    want = read_hexfile(Path(tmp) / f"st{s:02d}_r{u.unit}.hex", 64)
                    for a in range(u.words):
                        got = self.value(mem[bank * reg_words + a])
                        if got != want[a]:
                            out.append(f"stage {s} stateful unit {u.unit} register {a}: "
                                       f"0x{got:x} (expected 0x{want[a]:x})")
        return out


@dataclass
class BatchTiming:
    """A back-to-back batch: per packet latency (first input beat to first output beat,
    cycles) measured and from TimingModel, and the sustained initiation interval."""

    latency: list[int] = field(default_factory=list)
    model_latency: list[int] = field(default_factory=list)
    ii: float = 0.0
    model_ii: float = 0.0
    differences: list[str] = field(default_factory=list)


async def measure_batch(tb: TopTB, frames: list[bytes], *, ingress: int = 1,
                        queue: int = 0) -> BatchTiming:
    """Send ``frames`` back to back into always-ready sinks (outputs compared as usual) and
    measure every packet's input start and first output beat against TimingModel."""
    n0_in, n0_out = len(tb.in_mon.first), len(tb.out_mon.first) + len(tb.punt_mon.first)
    results = await tb.traffic([(p, ingress, queue) for p in frames])
    await Timer(40, unit="ns")
    ins = tb.in_mon.first[n0_in:]
    outs = sorted(tb.out_mon.first + tb.punt_mon.first)[n0_out:]
    out_lens = [len(r.punt.frame) if r.punted else len(r.packet_out) for r in results]
    # the DUT's buffer depths (its localparams OUT_DEPTH and PAY_DEPTH, which parameters
    # such as OUT_FIFO_DEPTH may have set): the input stalls when they fill
    timing = TimingModel(tb.config, out_fifo_depth=int(tb.dut.OUT_DEPTH.value),
                         payload_fifo_depth=int(tb.dut.PAY_DEPTH.value))
    sim = timing.simulate([len(p) for p in frames], out_lengths=out_lens)
    beats = timing.beats
    exp_out = [e - beats(x) for e, x in zip(sim.out_end, out_lens, strict=True)]
    out = BatchTiming()
    for i, (s, o) in enumerate(zip(ins, outs, strict=True)):
        if s - ins[0] != sim.start[i] - sim.start[0]:
            out.differences.append(f"packet {i}: input starts {s - ins[0]} cycles after the "
                                   f"first (model {sim.start[i] - sim.start[0]})")
        if o - ins[0] != exp_out[i] - sim.start[0]:
            out.differences.append(f"packet {i} ({len(frames[i])} bytes): first output beat "
                                   f"{o - ins[0]} cycles after the first input beat (model "
                                   f"{exp_out[i] - sim.start[0]})")
        out.latency.append(o - s)
        out.model_latency.append(exp_out[i] - sim.start[i])
    n = len(ins)
    in_span = ins[-1] + beats(len(frames[-1])) - ins[0]
    out_busy = sum(beats(x) for x in out_lens)
    out.ii = max(in_span, out_busy, n * tb.config.num_passes) / n
    out.model_ii = sim.sustained_ii
    tb.log.info("%d packets: cycles per packet (latency) %d..%d, model %d..%d; sustained II "
                "%.3f cycles, model %.3f", n, min(out.latency), max(out.latency),
                min(out.model_latency), max(out.model_latency), out.ii, out.model_ii)
    return out
