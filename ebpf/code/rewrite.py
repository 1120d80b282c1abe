"""Rewrite linked programs: splice instructions in, keeping every relative offset right.

``insert_at(prog, slot, new_insns, remove=1)`` is the primitive: it replaces ``remove``
instructions starting at ``slot`` with ``new_insns`` and returns a new ``ProgramDef`` in
which every jump, local call and function address still reaches what it reached before,
function starts and sizes still cover their code, and the slot -> source line map follows
the code. ``inject_clock(obj)`` is built on it: every call of a clock helper
(``bpf_ktime_get_ns`` and friends) becomes a read of the u64 in a one-entry ARRAY map,
``offload_clock``, so that a test harness chooses the time the program sees, the same on
the VM and in the kernel. ``clock_state(ns)`` is that map's contents in the state-document
format (``ebpf.maps.state``).

Nothing is mutated: both functions return new objects, the input stays as it was.

How a slot of the old program maps to the new one (``old`` = the replaced slots,
``delta`` = new slots - old slots):

- before ``slot``: unchanged; at or after ``slot + old``: shifted by ``delta``;
- ``slot`` itself: ``slot``, the start of the replacement, which takes the replaced
  instruction's place: a jump or call that reached it now reaches the new code, a function
  that started there starts with the new code, its source line moves to the new code. With
  ``remove=0`` this makes the new code a prologue of the instruction at ``slot``;
- strictly inside the replaced slots (the second instruction of ``remove=2``, the second slot
  of a lddw): no longer exists; a jump or function boundary there is a ``RewriteError``.

Relative fields fixed up: JMP JA ``off``, JMP32 JA (``gotol``) ``imm``, conditional jumps
(JMP and JMP32) ``off``, local calls (CALL src=1) ``imm``, function addresses (lddw src=4)
``imm``; all relative to the slot after the instruction's first slot. Offsets inside
``new_insns`` are taken as they stand in the new program: a jump in the new code that
leaves it counts slots of the new program.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from ebpf.analysis.cfg import branch_target
from ebpf.code.isa import (
    LDDW_OPCODE,
    CallKind,
    Insn,
    InsnClass,
    Kind,
    Mode,
    PseudoSrc,
    Size,
    slot_offsets,
)
from ebpf.errors import EbpfError
from ebpf.kernel_enums import HELPER_IDS, MAP_TYPE_IDS
from ebpf.loader.program import ElfObject, Function, MapDef, ProgramDef, SourceLine

__all__ = [
    "CLOCK_HELPERS", "CLOCK_MAP", "RewriteError", "clock_reads", "clock_state",
    "inject_clock", "insert_at", "jump_target",
]

CLOCK_MAP = "offload_clock"
# bpf_ktime_get_ns (5), bpf_ktime_get_boot_ns (125), bpf_ktime_get_coarse_ns (160)
CLOCK_HELPERS = frozenset(HELPER_IDS[n] for n in ("ktime_get_ns", "ktime_get_boot_ns",
                                                   "ktime_get_coarse_ns"))
_LDX_DW = InsnClass.LDX | Mode.MEM | Size.DW
_S16 = (-(1 << 15), (1 << 15) - 1)
_S32 = (-(1 << 31), (1 << 31) - 1)


class RewriteError(EbpfError):
    """A rewrite that cannot keep the program's control flow: the message names the slot."""


def _relative_field(insn: Insn) -> str | None:
    """Which field of ``insn`` holds a slot offset relative to the next slot, if any (the
    field a fix-up writes; ``jump_target`` reads the slot)."""
    kind = insn.kind
    if kind is Kind.JA:
        return "imm" if insn.spec.cls is InsnClass.JMP32 else "off"
    if kind is Kind.JCOND:
        return "off"
    if kind is Kind.CALL and insn.src == CallKind.LOCAL:
        return "imm"
    if insn.opcode == LDDW_OPCODE and insn.src == PseudoSrc.FUNC:
        return "imm"
    return None


def jump_target(insn: Insn, at: int) -> int | None:
    """The slot that ``insn`` at slot ``at`` jumps to or calls (``ebpf.analysis``'s
    ``branch_target``, the one reading of those offsets) or takes the address of."""
    if insn.opcode == LDDW_OPCODE and insn.src == PseudoSrc.FUNC:
        return at + insn.imm + 1
    return branch_target(insn, at)


