"""The reference eBPF interpreter: the kernel's semantics, instruction by instruction.

``Vm(maps, program)`` compiles a linked ``ProgramDef`` once into a list of small closures,
one per slot, chosen from ``_BUILDERS`` by the instruction's ``Kind`` (ebpf.isa's table is
the only opcode list); ALU, jump, endian and atomic operations come from tables keyed by
the ISA enums, each with its edge cases in its docstring. The hot loop only calls
``code[pc](pc)``, which returns the next pc.

Semantics follow kernel/bpf/core.c (``___bpf_prog_run``) with the verifier's rewrites in
kernel/bpf/verifier.c (``do_misc_fixups``) that make every instruction total, and RFC 9669:

- 32-bit ALU ops work on the low 32 bits and zero-extend the result into the register.
- Shift amounts are masked to 31 / 63 (the interpreter's ``SRC & 31``); the verifier
  rejects constant shifts >= the width, the VM masks those too.
- Division by zero gives 0; modulo by zero leaves dst unchanged (ALU32: zero-extended).
  Signed division (off = 1) of INT_MIN by -1 gives INT_MIN (``neg``), signed modulo by -1
  gives 0; signed results truncate toward zero, the remainder has the dividend's sign.
- Immediates are sign-extended to 64 bits for ALU64 and JMP, used as u32 for ALU/JMP32.
- Memory goes through ``ebpf.memory`` and faults with the slot and source line.
- Helper calls: ``ebpf.helpers``; r1-r5 keep their values after a call (the verifier makes
  them unreadable, so programs cannot tell).
- bpf-to-bpf calls get a fresh zeroed 512-byte stack frame; r6-r9 and r10 are restored on
  return; at most ``MAX_CALL_FRAMES`` (8) frames, as the verifier enforces.
- Tail calls: ``MAX_TAIL_CALL_CNT`` (33) per run, counted before the slot is read, as the
  interpreter and the x86 JIT do; a failed tail call falls through leaving r0 alone (the
  JIT clobbers it; the verifier treats it as unknown). The target program keeps the
  registers and the current stack frame; a tail call from a sub-program replaces that
  sub-program (its caller gets the target's r0), as the x86 JIT does.
- LD_ABS / LD_IND read big-endian from the packet (``data .. data_end``, or the buffer given
  to ``run``) as the kernel's skb rewrite does (``bpf_gen_ld_abs``): out of range (or a
  negative offset, the SKF_* ancillary area, which is not modelled) exits the current
  function with r0 = 0. The verifier refuses LD_ABS in XDP programs; the VM runs it anyway.
- An instruction budget (default 1,000,000 executed instructions per run) stops runaway
  loops with VmError.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Sequence
from typing import Any

from ebpf.errors import IsaError, VmError
from ebpf.helpers import HelperEnv, HelperState, get_helper
from ebpf.isa import (
    AluOp,
    AtomicOp,
    CallKind,
    Endian,
    Insn,
    InsnClass,
    JmpOp,
    Kind,
    OpSpec,
    PseudoSrc,
    Source,
    slot_offsets,
    validate,
)
from ebpf.kernel_enums import map_type_name
from ebpf.memory import Memory, Region, RegionKind
from ebpf.program import ElfObject, MapDef, ProgramDef
from ebpf.trace import HelperCall, MapOp, TailCall, Trace

M64 = 0xFFFFFFFFFFFFFFFF
M32 = 0xFFFFFFFF

MAX_CALL_FRAMES = 8  # include/linux/bpf_verifier.h
MAX_TAIL_CALL_CNT = 33  # include/linux/bpf.h
STACK_SIZE = 512  # MAX_BPF_STACK
DEFAULT_BUDGET = 1_000_000
BPF_F_RDONLY_PROG = 1 << 7
MAP_PTR_BASE = 0x7F00_0000_0000_0000  # struct bpf_map * values (not dereferenceable)
MAP_PTR_STRIDE = 0x1_0000
FUNC_PTR_BASE = 0x7E00_0000_0000_0000  # PseudoSrc.FUNC code addresses
FUNC_PROG_STRIDE = 1 << 24

_STOP = -1  # returned by a handler: the program has exited
_SWITCH = -2  # returned by a handler: continue at vm._pc in vm._code (another program)


# --------------------------------------------------------------------------------------------
# ALU operations: (a, b) -> result, registers as unsigned ints
# --------------------------------------------------------------------------------------------

def _sx(value: int, bits: int) -> int:
    """Sign-extend the low ``bits`` of ``value`` to an unsigned 64-bit value."""
    value &= (1 << bits) - 1
    if value >> (bits - 1):
        value -= 1 << bits
    return value & M64


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _div64(a: int, b: int) -> int:
    """Unsigned; division by zero gives 0 (verifier patch: ``dst ^= dst``)."""
    return a // b if b else 0


def _sdiv64(a: int, b: int) -> int:
    """Signed (off=1), truncating toward zero; by 0 -> 0; LLONG_MIN / -1 -> LLONG_MIN."""
    if b == 0:
        return 0
    sa, sb = _signed(a, 64), _signed(b, 64)
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & M64


def _mod64(a: int, b: int) -> int:
    """Unsigned; modulo by zero leaves dst unchanged."""
    return a % b if b else a


def _smod64(a: int, b: int) -> int:
    """Signed (off=1): by 0 -> dst unchanged, by -1 -> 0; the sign follows the dividend."""
    if b == 0:
        return a
    sa, sb = _signed(a, 64), _signed(b, 64)
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & M64


def _lsh64(a: int, b: int) -> int:
    """Shift amount masked to 63."""
    return (a << (b & 63)) & M64


def _arsh64(a: int, b: int) -> int:
    """Arithmetic shift right, amount masked to 63."""
    return (_signed(a, 64) >> (b & 63)) & M64


def _div32(a: int, b: int) -> int:
    """Unsigned on the low 32 bits; by 0 (low 32 bits of src zero) -> 0."""
    b &= M32
    return (a & M32) // b if b else 0


def _sdiv32(a: int, b: int) -> int:
    """Signed 32-bit; by 0 -> 0; INT_MIN / -1 -> INT_MIN; result zero-extended."""
    sb = _signed(b, 32)
    if sb == 0:
        return 0
    sa = _signed(a, 32)
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & M32


def _mod32(a: int, b: int) -> int:
    """Unsigned 32-bit; by 0 -> dst's low 32 bits, zero-extended (``mov32 dst, dst``)."""
    b &= M32
    return (a & M32) % b if b else a & M32


