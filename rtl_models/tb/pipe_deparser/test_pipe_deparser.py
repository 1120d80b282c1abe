"""pipe_deparser against the model's deparser (hw/pipeline/model.py: PacketState.output and the
punt header of _deparse).

Random final PHVs: packets of 14-700 bytes, windows with random bytes (headroom too), head
moved back into the headroom or forward, end shrunk or grown past the packet, zero_from
below the length (a shrink then a growth), verdicts, redirect targets, punt reasons with
and without fault, random punt containers (containers and metadata from deparser.hex).
The payload FIFO holds every packet's beats at positions >= W; m_axis and m_axis_punt see
random back-pressure. Every frame must be the model's, with tuser {redirect, verdict},
and every payload beat must be consumed. With ready sinks and packets as they arrived, the
first beat of a PHV leaves deparser_cycles after the PHV arrives, and beats follow back to
back (a moved head or a cut tail costs a cycle per payload beat skipped or drained).
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from rtl_models.tbkit import TB, PhvLayout, make_sink, read_config
from rtl_models.tbkit.oracle import packet as model_packet
from rtl_models.tbkit.oracle import punt_frame


def make_config(rng) -> dict:
    punt = rng.sample([*range(0, 32), *range(48, 58)], 5)
    return {"format": "xdp-offload-pipeline", "version": 1, "target": {},
            "deparser": {"default_verdict": 2, "punt_containers": punt}}


class DeparserTB(TB):
    def __init__(self, dut, *, backpressure: float) -> None:
        super().__init__(dut)
        self.config = read_config(os.environ["PIPE_IMAGES"])
        self.t = self.config.target
        self.layout = PhvLayout.from_target(self.t)
        self.sink = make_sink(dut, "m_axis", self.clk, self.rst, rng=self.rng,
                              backpressure=backpressure)
        self.punt_sink = make_sink(dut, "m_axis_punt", self.clk, self.rst, rng=self.rng,
                                   backpressure=backpressure)
        self.payload: deque[int] = deque()
        self.popped = 0
        self.edge = 0
        self.in_edges: list[int] = []
        self.out_edges: list[tuple[int, bool, bool]] = []  # edge, punt stream, last
        for sig in ("in_valid", "in_phv", "pay_valid", "pay_data", "img_valid", "img_mem",
                    "img_addr", "img_data"):
            getattr(dut, sig).value = 0

    async def fifo(self) -> None:
        """The payload FIFO (first word fall-through) and the beat monitors."""
        d = self.dut
        while True:
            await RisingEdge(self.clk)
            self.edge += 1
            if str(d.pay_valid.value) == "1" and str(d.pay_ready.value) == "1":
                self.payload.popleft()
                self.popped += 1
            if str(d.in_valid.value) == "1":
                self.in_edges.append(self.edge)
            for punt, name in ((False, "m_axis"), (True, "m_axis_punt")):
                if str(getattr(d, f"{name}_tvalid").value) == "1" and \
                        str(getattr(d, f"{name}_tready").value) == "1":
                    self.out_edges.append((self.edge, punt,
                                           str(getattr(d, f"{name}_tlast").value) == "1"))
            await FallingEdge(self.clk)
            d.pay_valid.value = int(bool(self.payload))
            d.pay_data.value = self.payload[0] if self.payload else 0

    def random_phv(self, i: int, plain: bool = False):
        """(phv, data, expected frame, punted, verdict, redirect) for packet i; ``plain``:
        the packet as it arrived (head 0, end and zero_from its length)."""
        r, t = self.rng, self.t
        length = r.choice((r.randrange(14, 64), r.randrange(64, 256), r.randrange(256, 700)))
        data = bytes(r.getrandbits(8) for _ in range(length))
        pk = model_packet(self.config, data, ingress=r.getrandbits(32), queue=r.getrandbits(32))
        for _ in range(r.randrange(0, 20)):  # window writes, headroom included
            pk.window[r.randrange(len(pk.window))] = r.getrandbits(8)
        if not plain and r.random() < 0.5:
            pk.end = r.randrange(14, min(t.frame_end, length + 200))
        if not plain and r.random() < 0.5:
            pk.head = r.randrange(-t.window_headroom, pk.end - t.min_packet_bytes + 1)
        if pk.end - pk.head < t.min_packet_bytes:
            pk.head = pk.end - t.min_packet_bytes
        pk.head = max(pk.head, -t.window_headroom)
        if not plain and r.random() < 0.3 and max(0, pk.head + 14) <= length:
            pk.zero_from = r.randrange(max(0, pk.head + 14), length + 1)
        pk.c = [r.getrandbits(64) for _ in range(t.num_containers)]
        pk.verdict = r.choice((0, 1, 2, 3, 4, 7))
        pk.redirect = r.getrandbits(32)
        if r.random() < 0.3:
            pk.punt = r.choice((1, 2, 3, 16, 1234))
            pk.fault = r.random() < 0.5
        body = pk.output()
        carried = tuple(pk.read(c) for c in self.config.punt_containers)
        phv = self.layout.empty()
        phv.containers = list(pk.c)
        phv.window = bytearray(pk.window)
        phv.verdict, phv.redirect, phv.punt, phv.fault = pk.verdict, pk.redirect, pk.punt, \
            pk.fault
        phv.pkt_len, phv.ingress, phv.queue = length, pk.ingress, pk.queue
        phv.head, phv.end, phv.zero_from = pk.head, pk.end, pk.zero_from
        expected = punt_frame(pk, carried, body) if pk.punt else body
        return self.layout.pack(phv), data, expected, bool(pk.punt), pk.verdict, pk.redirect


async def _run(dut, *, backpressure: float, n: int, gap: float,
               plain: bool = False) -> DeparserTB:
    tb = DeparserTB(dut, backpressure=backpressure)
    cocotb.start_soon(tb.fifo())
    await tb.reset()
    t = tb.t
    bb = t.bus_bits // 8
    k0 = t.window_bytes // bb
    items = [tb.random_phv(i, plain) for i in range(n)]
    for _, data, *_rest in items:
        for k in range(k0, -(-len(data) // bb)):
            tb.payload.append(int.from_bytes(data[k * bb:(k + 1) * bb], "little"))
    beats = len(tb.payload)
    await FallingEdge(tb.clk)
    for phv, *_rest in items:
        while tb.rng.random() < gap:
            dut.in_valid.value = 0
            await FallingEdge(tb.clk)
        dut.in_valid.value = 1
        dut.in_phv.value = phv
        await FallingEdge(tb.clk)
    dut.in_valid.value = 0
    for i, (_, _data, exp, punted, verdict, redirect) in enumerate(items):
        f = await (tb.punt_sink if punted else tb.sink).recv()
        got = bytes(f.tdata)
        if got != exp:
            tb.log.error("frame %s (expected %s) pkt %d", got.hex(), exp.hex(), i)
        assert got == exp, f"frame {i} differs (punt {punted})"
        if not punted:
            user = f.tuser if isinstance(f.tuser, int) else f.tuser[0]
            tb.check("tuser", user, verdict | redirect << 32, pkt=i)
    await tb.cycles(40)
    tb.check("payload beats consumed", tb.popped, beats)
    tb.items = items
    tb.log.info("%d frames (%d punted), %d payload beats", n, sum(x[3] for x in items), beats)
    return tb


@cocotb.test()
async def test_random_frames(dut):
    """Random final PHVs with back-pressure on both outputs: frames bit-exact."""
    await _run(dut, backpressure=0.3, n=150, gap=0.3)


@cocotb.test()
async def test_back_to_back(dut):
    """Ready sinks, packets as they arrived (nothing to skip or drain): the first beat
    leaves deparser_cycles after the PHV, beats follow without bubbles."""
    tb = await _run(dut, backpressure=0.0, n=60, gap=0.0, plain=True)
    firsts = []
    start = True
    for edge, _punt, last in tb.out_edges:
        if start:
            firsts.append(edge)
        start = last
    free = 0
    for i, (first, arrive) in enumerate(zip(firsts, tb.in_edges, strict=True)):
        expected = max(arrive + tb.t.deparser_cycles, free)
        tb.check("first output beat (edge)", first, expected, pkt=i)
        nbeats = max(1, -(-len(tb.items[i][2]) // (tb.t.bus_bits // 8)))
        free = first + nbeats


def run(workdir: Path) -> None:
    import random

    from rtl_models.runner import run_testbench
    from rtl_models.tbkit import target_parameters, write_images

    cfg = write_images(make_config(random.Random(9)), workdir / "images")
    run_testbench("pipe_deparser", parameters={
        **target_parameters(cfg.target, {"NUM_CONTAINERS", "PREDICATE_BITS", "WINDOW_BYTES",
                                         "WINDOW_HEADROOM", "BUS_BITS", "PUNT_CONTAINERS",
                                         "DEPARSER_CYCLES"}),
        "OUT_FIFO_DEPTH": 256, "IMAGE_DIR": str((workdir / "images").resolve())},
        env={"PIPE_IMAGES": str(workdir / "images")})
