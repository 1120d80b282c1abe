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
  interval must be the model's; then the same for a mix of lengths (the bus bound);
- test_buffers (with OUT_FIFO_DEPTH or PAYLOAD_FIFO_DEPTH set, see run_buffers): saturated
  batches that fill the finite buffers (packets in flight, payload FIFO) so that
  s_axis_tready falls; every packet's input start and first output beat must still be
  TimingModel's.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge

from rtl_models.tbkit.top import TopTB, measure_batch

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
                                old = mem.get_exact_index(key)
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


@cocotb.test()
async def test_timing(dut):
    """Latency and II cycle-exact against TimingModel: 64-byte stream, then mixed sizes."""
    tb = TopTB(dut)
    await tb.reset()
    await RisingEdge(tb.clk)
    small = [p[:64].ljust(64, b"\0") for p in scapy_packets(tb.rng, 64)]
    timing = await measure_batch(tb, small)
    assert not timing.differences, timing.differences[0]
    tb.check("sustained II x 1000 (64-byte packets)", round(1000 * timing.ii),
             round(1000 * timing.model_ii))
    # max(passes, beats) unless outputs grow (adjust_tail, punt headers) and the output
    # bus becomes the bottleneck
    assert timing.model_ii >= tb.timing.initiation_interval(64), timing.model_ii
    timing = await measure_batch(tb, scapy_packets(tb.rng, 40))
    assert not timing.differences, timing.differences[0]
    tb.check("sustained II x 1000 (mixed sizes)", round(1000 * timing.ii),
             round(1000 * timing.model_ii))


@cocotb.test()
async def test_buffers(dut):
    """Batches that fill the credits and the payload FIFO: input starts (tready) and output
    beats cycle-exact against TimingModel with the DUT's buffer depths."""
    from hw.pipeline import TimingModel

    tb = TopTB(dut)
    if not (int(dut.OUT_FIFO_DEPTH.value) or int(dut.PAYLOAD_FIFO_DEPTH.value)):
        tb.log.info("automatic buffer depths: run_buffers sets small ones")
        return
    await tb.reset()
    await RisingEdge(tb.clk)
    depth, pay = int(dut.OUT_DEPTH.value), int(dut.PAY_DEPTH.value)
    model = TimingModel(tb.config, out_fifo_depth=depth, payload_fifo_depth=pay)
    mixed = scapy_packets(tb.rng, 40)
    batches = {
        # more packets than credits: with several passes admission is slower than the input
        "64-byte": [p[:64].ljust(64, b"\0") for p in scapy_packets(tb.rng, 2 * depth + 24)],
        # more payload beats per packet than the payload FIFO holds
        "1400-byte": [p[:1400].ljust(1400, b"\1") for p in scapy_packets(tb.rng, 12)],
        "mixed": mixed,
    }
    stalled = 0
    for name, frames in batches.items():
        timing = await measure_batch(tb, frames)
        assert not timing.differences, f"{name}: {timing.differences[0]}"
        sim = model.simulate([len(p) for p in frames])
        wait = sim.in_end[-1] - sim.start[0] - sum(model.beats(len(p)) for p in frames)
        tb.log.info("%s: %d packets, the input waited %d cycles for the buffers (%d packets "
                    "in flight, %d payload beats)", name, len(frames), wait, depth, pay)
        stalled += wait > 0
    assert stalled, "no batch filled the buffers"


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


def run_buffers(workdir: Path, passes: int = 2, out_fifo_depth: int = 8,
                payload_fifo_depth: int = 8) -> None:
    """test_buffers on the worked example's program stretched to ``passes`` passes of two
    physical stages, with small buffers so that short batches fill them."""
    import json

    doc = json.loads(EXAMPLE.read_text())
    doc["stages"] += [{}] * (2 * passes - 1 - len(doc["stages"]))
    doc["target"] = {**doc["target"], "num_stages": 2}
    run(workdir, doc, testcase="test_buffers",
        parameters={"OUT_FIFO_DEPTH": out_fifo_depth, "PAYLOAD_FIFO_DEPTH": payload_fifo_depth})