def insert_at(prog: ProgramDef, slot: int, new_insns: Sequence[Insn],
              remove: int = 1) -> ProgramDef:
    """``prog`` with the ``remove`` instructions at ``slot`` replaced by ``new_insns``.

    ``slot`` must start an instruction (not the second slot of a lddw) and the ``remove``
    instructions must exist; see the module docstring for where jumps, functions and lines
    go. Raises RewriteError when a jump or a function boundary falls strictly inside the
    replaced slots, or when a fixed-up offset no longer fits its field (16 bits for
    ``off``, 32 for ``imm``).
    """
    name = f"program '{prog.name}'"
    if remove < 0:
        raise RewriteError(f"{name}: remove must be 0 or more, got {remove}")
    starts = slot_offsets(prog.insns)
    total = prog.num_slots
    if slot == total and remove == 0:
        index = len(prog.insns)
    else:
        try:
            index = starts.index(slot)
        except ValueError:
            raise RewriteError(f"{name}: slot {slot} does not start an instruction "
                               f"(program of {total} slots)") from None
    if index + remove > len(prog.insns):
        raise RewriteError(f"{name}: cannot remove {remove} instructions at slot {slot}: "
                           f"only {len(prog.insns) - index} left")
    new_insns = list(new_insns)
    old_slots = sum(i.slots for i in prog.insns[index: index + remove])
    new_slots = sum(i.slots for i in new_insns)
    delta = new_slots - old_slots
    end = slot + old_slots  # first old slot after the replaced ones

    def moved(target: int, what: str) -> int:
        if target <= slot:
            return target
        if target < end:
            raise RewriteError(f"{name}: {what} slot {target}, inside the replaced slots "
                               f"{slot}..{end - 1}")
        return target + delta

    out: list[Insn] = []
    for i, (insn, at) in enumerate(zip(prog.insns, starts, strict=True)):
        if i == index:
            out.extend(new_insns)
        if index <= i < index + remove:
            continue
        field = _relative_field(insn)
        if field is not None:
            target = at + getattr(insn, field) + 1
            new_at = at if at < slot else at + delta
            value = moved(target, f"insn at slot {at} targets") - new_at - 1
            lo, hi = _S16 if field == "off" else _S32
            if not lo <= value <= hi:
                raise RewriteError(f"{name}: insn at slot {at}: offset {value} to slot "
                                   f"{target} no longer fits {field}")
            insn = dataclasses.replace(insn, **{field: value})
        out.append(insn)
    if index == len(prog.insns):
        out.extend(new_insns)

    functions = []
    for func in prog.functions:
        start = moved(func.start, f"function '{func.name}' starts at")
        stop = func.start + func.size
        new_stop = stop if stop <= slot else moved(stop, f"function '{func.name}' ends at")
        functions.append(Function(func.name, start, new_stop - start, func.section))

    lines: dict[int, SourceLine] = {}
    for at, line in prog.lines.items():
        if at < slot:
            lines[at] = line
        elif at == slot:
            lines[slot] = line
            if remove == 0:  # the instruction itself moves behind its new prologue
                lines[slot + new_slots] = line
        elif at >= end:
            lines[at + delta] = line

    own = prog.own_slots + (delta if slot < prog.own_slots else 0)
    map_indices = sorted(set(prog.map_indices) | set(_map_refs(new_insns)))
    return dataclasses.replace(prog, insns=out, functions=functions, lines=lines,
                               map_indices=map_indices, own_slots=own)


def _map_refs(insns: Iterable[Insn]) -> list[int]:
    return [i.imm for i in insns
            if i.opcode == LDDW_OPCODE and i.src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_IDX_VALUE)]


# --- the clock -----------------------------------------------------------------------------

def clock_map_def() -> MapDef:
    """The clock map: ARRAY, key u32, value u64 (ns), one entry."""
    return MapDef(CLOCK_MAP, MAP_TYPE_IDS["array"], 4, 8, 1)


def clock_reads(map_index: int) -> list[Insn]:
    """``r0 = &clock[0]`` (lddw MAP_IDX_VALUE) then ``r0 = *(u64 *)(r0 + 0)``: 3 slots."""
    return [
        Insn(LDDW_OPCODE, 0, PseudoSrc.MAP_IDX_VALUE, 0, map_index, 0),
        Insn(_LDX_DW, 0, 0, 0, 0),
    ]


def _is_clock_call(insn: Insn, helpers: frozenset[int]) -> bool:
    return insn.kind is Kind.CALL and insn.src == CallKind.HELPER and insn.imm in helpers


def inject_clock(obj: ElfObject, helpers: Iterable[int] = CLOCK_HELPERS) -> ElfObject:
    """A new object whose programs read the clock from the ``offload_clock`` map.

    The map (ARRAY, key 4, value 8, max_entries 1) is appended to the maps, unless the
    object already has a compatible one (inject_clock of an injected object is the same
    object again); every helper call whose id is in ``helpers`` (by default
    ktime_get_ns, ktime_get_boot_ns and ktime_get_coarse_ns) becomes ``clock_reads``.
    r1-r5 are left as they were, which the verifier accepts since a helper call leaves
    them undefined. Raises RewriteError for a clashing map named ``offload_clock``.
    """
    wanted = frozenset(helpers)
    maps = [_copy_map(m) for m in obj.maps]
    index = next((i for i, m in enumerate(maps) if m.name == CLOCK_MAP), None)
    if index is None:
        maps.append(clock_map_def())
        index = len(maps) - 1
    else:
        have, want = maps[index], clock_map_def()
        if (have.type, have.key_size, have.value_size, have.max_entries) != (
                want.type, want.key_size, want.value_size, want.max_entries):
            raise RewriteError(f"{obj.path}: map '{CLOCK_MAP}' exists and is not a one-entry "
                               f"array of u64 (type {have.type_name}, key {have.key_size}, "
                               f"value {have.value_size}, max_entries {have.max_entries})")
    programs = []
    for prog in obj.programs:
        new = dataclasses.replace(prog, insns=list(prog.insns),
                                  functions=[dataclasses.replace(f) for f in prog.functions],
                                  lines=dict(prog.lines), map_indices=list(prog.map_indices))
        sites = [at for insn, at in zip(prog.insns, prog.get_slot_offsets(), strict=True)
                 if _is_clock_call(insn, wanted)]
        for at in reversed(sites):  # from the end: earlier sites keep their slots
            new = insert_at(new, at, clock_reads(index))
        programs.append(new)
    return dataclasses.replace(obj, programs=programs, maps=maps)


def _copy_map(m: MapDef) -> MapDef:
    return dataclasses.replace(m, inner=_copy_map(m.inner) if m.inner else None,
                               values=dict(m.values))


def clock_state(ns: int) -> dict[str, list[dict[str, Any]]]:
    """The clock map at ``ns`` (taken modulo 2**64) as state-document maps:
    ``{"offload_clock": [{"key": "00000000", "value": <u64 le hex>}]}``, to merge into a
    document's ``"maps"`` object."""
    value = (ns & ((1 << 64) - 1)).to_bytes(8, "little")
    return {CLOCK_MAP: [{"key": bytes(4).hex(), "value": value.hex()}]}