def _smod32(a: int, b: int) -> int:
    """Signed 32-bit; by 0 -> dst zero-extended; by -1 -> 0; sign follows the dividend."""
    sb = _signed(b, 32)
    if sb == 0:
        return a & M32
    sa = _signed(a, 32)
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & M32


def _lsh32(a: int, b: int) -> int:
    """Shift amount masked to 31; result zero-extended."""
    return ((a & M32) << (b & 31)) & M32


def _arsh32(a: int, b: int) -> int:
    """Arithmetic shift of the low 32 bits, amount masked to 31, zero-extended."""
    return (_signed(a, 32) >> (b & 31)) & M32


# key: (AluOp, off). off selects sdiv/smod (1) and movsx (8, 16, 32).
ALU64_OPS: dict[tuple[AluOp, int], Callable[[int, int], int]] = {
    (AluOp.ADD, 0): lambda a, b: (a + b) & M64, (AluOp.SUB, 0): lambda a, b: (a - b) & M64,
    (AluOp.MUL, 0): lambda a, b: (a * b) & M64,
    (AluOp.DIV, 0): _div64, (AluOp.DIV, 1): _sdiv64,
    (AluOp.MOD, 0): _mod64, (AluOp.MOD, 1): _smod64,
    (AluOp.OR, 0): operator.or_, (AluOp.AND, 0): operator.and_, (AluOp.XOR, 0): operator.xor,
    (AluOp.LSH, 0): _lsh64, (AluOp.RSH, 0): lambda a, b: a >> (b & 63),
    (AluOp.ARSH, 0): _arsh64, (AluOp.MOV, 0): lambda a, b: b,
    (AluOp.MOV, 8): lambda a, b: _sx(b, 8),  # movsx: sign-extend the low 8/16/32 bits
    (AluOp.MOV, 16): lambda a, b: _sx(b, 16),
    (AluOp.MOV, 32): lambda a, b: _sx(b, 32),
}
ALU32_OPS: dict[tuple[AluOp, int], Callable[[int, int], int]] = {
    (AluOp.ADD, 0): lambda a, b: (a + b) & M32, (AluOp.SUB, 0): lambda a, b: (a - b) & M32,
    (AluOp.MUL, 0): lambda a, b: (a * b) & M32,
    (AluOp.DIV, 0): _div32, (AluOp.DIV, 1): _sdiv32,
    (AluOp.MOD, 0): _mod32, (AluOp.MOD, 1): _smod32,
    (AluOp.OR, 0): lambda a, b: (a | b) & M32, (AluOp.AND, 0): lambda a, b: a & b & M32,
    (AluOp.XOR, 0): lambda a, b: (a ^ b) & M32,
    (AluOp.LSH, 0): _lsh32, (AluOp.RSH, 0): lambda a, b: (a & M32) >> (b & 31),
    (AluOp.ARSH, 0): _arsh32, (AluOp.MOV, 0): lambda a, b: b & M32,
    (AluOp.MOV, 8): lambda a, b: _sx(b, 8) & M32,  # movsx to 32 bits, then zero-extended
    (AluOp.MOV, 16): lambda a, b: _sx(b, 16) & M32,
}


