"""Tests of hw.rtc, the run-to-completion models; the small builders they share."""

from __future__ import annotations

from ebpf.code.asm import assemble_insns
from ebpf.loader.elf import load
from ebpf.loader.program import ElfObject, Function, ProgramDef, SourceLine
from ebpf.vm.machine import Vm
from ebpf.vm.trace import Trace
from sim.packets import random_packets
from tests.conftest import corpus_object


def prog(text: str, name: str = "t", functions: list[tuple[str, int, int]] | None = None,
         lines: dict[int, SourceLine] | None = None, map_indices: list[int] | None = None,
         ) -> ProgramDef:
    """A linked program from assembler text; ``functions`` as (name, start, size)."""
    insns = assemble_insns(text)
    funcs = [Function(n, s, z, "xdp") for n, s, z in functions or []]
    return ProgramDef(name, "xdp", "xdp", insns, funcs, lines or {}, map_indices or [])


def corpus(name: str) -> ElfObject:
    """The loaded corpus object examples/xdp/<name>.c."""
    return load(corpus_object(name))


def traces(obj: ElfObject, program: str | None = None, count: int = 40, seed: int = 1,
           ) -> list[Trace]:
    """VM traces of ``count`` seeded random packets through one program of ``obj``."""
    p = obj.get_program(program)
    vm = Vm(obj, p)
    return [vm.run_xdp(pkt).trace for pkt in random_packets(count, seed)]
