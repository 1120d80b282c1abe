"""pipe_externs against the model's externs (PipelineModel.extern_value): engine assignment,
predication, buffers and faults, random states per bank.

Each packet draws a configuration of two banks (passes) whose extern units carry the four
kinds in a random order of unit numbers (engine n of a kind must serve the n-th unit of that
kind), random predicates, window or container buffers (some off the window: fault, no
write), seeds from the word or a container. The random units' states advance only when the
packet commits (w_commit), as at the stage's write-back.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import PipelineModel
from hw.pipeline import ops as O
from hw.pipeline.config import Buffer, Extern
from hw.pipeline.images import encode_extern
from rtl_models.tbkit import TB
from rtl_models.tbkit.oracle import empty_config, packet
from rtl_models.tbkit.phv import POS_BITS

PACKETS = 800
KINDS = ("checksum", "hash", "random", "timestamp")


def draw_bank(rng, bank: int) -> list[Extern]:
    """Four units, one per kind, in a random unit order; some left unused."""
    units = rng.sample(range(4), 4)
    out = []
    for unit, kind in zip(units, KINDS, strict=True):
        if rng.random() < 0.15:
            continue
        seed_c = rng.randrange(0, 64) if kind in ("checksum", "hash") and rng.random() < 0.3 \
            else None

        def buf(mult4: bool) -> Buffer | None:
            if rng.random() < 0.2:
                return None
            n = rng.randrange(0, 65)
            if mult4:
                n -= n % 4
            if rng.random() < 0.6:
                return Buffer("window", n, offset=min(rng.choice((0, 14, 40, 260, 300)),
                                                      320 - n))
            return Buffer("containers", n, container=rng.randrange(0, 33 - (n + 7) // 8))

        mode = rng.choice(O.CSUM_MODES)
        x = buf(mode == "x86_unfolded") if kind == "checksum" else \
            (buf(True) or Buffer("containers", 8, container=0)) if kind == "hash" else None
        y = buf(mode == "x86_unfolded") if kind == "checksum" else None
        out.append(Extern(unit=unit, kind=kind, dst=rng.randrange(0, 32),
                          pred=rng.randrange(0, 64), pred_neg=rng.random() < 0.3,
                          seed=rng.randrange(1, 1 << 32) if seed_c is None else 0,
                          seed_container=seed_c, x=x, y=y, mode=mode))
    return out


@cocotb.test()
async def test_externs(dut):
    """Random unit orders, buffers, faults and commits against the model."""
    tb = TB(dut)
    cfg = empty_config()
    t = cfg.target
    model = PipelineModel(cfg)
    banks = [draw_bank(tb.rng, b) for b in range(2)]

    def words(bs: list[list[Extern]]) -> int:
        v = 0
        for b, exts in enumerate(bs):
            for e in exts:
                v |= encode_extern(e) << (128 * (4 * b + e.unit))
        return v

    for sig in ("x_valid", "x_bank", "x_rd", "x_pt", "x_head", "x_win", "x_admit",
                "w_commit"):
        getattr(dut, sig).value = 0
    dut.cfg_all.value = words(banks)
    await tb.reset()  # random states restart from the words' seeds
    state = {(b, e.unit): e.seed for b, es in enumerate(banks) for e in es if e.kind == "random"}
    pending = None
    await FallingEdge(tb.clk)
    stats = {"exec": 0, "fault": 0}
    for i in range(PACKETS):
        commit = tb.rng.random() < 0.8
        if pending is not None and commit:
            state[pending[0]] = pending[1]
        pending = None
        dut.w_commit.value = int(commit)
        bank = tb.rng.randrange(2)
        pk = packet(cfg, bytes(tb.rng.getrandbits(8) for _ in range(tb.rng.randrange(14, 300))))
        pk.window[:] = bytes(tb.rng.getrandbits(8) for _ in range(len(pk.window)))
        pk.c = [tb.rng.getrandbits(64) for _ in range(t.num_containers)]
        pk.head = tb.rng.randrange(-t.window_headroom, 100)
        pt = tb.rng.getrandbits(64) | 1
        admit = tb.rng.getrandbits(40)
        valid = tb.rng.random() < 0.9
        dut.x_valid.value = int(valid)
        dut.x_bank.value = bank
        dut.x_rd.value = sum(pk.read(k) << (64 * k) for k in range(64))
        dut.x_pt.value = pt
        dut.x_head.value = pk.head & ((1 << POS_BITS) - 1)
        dut.x_win.value = int.from_bytes(bytes(pk.window), "little")
        dut.x_admit.value = admit
        expected = {}  # engine -> (dst, value) or None (fault)
        fault = False
        for e in banks[bank]:
            if not valid or bool(pt >> e.pred & 1) == e.pred_neg:
                continue
            engine = KINDS.index(e.kind)  # one engine per kind on the default target
            rng_state = {(0, e.unit): state.get((bank, e.unit), 0)}
            newstate: dict = {}
            model.state.rng = rng_state
            v = model.extern_value(0, e, pk, admit, newstate)
            stats["exec"] += 1
            if v is None:
                fault = True
                stats["fault"] += 1
                expected[engine] = None
            else:
                expected[engine] = (e.dst, v)
                if e.kind == "random":
                    pending = ((bank, e.unit), v)
        await RisingEdge(tb.clk)
        await ReadOnly()
        we = int(dut.w_we.value)
        tb.check("w_fault", int(dut.w_fault.value), int(fault), packet=i, bank=bank)
        for engine in range(4):
            exp = expected.get(engine)
            tb.check(f"w_we[{engine}]", we >> engine & 1, int(exp is not None), packet=i,
                     bank=bank)
            if exp is not None:
                tb.check(f"w_dst[{engine}]", int(dut.w_dst.value) >> (6 * engine) & 63,
                         exp[0], packet=i)
                tb.check(f"w_value[{engine}] ({KINDS[engine]})",
                         int(dut.w_value.value) >> (64 * engine) & O.M64, exp[1], packet=i,
                         bank=bank)
        await FallingEdge(tb.clk)
    tb.log.info("%s", stats)
    assert stats["fault"] > 10 and stats["exec"] > PACKETS, stats


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_externs", parameters={"NUM_PASSES": 2})
