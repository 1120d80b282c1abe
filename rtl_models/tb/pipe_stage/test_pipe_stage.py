"""pipe_stage against hw.pipeline.PipelineModel on one logical stage.

A constrained-random stage (rtl_models.tbkit.configs.balanced_config: gateways, the four
table kinds, VLIW ops of every kind including window loads / stores off the window,
adjust_head / _tail and punt-reason writes, two stateful units, the four externs) is
loaded from its images. PHVs as the model's parser makes them enter one per clock with
random gaps; each PHV leaving the stage is compared with the model's state after the
stage: containers, predicates, verdict, redirect, punt reason, fault, head and end, and
the packet the deparser would emit from the window (which also checks zero_from).
Registers and random states persist across packets in both, so back-to-back packets
check forwarding inside the stage.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import PipelineModel
from hw.pipeline import ops as O
from rtl_models.tbkit import TB, PhvLayout, read_config
from rtl_models.tbkit.oracle import packet as model_packet

STAGE_PARAMS = {"NUM_CONTAINERS", "PREDICATE_BITS", "WINDOW_BYTES", "WINDOW_HEADROOM",
                "STAGE_CYCLES", "GATEWAYS", "TABLES", "STATEFUL_ALUS", "CHECKSUM_UNITS",
                "HASH_UNITS", "RANDOM_UNITS", "TIMESTAMP_UNITS", "KEY_BITS",
                "ACTION_CONTAINERS", "WINDOW_LOADS", "WINDOW_STORES", "MUL_MAX_BITS", "DIV",
                "FRAME_HEADROOM", "FRAME_END", "MIN_PACKET_BYTES", "CLOCK_KHZ", "NUM_STAGES"}


def packets(rng, n: int) -> list[bytes]:
    from rtl_models.tb.pipe_top.test_pipe_top import scapy_packets

    return scapy_packets(rng, n)


def emitted(phv, data: bytes, window_bytes: int, headroom: int) -> bytes:
    """The deparser's packet from a PHV (docs/pipeline.md section 7, step 1)."""
    out = bytearray()
    lim = min(phv.zero_from, len(data))
    for p in range(phv.head, phv.end):
        if p < window_bytes:
            out.append(phv.window[headroom + p])
        else:
            out.append(data[p] if p < lim else 0)
    return bytes(out)


class StageTB(TB):
    def __init__(self, dut) -> None:
        super().__init__(dut)
        self.config = read_config(os.environ["PIPE_IMAGES"])
        self.layout = PhvLayout.from_target(self.config.target)
        self.model = PipelineModel(self.config)
        self.out: list[int] = []
        for sig in ("in_valid", "in_phv", "cp_valid", "cp_kind", "cp_bank", "cp_unit",
                    "cp_addr", "cp_entry_valid", "cp_key", "cp_mask", "cp_data", "img_valid",
                    "img_bank", "img_mem", "img_addr", "img_data"):
            getattr(dut, sig).value = 0

    async def collect(self) -> None:
        while True:
            await RisingEdge(self.clk)
            await ReadOnly()
            if str(self.dut.out_valid.value) == "1":
                self.out.append(int(self.dut.out_phv.value))

    def input_phv(self, data: bytes, ingress: int, queue: int, admit: int) -> int:
        t = self.config.target
        pk = model_packet(self.config, data, ingress=ingress, queue=queue)
        phv = self.layout.parse(data, default_verdict=self.config.default_verdict,
                                ingress=ingress, queue=queue, containers=pk.c)
        if len(data) > t.frame_end:
            phv.fault, phv.punt = True, O.PUNT_FRAME_TOO_LONG
        phv.admit = admit
        assert bytes(phv.window) == bytes(pk.window)
        return self.layout.pack(phv)

    def compare(self, i: int, data: bytes, raw: int, r) -> None:
        t = self.config.target
        phv = self.layout.unpack(raw)
        ctx = dict(pkt=i, length=len(data))
        for c, (got, exp) in enumerate(zip(phv.containers, r.containers, strict=True)):
            self.check(f"container {c}", got, exp, **ctx)
        self.check("predicates", phv.preds, r.predicates, **ctx)
        self.check("verdict", phv.verdict, r.verdict, **ctx)
        self.check("redirect", phv.redirect, r.get_meta("redirect"), **ctx)
        self.check("punt_reason", phv.punt, r.get_meta("punt_reason"), **ctx)
        self.check("fault", int(phv.fault), r.get_meta("fault"), **ctx)
        self.check("head", phv.head & O.M64, r.get_meta("head_delta"), **ctx)
        self.check("end - pkt_len", (phv.end - len(data)) & O.M64, r.get_meta("tail_delta"),
                   **ctx)
        got = emitted(phv, data, t.window_bytes, t.window_headroom)
        if got != r.packet_out:
            self.log.error("packet %s (expected %s) pkt %d", got.hex(), r.packet_out.hex(), i)
        assert got == r.packet_out, f"packet differs, packet {i}"


@cocotb.test()
async def test_stage_against_model(dut):
    """PHVs through one stage, back to back and with gaps, against the model."""
    tb = StageTB(dut)
    await tb.reset()
    cocotb.start_soon(tb.collect())
    pkts = packets(tb.rng, int(os.environ.get("STAGE_PACKETS", "150")))
    sent = []
    await FallingEdge(tb.clk)
    for i, data in enumerate(pkts):
        while tb.rng.random() < 0.2:  # a gap
            dut.in_valid.value = 0
            await FallingEdge(tb.clk)
        ingress, queue, admit = tb.rng.getrandbits(32), tb.rng.getrandbits(16), 1000 + 3 * i
        dut.in_phv.value = tb.input_phv(data, ingress, queue, admit)
        dut.in_valid.value = 1
        sent.append((data, tb.model.process(data, ingress_ifindex=ingress, rx_queue=queue,
                                            cycle=admit)))
        await FallingEdge(tb.clk)
    dut.in_valid.value = 0
    await tb.cycles(tb.config.target.stage_cycles + 2)
    assert len(tb.out) == len(sent), (len(tb.out), len(sent))
    for i, ((data, r), raw) in enumerate(zip(sent, tb.out, strict=True)):
        tb.compare(i, data, raw, r)
    faults = sum(r.get_meta("fault") for _, r in sent)
    writes = sum(len(r.register_writes) for _, r in sent)
    tb.log.info("%d PHVs checked: %d faulted, %d register writes, %d table hits", len(sent),
                faults, writes, sum(h[2] is not None for _, r in sent for h in r.table_hits))


def run(workdir: Path, seeds: tuple[int, ...] = (1, 2, 3)) -> None:
    """One constrained-random stage per seed."""
    import random

    from rtl_models.runner import run_testbench
    from rtl_models.tbkit import target_parameters, write_images
    from rtl_models.tbkit.configs import balanced_config

    for seed in seeds:
        rng = random.Random(seed)
        doc = balanced_config(rng, packets(random.Random(seed), 60), stages=1)
        images = workdir / f"images{seed}"
        cfg = write_images(doc, images)
        sizes = [tb.size for st in cfg.stages for tb in st.tables] or [1]
        words = [u.words for st in cfg.stages for u in st.stateful] or [1]
        run_testbench("pipe_stage", parameters={
            **target_parameters(cfg.target, STAGE_PARAMS), "STAGE_INDEX": 0, "NUM_PASSES": 1,
            "TABLE_DEPTH": max(sizes), "REG_WORDS": max(words),
            "IMAGE_DIR": str(images.resolve())},
            env={"PIPE_IMAGES": str(images), "TB_SEED": str(seed)})
