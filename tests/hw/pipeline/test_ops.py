"""VLIW ops and gateway comparisons, run through the model; expected values by hand."""

from __future__ import annotations

import pytest

from hw.pipeline import ops as O
from tests.hw.pipeline.helpers import frame, model, run_op

M64 = 2**64 - 1
M32 = 2**32 - 1
NEG1 = M64


def s64(v: int) -> int:
    return v & M64


ALU_CASES = [
    # op, width, a, b, expected
    ("add", 64, M64, 2, 1),
    ("add", 32, M32, 2, 1),
    ("add", 32, 0x1_0000_0005, 3, 8),
    ("sub", 64, 0, 1, M64),
    ("sub", 32, 0, 1, M32),
    ("mul", 64, 3, 5, 15),
    ("mul", 64, 2**63, 2, 0),
    ("mul", 32, 0x10000, 0x10000, 0),
    ("mul", 32, 0x1_0000_0003, 7, 21),
    ("div", 64, 100, 7, 14),
    ("div", 64, 100, 0, 0),
    ("div", 64, M64, 2, 2**63 - 1),
    ("div", 32, M32, 2, 0x7FFFFFFF),
    ("div", 32, 0x64, 0x1_0000_0000, 0),  # divisor's low 32 bits are zero
    ("sdiv", 64, s64(-7), 2, s64(-3)),
    ("sdiv", 64, 2**63, NEG1, 2**63),
    ("sdiv", 64, 5, 0, 0),
    ("sdiv", 32, s64(-7) & M32, 2, 0xFFFFFFFD),
    ("sdiv", 32, 0x80000000, M32, 0x80000000),
    ("mod", 64, 100, 7, 2),
    ("mod", 64, 100, 0, 100),
    ("mod", 32, 0x1_0000_0064, 7, 2),
    ("mod", 32, 0x1_0000_0064, 0, 0x64),  # by zero: low 32 bits of A, zero-extended
    ("smod", 64, s64(-7), 2, s64(-1)),
    ("smod", 64, 7, s64(-2), 1),
    ("smod", 64, s64(-7), 0, s64(-7)),
    ("smod", 64, 2**63, NEG1, 0),
    ("smod", 32, 0xAB_FFFF_FFF9, 0, 0xFFFFFFF9),
    ("smod", 32, 0xFFFFFFF9, 2, 0xFFFFFFFF),
    ("or", 64, 0xF0F0_0000_0000_00FF, 0x0F0F_0000_0000_0F0F, 0xFFFF_0000_0000_0FFF),
    ("or", 32, 0xF0F0_0000_0000_00FF, 0x0F0F_0000_0000_0F0F, 0x0FFF),
    ("and", 64, 0xF0F0_0000_0000_00FF, 0xFF00_0000_0000_0F0F, 0xF000_0000_0000_000F),
    ("and", 32, 0xFFFF_FFFF_0000_00FF, 0xFFFF_FFFF_0000_0F0F, 0x0F),
    ("xor", 64, 0xFF00_0000_0000_00FF, 0x0FF0_0000_0000_0F0F, 0xF0F0_0000_0000_0FF0),
    ("xor", 32, 0xFF00_0000_0000_00FF, 0x0FF0_0000_0000_0F0F, 0x0FF0),
    ("lsh", 64, 1, 63, 2**63),
    ("lsh", 64, 1, 64, 1),  # amount masked to 63
    ("lsh", 64, 1, 65, 2),
    ("lsh", 32, 1, 31, 0x80000000),
    ("lsh", 32, 1, 32, 1),  # amount masked to 31
    ("lsh", 32, 0x1_8000_0001, 1, 2),
    ("rsh", 64, 2**63, 63, 1),
    ("rsh", 64, 2**63, 64, 2**63),
    ("rsh", 32, 0x1_8000_0000, 31, 1),
    ("rsh", 32, 0x80000000, 33, 0x40000000),
    ("arsh", 64, 2**63, 63, M64),
    ("arsh", 64, 2**63, 64, 2**63),
    ("arsh", 64, 0x4000_0000_0000_0000, 62, 1),
    ("arsh", 32, 0x80000000, 31, M32),
    ("arsh", 32, 0x80000000, 4, 0xF8000000),
    ("arsh", 32, 0xFFFF_FFFF_0000_0010, 1, 8),
    ("arsh", 32, 0x80000000, 36, 0xF8000000),
    ("mov", 64, 0, 0x1234_5678_9ABC_DEF0, 0x1234_5678_9ABC_DEF0),
    ("mov", 32, 0, 0x1234_5678_9ABC_DEF0, 0x9ABC_DEF0),
]


@pytest.mark.parametrize("op,width,a,b,expected", ALU_CASES,
                         ids=[f"{c[0]}{c[1]}-{i}" for i, c in enumerate(ALU_CASES)])
def test_alu_register_operand(op, width, a, b, expected):
    """Each binary ALU op with B from a container matches eBPF's result."""
    assert run_op(op, a, b, width=width) == expected


