"""The reference VM is the model's oracle: the same programs and operations, the same results."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from ebpf.code.asm import assemble_insns
from ebpf.code.isa import AluOp, Endian, JmpOp
from ebpf.loader.program import Function, ProgramDef
from ebpf.vm.alu import ALU32_OPS, ALU64_OPS, JMP32_OPS, JMP64_OPS, endian_op
from ebpf.vm.machine import Vm
from hw.pipeline import PipelineModel, load_config
from hw.pipeline import ops as O
from tests.hw.pipeline.helpers import doc

U64 = st.integers(0, 2**64 - 1)
PACKETS = [bytes(Ether() / IP() / TCP()), bytes(Ether(src="02:00:00:00:00:01") / IPv6() / UDP()),
           bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP()), bytes(Ether() / IP() / UDP() / (b"p" * 900))]


def vm_for(text: str) -> Vm:
    insns = assemble_insns(text)
    p = ProgramDef("t", "xdp", "xdp", insns, [], {}, [])
    p.functions = [Function("t", 0, p.num_slots, "xdp")]
    return Vm([], p)


ALU_MAP = {"add": (AluOp.ADD, 0), "sub": (AluOp.SUB, 0), "mul": (AluOp.MUL, 0),
           "div": (AluOp.DIV, 0), "sdiv": (AluOp.DIV, 1), "mod": (AluOp.MOD, 0),
           "smod": (AluOp.MOD, 1), "or": (AluOp.OR, 0), "and": (AluOp.AND, 0),
           "xor": (AluOp.XOR, 0), "lsh": (AluOp.LSH, 0), "rsh": (AluOp.RSH, 0),
           "arsh": (AluOp.ARSH, 0), "mov": (AluOp.MOV, 0)}


@pytest.mark.parametrize("name", sorted(ALU_MAP))
@given(a=U64, b=U64 | st.sampled_from([0, 1, 2**63, 2**64 - 1, 2**32, 2**31, 31, 32, 63, 64]))
def test_alu_ops_match_vm(name, a, b):
    """Every binary VLIW op equals the VM's ALU64 / ALU32 handler on the same operands."""
    fn = O.VLIW_BY_NAME[name].fn
    assert fn is not None
    assert fn(O.OpInput(a=a, b=b, width=64)) == ALU64_OPS[ALU_MAP[name]](a, b)
    assert fn(O.OpInput(a=a, b=b, width=32)) == ALU32_OPS[ALU_MAP[name]](a, b)


@given(a=U64)
def test_unary_ops_match_vm(a):
    """sext (movsx), be/le and neg equal the VM's handlers."""
    for size in (1, 2, 4):
        assert O.op_sext(O.OpInput(a=a, size=size)) == ALU64_OPS[(AluOp.MOV, 8 * size)](0, a)
    for size in (1, 2):
        assert O.op_sext(O.OpInput(a=a, size=size, width=32)) == \
            ALU32_OPS[(AluOp.MOV, 8 * size)](0, a)
    for size in (2, 4, 8):
        assert O.op_be(O.OpInput(a=a, size=size)) == endian_op(Endian.TO_BE, 8 * size)(a)
        assert O.op_le(O.OpInput(a=a, size=size)) == endian_op(Endian.TO_LE, 8 * size)(a)
    assert O.op_neg(O.OpInput(a=a)) == -a % 2**64
    assert O.op_neg(O.OpInput(a=a, width=32)) == -a % 2**32


JMP_MAP = {"eq": JmpOp.JEQ, "ne": JmpOp.JNE, "ugt": JmpOp.JGT, "uge": JmpOp.JGE,
           "ult": JmpOp.JLT, "ule": JmpOp.JLE, "sgt": JmpOp.JSGT, "sge": JmpOp.JSGE,
           "slt": JmpOp.JSLT, "sle": JmpOp.JSLE, "set": JmpOp.JSET}


@pytest.mark.parametrize("name", sorted(JMP_MAP))
@given(a=U64, b=U64 | st.sampled_from([0, 1, 2**63, 2**64 - 1, 2**31, 2**32 - 1]))
def test_gateway_cmps_match_vm(name, a, b):
    """Every gateway comparison equals the VM's JMP / JMP32 condition."""
    fn = O.GATEWAY_BY_NAME[name].fn
    assert fn is not None
    assert fn(a, b, 64) == JMP64_OPS[JMP_MAP[name]](a, b)
    assert fn(a, b, 32) == JMP32_OPS[JMP_MAP[name]](a & 2**32 - 1, b & 2**32 - 1)


IPV4_DROP_ASM = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r0, 1
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, +4
ldxh %r1, [%r2+12]
mov %r0, 1
jeq %r1, 8, +1
mov %r0, 2
exit
"""


@pytest.mark.parametrize("pkt", PACKETS, ids=lambda p: p[12:14].hex())
def test_worked_example_matches_vm(pkt):
    """The worked example's configuration and its eBPF give the same verdict and packet."""
    vm = vm_for(IPV4_DROP_ASM).run_xdp(pkt)
    r = PipelineModel(load_config(Path(__file__).with_name("ipv4_drop.json"))).process(pkt)
    assert (r.verdict, r.packet_out) == (vm.verdict, vm.packet)


MAC_SWAP_ASM = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 14
mov %r0, 2
jgt %r4, %r3, +9
ldxw %r5, [%r2+0]
ldxh %r6, [%r2+4]
ldxw %r7, [%r2+6]
ldxh %r8, [%r2+10]
stxw [%r2+0], %r7
stxh [%r2+4], %r8
stxw [%r2+6], %r5
stxh [%r2+10], %r6
mov %r0, 3
exit
"""


@pytest.mark.parametrize("pkt", PACKETS, ids=lambda p: p[12:14].hex())
def test_mac_swap_matches_vm(pkt):
    """Window stores: swapping the MAC addresses and XDP_TX, as the VM runs it."""
    extracts = [{"container": 5, "offset": 0, "size": 4}, {"container": 6, "offset": 4, "size": 2},
                {"container": 7, "offset": 6, "size": 4}, {"container": 8, "offset": 10, "size": 2}]
    stores = [(0, 7, 4), (4, 8, 2), (6, 5, 4), (10, 6, 2)]
    ops = [{"slot": 58 + i, "op": "wst", "offset": off, "b": c, "size": n}
           for i, (off, c, n) in enumerate(stores)] + [{"slot": 51, "op": "mov", "imm": 3}]
    model = PipelineModel(load_config(doc([{"ops": ops}], extracts=extracts)))
    vm = vm_for(MAC_SWAP_ASM).run_xdp(pkt)
    r = model.process(pkt)
    assert (r.verdict, r.packet_out) == (vm.verdict, vm.packet)
    assert r.packet_out[:6] == pkt[6:12]