def _bswap(value: int, width: int) -> int:
    """Reverse the low ``width`` bits' bytes; the upper bits are dropped."""
    return int.from_bytes((value & ((1 << width) - 1)).to_bytes(width // 8, "little"), "big")


def _endian_op(endian: Endian, width: int) -> Callable[[int], int]:
    """ALU END on a little-endian host: to-le truncates to ``width``; to-be swaps bytes.

    ALU64 END (BSWAP, v4) swaps unconditionally, like to-be.
    """
    if endian is Endian.TO_LE:
        mask = (1 << width) - 1
        return lambda v: v & mask
    return lambda v: _bswap(v, width)


# --------------------------------------------------------------------------------------------
# conditional jumps: (a, b) -> bool on values masked to the width
# --------------------------------------------------------------------------------------------

def _jcond_table(bits: int) -> dict[JmpOp, Callable[[int, int], bool]]:
    """Unsigned compares as is; signed ones flip the sign bit (order-preserving)."""
    sign = 1 << (bits - 1)
    return {
        JmpOp.JEQ: operator.eq, JmpOp.JNE: operator.ne,
        JmpOp.JGT: operator.gt, JmpOp.JGE: operator.ge,
        JmpOp.JLT: operator.lt, JmpOp.JLE: operator.le,
        JmpOp.JSET: lambda a, b: (a & b) != 0,
        JmpOp.JSGT: lambda a, b: (a ^ sign) > (b ^ sign),
        JmpOp.JSGE: lambda a, b: (a ^ sign) >= (b ^ sign),
        JmpOp.JSLT: lambda a, b: (a ^ sign) < (b ^ sign),
        JmpOp.JSLE: lambda a, b: (a ^ sign) <= (b ^ sign),
    }


JMP64_OPS = _jcond_table(64)
JMP32_OPS = _jcond_table(32)


# --------------------------------------------------------------------------------------------
# atomics: (old, src) -> new, on values of the access width
# --------------------------------------------------------------------------------------------

ATOMIC_OPS: dict[int, Callable[[int, int], int]] = {
    AtomicOp.ADD: operator.add, AtomicOp.OR: operator.or_, AtomicOp.AND: operator.and_,
    AtomicOp.XOR: operator.xor,
}

_UNPACK = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"),
           8: struct.Struct("<Q")}


class Frame:
    """A suspended caller: where to return, its r6-r10, its code; or a callback's hook."""

    __slots__ = ("return_pc", "saved", "code", "prog", "on_return", "record", "call_slot")

    def __init__(self, return_pc: int, saved: list[int], code: list, prog: ProgramDef,
                 on_return: Callable[[int], int | None] | None = None,
                 record: HelperCall | None = None, call_slot: int = 0) -> None:
        self.return_pc = return_pc
        self.saved = saved
        self.code = code
        self.prog = prog
        self.on_return = on_return
        self.record = record
        self.call_slot = call_slot


# --------------------------------------------------------------------------------------------
# the VM
# --------------------------------------------------------------------------------------------

class Vm:
    """Runs one linked program (and the programs it tail-calls) against a set of maps.

    ``obj_or_maps`` is an ``ElfObject`` (its maps are created with ``ebpf.maps``; tail-call
    targets resolve by program name in it), a list of ``MapDef`` (created), or a list of
    already created ``BpfMap`` (shared, e.g. ``other_vm.maps``), indexed as
    ``PseudoSrc.MAP_IDX`` immediates index them. ``resolver`` maps a PROG_ARRAY entry (a
    program name) to its ``ProgramDef``.
    """

    def __init__(self, obj_or_maps: ElfObject | Sequence[Any] | None, program: ProgramDef, *,
                 resolver: Callable[[str], ProgramDef] | None = None,
                 env: HelperEnv | None = None, budget: int = DEFAULT_BUDGET) -> None:
        self.env = env or HelperEnv()
        if not 0 <= self.env.cpu < self.env.num_cpus:
            raise VmError(f"cpu {self.env.cpu} is not below num_cpus {self.env.num_cpus}")
        self.helper_state = HelperState(self.env)
        self.budget = budget
        self.program = program
        self.resolver = resolver
        if isinstance(obj_or_maps, ElfObject):
            if resolver is None:
                self.resolver = obj_or_maps.get_program
            self.maps = self._create_maps(obj_or_maps.maps)
        else:
            items = list(obj_or_maps or [])
            if items and all(isinstance(m, MapDef) for m in items):
                self.maps = self._create_maps(items)
            else:
                self.maps = items
        self.mem = Memory()
        self.mem.on_map_write = self._on_map_write
        self.regs: list[int] = [0] * 11
        self.frames: list[Frame] = []
        self.path: list[int] = []
        self._stacks = [self.mem.add(RegionKind.STACK, f"stack{d}", bytearray(STACK_SIZE),
                                     origin=STACK_SIZE) for d in range(MAX_CALL_FRAMES)]
        self._map_addr: dict[int, int] = {}
        self._map_at: dict[int, Any] = {}
        for m in self.maps:
            self.map_pointer(m)
        self._compiled: dict[int, tuple[ProgramDef, list]] = {}
        self._prog_index: dict[int, int] = {}
        self._packet_region: Region | None = None
        self._ctx_region: Region | None = None
        self._mem_region: Region | None = None
        self.xdp = None
        self.trace = Trace(program=program.name)
        self.ringbuf_samples: dict[int, tuple[Any, Any]] = {}
        self.redirect_index = 0  # bpf_redirect_info.tgt_index: survives across runs
        self.slot = 0
        self._jump = 0
        self._pc = 0
        self._code: list = []
        self._prog = program
        self._tail_calls = 0
        self._call_record: HelperCall | None = None
        self._entry_code = self.compile(program)

    def _create_maps(self, defns: Sequence[MapDef]) -> list:
        from ebpf.maps import create_maps

        by_name = create_maps(defns, self.env.num_cpus)
        return [by_name[d.name] for d in defns]

    # -- maps ------------------------------------------------------------------------------

    def map_pointer(self, m: Any) -> int:
        """The synthetic ``struct bpf_map *`` of a map (registered on first use)."""
        addr = self._map_addr.get(id(m))
        if addr is None:
            addr = MAP_PTR_BASE + len(self._map_at) * MAP_PTR_STRIDE
            self._map_addr[id(m)] = addr
            self._map_at[addr] = m
        return addr

    def get_map(self, addr: int) -> Any:
        m = self._map_at.get(addr)
        if m is None:
            raise VmError(f"0x{addr:x} is not a map pointer")
        return m

    @staticmethod
    def map_readonly(m: Any) -> bool:
        """Read-only to programs: BPF_F_RDONLY_PROG (libbpf sets it on .rodata / .kconfig)."""
        defn = m.defn
        return bool(defn.flags & BPF_F_RDONLY_PROG) or defn.section.startswith(
            (".rodata", ".kconfig"))

    def global_value_address(self, index: int, offset: int) -> int:
        """``PseudoSrc.MAP_IDX_VALUE``: the address of byte ``offset`` of a one-entry array."""
        m = self._map_index(index)
        if map_type_name(m.defn.type) != "array" or m.max_entries != 1:
            raise VmError(f"direct value access needs an array map with max_entries 1, "
                          f"'{m.name}' is {map_type_name(m.defn.type)} with "
                          f"{m.max_entries} entries")
        if not 0 <= offset < m.value_size:
            raise VmError(f"offset {offset} is outside the {m.value_size}-byte value of "
                          f"'{m.name}'")
        key = bytes(4)
        buf = m.lookup(key)
        return self.mem.map_value(buf, m.name, key, self.map_readonly(m)).base + offset

    def _map_index(self, index: int) -> Any:
        if not 0 <= index < len(self.maps):
            raise VmError(f"map index {index} out of range ({len(self.maps)} maps)")
        return self.maps[index]

    def record_map_op(self, name: str, op: str, key: bytes | None, *, hit: bool, write: bool,
                      ret: int | None = None) -> None:
        self.trace.map_ops.append(MapOp(self.slot, name, op, key, hit, write, ret=ret))

    def _on_map_write(self, region: Region, off: int, size: int, op: str) -> None:
        self.trace.map_ops.append(MapOp(self.slot, region.map_name or region.name, op,
                                        region.key, True, True, off, size))

    # -- functions and control transfer ----------------------------------------------------

    def function_pointer(self, prog: ProgramDef, slot: int) -> int:
        index = self._prog_index.setdefault(id(prog), len(self._prog_index))
        return FUNC_PTR_BASE + index * FUNC_PROG_STRIDE + slot * 8

    def function_slot(self, addr: int) -> int:
        """The slot in the running program that a ``PseudoSrc.FUNC`` address points to."""
        index = self._prog_index.get(id(self._prog))
        base = FUNC_PTR_BASE + (index or 0) * FUNC_PROG_STRIDE
        slot, rem = divmod(addr - base, 8)
        if index is None or rem or not 0 <= slot < self._prog.num_slots:
            raise VmError(f"0x{addr:x} is not a function of program '{self._prog.name}'")
        return slot

    def take_jump(self) -> int:
        """The pc a control-transferring helper chose (see tail_call, start_callback)."""
        return self._jump

    def start_callback(self, target: int, args: list[int],
                       on_return: Callable[[int], int | None]) -> None:
        """Call the function at ``target`` with r1-r5 = args in a new frame.

        When it exits, ``on_return(r0)`` gives the helper's result, or None after starting
        the next callback itself.
        """
        if len(self.frames) >= MAX_CALL_FRAMES - 1:
            raise VmError(f"the call stack of {len(self.frames) + 2} frames is too deep "
                          f"(MAX_CALL_FRAMES {MAX_CALL_FRAMES})")
        regs = self.regs
        self.frames.append(Frame(self.slot + 1, regs[6:11], self._code, self._prog, on_return,
                                 self._call_record, self.slot))
        regs[1:6] = [a & M64 for a in args]
        stack = self._stacks[len(self.frames)]
        stack.buf[:] = bytes(STACK_SIZE)
        regs[10] = stack.base + STACK_SIZE
        self.path.append(target)
        self._jump = target

    def tail_call(self, map_addr: int, index: int) -> None:
        """bpf_tail_call: jump to PROG_ARRAY[index] or fall through (r0 untouched).

        Falls through when index >= max_entries, when MAX_TAIL_CALL_CNT tail calls were
        already made (the counter is bumped before the slot is read, so an empty slot
        counts), or when the slot is empty.
        """
        m = self.get_map(map_addr)
        if map_type_name(m.defn.type) != "prog_array":
            raise VmError(f"bpf_tail_call needs a prog_array, '{m.name}' is "
                          f"{map_type_name(m.defn.type)}")
        if any(f.on_return is not None for f in self.frames):
            raise VmError("bpf_tail_call inside a callback is not allowed")
        index &= M32
        record = TailCall(self.slot, m.name, index, None, len(self.path))
        self.trace.tail_calls.append(record)
        self._jump = self.slot + 1
        if index >= m.max_entries or self._tail_calls >= MAX_TAIL_CALL_CNT:
            return
        self._tail_calls += 1
        target = m.get_prog(index)
        if target is None:
            return
        prog = self._resolve(target)
        record.target = prog.name
        self._code = self.compile(prog)
        self._prog = prog
        self._pc = 0
        self.path.append(0)
        self._jump = _SWITCH

    def _resolve(self, target: Any) -> ProgramDef:
        if isinstance(target, ProgramDef):
            return target
        if self.resolver is None:
            raise VmError(f"tail call to '{target}': the VM has no program resolver")
        return self.resolver(str(target))

    # -- compilation -----------------------------------------------------------------------

    def compile(self, prog: ProgramDef) -> list:
        """The handler list of ``prog`` (cached): one closure per slot, plus an end guard."""
        cached = self._compiled.get(id(prog))
        if cached is not None:
            return cached[1]
        self._prog_index.setdefault(id(prog), len(self._prog_index))
        offsets = slot_offsets(prog.insns)
        starts = set(offsets)
        num_slots = prog.num_slots
        code: list = [None] * (num_slots + 1)
        for insn, slot in zip(prog.insns, offsets, strict=True):
            try:
                spec = validate(insn, slot)
            except IsaError as exc:
                raise VmError(f"{prog.name}: {exc}") from exc
            ctx = _Ctx(self, prog, insn, spec, slot, starts, num_slots)
            try:
                code[slot] = _BUILDERS[spec.kind](ctx)
            except VmError as exc:
                raise self._located(prog, slot, exc) from exc
            if insn.slots == 2:
                code[slot + 1] = _raiser(f"jump into the second slot of lddw at {slot}")
        code[num_slots] = _raiser("fell off the end of the program (no exit)")
        self._compiled[id(prog)] = (prog, code)
        return code

    def _located(self, prog: ProgramDef, slot: int, exc: VmError) -> VmError:
        line = prog.source_line(slot)
        where = f" ({line})" if line is not None else ""
        return VmError(f"{prog.name}: insn {slot}{where}: {exc}")

    # -- running ---------------------------------------------------------------------------

    def _execute(self) -> None:
        code = self._code
        pc = self._pc
        steps = self.trace.insns
        budget = self.budget
        try:
            while True:
                steps += 1
                if steps > budget:
                    raise VmError(f"instruction budget of {budget} exceeded")
                pc = code[pc](pc)
                if pc < 0:
                    if pc == _STOP:
                        break
                    code = self._code
                    pc = self._pc
        except VmError as exc:
            self.trace.insns = steps
            raise self._located(self._prog, pc, exc) from exc
        self.trace.insns = steps

    def run(self, mem: bytes | bytearray = b"") -> Trace:
        """Run with r1 = a pointer to a writable copy of ``mem`` and r2 = its length.

        ``trace.ret`` is r0; ``trace.packet_out`` the buffer afterwards. This is the
        bpf_conformance / uBPF convention; LD_ABS reads from this buffer.
        """
        buf = bytearray(mem)
        if self._mem_region is None:
            self._mem_region = self.mem.add(RegionKind.MEM, "mem", buf)
        region = self._mem_region
        region.buf, region.lo, region.hi = buf, 0, len(buf)
        self.xdp = None
        trace = Trace(program=self.program.name)
        self._run_prepared(region.base, len(buf), trace)
        trace.packet_out = bytes(buf)
        return trace

    def _run_prepared(self, r1: int, r2: int, trace: Trace) -> None:
        self.trace = trace
        regs = self.regs
        regs[:] = [0] * 11
        regs[1] = r1
        regs[2] = r2
        stack = self._stacks[0]
        stack.buf[:] = bytes(STACK_SIZE)
        regs[10] = stack.base + STACK_SIZE
        self.frames.clear()
        self.path.clear()
        self.path.append(0)
        self.ringbuf_samples.clear()
        self._tail_calls = 0
        self._code = self._entry_code
        self._prog = self.program
        self._pc = 0
        try:
            self._execute()
        finally:
            trace.path = list(self.path)
        trace.ret = regs[0]

    def run_xdp_buff(self, buff: Any) -> Trace:
        """Run on an ``ebpf.xdp.XdpBuff`` (r1 = its xdp_md); the buff is modified in place."""
        if self._packet_region is None:
            self._packet_region, self._ctx_region = buff.map_into(self.mem)
        else:
            buff.attach(self._packet_region, self._ctx_region)
        self.xdp = buff
        trace = Trace(program=self.program.name)
        self._run_prepared(self._ctx_region.base, 0, trace)
        return trace

    def run_xdp(self, packet: bytes, ingress_ifindex: int = 1, rx_queue: int = 0,
                **options: Any):
        """``ebpf.xdp.run_xdp`` with this VM: one packet, as BPF_PROG_TEST_RUN runs it."""
        from ebpf.xdp import run_xdp

        return run_xdp(self, packet, ingress_ifindex, rx_queue, **options)

    # -- LD_ABS source ---------------------------------------------------------------------

    def packet_bytes(self) -> bytes | bytearray | memoryview:
        """The bytes LD_ABS / LD_IND index: the XDP packet (data .. data_end) or ``mem``."""
        if self.xdp is not None:
            return memoryview(self.xdp.frame)[self.xdp.data:self.xdp.data_end]
        if self._mem_region is not None:
            return self._mem_region.buf
        return b""


def _raiser(message: str) -> Callable[[int], int]:
    def handler(pc: int) -> int:
        raise VmError(message)
    return handler


# --------------------------------------------------------------------------------------------
# builders: one per Kind, each returns the closure for one instruction
# --------------------------------------------------------------------------------------------

class _Ctx:
    """What a builder needs: the VM, the instruction, its slot, and the jump-target check."""

    __slots__ = ("vm", "prog", "insn", "spec", "slot", "starts", "num_slots")

    def __init__(self, vm: Vm, prog: ProgramDef, insn: Insn, spec: OpSpec, slot: int,
                 starts: set[int], num_slots: int) -> None:
        self.vm = vm
        self.prog = prog
        self.insn = insn
        self.spec = spec
        self.slot = slot
        self.starts = starts
        self.num_slots = num_slots

    def target(self, rel: int) -> int:
        """The slot ``rel`` slots after the next one; must start an instruction."""
        target = self.slot + 1 + rel
        if not 0 <= target < self.num_slots or target not in self.starts:
            raise VmError(f"jump target {target} is out of range or inside an lddw "
                          f"(program has {self.num_slots} slots)")
        return target


def _build_alu(c: _Ctx) -> Callable[[int], int]:
    regs = c.vm.regs
    insn, spec = c.insn, c.spec
    dst, src = insn.dst, insn.src
    off = insn.off if spec.op in (AluOp.DIV, AluOp.MOD, AluOp.MOV) else 0
    table = ALU64_OPS if spec.is64 else ALU32_OPS
    fn = table.get((AluOp(spec.op), off))
    if fn is None:
        raise VmError(f"no ALU operation {AluOp(spec.op).name} with off {off}")
    if spec.source is Source.K:
        imm = insn.imm & (M64 if spec.is64 else M32)
        if spec.op == AluOp.MOV:
            def mov_k(pc: int) -> int:
                regs[dst] = imm
                return pc + 1
            return mov_k
        if spec.op == AluOp.ADD and spec.is64:
            def add_k(pc: int) -> int:
                regs[dst] = (regs[dst] + imm) & M64
                return pc + 1
            return add_k

        def alu_k(pc: int) -> int:
            regs[dst] = fn(regs[dst], imm)
            return pc + 1
        return alu_k
    if spec.op == AluOp.MOV and off == 0 and spec.is64:
        def mov_x(pc: int) -> int:
            regs[dst] = regs[src]
            return pc + 1
        return mov_x

    def alu_x(pc: int) -> int:
        regs[dst] = fn(regs[dst], regs[src])
        return pc + 1
    return alu_x


def _build_neg(c: _Ctx) -> Callable[[int], int]:
    """dst = -dst (ALU: the low 32 bits, zero-extended)."""
    regs, dst = c.vm.regs, c.insn.dst
    mask = M64 if c.spec.is64 else M32

    def neg(pc: int) -> int:
        regs[dst] = -regs[dst] & mask
        return pc + 1
    return neg


def _build_endian(c: _Ctx) -> Callable[[int], int]:
    regs, dst = c.vm.regs, c.insn.dst
    fn = _endian_op(Endian(c.spec.opcode & 0x08), c.insn.imm)

    def endian(pc: int) -> int:
        regs[dst] = fn(regs[dst])
        return pc + 1
    return endian


def _build_bswap(c: _Ctx) -> Callable[[int], int]:
    regs, dst, width = c.vm.regs, c.insn.dst, c.insn.imm

    def bswap(pc: int) -> int:
        regs[dst] = _bswap(regs[dst], width)
        return pc + 1
    return bswap


def _build_ja(c: _Ctx) -> Callable[[int], int]:
    """goto +off (JMP) or gotol +imm (JMP32)."""
    rel = c.insn.off if c.spec.cls is InsnClass.JMP else c.insn.imm
    target = c.target(rel)
    path = c.vm.path

    def ja(pc: int) -> int:
        path.append(target)
        return target
    return ja


def _build_jcond(c: _Ctx) -> Callable[[int], int]:
    """Compare dst with src/imm (JMP: 64-bit, imm sign-extended; JMP32: low 32 bits)."""
    regs, path = c.vm.regs, c.vm.path
    insn, spec = c.insn, c.spec
    dst, src = insn.dst, insn.src
    target = c.target(insn.off)
    is64 = spec.cls is InsnClass.JMP
    cmp = (JMP64_OPS if is64 else JMP32_OPS)[JmpOp(spec.op)]
    mask = M64 if is64 else M32
    if spec.source is Source.K:
        imm = insn.imm & mask

        def jcond_k(pc: int) -> int:
            if cmp(regs[dst] & mask, imm):
                path.append(target)
                return target
            path.append(pc + 1)
            return pc + 1
        return jcond_k

    def jcond_x(pc: int) -> int:
        if cmp(regs[dst] & mask, regs[src] & mask):
            path.append(target)
            return target
        path.append(pc + 1)
        return pc + 1
    return jcond_x


def _build_call(c: _Ctx) -> Callable[[int], int]:
    kind = c.insn.src
    if kind == CallKind.HELPER:
        return _build_helper_call(c)
    if kind == CallKind.LOCAL:
        return _build_local_call(c)
    btf_id = c.insn.imm
    return _raiser(f"kfunc call (BTF id {btf_id}) is not supported by the VM")


def _build_helper_call(c: _Ctx) -> Callable[[int], int]:
    """r0 = helper(r1, ..., r5); the call is recorded in the trace."""
    vm, regs, helper_id = c.vm, c.vm.regs, c.insn.imm

    def call_helper(pc: int) -> int:
        spec = get_helper(helper_id)  # VmError naming the helper when unknown
        vm.slot = pc
        record = HelperCall(pc, helper_id, spec.name, regs[1:1 + spec.nargs], None)
        vm.trace.helper_calls.append(record)
        vm._call_record = record
        ret = spec.fn(vm, regs[1], regs[2], regs[3], regs[4], regs[5])
        if ret is None:
            return vm.take_jump()
        ret &= M64
        regs[0] = ret
        record.ret = ret
        return pc + 1
    return call_helper


def _build_local_call(c: _Ctx) -> Callable[[int], int]:
    """bpf-to-bpf call: a new zeroed 512-byte frame; r6-r10 saved for the return."""
    vm, regs, frames, path = c.vm, c.vm.regs, c.vm.frames, c.vm.path
    target = c.target(c.insn.imm)
    stacks = vm._stacks

    def call_local(pc: int) -> int:
        depth = len(frames) + 1
        if depth >= MAX_CALL_FRAMES:
            raise VmError(f"the call stack of {depth + 1} frames is too deep "
                          f"(MAX_CALL_FRAMES {MAX_CALL_FRAMES})")
        frames.append(Frame(pc + 1, regs[6:11], vm._code, vm._prog))
        stack = stacks[depth]
        stack.buf[:] = bytes(STACK_SIZE)
        regs[10] = stack.base + STACK_SIZE
        path.append(target)
        return target
    return call_local


def _build_exit(c: _Ctx) -> Callable[[int], int]:
    """Return r0 to the caller (restoring its r6-r10), or end the run."""
    vm, regs, frames, path = c.vm, c.vm.regs, c.vm.frames, c.vm.path

    def exit_(pc: int) -> int:
        if not frames:
            return _STOP
        frame = frames.pop()
        regs[6:11] = frame.saved
        if frame.on_return is not None:
            vm.slot = frame.call_slot
            vm._call_record = frame.record
            result = frame.on_return(regs[0])
            if result is None:
                return vm.take_jump()
            regs[0] = result & M64
            if frame.record is not None:
                frame.record.ret = regs[0]
        if frame.code is not vm._code:
            vm._code, vm._prog, vm._pc = frame.code, frame.prog, frame.return_pc
            path.append(frame.return_pc)
            return _SWITCH
        path.append(frame.return_pc)
        return frame.return_pc
    return exit_


def _build_lddw(c: _Ctx) -> Callable[[int], int]:
    """64-bit immediate load; pseudo sources become map, value and function addresses.

    MAP_FD / MAP_VALUE take imm as an index into the VM's maps, like MAP_IDX / MAP_IDX_VALUE
    (there are no file descriptors here).
    """
    vm, regs, insn = c.vm, c.vm.regs, c.insn
    dst, src = insn.dst, insn.src
    if src == PseudoSrc.IMM64:
        value = insn.imm64
    elif src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_FD):
        value = vm.map_pointer(vm._map_index(insn.imm))
    elif src in (PseudoSrc.MAP_IDX_VALUE, PseudoSrc.MAP_VALUE):
        value = vm.global_value_address(insn.imm, insn.next_imm or 0)
    elif src == PseudoSrc.FUNC:
        value = vm.function_pointer(c.prog, c.target(insn.imm))
    else:
        return _raiser(f"lddw with pseudo source {PseudoSrc(src).name} (imm {insn.imm}) "
                       f"is not supported by the VM")

    def lddw(pc: int) -> int:
        regs[dst] = value
        return pc + 2
    return lddw


