"""The reference eBPF interpreter: the kernel's semantics, instruction by instruction.

``Vm(maps, program)`` compiles a linked ``ProgramDef`` once into a list of small closures,
one per slot, chosen from ``BUILDERS`` by the instruction's ``Kind`` (ebpf.code.isa's table is
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
- Memory goes through ``ebpf.vm.memory`` and faults with the slot and source line.
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

from collections.abc import Callable, Sequence
from typing import Any

from ebpf.code.isa import (
    slot_offsets,
    validate,
)
from ebpf.errors import IsaError, VmError
from ebpf.helpers.core import HelperEnv, HelperState
from ebpf.kernel_enums import map_type_name
from ebpf.loader.program import ElfObject, MapDef, ProgramDef
from ebpf.vm.builders import BUILDERS, Ctx, Frame, raiser
from ebpf.vm.limits import (
    BPF_F_RDONLY_PROG,
    DEFAULT_BUDGET,
    FUNC_PROG_STRIDE,
    FUNC_PTR_BASE,
    M32,
    M64,
    MAP_PTR_BASE,
    MAP_PTR_STRIDE,
    MAX_CALL_FRAMES,
    MAX_TAIL_CALL_CNT,
    STACK_SIZE,
    STOP,
    SWITCH,
)
from ebpf.vm.memory import Memory, Region, RegionKind
from ebpf.vm.trace import HelperCall, MapOp, TailCall, Trace

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
        from ebpf.maps.factory import create_maps

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

    def registered_maps(self) -> list[tuple[int, Any]]:
        """(pointer, map) of every map ``map_pointer`` has registered so far."""
        return list(self._map_at.items())

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
        self._jump = SWITCH

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
            ctx = Ctx(self, prog, insn, spec, slot, starts, num_slots)
            try:
                code[slot] = BUILDERS[spec.kind](ctx)
            except VmError as exc:
                raise self._located(prog, slot, exc) from exc
            if insn.slots == 2:
                code[slot + 1] = raiser(f"jump into the second slot of lddw at {slot}")
        code[num_slots] = raiser("fell off the end of the program (no exit)")
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
                    if pc == STOP:
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
        """Run on an ``ebpf.vm.xdp.XdpBuff`` (r1 = its xdp_md); the buff is modified in place."""
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
        """``ebpf.vm.xdp.run_xdp`` with this VM: one packet, as BPF_PROG_TEST_RUN runs it."""
        from ebpf.vm.xdp import run_xdp

        return run_xdp(self, packet, ingress_ifindex, rx_queue, **options)

    # -- LD_ABS source ---------------------------------------------------------------------

    def packet_bytes(self) -> bytes | bytearray | memoryview:
        """The bytes LD_ABS / LD_IND index: the XDP packet (data .. data_end) or ``mem``."""
        if self.xdp is not None:
            return memoryview(self.xdp.frame)[self.xdp.data:self.xdp.data_end]
        if self._mem_region is not None:
            return self._mem_region.buf
        return b""


