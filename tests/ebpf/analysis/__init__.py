"""Tests of ebpf.analysis; ``asm_program`` builds a ProgramDef from assembler text."""

from __future__ import annotations

from ebpf.code.asm import assemble
from ebpf.code.isa import decode
from ebpf.loader.elf import ElfObject
from ebpf.loader.program import Function, ProgramDef


def asm_program(text: str, functions: dict[str, int] | None = None,
                name: str = "prog") -> ProgramDef:
    """``text`` assembled and wrapped like ``program_from_code``; ``functions`` names extra
    sub-programs by their first slot (each runs to the next one)."""
    insns = decode(assemble(text))
    slots = sum(i.slots for i in insns)
    starts = sorted({0: name, **{s: n for n, s in (functions or {}).items()}}.items())
    funcs = [Function(n, s, (starts[i + 1][0] if i + 1 < len(starts) else slots) - s, "")
             for i, (s, n) in enumerate(starts)]
    return ProgramDef(name, "xdp", "xdp", insns, funcs, {}, [], own_slots=funcs[0].size)


def asm_object(text: str, **kwargs) -> ElfObject:
    """An object holding just ``asm_program(text)`` (no maps)."""
    return ElfObject("<asm>", [asm_program(text, **kwargs)], [])