def _build_ld_abs(c: _Ctx) -> Callable[[int], int]:
    """Legacy packet load: r0 = big-endian value at imm (+ src for LD_IND), or exit 0."""
    vm, regs, insn = c.vm, c.vm.regs, c.insn
    width = c.spec.width
    imm, src = insn.imm, insn.src
    indirect = c.spec.kind is Kind.LD_IND
    exit_ = _build_exit(c)

    def ld_abs(pc: int) -> int:
        offset = _signed((regs[src] if indirect else 0) + imm, 32)
        data = vm.packet_bytes()
        if offset < 0 or offset + width > len(data):
            regs[0] = 0
            return exit_(pc)
        regs[0] = int.from_bytes(data[offset:offset + width], "big")
        return pc + 1
    return ld_abs


def _build_ldx(c: _Ctx) -> Callable[[int], int]:
    """dst = *(size *)(src + off), zero-extended."""
    regs, load = c.vm.regs, c.vm.mem.load
    dst, src, off, width = c.insn.dst, c.insn.src, c.insn.off, c.spec.width

    def ldx(pc: int) -> int:
        regs[dst] = load((regs[src] + off) & M64, width)
        return pc + 1
    return ldx


def _build_ldxsx(c: _Ctx) -> Callable[[int], int]:
    """dst = *(signed size *)(src + off), sign-extended to 64 bits (v4)."""
    regs, load = c.vm.regs, c.vm.mem.load
    dst, src, off, width = c.insn.dst, c.insn.src, c.insn.off, c.spec.width
    bits = width * 8

    def ldxsx(pc: int) -> int:
        regs[dst] = _sx(load((regs[src] + off) & M64, width), bits)
        return pc + 1
    return ldxsx


