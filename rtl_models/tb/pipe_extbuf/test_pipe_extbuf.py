"""pipe_extbuf (combinational) against the model's extern buffers (extern_buffer in
hw/pipeline/model.py): window bytes at a packet offset, faulting off the window; container
bytes truncated to the length; none."""

from __future__ import annotations

import cocotb
from cocotb.triggers import Timer

from hw.pipeline import PipelineModel
from hw.pipeline.config import Buffer
from rtl_models.tbkit import TB
from rtl_models.tbkit.oracle import empty_config, packet
from rtl_models.tbkit.phv import POS_BITS

VECTORS = 1500


@cocotb.test()
async def test_buffers(dut):
    """Window, container and absent buffers against the model."""
    tb = TB(dut, clock=None, reset=None)
    cfg = empty_config()
    t = cfg.target
    model = PipelineModel(cfg)
    faults = 0
    for i in range(VECTORS):
        pk = packet(cfg, bytes(64))
        pk.window[:] = bytes(tb.rng.getrandbits(8) for _ in range(len(pk.window)))
        pk.c = [tb.rng.getrandbits(64) for _ in range(t.num_containers)]
        pk.head = tb.rng.randrange(-t.window_headroom, 200)
        kind = tb.rng.choice(("none", "window", "window", "containers"))
        length = tb.rng.randrange(0, 65)
        offset = tb.rng.choice((tb.rng.randrange(0, 320 - length + 1),
                                max(0, 320 - length - tb.rng.randrange(0, 80))))
        container = tb.rng.randrange(0, t.num_containers - (length + 7) // 8 + 1)
        buf = None if kind == "none" else Buffer(kind, length, offset, container)
        exp = model.extern_buffer(pk, buf)
        dut.kind.value = {"none": 0, "window": 1, "containers": 2}[kind]
        dut.offset.value = offset
        dut.container.value = container
        dut.length.value = length
        dut.head.value = pk.head & ((1 << POS_BITS) - 1)
        dut.win.value = int.from_bytes(bytes(pk.window), "little")
        dut.rd.value = sum(v << (64 * k) for k, v in enumerate(pk.c))
        await Timer(1, unit="ns")
        ctx = dict(vector=i, kind=kind, length=length, offset=offset, head=pk.head)
        tb.check("out_fault", int(dut.out_fault.value), int(exp is None), **ctx)
        if exp is not None:
            tb.check("out_bytes", int(dut.out_bytes.value), int.from_bytes(exp, "little"),
                     **ctx)
            tb.check("out_present", int(dut.out_present.value), int(len(exp) > 0), **ctx)
        faults += exp is None
    assert 0 < faults < VECTORS // 2, faults


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_extbuf")