@pytest.mark.parametrize("op,width,a,b,expected", ALU_CASES[:20],
                         ids=[f"{c[0]}{c[1]}-imm{i}" for i, c in enumerate(ALU_CASES[:20])])
def test_alu_immediate_operand(op, width, a, b, expected):
    """The immediate form gives the same results as the register form."""
    assert run_op(op, a, imm=b, width=width) == expected


def test_negative_immediate_is_sign_extended_pattern():
    """An immediate given as -1 is the 64-bit pattern of -1 (eBPF sign-extends imm32)."""
    assert run_op("add", 5, imm=-1, width=64) == 4
    assert run_op("mov", 0, imm=-1, width=64) == M64
    assert run_op("mov", 0, imm=-1, width=32) == M32


@pytest.mark.parametrize("width,a,expected", [(64, 1, M64), (64, 0, 0), (32, 1, M32),
                                              (32, 0x1_0000_0000, 0), (64, 2**63, 2**63)])
def test_neg(width, a, expected):
    """neg is two's complement negation on the width, zero-extended for 32 bits."""
    assert run_op("neg", a, width=width) == expected


@pytest.mark.parametrize("width,size,a,expected", [
    (64, 1, 0x80, 0xFFFF_FFFF_FFFF_FF80), (64, 1, 0x17F, 0x7F), (64, 2, 0x8000, s64(-0x8000)),
    (64, 4, 0x7FFF_FFFF, 0x7FFF_FFFF), (64, 4, 0x1_8000_0000, 0xFFFF_FFFF_8000_0000),
    (32, 1, 0xFF, 0xFFFFFFFF), (32, 2, 0x8000, 0xFFFF8000)])
def test_sext(width, size, a, expected):
    """sext (movsx) sign-extends 8/16/32 bits to 64, or 8/16 bits to 32 (zero above)."""
    assert run_op("sext", a, width=width, size=size) == expected


@pytest.mark.parametrize("op,size,a,expected", [
    ("be", 2, 0x1122_3344, 0x4433), ("be", 4, 0x1122_3344, 0x4433_2211),
    ("be", 8, 0x0102_0304_0506_0708, 0x0807_0605_0403_0201),
    ("le", 2, 0x1122_3344, 0x3344), ("le", 4, 0xAA_1122_3344, 0x1122_3344),
    ("le", 8, 0x0102_0304_0506_0708, 0x0102_0304_0506_0708)])
def test_byte_swaps(op, size, a, expected):
    """be16/32/64 swap the low bytes; le16/32/64 truncate (a little-endian machine)."""
    assert run_op(op, a, size=size) == expected


def test_ext_and_ins():
    """ext extracts bytes (zero- or sign-extended); ins replaces bytes of A with B's."""
    v = 0x8877_6655_4433_2211
    assert run_op("ext", v, offset=2, size=2) == 0x4433
    assert run_op("ext", v, offset=7, size=1) == 0x88
    assert run_op("ext", v, offset=7, size=1, signed=True) == 0xFFFF_FFFF_FFFF_FF88
    assert run_op("ext", v, offset=4, size=4, signed=True) == 0xFFFF_FFFF_8877_6655
    assert run_op("ins", v, 0x99AA_BBCC, offset=2, size=2) == 0x8877_6655_BBCC_2211
    assert run_op("ins", v, 0x99, offset=0, size=8) == 0x99


def test_sel():
    """sel picks A when the select predicate is set, B otherwise."""
    assert run_op("sel", 7, 9, sel=0) == 7  # predicate 0 is the constant 1
    assert run_op("sel", 7, 9, sel=5) == 9  # predicate 5 is never set
    assert run_op("sel", 0x1_0000_0007, 9, sel=0, width=32) == 7


def test_predicated_op_does_nothing_when_false():
    """An op whose predicate is false leaves its container alone; pred_neg inverts."""
    m = model([{"ops": [{"slot": 0, "op": "mov", "imm": 5, "pred": 3},
                        {"slot": 1, "op": "mov", "imm": 6, "pred": 3, "pred_neg": True}]}])
    r = m.process(frame(11, 22))
    assert r.containers[:2] == (11, 6)


def test_ops_read_stage_entry_values():
    """Two ops of one stage see the containers as they entered it (a swap works)."""
    m = model([{"ops": [{"slot": 0, "op": "mov", "b": 1}, {"slot": 1, "op": "mov", "b": 0}]}])
    assert m.process(frame(11, 22)).containers[:2] == (22, 11)


def test_op_table_codes_are_unique_and_dense():
    """Every VLIW, gateway and stateful code is unique; VLIW codes are 0..27."""
    assert sorted(O.VLIW_BY_CODE) == list(range(28))
    assert len(O.GATEWAY_BY_CODE) == len(O.GATEWAY_CMPS) == 12
    assert sorted(O.STATEFUL_BY_CODE) == list(range(8))


# --- gateways -------------------------------------------------------------------------------

