"""pipe_top, the whole pipe target, against hw.pipeline.PipelineModel and TimingModel.

The configuration comes from PIPE_IMAGES (its images and config.json), by default the
worked example tests/hw/pipeline/ipv4_drop.json. Packets are scapy frames (IPv4 TCP / UDP
/ ICMP of several sizes, IPv6, ARP, VLAN, frames longer than the window) sent through
AXI-Stream with tuser = {rx_queue, ingress_ifindex, pkt_len}:

- test_traffic: random idle cycles on s_axis and back-pressure on m_axis / m_axis_punt;
  every output packet, verdict (tuser) and punt frame is compared bit for bit with the
  model, in order;
- test_timing: a saturated source and sink; the first output beat of every packet must
  come exactly when TimingModel.simulate says (latency), and the sustained initiation
  interval must be the model's; then the same for a mix of lengths (the bus bound).
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from hw.pipeline import PipelineModel, TimingModel
from rtl_models.tbkit import TB, BeatMonitor, frame, make_sink, make_source, read_config

EXAMPLE = Path(__file__).resolve().parents[3] / "tests" / "hw" / "pipeline" / "ipv4_drop.json"


def scapy_packets(rng, n: int) -> list[bytes]:
    """A mix of frames; deterministic for a given rng."""
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # no "MAC address" chatter
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Dot1Q, Ether

    out = []
    for _ in range(n):
        k = rng.randrange(8)
        pay = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 6, 40, 300, 1400))))
        if k == 0:
            p = Ether() / IP(dst=f"10.0.{rng.randrange(256)}.{rng.randrange(256)}") / TCP(
                dport=rng.randrange(65536)) / pay
        elif k == 1:
            p = Ether() / IP() / UDP(sport=rng.randrange(65536)) / pay
        elif k == 2:
            p = Ether() / IP() / ICMP()
        elif k == 3:
            p = Ether() / IPv6() / UDP() / pay
        elif k == 4:
            p = Ether() / ARP(pdst=f"10.1.1.{rng.randrange(256)}")
        elif k == 5:
            p = Ether() / Dot1Q(vlan=rng.randrange(4096)) / IP() / pay
        elif k == 6:
            p = Ether(type=rng.randrange(0x600, 0x10000)) / pay
        else:
            p = Ether() / IP() / UDP() / bytes(rng.getrandbits(8) for _ in range(
                rng.randrange(0, 100)))
        out.append(bytes(p))
    return out


# One model for the whole simulation: table entries and registers persist in the RTL from
# one cocotb test to the next (a reset clears neither), so they must in the model too.
_MODELS: dict[str, PipelineModel] = {}


class TopTB(TB):
    def __init__(self, dut, *, idle: float = 0.0, backpressure: float = 0.0) -> None:
        super().__init__(dut)
        images = os.environ["PIPE_IMAGES"]
        self.config = read_config(images)
        if images not in _MODELS:
            _MODELS[images] = PipelineModel(self.config)
        self.model = _MODELS[images]
        self.timing = TimingModel(self.config)
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
                f = await self.punt_sink.recv()
                got = bytes(f.tdata)
                if got != r.punt.frame:
                    self.log.error("punt frame %s (expected %s) pkt %d", got.hex(),
                                   r.punt.frame.hex(), i)
                assert got == r.punt.frame, f"punt frame differs, packet {i}"
                continue
            f = await self.sink.recv()
            got = bytes(f.tdata)
            user = f.tuser if isinstance(f.tuser, int) else f.tuser[0]
            verdict, redirect = user & 0xFFFFFFFF, user >> 32
            self.check("verdict", verdict, r.verdict, pkt=i)
            if r.redirect is not None:
                self.check("redirect", redirect, r.redirect, pkt=i)
            if got != r.packet_out:
                self.log.error("packet %s (expected %s) pkt %d", got.hex(), r.packet_out.hex(), i)
            assert got == r.packet_out, f"packet_out differs, packet {i}"

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


def _packets(tb: TopTB, n: int) -> list[tuple[bytes, int, int]]:
    """Scapy frames, two shorter than min_packet_bytes, two longer than frame_end."""
    t = tb.config.target
    frames = scapy_packets(tb.rng, n)
    frames[n // 3] = frames[n // 3][:tb.rng.randrange(1, t.min_packet_bytes)]
    frames[n // 2] = bytes(tb.rng.getrandbits(8) for _ in range(t.frame_end + 40))
    frames[-3] = frames[-3][:t.min_packet_bytes - 1]
    frames[-2] = bytes(tb.rng.getrandbits(8) for _ in range(t.frame_end + 1))
    return [(p, tb.rng.randrange(1, 1 << 32), tb.rng.randrange(0, 1 << 16)) for p in frames]


@cocotb.test()
async def test_traffic(dut):
    """Scapy packets with idle cycles and back-pressure: packets and verdicts bit-exact."""
    tb = TopTB(dut, idle=0.3, backpressure=0.3)
    await tb.reset()
    pkts = _packets(tb, int(os.environ.get("TOP_PACKETS", "120")))
    results = await tb.traffic(pkts)
    actions: dict[str, int] = {}
    for r in results:
        actions[r.action] = actions.get(r.action, 0) + 1
    tb.log.info("%d packets checked (%d more dropped by the parser): %s", len(results),
                len(pkts) - len(results), actions)


@cocotb.test()
async def test_control_plane(dut):
    """Table entries and registers written through the cfg port between bursts, mirrored
    in the model's PipelineState: later packets see the new contents."""
    from hw.pipeline.config import Entry

    tb = TopTB(dut, idle=0.1)
    if not any(st.tables or st.stateful for st in tb.config.stages):
        tb.log.info("no tables or registers in this configuration")
        return
    await tb.reset()
    writes = 0
    for _burst in range(3):
        for s, st in enumerate(tb.config.stages):
            for tbl in st.tables:
                for _ in range(3):
                    addr = tb.rng.randrange(tbl.size)
                    mem = tb.model.state.tables[(s, tbl.slot)]
                    if tb.rng.random() < 0.3:
                        mem.delete(addr)
                        await tb.cfg_write(kind=0, stage=s, unit=tbl.slot, addr=addr,
                                           entry_valid=0)
                    else:
                        if tbl.kind == "direct":
                            key = b""
                        elif mem.iter_entries():  # an existing key: packets match it
                            key = tb.rng.choice(mem.iter_entries()).key
                            if tbl.kind == "exact":
                                old = mem._exact.get(key)
                                if old is not None and old != addr:
                                    mem.delete(old)
                                    await tb.cfg_write(kind=0, stage=s, unit=tbl.slot,
                                                       addr=old, entry_valid=0)
                        else:
                            key = bytes(tbl.key_bytes)
                        e = Entry(index=addr, key=key,
                                  mask=bytes(tb.rng.choice((0, 0xFF)) for _ in key)
                                  if tbl.kind == "ternary" else None,
                                  prefix_len=tb.rng.randrange(0, 8 * len(key) + 1)
                                  if tbl.kind == "lpm" else None,
                                  data=bytes(tb.rng.getrandbits(8) for _ in range(
                                      tbl.data_bytes)))
                        mem.write(e)
                        mask = tbl.get_mask(e) if tbl.kind in ("ternary", "lpm") else b""
                        await tb.cfg_write(kind=0, stage=s, unit=tbl.slot, addr=addr,
                                           key=int.from_bytes(key, "little"),
                                           mask=int.from_bytes(mask, "little"),
                                           data=int.from_bytes(e.data, "little"))
                    writes += 1
            for u in st.stateful:
                for _ in range(3):
                    addr, value = tb.rng.randrange(u.words), tb.rng.getrandbits(64)
                    tb.model.state.write_register(s, u.unit, addr, value)
                    await tb.cfg_write(kind=1, stage=s, unit=u.unit, addr=addr, data=value)
                    writes += 1
        await tb.cycles(4)
        await tb.traffic(_packets(tb, 30))
    tb.log.info("%d control-plane writes between 3 bursts", writes)