def _build_st(c: _Ctx) -> Callable[[int], int]:
    """*(size *)(dst + off) = imm (sign-extended, then truncated to the size)."""
    vm, regs, store = c.vm, c.vm.regs, c.vm.mem.store
    dst, off, width = c.insn.dst, c.insn.off, c.spec.width
    imm = c.insn.imm & M64

    def st(pc: int) -> int:
        vm.slot = pc
        store((regs[dst] + off) & M64, width, imm)
        return pc + 1
    return st


def _build_stx(c: _Ctx) -> Callable[[int], int]:
    """*(size *)(dst + off) = src (truncated to the size)."""
    vm, regs, store = c.vm, c.vm.regs, c.vm.mem.store
    dst, src, off, width = c.insn.dst, c.insn.src, c.insn.off, c.spec.width

    def stx(pc: int) -> int:
        vm.slot = pc
        store((regs[dst] + off) & M64, width, regs[src])
        return pc + 1
    return stx


def _build_atomic(c: _Ctx) -> Callable[[int], int]:
    """Atomic read-modify-write on stack or map value memory (W or DW).

    add/or/and/xor store ``old op src``; with FETCH, src receives the old value. xchg
    stores src and returns the old value in src. cmpxchg compares r0 with memory, stores
    src only if equal, and always loads the old value into r0. For W every value involved
    is the low 32 bits and results written to registers are zero-extended.
    """
    vm, regs, mem = c.vm, c.vm.regs, c.vm.mem
    dst, src, off, width = c.insn.dst, c.insn.src, c.insn.off, c.spec.width
    mask = M64 if width == 8 else M32
    packer = _UNPACK[width]
    op = c.insn.imm

    if op == AtomicOp.CMPXCHG:
        def cmpxchg(pc: int) -> int:
            vm.slot = pc
            region, o = mem.atomic_region((regs[dst] + off) & M64, width)
            old = packer.unpack_from(region.buf, o)[0]
            if old == regs[0] & mask:
                packer.pack_into(region.buf, o, regs[src] & mask)
                mem.atomic_done(region, o, width)
            regs[0] = old
            return pc + 1
        return cmpxchg
    if op == AtomicOp.XCHG:
        def xchg(pc: int) -> int:
            vm.slot = pc
            region, o = mem.atomic_region((regs[dst] + off) & M64, width)
            old = packer.unpack_from(region.buf, o)[0]
            packer.pack_into(region.buf, o, regs[src] & mask)
            mem.atomic_done(region, o, width)
            regs[src] = old
            return pc + 1
        return xchg
    fn = ATOMIC_OPS[op & ~AtomicOp.FETCH]
    fetch = bool(op & AtomicOp.FETCH)

    def atomic(pc: int) -> int:
        vm.slot = pc
        region, o = mem.atomic_region((regs[dst] + off) & M64, width)
        old = packer.unpack_from(region.buf, o)[0]
        packer.pack_into(region.buf, o, fn(old, regs[src] & mask) & mask)
        mem.atomic_done(region, o, width)
        if fetch:
            regs[src] = old
        return pc + 1
    return atomic


_BUILDERS: dict[Kind, Callable[[_Ctx], Callable[[int], int]]] = {
    Kind.ALU: _build_alu,
    Kind.NEG: _build_neg,
    Kind.ENDIAN: _build_endian,
    Kind.BSWAP: _build_bswap,
    Kind.JA: _build_ja,
    Kind.JCOND: _build_jcond,
    Kind.CALL: _build_call,
    Kind.EXIT: _build_exit,
    Kind.LDDW: _build_lddw,
    Kind.LD_ABS: _build_ld_abs,
    Kind.LD_IND: _build_ld_abs,
    Kind.LDX: _build_ldx,
    Kind.LDXSX: _build_ldxsx,
    Kind.ST: _build_st,
    Kind.STX: _build_stx,
    Kind.ATOMIC: _build_atomic,
}
assert set(_BUILDERS) == set(Kind), "every Kind of ebpf.isa needs a builder"
