"""The translation of every ISA corner: the cases the kernel checks the VM on
(tests/ebpf/code/test_isa_kernel.py), run on the compiled code and on the VM with every operand
pair; and the emitter table covers the ISA's table."""

from __future__ import annotations

import struct

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.code.isa import OPCODES, Kind
from ebpf.compiled import CompiledVm
from ebpf.compiled.codegen import EMITTERS
from ebpf.loader.program import Function, ProgramDef
from ebpf.vm.machine import Vm
from tests.ebpf.code.test_isa_kernel import CASES, EPILOGUE, PAIRS, PROLOGUE


def _prog(body: str) -> ProgramDef:
    insns = assemble_insns(PROLOGUE + body + EPILOGUE)
    p = ProgramDef("isa", "xdp", "xdp", insns, [], {}, [])
    p.functions = [Function("isa", 0, p.num_slots, "xdp")]
    return p


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_equals_vm_on_every_pair(name):
    """Each ISA case gives the VM's output packet, verdict and instruction count on every
    operand pair (the kernel is the VM's oracle for the same cases)."""
    p = _prog(CASES[name])
    vm, native = Vm([], p), CompiledVm([], p)
    for a, b in PAIRS:
        packet = bytes(8) + struct.pack("<QQ", a, b) + bytes(8)
        want, got = vm.run_xdp(packet), native.run_xdp(packet)
        assert (got.verdict, got.packet_out) == (want.verdict, want.packet_out), (a, b)
        assert (got.trace.insns, got.trace.path) == (want.trace.insns, want.trace.path)


def test_every_kind_has_an_emitter():
    """The emitter table is keyed by the ISA table's kinds: every opcode can be emitted."""
    assert set(EMITTERS) == set(Kind) == {spec.kind for spec in OPCODES.values()}


def test_runaway_loop_hits_the_budget():
    """A loop that never ends stops with the VM's budget error, as on the VM."""
    p = _prog("loop:\nadd %r0, 1\nja loop")
    packet = bytes(32)
    with pytest.raises(Exception, match="instruction budget of 5000 exceeded") as want:
        Vm([], p, budget=5000).run_xdp(packet)
    with pytest.raises(type(want.value), match="instruction budget of 5000 exceeded"):
        CompiledVm([], p, budget=5000).run_xdp(packet)