async def _timed_batch(tb: TopTB, frames: list[bytes]) -> tuple[float, float]:
    """Send a batch back to back into an always-ready sink; compare cycles with the model."""
    n0_in, n0_out = len(tb.in_mon.first), len(tb.out_mon.first) + len(tb.punt_mon.first)
    results = await tb.traffic([(p, 1, 0) for p in frames])
    await Timer(40, unit="ns")
    ins = tb.in_mon.first[n0_in:]
    outs = sorted(tb.out_mon.first + tb.punt_mon.first)[n0_out:]
    out_lens = [len(r.punt.frame) if r.punted else len(r.packet_out) for r in results]
    sim = tb.timing.simulate([len(p) for p in frames], out_lengths=out_lens)
    beats = tb.timing.beats
    exp_out = [e - beats(x) for e, x in zip(sim.out_end, out_lens, strict=True)]
    for i, (s, o) in enumerate(zip(ins, outs, strict=True)):
        tb.check("input start (cycles after the first)", s - ins[0],
                 sim.start[i] - sim.start[0], pkt=i)
        tb.check("first output beat (cycles after the first input beat)", o - ins[0],
                 exp_out[i] - sim.start[0], pkt=i, length=len(frames[i]))
    n = len(ins)
    lat = [o - s for s, o in zip(ins, outs, strict=True)]
    in_span = ins[-1] + beats(len(frames[-1])) - ins[0]
    out_busy = sum(beats(x) for x in out_lens)
    rtl_ii = max(in_span, out_busy, n * tb.config.num_passes) / n
    tb.log.info("%d packets: cycles per packet (latency) %d..%d, model %d; sustained II %.3f "
                "cycles, model %.3f", n, min(lat), max(lat), tb.timing.latency_cycles(),
                rtl_ii, sim.sustained_ii)
    return rtl_ii, sim.sustained_ii


