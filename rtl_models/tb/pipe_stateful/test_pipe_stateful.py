"""pipe_stateful against docs/pipeline.md 5.6 and hw/pipeline/ops.py's stateful ops.

Registers of two banks (two logical stages on one physical stage) come from the images;
then one packet per clock with a random op, field size and offset, index from a table hit
or a container, base and stride, B from a container or the immediate, cmpxchg comparand,
fetch, predicate and bank, on a handful of addresses so that back-to-back packets hit the
same word (forwarding). Write-backs are randomly cancelled (w_commit = 0: the packet
faulted). Idle cycles carry control-plane register writes, refused while a data-plane
write commits. The reference applies the same sequence to a Python copy of the registers.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from hw.pipeline.config import Stateful
from hw.pipeline.images import encode_stateful
from rtl_models.tbkit import TB, read_config

WORDS = 16
PACKETS = 1500


def make_config(rng) -> dict:
    stages = []
    for _ in range(2):
        stages.append({
            "tables": [{"slot": 0, "kind": "direct", "size": 4,
                        "key": [{"container": 0, "offset": 0, "size": 1}]}],
            "stateful": [{"unit": 0, "op": "add", "words": WORDS, "index": {"table": 0},
                          "imm": 1, "init": [[a, rng.getrandbits(64)] for a in range(WORDS)]}],
        })
    return {"format": "xdp-offload-pipeline", "version": 1, "target": {"num_stages": 1},
            "stages": stages}


class StatefulTB(TB):
    def __init__(self, dut, config) -> None:
        super().__init__(dut)
        self.regs = []
        for st in config.stages:
            regs = [0] * WORDS
            for a, v in st.stateful[0].init:
                regs[a] = v
            self.regs.append(regs)
        for sig in ("x_valid", "x_cfg", "x_bank", "x_rd", "x_pt", "x_hit", "x_addr",
                    "w_commit", "cp_valid", "cp_bank", "cp_addr", "cp_data"):
            getattr(dut, sig).value = 0

    def unit(self) -> Stateful:
        r = self.rng
        op = r.choice(O.STATEFUL_OPS).name
        size = r.choice((1, 2, 4, 8))
        by_table = r.random() < 0.5
        use_b = r.random() < 0.5
        return Stateful(unit=0, op=op, words=WORDS, size=size,
                        offset=size * r.randrange(0, 8 // size),
                        index_table=r.randrange(4) if by_table else None,
                        index_container=r.randrange(64), base=r.randrange(0, 4),
                        stride=r.choice((1, 1, 2, 3)), b=r.randrange(64) if use_b else None,
                        imm=0 if use_b else r.getrandbits(64), cmp=r.randrange(64),
                        fetch=r.randrange(32) if r.random() < 0.7 else None,
                        pred=r.randrange(64), pred_neg=r.random() < 0.5)


@cocotb.test()
async def test_read_modify_write(dut):
    """Every op, size and offset; back-to-back packets on the same word; cancelled writes."""
    tb = StatefulTB(dut, read_config(os.environ["PIPE_IMAGES"]))
    await tb.reset()
    await FallingEdge(tb.clk)
    pending = None  # (bank, addr, new word) of the packet in write-back
    stats = {"exec": 0, "fwd": 0, "cp": 0}
    last_addr = None
    prev = None
    for i in range(PACKETS):
        commit = tb.rng.random() < 0.8
        if pending is not None and commit:
            tb.regs[pending[0]][pending[1]] = pending[2]
        dut.w_commit.value = int(commit)
        d = dut
        if tb.rng.random() < 0.1:  # an idle cycle: a control-plane write
            bank, addr, value = tb.rng.randrange(2), tb.rng.randrange(WORDS), tb.rng.getrandbits(64)
            d.x_valid.value = 0
            d.cp_valid.value = 1
            d.cp_bank.value = bank
            d.cp_addr.value = addr
            d.cp_data.value = value
            await ReadOnly()
            ready = int(d.cp_ready.value)
            tb.check("cp_ready", ready, int(not (pending is not None and commit)), cycle=i)
            await RisingEdge(tb.clk)
            if ready:
                tb.regs[bank][addr] = value
                stats["cp"] += 1
            await FallingEdge(tb.clk)
            d.cp_valid.value = 0
            pending = None
            continue
        u = tb.unit()
        rd = [tb.rng.choice((tb.rng.getrandbits(64), tb.rng.randrange(8))) for _ in range(64)]
        pt = tb.rng.getrandbits(64) | 1
        if prev is not None and tb.rng.random() < 0.5:  # the same word as the last packet
            bank, pu, hits, addrs, ival = prev
            u = Stateful(**{**u.__dict__, "index_table": pu.index_table,
                            "index_container": pu.index_container, "base": pu.base,
                            "stride": pu.stride, "pred": 0, "pred_neg": False})
            rd[u.index_container] = ival
        else:
            bank = tb.rng.randrange(2)
            hits = tb.rng.getrandbits(4)
            addrs = [tb.rng.randrange(8) for _ in range(4)]
        prev = (bank, u, hits, addrs, rd[u.index_container])
        valid = tb.rng.random() < 0.9
        # the reference (docs/pipeline.md 5.6)
        exec_ = valid and (bool(pt >> u.pred & 1) != u.pred_neg)
        if u.index_table is not None:
            exec_ = exec_ and bool(hits >> u.index_table & 1)
            index = addrs[u.index_table]
        else:
            index = rd[u.index_container] & O.M32
        addr = u.base + index * u.stride
        exec_ = exec_ and addr < u.words
        exp_fetch = None
        pending = None
        if exec_:
            stats["exec"] += 1
            stats["fwd"] += addr == last_addr and commit
            word = tb.regs[bank][addr]
            bits, shift = 8 * u.size, 8 * u.offset
            old = (word >> shift) & O.mask(bits)
            b = rd[u.b] if u.b is not None else u.imm
            new = O.STATEFUL_BY_NAME[u.op].fn(old, b, rd[u.cmp], bits)
            if u.fetch is not None:
                exp_fetch = (u.fetch, old)
            if new is not None:
                pending = (bank, addr, (word & ~(O.mask(bits) << shift) & O.M64) | (new << shift))
        last_addr = addr if exec_ else None
        d.x_valid.value = int(valid)
        d.x_cfg.value = encode_stateful(u)
        d.x_bank.value = bank
        d.x_rd.value = sum(v << (64 * k) for k, v in enumerate(rd))
        d.x_pt.value = pt
        d.x_hit.value = hits
        d.x_addr.value = sum(a << (16 * k) for k, a in enumerate(addrs))
        await RisingEdge(tb.clk)
        await ReadOnly()
        ctx = dict(packet=i, op=u.op, size=u.size, offset=u.offset, bank=bank, addr=addr)
        tb.check("w_fetch_en", int(d.w_fetch_en.value), int(exp_fetch is not None), **ctx)
        if exp_fetch is not None:
            tb.check("w_fetch_container", int(d.w_fetch_container.value), exp_fetch[0], **ctx)
            tb.check("w_fetch_value", int(d.w_fetch_value.value), exp_fetch[1], **ctx)
        await FallingEdge(tb.clk)
    tb.log.info("%s", stats)
    assert stats["exec"] > PACKETS // 8 and stats["fwd"] > 10 and stats["cp"] > 10, stats


def run(workdir: Path) -> None:
    import random

    from rtl_models.runner import run_testbench
    from rtl_models.tbkit import write_images

    write_images(make_config(random.Random(11)), workdir / "images")
    run_testbench("pipe_stateful", parameters={
        "UNIT": 0, "NUM_PASSES": 2, "NUM_STAGES": 1, "REG_WORDS": WORDS,
        "IMAGE_DIR": str((workdir / "images").resolve())},
        env={"PIPE_IMAGES": str(workdir / "images")})
