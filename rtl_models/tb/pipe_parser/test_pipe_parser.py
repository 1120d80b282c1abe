"""pipe_parser against the model's parser (hw/pipeline/model.py, PacketState) and section 3.

Random extracts (every container, size and offset) from the images; packets of 1 to 700
bytes through AXI-Stream with idle cycles, back-pressure on the PHV and payload outputs,
and credits withheld now and then. Checked: each PHV equals the model's parse (containers,
window zero past the packet, P[0], default verdict, length, ingress, queue, head, end,
zero_from); packets shorter than min_packet_bytes vanish; frames longer than frame_end
enter faulted with punt reason 3; every payload beat (positions >= W) is pushed in order;
with a saturated input the PHV leaves exactly parser_cycles after the first beat.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from hw.pipeline import ops as O
from rtl_models.tbkit import TB, PhvLayout, frame, make_source, read_config
from rtl_models.tbkit.oracle import packet as model_packet

FRAME_END = 600  # smaller than the default so that long frames stay short to simulate


def make_config(rng) -> dict:
    extracts = []
    for c in range(32):
        if rng.random() < 0.7:
            size = rng.choice((1, 2, 4, 8))
            extracts.append({"container": c, "offset": rng.randrange(0, 257 - size),
                             "size": size})
    return {"format": "xdp-offload-pipeline", "version": 1,
            "target": {"frame_end": FRAME_END}, "parser": {"extracts": extracts},
            "deparser": {"default_verdict": 3}}


class ParserTB(TB):
    def __init__(self, dut, *, idle: float) -> None:
        super().__init__(dut)
        self.config = read_config(os.environ["PIPE_IMAGES"])
        self.layout = PhvLayout.from_target(self.config.target)
        self.source = make_source(dut, "s_axis", self.clk, self.rst, rng=self.rng, idle=idle)
        self.firsts: list[int] = []  # edges of first beats (every packet, dropped ones too)
        self.phvs: list[tuple[int, int]] = []  # (edge, phv)
        self.payload: list[int] = []
        self.edge = 0
        self.ready_p = 1.0
        self.credit_p = 1.0
        for sig in ("img_valid", "img_mem", "img_addr", "img_data"):
            getattr(dut, sig).value = 0
        dut.credit_ok.value = 1
        dut.pay_ready.value = 1
        dut.phv_ready.value = 1
        dut.cycle.value = 0

    async def drive(self) -> None:
        """The cycle counter, random ready / credit, and the monitors (one edge count).

        Handshakes are read right after each rising edge: the values the DUT sampled.
        """
        in_frame = False
        while True:
            await RisingEdge(self.clk)
            self.edge += 1
            d = self.dut
            if str(d.s_axis_tvalid.value) == "1" and str(d.s_axis_tready.value) == "1":
                if not in_frame:
                    self.firsts.append(self.edge)
                in_frame = str(d.s_axis_tlast.value) != "1"
            if str(d.phv_valid.value) == "1" and str(d.phv_ready.value) == "1":
                self.phvs.append((self.edge, int(d.phv.value)))
            if str(d.pay_valid.value) == "1" and str(d.pay_ready.value) == "1":
                self.payload.append(int(d.pay_data.value))
            await FallingEdge(self.clk)
            d.cycle.value = self.edge
            d.phv_ready.value = int(self.rng.random() < self.ready_p)
            d.pay_ready.value = int(self.rng.random() < self.ready_p)
            d.credit_ok.value = int(self.rng.random() < self.credit_p)

    def expected(self, data: bytes, ingress: int, queue: int) -> int | None:
        t = self.config.target
        if len(data) < t.min_packet_bytes:
            return None
        pk = model_packet(self.config, data, ingress=ingress, queue=queue)
        phv = self.layout.parse(data, default_verdict=self.config.default_verdict,
                                ingress=ingress, queue=queue, containers=pk.c)
        if len(data) > t.frame_end:
            phv.fault, phv.punt = True, O.PUNT_FRAME_TOO_LONG
        return self.layout.pack(phv)


async def _run(dut, idle: float, ready: float, credit: float, n: int,
               min_length: int = 1) -> ParserTB:
    tb = ParserTB(dut, idle=idle)
    tb.ready_p, tb.credit_p = ready, credit
    cocotb.start_soon(tb.drive())
    await tb.reset()
    t = tb.config.target
    pkts = []
    for _ in range(n):
        length = tb.rng.choice((tb.rng.randrange(1, 14), tb.rng.randrange(14, 80),
                                tb.rng.randrange(80, 300), tb.rng.randrange(300, 700)))
        length = max(length, min_length)
        data = bytes(tb.rng.getrandbits(8) for _ in range(length))
        ingress, queue = tb.rng.getrandbits(32), tb.rng.getrandbits(32)
        pkts.append((data, ingress, queue))
        tb.source.send_nowait(frame(data, len(data) | ingress << 16 | queue << 48))
    exp = [(i, tb.expected(*p)) for i, p in enumerate(pkts)]
    exp = [(i, e) for i, e in exp if e is not None]
    await tb.source.wait()
    for _ in range(2000):  # drain: PHVs and payload behind back-pressure
        if len(tb.phvs) >= len(exp):
            break
        await tb.cycles(1)
    await tb.cycles(8)
    tb.check("PHVs out", len(tb.phvs), len(exp))
    for (i, e), (_, got) in zip(exp, tb.phvs, strict=True):
        if got != e:
            g, x = tb.layout.unpack(got), tb.layout.unpack(e)
            for f in ("containers", "preds", "verdict", "punt", "fault", "pkt_len", "ingress",
                      "queue", "head", "end", "zero_from", "window"):
                if getattr(g, f) != getattr(x, f):
                    tb.log.error("pkt %d %s: %r (expected %r)", i, f, getattr(g, f),
                                 getattr(x, f))
        assert got == e, f"PHV of packet {i} differs"
    bb = t.bus_bits // 8
    k0 = t.window_bytes // bb
    exp_beats = []
    for data, _, _ in pkts:
        if len(data) >= t.min_packet_bytes:
            for k in range(k0, -(-len(data) // bb)):
                exp_beats.append(data[k * bb:(k + 1) * bb])
    tb.check("payload beats", len(tb.payload), len(exp_beats))
    for j, (got, e) in enumerate(zip(tb.payload, exp_beats, strict=True)):
        tb.check("payload beat", got & ((1 << (8 * len(e))) - 1), int.from_bytes(e, "little"),
                 beat=j)
    tb.log.info("%d packets, %d PHVs (%d long), %d payload beats", n, len(exp),
                sum(len(p[0]) > t.frame_end for p in pkts), len(exp_beats))
    tb.pkts = pkts
    return tb


@cocotb.test()
async def test_random_traffic(dut):
    """Idle cycles, back-pressure and withheld credits: PHVs and payload in order."""
    await _run(dut, idle=0.3, ready=0.7, credit=0.8, n=120)


@cocotb.test()
async def test_phv_timing(dut):
    """A saturated input: every PHV leaves exactly parser_cycles after its first beat."""
    tb = await _run(dut, idle=0.0, ready=1.0, credit=1.0, n=60, min_length=14)
    t = tb.config.target
    for i, (first, (edge, _)) in enumerate(zip(tb.firsts, tb.phvs, strict=True)):
        tb.check("PHV ready after the first beat (cycles)", edge - first, t.parser_cycles,
                 pkt=i, length=len(tb.pkts[i][0]))


def run(workdir: Path) -> None:
    import random

    from rtl_models.runner import run_testbench
    from rtl_models.tbkit import target_parameters, write_images

    cfg = write_images(make_config(random.Random(5)), workdir / "images")
    run_testbench("pipe_parser", parameters={
        **target_parameters(cfg.target, {"NUM_CONTAINERS", "PREDICATE_BITS", "WINDOW_BYTES",
                                         "WINDOW_HEADROOM", "BUS_BITS", "PARSER_CYCLES",
                                         "MIN_PACKET_BYTES", "FRAME_END"}),
        "IMAGE_DIR": str((workdir / "images").resolve())},
        env={"PIPE_IMAGES": str(workdir / "images")})