@cocotb.test()
async def test_timing(dut):
    """Latency and II cycle-exact against TimingModel: 64-byte stream, then mixed sizes."""
    tb = TopTB(dut)
    await tb.reset()
    await RisingEdge(tb.clk)
    small = [p[:64].ljust(64, b"\0") for p in scapy_packets(tb.rng, 64)]
    ii, model_ii = await _timed_batch(tb, small)
    tb.check("sustained II x 1000 (64-byte packets)", round(1000 * ii), round(1000 * model_ii))
    # max(passes, beats) unless outputs grow (adjust_tail, punt headers) and the output
    # bus becomes the bottleneck
    assert model_ii >= tb.timing.initiation_interval(64), model_ii
    ii, model_ii = await _timed_batch(tb, scapy_packets(tb.rng, 40))
    tb.check("sustained II x 1000 (mixed sizes)", round(1000 * ii), round(1000 * model_ii))


def run(workdir: Path, config: Path | str | dict = EXAMPLE, packets: int = 120,
        testcase: str | None = None, parameters: dict | None = None) -> None:
    """Write the configuration's images and run this module on pipe_top; ``parameters``
    overrides the DUT's (e.g. deeper FIFOs)."""
    from rtl_models.runner import run_testbench
    from rtl_models.tbkit import config_parameters, write_images

    cfg = write_images(config, workdir / "images")
    run_testbench("pipe_top", parameters={**config_parameters(cfg, workdir / "images"),
                                          **(parameters or {})},
                  env={"PIPE_IMAGES": str(workdir / "images"), "TOP_PACKETS": str(packets)},
                  testcase=testcase)


def run_random(workdir: Path, seed: int = 4, packets: int = 80) -> None:
    """A constrained-random configuration of 3 logical stages on a 2-stage target: two
    passes (recirculation, banks), every unit kind, the control plane."""
    import random

    from rtl_models.tbkit.configs import balanced_config

    doc = balanced_config(random.Random(seed), scapy_packets(random.Random(seed), 60),
                          stages=3, target={"num_stages": 2})
    run(workdir, doc, packets)