GW_CASES = [
    ("eq", 64, 5, 5, 1), ("eq", 64, 5, 6, 0), ("eq", 64, 0x1_0000_0005, 5, 0),
    ("eq", 32, 0x1_0000_0005, 5, 1),
    ("ne", 64, 5, 6, 1), ("ne", 32, 0x1_0000_0005, 5, 0),
    ("ugt", 64, M64, 1, 1), ("ugt", 64, 1, 1, 0), ("ugt", 32, 0x7FFFFFFF, 0x80000000, 0),
    ("uge", 64, 1, 1, 1), ("uge", 64, 0, 1, 0),
    ("ult", 64, 1, M64, 1), ("ult", 32, 0x1_0000_0000, 1, 1),
    ("ule", 64, 1, 1, 1), ("ule", 64, 2, 1, 0),
    ("sgt", 64, M64, 1, 0), ("sgt", 64, 1, M64, 1), ("sgt", 32, 0x7FFFFFFF, 0x80000000, 1),
    ("sgt", 32, 0x1_FFFF_FFFF, 0, 0),
    ("sge", 64, s64(-5), s64(-5), 1), ("sge", 64, s64(-6), s64(-5), 0),
    ("slt", 64, M64, 0, 1), ("slt", 32, 0xFFFF_FFFF, 0, 1), ("slt", 64, 0xFFFF_FFFF, 0, 0),
    ("sle", 64, s64(-1), s64(-1), 1), ("sle", 64, 0, s64(-1), 0),
    ("set", 64, 0b1010, 0b0100, 0), ("set", 64, 0b1010, 0b0010, 1),
    ("set", 32, 0x1_0000_0000, 0x1_0000_0000, 0), ("set", 64, 0x1_0000_0000, 0x1_0000_0000, 1),
]


def gateway_result(gw: dict, a: int = 0, b: int = 0, extra: list[dict] | None = None) -> int:
    """1 when predicate 1 is set after the stage (observed through a predicated mov)."""
    m = model([{"gateways": [gw] + (extra or [])}, {"ops": [{"slot": 4, "op": "mov",
                                                             "imm": 1, "pred": 1}]}])
    return m.process(frame(a, b)).containers[4]


@pytest.mark.parametrize("cmp,width,a,b,expected", GW_CASES,
                         ids=[f"{c[0]}{c[1]}-{i}" for i, c in enumerate(GW_CASES)])
def test_gateway_compare_containers(cmp, width, a, b, expected):
    """Each comparison, signed and unsigned, on 64 and 32 bits, A and B containers."""
    assert gateway_result({"dst": 1, "cmp": cmp, "a": 0, "b": 1, "width": width}, a, b) \
        == expected


@pytest.mark.parametrize("cmp,width,a,b,expected", GW_CASES,
                         ids=[f"{c[0]}{c[1]}-imm{i}" for i, c in enumerate(GW_CASES)])
def test_gateway_compare_immediate(cmp, width, a, b, expected):
    """The same comparisons against an immediate."""
    assert gateway_result({"dst": 1, "cmp": cmp, "a": 0, "imm": b, "width": width}, a) \
        == expected


def test_gateway_slice_invert_and_combine():
    """A byte slice of A; invert negates; pred_in combines with and / or and its negation."""
    base = {"dst": 1, "cmp": "eq", "a": 0, "a_offset": 1, "a_size": 1, "imm": 0x12}
    assert gateway_result(base, 0x1234) == 1
    assert gateway_result({**base, "invert": True}, 0x1234) == 0
    # pred_in 2 is never set: and gives 0, or gives the comparison, negated pred_in gives 1
    assert gateway_result({**base, "pred_in": 2}, 0x1234) == 0
    assert gateway_result({**base, "imm": 0, "pred_in": 2, "combine": "or"}, 0x1234) == 0
    assert gateway_result({**base, "imm": 0, "pred_in": 2, "pred_in_neg": True,
                           "combine": "or"}, 0x1234) == 1


def test_gateway_pred_and_stage_entry_predicates():
    """cmp pred copies a predicate as it entered the stage, not one set in the same stage."""
    m = model([{"gateways": [{"dst": 2, "cmp": "eq", "a": 0, "imm": 7}]},
               {"gateways": [{"dst": 1, "cmp": "pred", "a": 2},
                             {"dst": 3, "cmp": "eq", "a": 0, "imm": 7},
                             {"dst": 4, "cmp": "pred", "a": 3}]},
               {"ops": [{"slot": 4, "op": "mov", "imm": 1, "pred": 1},
                        {"slot": 5, "op": "mov", "imm": 1, "pred": 4}]}])
    r = m.process(frame(7))
    assert (r.containers[4], r.containers[5]) == (1, 0)
    assert r.predicates == 0b1111  # predicates 0-3; 4 copied 3 before it was set


def test_gateway_metadata_operand():
    """Gateways read metadata: data_len (56) < 100 holds for a 64-byte packet."""
    assert gateway_result({"dst": 1, "cmp": "ult", "a": 56, "imm": 100}) == 1
    assert gateway_result({"dst": 1, "cmp": "eq", "a": 48, "imm": 64}) == 1
