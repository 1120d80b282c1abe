"""pipe_vliw: the slots and the shared window ports, against ops.py and the model's window
access and adjust (docs/pipeline.md 5.3 - 5.5, 5.8).

Each packet draws a full VLIW memory: up to window_loads loads and window_stores stores in
random slots (containers, metadata, discard slots), at most one adjust op, ALU ops in other
slots, random predicates. Checked: every ALU slot's result, that load port n serves the
n-th load slot (ascending) with the model's value or a fault, that store port n carries the
n-th store slot's index, size and data, the adjust result and change, and the fault reason
of the lowest faulting slot (1 window, 2 headroom).
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from hw.pipeline.config import Op
from hw.pipeline.images import encode_op
from rtl_models.tbkit import TB
from rtl_models.tbkit.oracle import adjust, empty_config, model, packet, window_access
from rtl_models.tbkit.phv import POS_BITS

PACKETS = 300
WRITABLE = [*range(0, 32), 51, 52, 53, *range(58, 64)]


def draw(rng, t) -> list[Op]:
    slots = rng.sample(WRITABLE, len(WRITABLE))
    ops = []

    def guard() -> dict:
        return {"pred": rng.choice((0, rng.randrange(64))), "pred_neg": rng.random() < 0.3}

    for _ in range(rng.randrange(0, t.window_loads + 1)):
        size = rng.choice((1, 2, 4, 8))
        var = rng.random() < 0.5
        ops.append(Op(slot=slots.pop(), op="wldv" if var else "wld", size=size,
                      a=rng.randrange(64), signed=rng.random() < 0.5,
                      offset=rng.randrange(-80, 300), **guard()))
    for _ in range(rng.randrange(0, t.window_stores + 1)):
        size = rng.choice((1, 2, 4, 8))
        var = rng.random() < 0.5
        ops.append(Op(slot=slots.pop(), op="wstv" if var else "wst", size=size,
                      a=rng.randrange(64), b=None, imm=rng.getrandbits(64),
                      offset=rng.randrange(-80, 300), **guard()))
    if rng.random() < 0.6:
        ops.append(Op(slot=slots.pop(), op=rng.choice(("adjh", "adjt")),
                      imm=rng.choice((-100, -70, -8, 8, 100, 4000)) & O.M64, **guard()))
    alu = [op for op in O.VLIW_OPS if op.kind == "alu"]
    for _ in range(rng.randrange(0, 12)):
        s = slots.pop()
        spec = rng.choice(alu)
        width = rng.choice(spec.widths)
        sizes = O.sext_sizes(width) if spec.name == "sext" else (spec.sizes or (8,))
        size = rng.choice(sizes)
        ops.append(Op(slot=s, op=spec.name, width=width, a=rng.randrange(64),
                      b=rng.randrange(64) if rng.random() < 0.5 else None,
                      imm=rng.getrandbits(64), size=size,
                      offset=rng.randrange(0, 9 - size) if spec.uses_offset else 0,
                      signed=spec.signed_ok and rng.random() < 0.5,
                      sel=rng.randrange(64) if spec.name == "sel" else 0, **guard()))
    return ops


@cocotb.test()
async def test_slots_and_ports(dut):
    """Random VLIW memories: ALU slots, load / store port routing, adjust, fault reason."""
    tb = TB(dut)
    cfg = empty_config({"mul_max_bits": 64, "div": "full"})
    t = cfg.target
    m = model(cfg)
    for sig in ("x_valid", "x_cfg", "x_rd", "x_pt", "x_head", "x_end", "x_win"):
        getattr(dut, sig).value = 0
    await tb.reset()
    await FallingEdge(tb.clk)
    reasons = {0: 0, 1: 0, 2: 0}
    for i in range(PACKETS):
        ops = sorted(draw(tb.rng, t), key=lambda o: o.slot)
        pk = packet(cfg, bytes(tb.rng.getrandbits(8) for _ in range(tb.rng.randrange(14, 400))))
        pk.window[:] = bytes(tb.rng.getrandbits(8) for _ in range(len(pk.window)))
        pk.c = [tb.rng.choice((tb.rng.getrandbits(64), tb.rng.randrange(0, 300)))
                for _ in range(t.num_containers)]
        pk.head = tb.rng.randrange(-t.window_headroom, 100)
        pk.end = pk.head + tb.rng.randrange(14, 500)
        pt = tb.rng.getrandbits(64) | 1
        rd = [pk.read(k) for k in range(64)]
        dut.x_valid.value = 1
        dut.x_cfg.value = sum(encode_op(o) << (128 * o.slot) for o in ops)
        dut.x_rd.value = sum(v << (64 * k) for k, v in enumerate(rd))
        dut.x_pt.value = pt
        dut.x_head.value = pk.head & ((1 << POS_BITS) - 1)
        dut.x_end.value = pk.end & ((1 << POS_BITS) - 1)
        dut.x_win.value = int.from_bytes(bytes(pk.window), "little")
        await RisingEdge(tb.clk)
        await ReadOnly()
        alu_v, alu_r = tb.value(dut.w_alu_valid), tb.value(dut.w_alu_value)
        ld_v, ld_val = tb.value(dut.w_ld_valid), tb.value(dut.w_ld_value)
        ld_slot = tb.value(dut.w_ld_slot)
        st_v = tb.value(dut.w_st_valid)
        faults: list[tuple[int, int]] = []  # (slot, reason) of executed, faulting ops
        n_ld = n_st = 0
        for o in ops:
            spec = O.VLIW_BY_NAME[o.op]
            run = bool(pt >> o.pred & 1) != o.pred_neg
            b = rd[o.b] if o.b is not None else o.imm
            ctx = dict(pkt=i, slot=o.slot, op=o.op)
            if spec.kind == "alu":
                if o.slot < t.num_containers or o.slot in (51, 52, 53):
                    tb.check("ALU valid", alu_v >> o.slot & 1, int(run), **ctx)
                    if run:
                        exp = spec.fn(O.OpInput(a=rd[o.a], b=b, width=o.width, size=o.size,
                                                offset=o.offset, signed=o.signed,
                                                sel=bool(pt >> o.sel & 1)))
                        tb.check("ALU result", alu_r >> (64 * o.slot) & O.M64, exp, **ctx)
            elif spec.kind == "wload":
                n = n_ld
                n_ld += 1
                tb.check(f"load port {n} slot", ld_slot >> (6 * n) & 63, o.slot, **ctx)
                idx = window_access(pk, o.offset + (rd[o.a] if spec.variable else 0), o.size)
                tb.check(f"load port {n} valid", ld_v >> n & 1, int(run and idx is not None),
                         **ctx)
                if run and idx is None:
                    faults.append((o.slot, 1))
                elif run:
                    v = int.from_bytes(pk.window[idx:idx + o.size], "little")
                    v = O.sext(v, 8 * o.size) if o.signed else v
                    tb.check(f"load port {n} value", ld_val >> (64 * n) & O.M64, v, **ctx)
            elif spec.kind == "wstore":
                n = n_st
                n_st += 1
                idx = window_access(pk, o.offset + (rd[o.a] if spec.variable else 0), o.size)
                tb.check(f"store port {n} valid", st_v >> n & 1, int(run and idx is not None),
                         **ctx)
                if run and idx is None:
                    faults.append((o.slot, 1))
                elif run:
                    tb.check(f"store port {n} index",
                             tb.value(dut.w_st_index) >> (16 * n) & 0xFFFF, idx, **ctx)
                    tb.check(f"store port {n} bytes", tb.value(dut.w_st_bytes) >> (4 * n) & 15,
                             o.size, **ctx)
                    tb.check(f"store port {n} data", tb.value(dut.w_st_data) >> (64 * n)
                             & O.M64, b & O.mask(8 * o.size), **ctx)
            else:  # adjust
                value, change = adjust(m, pk, o.op, b)
                tb.check("adjust valid", tb.value(dut.w_adj_valid),
                         int(run and change != "fault"), **ctx)
                tb.check("adjust change", tb.value(dut.w_adj_change),
                         int(run and change == "ok"), **ctx)
                if run and change == "fault":
                    faults.append((o.slot, 2))
                if run and change != "fault":
                    tb.check("adjust slot", tb.value(dut.w_adj_slot), o.slot, **ctx)
                    tb.check("adjust result", tb.value(dut.w_adj_result), value, **ctx)
        reason = min(faults)[1] if faults else 0
        reasons[reason] += 1
        tb.check("fault", tb.value(dut.w_fault), int(bool(faults)), pkt=i)
        tb.check("reason", tb.value(dut.w_reason), reason, pkt=i)
        await FallingEdge(tb.clk)
    tb.log.info("fault reasons of %d packets: %s", PACKETS, reasons)
    assert all(reasons.values()), reasons


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_vliw", parameters={"MUL_MAX_BITS": 64, "DIV": "full"})
