"""offload.lower.ir: replace-all-uses over every kind of op and its use lists."""

from __future__ import annotations

from offload.lower.ir import (
    TRUE,
    AluOp,
    ExternOp,
    GatewayOp,
    KeyPart,
    Lookup,
    StatefulOp,
    TableOp,
    Value,
    replace_all_uses,
)


def values(n: int) -> list[Value]:
    return [Value(i, f"v{i}", "op") for i in range(n)]


def ops_reading(old: Value, other: Value):
    """One op of each kind that reads ``old`` somewhere (and ``other`` elsewhere)."""
    lookup = Lookup(0, map=0, node=0, slot=0, key=None)
    alu = AluOp(0, 0, 0, TRUE, "add", dst=None, a=old, b=old)
    gate = GatewayOp(1, 0, 0, "eq", a=other, b=old)
    inner = StatefulOp(2, 0, 0, TRUE, lookup, "add", 0, 8, 0, b=old)
    table = TableOp(3, 0, 0, TRUE, lookup, "exact", [KeyPart(old, 0, 8), KeyPart(other, 0, 4)],
                    [])
    table.stateful = [inner]
    stateful = StatefulOp(4, 0, 0, TRUE, lookup, "add", 0, 8, 0, b=other, index=old, cmp=old)
    extern = ExternOp(5, 0, 0, TRUE, "checksum", dst=other, seed_src=old,
                      x=("containers", [other, old], 16), y=("window", 0, 8))
    return [alu, gate, table, stateful, extern]


def test_every_op_kind_reads_the_new_value():
    """After the replacement no op reads the old value; the other operands stay."""
    old, new, other = values(3)
    ops = ops_reading(old, other)
    for op in ops:
        old.uses.append(op)
    replace_all_uses(old, new)
    for op in ops:
        reads = op.reads()
        assert not any(x is old for x in reads), op.kind
        assert any(x is new for x in reads), op.kind
    assert ops[1].a is other and ops[2].key[1].src is other and ops[4].x[1][0] is other
    assert old.uses == [] and [u.id for u in new.uses] == [0, 1, 3, 4, 5]


def test_only_the_given_ops_change_and_uses_stay_single():
    """With ``ops`` given, other readers keep the old value; a reader joins new.uses once."""
    old, new, other = values(3)
    a = AluOp(0, 0, 0, TRUE, "add", dst=None, a=old, b=old)
    b = AluOp(1, 0, 0, TRUE, "sub", dst=None, a=old, b=other)
    old.uses = [a, a, b]
    replace_all_uses(old, new, [a, a])
    assert a.a is new and a.b is new and b.a is old
    assert new.uses == [a] and old.uses == [b]
