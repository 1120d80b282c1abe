"""Virtual containers and predicates onto the PHV by liveness over the stages."""

from __future__ import annotations

import pytest

from offload.lower.containers import AllocationError, allocate, value_intervals
from offload.lower.ir import TRUE, AluOp, GatewayOp, Pred, Value


class Prog:
    """A hand-made lowered program: ops with stages."""

    def __init__(self) -> None:
        self.values: list[Value] = []
        self.ops: list = []
        self.stage: dict[str, int] = {}
        self.preds: list[Pred] = []

    def value(self, name: str, kind: str = "op", extract=None) -> Value:
        v = Value(len(self.values), name, kind, extract=extract)
        self.values.append(v)
        return v

    def op(self, stage: int, dst: Value | None, *reads: Value) -> AluOp:
        a = reads[0] if reads else None
        b = reads[1] if len(reads) > 1 else None
        op = AluOp(len(self.ops), 0, None, TRUE, "add" if b is not None else "mov", dst, a, b)
        self.ops.append(op)
        self.stage[op.uid] = stage
        if dst is not None:
            dst.defs.append(op)
        for r in reads:
            r.uses.append(op)
        return op

    def gateway(self, stage: int, a: Value) -> Pred:
        gw = GatewayOp(len(self.ops), 0, None, "eq", a)
        self.ops.append(gw)
        self.stage[gw.uid] = stage
        a.uses.append(gw)
        gw.out = Pred(len(self.preds), "p", gw)
        self.preds.append(gw.out)
        return gw.out

    def run(self, containers: int = 8, preds: int = 64):
        used = {v.id for v in self.values}
        return allocate(self.ops, self.values, self.preds, self.stage, containers, preds,
                        max(self.stage.values()) + 1, used)


def test_value_written_in_its_last_readers_stage_shares_the_container():
    """v0 is read last in stage 2; v1 is written in stage 2: one container holds both."""
    p = Prog()
    e = p.value("pkt", "extract", (12, 2))
    v0 = p.value("v0")
    v1 = p.value("v1")
    p.op(0, v0, e)
    p.op(2, v1, v0)
    p.op(3, None, v1)
    iv = value_intervals(p.ops, p.values, p.stage)
    assert iv[e.id][:2] == (-1, 0) and iv[v0.id][:2] == (0, 2) and iv[v1.id][:2] == (2, 3)
    alloc = p.run()
    assert alloc.container[v0.id] == alloc.container[v1.id]
    assert alloc.container[e.id] == alloc.container[v0.id] or alloc.max_live <= 2


def test_overlapping_values_take_different_containers():
    """Two values live across the same boundary never share."""
    p = Prog()
    a, b = p.value("a"), p.value("b")
    p.op(0, a)
    p.op(0, b)
    p.op(3, None, a, b)
    alloc = p.run()
    assert alloc.container[a.id] != alloc.container[b.id]
    assert alloc.max_live == 2


def test_too_many_live_values_is_an_allocation_error():
    """Nine values live at once on an 8-container PHV: the error says how many."""
    p = Prog()
    vals = [p.value(f"v{i}") for i in range(9)]
    for v in vals:
        p.op(0, v)
    for i in range(0, 9, 2):
        p.op(1, None, *vals[i:i + 2])
    with pytest.raises(AllocationError, match=r"needs 9 containers .* has 8"):
        p.run()


def test_zero_initialised_values_hold_their_container_from_the_parser():
    """A value read speculatively where it may not be defined is live from stage -1."""
    p = Prog()
    v = p.value("phi", "phi")
    v.zero_init = True
    p.op(3, v)
    p.op(4, None, v)
    assert value_intervals(p.ops, p.values, p.stage)[v.id][:2] == (-1, 4)


def test_predicate_bits_are_reused_after_their_last_reader():
    """A gateway's bit is free again after the stage of its last user (closed intervals)."""
    p = Prog()
    x = p.value("x", "extract", (0, 1))
    p1 = p.gateway(0, x)
    user = p.op(1, None, x)
    user.pred = (p1, False)
    p2 = p.gateway(2, x)
    user2 = p.op(2, None, x)
    user2.pred = (p2, False)
    alloc = p.run()
    assert alloc.predicate[p1.id] == alloc.predicate[p2.id] == 1
