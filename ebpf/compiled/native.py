"""The compiled VM: the reference VM with its instruction loop replaced by native code.

``CompiledVm`` is a ``ebpf.vm.machine.Vm`` (same maps, memory regions, helper state, XDP buffer
handling, results) whose ``_execute`` runs the program's native function
(``ebpf.compiled.codegen``) instead of the closure loop. The native code reads and writes
the VM's own buffers (packet frame, stacks, map values: the maps' storage) through a
region table kept here; whatever it does not do itself it hands back to the VM's handler
of that one instruction through the ``interp`` callback (helper calls, faults, the
context's hooks), so results are the VM's by construction. In batches
(``run_xdp_columns``) map lookups are answered natively where tables mirroring the maps
allow it (``ebpf.compiled.maplookup``), and so are the packet helpers (checksum, head /
tail / meta adjustments: ``ebpf.compiled.packethelpers``), redirects and FIB lookups
(``ebpf.compiled.forward``).

LLVM (llvmlite's MCJIT) compiles each program once per VM, optimised at -O2. A program
that needs what the native code cannot do (a helper that runs a callback, ``bpf_loop``; a
tail call from a bpf-to-bpf sub-program) is refused at construction with
``CompiledUnsupported`` naming the reason (``unsupported_reason``).
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ebpf.code.isa import CallKind, Kind, PseudoSrc, slot_offsets
from ebpf.columns import ColumnsBuilder, PathColumns, PathsBuilder, ResultColumns, tail_records
from ebpf.errors import VmError
from ebpf.kernel_enums import HELPER_IDS
from ebpf.loader.program import ElfObject, ProgramDef, non_xdp_reason
from ebpf.vm.limits import MAX_CALL_FRAMES, STACK_SIZE
from ebpf.vm.limits import STOP as _STOP
from ebpf.vm.limits import SWITCH as _SWITCH
from ebpf.vm.machine import Vm
from ebpf.vm.memory import FIRST_BASE, REGION_STRIDE, Region
from ebpf.vm.trace import Trace
from ebpf.vm.xdp import TEST_RUN_FRAME_SIZE, XDP_REDIRECT, XdpBuff

from . import batch, forward, maplookup, mapwrite, packethelpers, tailcall
from . import codegen as cg

CALLBACK_HELPERS = frozenset({"loop", "for_each_map_elem", "find_vma", "timer_set_callback",
                              "user_ringbuf_drain"})
"""Helpers that call back into the program (``Vm.start_callback``): not compiled."""

_INTERP = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)
_NATIVE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)


class CompiledUnsupported(VmError):
    """A program the compiled backend does not run (the reason is in the message)."""


def unsupported_reason(programs: list[ProgramDef]) -> str | None:
    """Why these programs cannot be compiled, or None."""
    ids = {HELPER_IDS[n]: n for n in CALLBACK_HELPERS if n in HELPER_IDS}
    tail_call = HELPER_IDS.get("tail_call")
    for prog in programs:
        local = tail = False
        for insn in prog.insns:
            if insn.spec.kind is not Kind.CALL:
                continue
            if insn.src == CallKind.LOCAL:
                local = True
            elif insn.src == CallKind.HELPER and insn.imm in ids:
                return (f"program '{prog.name}' calls bpf_{ids[insn.imm]}, which runs a "
                        f"callback (not compiled)")
            elif insn.src == CallKind.HELPER and insn.imm == tail_call:
                tail = True
        if local and tail:
            return (f"program '{prog.name}' has both bpf-to-bpf calls and tail calls "
                    f"(a tail call from a sub-program is not compiled)")
    return None


def _map_write_slots(prog: ProgramDef) -> frozenset[int]:
    """The slots of a program's calls to helpers that change a map's entries (after each
    one, ``maplookup.NativeMaps.written``)."""
    ids = {HELPER_IDS[n] for n in maplookup.MUTATING_HELPERS if n in HELPER_IDS}
    return frozenset(slot for insn, slot in zip(prog.insns, slot_offsets(prog.insns),
                                                strict=True)
                     if insn.spec.kind is Kind.CALL and insn.src == CallKind.HELPER
                     and insn.imm in ids)


def vm_class(kind: str, programs: list[ProgramDef]) -> type[Vm]:
    """The VM class for an executor name: ``vm`` the reference VM, ``compiled`` this one
    (a program it does not compile raises ``CompiledUnsupported`` when constructed),
    ``auto`` this one where every program compiles, else the reference VM."""
    if kind == "vm" or (kind == "auto" and unsupported_reason(programs) is not None):
        return Vm
    if kind not in ("auto", "compiled"):
        raise VmError(f"executor: expected auto, compiled or vm (the VM's semantics), "
                      f"got {kind!r}")
    return CompiledVm


class _Jit:
    """One MCJIT engine for the process: each distinct function compiled once (-O2)."""

    def __init__(self) -> None:
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.llvm = llvm
        self.tm = llvm.Target.from_default_triple().create_target_machine(opt=2)
        self.engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), self.tm)
        self.cache: dict[str, int] = {}

    def add(self, ir_text: str, name: str) -> int:
        """The address of function ``name`` of ``ir_text`` (compiled on first sight)."""
        key = hashlib.sha256(ir_text.encode()).hexdigest()[:24]
        addr = self.cache.get(key)
        if addr is not None:
            return addr
        llvm = self.llvm
        unique = f"{name}_{key}"
        mod = llvm.parse_assembly(ir_text.replace(f'@"{name}"', f'@"{unique}"'))
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=2)
        pb = llvm.create_pass_builder(self.tm, pto)
        pb.getModulePassManager().run(mod, pb)
        self.engine.add_module(mod)
        self.engine.finalize_object()
        addr = self.cache[key] = self.engine.get_function_address(unique)
        return addr


_JIT: _Jit | None = None
_BUILT: dict[tuple, int] = {}  # (insns, lddw, stack bases) -> address
_DRIVER: Any = None


def _driver() -> Any:
    """The batch driver (``ebpf.compiled.batch.driver_ir``), compiled once."""
    global _DRIVER
    if _DRIVER is None:
        _DRIVER = _NATIVE(_jit().add(batch.driver_ir(), "batch"))
    return _DRIVER


def _jit() -> _Jit:
    global _JIT
    if _JIT is None:
        _JIT = _Jit()
    return _JIT


class CompiledVm(Vm):
    """``Vm`` running native code; construct it exactly as a ``Vm``.

    The trace is the VM's (path, instruction count, helper calls, tail calls, redirect)
    except that stores through a map value pointer are native and not in ``map_ops``,
    unless ``map_writes_in_trace`` (then they go through the VM's handler, slower).
    """

    redirect_index = forward.REDIRECT_INDEX  # shared with the native redirects

    def __init__(self, obj_or_maps: Any, program: ProgramDef, *,
                 map_writes_in_trace: bool = False, **options: Any) -> None:
        programs = obj_or_maps.programs if isinstance(obj_or_maps, ElfObject) else [program]
        reason = unsupported_reason(list(programs))
        if reason is not None:
            raise CompiledUnsupported(reason)
        self._native: dict[int, Any] = {}
        self._write_slots: dict[int, frozenset[int]] = {}
        self._interp_cb = _INTERP(self._interp)
        self._pending: BaseException | None = None
        self._regs_arr = (ctypes.c_uint64 * 11)()
        self._rt = (ctypes.c_uint64 * cg.RT_WORDS)()
        self._rt[cg.RT_CTX_IDX] = (1 << 64) - 1
        self._path_buf = (ctypes.c_uint64 * cg.PATH_CAP)()
        self._rt[cg.RT_PATH_PTR] = ctypes.addressof(self._path_buf)
        self._rt[cg.RT_INTERP] = ctypes.cast(self._interp_cb, ctypes.c_void_p).value or 0
        self._table = (ctypes.c_uint64 * 0)()
        self._exports: dict[int, Any] = {}
        self._known = 0
        self._mem_seen: tuple = ()
        self._xdp_seen: tuple = ()
        self._ready = False
        self._batch: batch.Batch | None = None
        self._batch_on_packet: Callable[[int], None] | None = None
        self._batches: batch.Batch | None = None
        self._batch_paths: PathsBuilder | None = None  # recording paths (run_xdp_paths)
        self._frame = bytearray(TEST_RUN_FRAME_SIZE)
        self._map_writes_in_trace = map_writes_in_trace
        super().__init__(obj_or_maps, program, **options)
        self._ready = True
        for d, stack in enumerate(self._stacks):
            self._rt[cg.RT_STACK_HOSTS + d] = self._host(stack)
        for prog, _code in list(self._compiled.values()):
            self._build_native(prog)
        _driver()  # compiled here, not in the first batch
        self._rt[cg.RT_LOOKUP] = _jit().add(maplookup.lookup_ir(), "map_lookup")
        self._native_maps = maplookup.NativeMaps(self)
        self._packet_helpers = packethelpers.PacketHelpers(
            self, _jit().add(packethelpers.packet_ir(), "packet_helper"))
        self._forward = forward.Forward(self, _jit().add)
        self._rt[maplookup.RT_X + maplookup.X_UPDATE] = _jit().add(mapwrite.update_ir(),
                                                                   "map_update")
        self._clock = mapwrite.NativeClock(self)
        self._tails = tailcall.TailCalls(self, _jit().add(tailcall.tail_ir(), "tail_call"))

    # -- native code -----------------------------------------------------------------------

    def compile(self, prog: ProgramDef) -> list:
        code = super().compile(prog)
        if self._ready and id(prog) not in self._native:
            self._build_native(prog)
        return code

    def _build_native(self, prog: ProgramDef) -> None:
        from llvmlite import ir

        plan = cg.Plan(self._lddw_values(prog), [s.base for s in self._stacks])
        # the code is a function of the instructions and the plan: build its IR once per
        # process (building it, not LLVM, is most of a VM's start-up)
        key = (tuple(prog.insns), tuple(sorted(plan.lddw.items())), tuple(plan.stack_bases))
        addr = _BUILT.get(key)
        if addr is None:
            module = ir.Module(name="bpf")
            cg.build_function(module, "prog", prog, plan)
            addr = _BUILT[key] = _jit().add(str(module), "prog")
        self._native[id(prog)] = _NATIVE(addr)
        self._write_slots[id(prog)] = _map_write_slots(prog)
        self._sync_regions()

    def _lddw_values(self, prog: ProgramDef) -> dict[int, int | None]:
        """Each 64-bit load's value, computed as the VM's ``_build_lddw`` computes it."""
        out: dict[int, int | None] = {}
        for insn, slot in zip(prog.insns, slot_offsets(prog.insns), strict=True):
            if insn.spec.kind is not Kind.LDDW:
                continue
            src = insn.src
            if src == PseudoSrc.IMM64:
                out[slot] = insn.imm64
            elif src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_FD):
                out[slot] = self.map_pointer(self._map_index(insn.imm))
            elif src in (PseudoSrc.MAP_IDX_VALUE, PseudoSrc.MAP_VALUE):
                out[slot] = self.global_value_address(insn.imm, insn.next_imm or 0)
            elif src == PseudoSrc.FUNC:
                out[slot] = self.function_pointer(prog, slot + 1 + insn.imm)
            else:
                out[slot] = None
        return out

    # -- the region table ------------------------------------------------------------------

    def _host(self, region: Region) -> int:
        """The host address of a region's buffer (exported once per buffer object)."""
        key = id(region)
        held = self._exports.get(key)
        if held is None or held[0] is not region.buf:
            arr = (ctypes.c_char * len(region.buf)).from_buffer(region.buf)
            held = self._exports[key] = (region.buf, arr, ctypes.addressof(arr))
        return held[2]

    def _set_entry(self, region: Region) -> None:
        idx = (region.base - FIRST_BASE) // REGION_STRIDE
        if idx < 0:
            return
        if (idx + 1) * cg.ENTRY_WORDS > len(self._table):
            grown = (ctypes.c_uint64 * (max(64, 2 * (idx + 1)) * cg.ENTRY_WORDS))()
            ctypes.memmove(grown, self._table, ctypes.sizeof(self._table))
            self._table = grown
            self._rt[cg.RT_TABLE] = ctypes.addressof(grown)
        flags = 0
        if len(region.buf) < REGION_STRIDE:  # larger regions: the VM's path
            if region.load_hook is None:
                flags |= cg.F_LOAD
            if not region.readonly and region.store_error is None and not (
                    self._map_writes_in_trace and region.map_name is not None):
                flags |= cg.F_STORE
                if region.atomic_ok:
                    flags |= cg.F_ATOMIC
        w = idx * cg.ENTRY_WORDS
        table = self._table
        table[w] = self._host(region) if flags else 0
        table[w + 1] = region.lo
        table[w + 2] = region.hi
        table[w + 3] = flags
        if idx + 1 > self._rt[cg.RT_NREG]:
            self._rt[cg.RT_NREG] = idx + 1

    def _sync_regions(self) -> None:
        """New regions into the table; the per-packet ones (packet, mem) and xdp_md when
        they moved (a new packet, an adjust helper)."""
        regions = self.mem.regions
        if len(regions) != self._known:
            for region in regions[self._known:]:
                self._set_entry(region)
            self._known = len(regions)
        mem = self._mem_region
        if mem is not None and (not self._mem_seen or mem.buf is not self._mem_seen[0]
                                or (mem.lo, mem.hi) != self._mem_seen[1:]):
            self._set_entry(mem)
            self._mem_seen = (mem.buf, mem.lo, mem.hi)  # the buffer compared by identity
        xdp, pkt = self.xdp, self._packet_region
        if pkt is None or xdp is None:
            return
        seen = (xdp, xdp.data, xdp.data_end, xdp.data_meta)
        if seen == self._xdp_seen:
            return
        self._xdp_seen = seen
        self._set_entry(pkt)
        rt, base, ctx = self._rt, pkt.base, self._ctx_region
        rt[cg.RT_CTX_IDX] = (ctx.base - FIRST_BASE) // REGION_STRIDE
        rt[cg.RT_CTX_VALS] = base + xdp.data
        rt[cg.RT_CTX_VALS + 1] = base + xdp.data_end
        rt[cg.RT_CTX_VALS + 2] = base + xdp.data_meta
        rt[cg.RT_CTX_VALS + 3] = xdp.ingress_ifindex & 0xFFFFFFFF
        rt[cg.RT_CTX_VALS + 4] = xdp.rx_queue_index & 0xFFFFFFFF
        rt[cg.RT_CTX_VALS + 5] = xdp.egress_ifindex & 0xFFFFFFFF

    # -- running ---------------------------------------------------------------------------

    def _flush_path(self) -> None:
        n = self._rt[cg.RT_PATH_LEN]
        if n:
            b = self._batch
            if b is None or self._rt[cg.RT_CUR] == b.current:  # the VM's view: its path
                self.path.extend(self._path_buf[:n])
            else:  # before the view is built: kept apart (a tail call's path_index counts them)
                self._rt[cg.RT_TAIL + tailcall.W_FLUSHED] += n
                if self._batch_paths is not None:
                    b.prefix.setdefault(self._rt[cg.RT_CUR], []).extend(self._path_buf[:n])
            self._rt[cg.RT_PATH_LEN] = 0

    def _interp(self, slot: int) -> int:
        """One instruction on the VM's handler (called from native code)."""
        try:
            self._flush_path()
            if slot == cg.INTERP_FLUSH:
                return 0
            if self._batch is not None:
                if self._rt[cg.RT_CUR] != self._batch.current:
                    self._materialize()
                self._forward.to_trace()  # a native redirect so far, before the handler's
            self._packet_helpers.pull()  # what native packet helpers moved
            regs = self.regs
            regs[:] = self._regs_arr
            self.trace.insns = self._rt[cg.RT_STEPS]
            writes = slot in self._write_slots[id(self._prog)]
            target = (regs[1], regs[2])  # the map and key (the call clobbers r1-r5)
            self._native_maps.before_call(target if writes else None)
            clock = self._clock if self._clock.on else None
            if clock is not None:
                clock.to_vm()
            try:
                pc = self._code[slot](slot)
            finally:
                fill = self._rt[cg.RT_FILL]
                self._rt[cg.RT_FILL] = 0
                if clock is not None:
                    clock.from_vm()
            if fill and regs[0]:  # a native map lookup's answer, kept for the next time
                ctypes.c_uint64.from_address(fill).value = regs[0]
            if writes and regs[0] == 0:  # a map changed: its native table follows
                self._native_maps.written(*target)
            self._regs_arr[:] = regs
            self._sync_regions()
            if pc == _STOP:
                return cg.INTERP_STOP
            if pc == _SWITCH:  # a tail call: a batch's driver goes on in the target
                self._rt[cg.RT_TAIL + tailcall.W_FN] = ctypes.cast(
                    self._native[id(self._prog)], ctypes.c_void_p).value
                return cg.INTERP_SWITCH
            return pc
        except BaseException as exc:  # noqa: BLE001 - carried across the native frames
            self._pending = exc
            return cg.INTERP_ERROR

    def _execute(self) -> None:
        rt, arr = self._rt, self._regs_arr
        arr[:] = self.regs
        rt[cg.RT_STEPS] = self.trace.insns
        rt[cg.RT_PATH_LEN] = 0  # a batch leaves its last packet's entries behind
        rt[cg.RT_BUDGET] = self.budget
        self._sync_regions()
        regs_addr, rt_addr = ctypes.addressof(arr), ctypes.addressof(rt)
        while True:
            status = self._native[id(self._prog)](regs_addr, rt_addr)
            if status == cg.EXIT:
                break
            if status == cg.SWITCH:
                continue
            self._flush_path()
            self.regs[:] = arr
            self.trace.insns = rt[cg.RT_STEPS]
            raise self._native_error()
        self._flush_path()
        self.regs[:] = arr
        self.trace.insns = rt[cg.RT_STEPS]

    # -- batches ---------------------------------------------------------------------------

    def iter_xdp(self, packets: Sequence[bytes], clock: tuple[bytearray, Any] | None = None
                 ) -> Iterator[tuple[int, bytes, int, Any]]:
        """``run_xdp_columns`` one packet at a time: (verdict, output bytes, metadata
        length, redirect target or None)."""
        cols = self.run_xdp_columns(packets, clock)
        for i in range(len(cols)):
            yield (int(cols.verdict[i]), cols.packet_out(i), int(cols.meta_len[i]),
                   cols.redirect.get(i))

    def run_xdp_paths(self, packets: Sequence[bytes],
                      clock: tuple[bytearray, Any] | None = None
                      ) -> tuple[ResultColumns, PathColumns]:
        """``run_xdp_columns`` that also records, per packet, the instructions it executed
        and its basic-block path (``ebpf.columns.PathColumns``: what its trace's ``insns``,
        ``path`` and ``tail_calls`` would be). A packet's entries before its VM view is
        built (its first callback) are kept in ``Batch.prefix``, those after it in the VM's
        ``path`` (so a tail call's ``path_index`` counts them, as the VM's does), saved in
        ``Batch.paths`` when another packet's view replaces it or the span ends; a packet
        that tail-called finishes in Python and is added from its trace."""
        self._batch_paths = paths = PathsBuilder()
        try:
            cols = self.run_xdp_columns(packets, clock)
        finally:
            self._batch_paths = None
            if self._batches is not None:
                self._batches.record(False)
        return cols, paths.build()

    def run_xdp_columns(self, packets: Sequence[bytes],
                        clock: tuple[bytearray, Any] | None = None) -> ResultColumns:
        """Each packet as ``run_xdp(packet)`` would run it, in order, many per native call;
        the results as columns (``ebpf.columns``). ``clock``: the clock map's value buffer
        and a uint64 array of each packet's clock value, written before the packet runs.
        Runts go through ``run_xdp`` one at a time. An error names the packet's index."""
        import numpy as np

        reason = non_xdp_reason(self.program)
        if reason is not None:
            raise VmError(reason)
        clock_ns = None
        if clock is not None:
            buf, clock_ns = clock
            view = (ctypes.c_char * len(buf)).from_buffer(buf)
            self._clock_view = view  # pins the buffer while batches may write it

        def on_packet(i: int) -> None:
            if clock is not None:
                clock[0][:8] = int(clock_ns[i]).to_bytes(8, "little")

        n = len(packets)
        lens = np.fromiter(map(len, packets), dtype=np.int64, count=n)
        cols = ColumnsBuilder()
        self._native_maps.refresh()
        self._forward.refresh()
        self._clock.start()
        self._tails.refresh()
        try:
            self._run_columns(packets, lens, on_packet, clock_ns, cols)
        finally:  # one packet at a time: every lookup and clock read in the trace
            self._native_maps.finish()
            self._clock.stop()
        return cols.build()

    def _run_columns(self, packets: Sequence[bytes], lens: Any,
                     on_packet: Callable[[int], None], clock_ns: Any,
                     cols: ColumnsBuilder) -> None:
        import numpy as np

        n, pos = len(packets), 0
        for stop_at in [*np.flatnonzero(lens < 14).tolist(), n]:
            while pos < stop_at:
                end = min(stop_at, pos + batch.CHUNK)
                self._run_chunk(list(packets[pos:end]), lens[pos:end], pos, on_packet,
                                None if clock_ns is None else clock_ns[pos:end], cols)
                pos = end
            if pos < n:  # a runt: the VM's own error
                on_packet(pos)
                try:
                    res = self.run_xdp(packets[pos])
                except VmError as exc:
                    raise type(exc)(f"packet {pos}: {exc}") from exc
                cols.add_one(res.verdict, res.packet_out, res.meta_len, res.redirect)
                if self._batch_paths is not None:
                    self._batch_paths.add_one(res.trace.path, res.trace.insns,
                                              res.trace.tail_calls)
                pos += 1

    def _batch_setup(self) -> batch.Batch:
        if self._packet_region is None:
            self._packet_region, self._ctx_region = XdpBuff(bytes(14)).map_into(self.mem)
        b = self._batches
        if b is None:
            b = self._batches = batch.Batch()
            d = b.desc
            d[batch.D_PROG] = ctypes.cast(self._native[id(self.program)], ctypes.c_void_p).value
            d[batch.D_REGS] = ctypes.addressof(self._regs_arr)
            d[batch.D_STACK_HOST] = self._host(self._stacks[0])
            d[batch.D_STACK_BASE] = self._stacks[0].base
            d[batch.D_CTX_BASE] = self._ctx_region.base
            d[batch.D_PKT_BASE] = self._packet_region.base
            d[batch.D_PKT_IDX] = (self._packet_region.base - FIRST_BASE) // REGION_STRIDE
        self._packet_region.buf = self._frame
        self._sync_regions()
        self._set_entry(self._packet_region)
        b.desc[batch.D_FRAME_HOST] = self._host(self._packet_region)
        self._rt[cg.RT_CTX_IDX] = (self._ctx_region.base - FIRST_BASE) // REGION_STRIDE
        self._rt[cg.RT_BUDGET] = self.budget
        return b

    def _run_chunk(self, chunk: list[bytes], lens: Any, first: int,
                   on_packet: Callable[[int], None], clock_ns: Any,
                   cols: ColumnsBuilder) -> None:
        b = self._batch_setup()
        keep = b.load(chunk, lens, first, clock_ns)
        b.desc[batch.D_CLOCK_HOST] = 0 if clock_ns is None else \
            ctypes.addressof(self._clock_view)
        paths = self._batch_paths
        b.record(paths is not None)
        self._batch, self._batch_on_packet = b, on_packet
        self._packet_helpers.start(b.lens)
        self._forward.begin()
        self._tails.begin()
        driver = _driver()
        rt_addr, desc_addr = ctypes.addressof(self._rt), ctypes.addressof(b.desc)
        start, m = 0, len(chunk)
        try:
            while start < m:
                b.desc[batch.D_START] = start
                status = driver(rt_addr, desc_addr)
                stop = b.desc[batch.D_STOP]
                self._add_span(b, start, stop, cols)
                native_tails = self._tails.take()
                if paths is not None:
                    self._add_paths(b, start, stop, paths, native_tails)
                if status == cg.EXIT:
                    break
                if status == batch.FULL:  # the path log is consumed: go on from stop
                    b.desc[batch.D_PLOG_POS] = 0
                    start = stop
                    continue
                self._flush_path()
                self.regs[:] = self._regs_arr
                if self._rt[cg.RT_CUR] != b.current:  # no view: where native code left it
                    prog = self._tails.running()
                    self._code, self._prog = self.compile(prog), prog
                exc = self._native_error()
                if isinstance(exc, VmError):
                    raise type(exc)(f"packet {first + stop}: {exc}") from exc
                raise exc
        finally:
            self._packet_helpers.stop()
            self._forward.end()
            self._tails.end()
            self._batch = None
            self._xdp_seen = ()
            self._code, self._prog = self._entry_code, self.program
            del keep

    def _keep_path(self, b: batch.Batch) -> None:
        """The materialized packet's path entries (after the entry 0) into ``b.paths``."""
        if b.current >= 0 and b.current not in b.paths:
            b.paths[b.current] = self.path[1:]

    def _add_paths(self, b: batch.Batch, start: int, stop: int, paths: PathsBuilder,
                   native_tails: dict[int, tuple]) -> None:
        """Chunk packets ``start .. stop``'s steps and paths: the native entries in the
        log, after those that went to ``b.prefix`` or through the VM's view (``b.paths``,
        with the view's tail calls, which include its native ones); ``native_tails``: the
        native tail calls per packet."""
        self._keep_path(b)
        prefix = {k - start: v for k, v in _in_span(b.prefix, start, stop)}
        tails = {}
        for k, calls in native_tails.items():  # (a packet with a view: from its trace, below)
            tails[k - start] = calls
        for k, entries in _in_span(b.paths, start, stop):
            prefix[k - start] = entries
            calls = b.traces[k].tail_calls
            if calls:
                tails[k - start] = tail_records(calls)
        paths.add_span(b.steps[start:stop], b.plog, b.poff[start:stop], b.plen[start:stop],
                       prefix, tails)

    def _add_span(self, b: batch.Batch, start: int, stop: int, cols: ColumnsBuilder) -> None:
        """Chunk packets ``start .. stop`` (all returned natively) into ``cols``."""
        import numpy as np

        if stop <= start:
            return
        first_out = int(b.out_off[start])
        data = b.out[first_out:b.desc[batch.D_OUT_POS]].tobytes()
        at = cols.n - start  # column index of chunk packet k: at + k
        cols.add_span(b.verdict[start:stop], b.meta_len[start:stop],
                      b.out_off[start:stop] - first_out, b.out_len[start:stop], data)
        for k in (start + np.flatnonzero(b.lens[start:stop] > batch.MAX_LINEAR)).tolist():
            buff = b.buffs.get(k)  # fragments: as a helper left them, else untouched
            cols.tails[at + k] = b"".join(buff.frags) if buff is not None else \
                self._packet_helpers.tail(k, b.chunk[k])
        redirects = {k: trace.redirect for k, trace in _in_span(b.traces, start, stop)
                     if trace.redirect is not None}
        redirects.update(self._forward.take(start, stop))  # native ones are newer
        for k, target in redirects.items():
            if b.verdict[k] == XDP_REDIRECT:
                cols.redirect[at + k] = target

    def _materialize(self) -> None:
        """The VM's view of the batch's current packet, built from the native state."""
        b = self._batch
        assert b is not None
        k = self._rt[cg.RT_CUR]
        if self._batch_paths is not None:
            self._keep_path(b)
        b.current = k
        if self._batch_on_packet is not None:  # (the driver already set the clock)
            self._batch_on_packet(b.first + k)
        buff = XdpBuff(b.chunk[k], metalen_max=self.env.metalen_max)
        base, rt = self._packet_region.base, self._rt
        buff.frame = self._frame
        buff.data = rt[cg.RT_CTX_VALS] - base
        buff.data_end = rt[cg.RT_CTX_VALS + 1] - base
        buff.data_meta = rt[cg.RT_CTX_VALS + 2] - base
        buff.attach(self._packet_region, self._ctx_region)
        self.xdp = b.buffs[k] = buff
        self.trace = b.traces[k] = Trace(program=self.program.name)
        self.frames.clear()
        self.path[:] = [0, *b.prefix.pop(k, ())]  # (the VM's builders hold this list)
        self.ringbuf_samples.clear()
        self._tails.to_trace(k)  # its native tail calls, their count, the program running

    def _native_error(self) -> BaseException:
        rt = self._rt
        slot, kind, arg = rt[cg.RT_ERR_SLOT], rt[cg.RT_ERR_KIND], rt[cg.RT_ERR_ARG]
        if kind == cg.ERR_INTERP:
            exc, self._pending = self._pending, None
            assert exc is not None
            if not isinstance(exc, VmError):
                return exc
        elif kind == cg.ERR_BUDGET:
            exc = VmError(f"instruction budget of {self.budget} exceeded")
        elif kind == cg.ERR_DEPTH:
            exc = VmError(f"the call stack of {arg + 1} frames is too deep "
                          f"(MAX_CALL_FRAMES {MAX_CALL_FRAMES})")
        else:
            exc = CompiledUnsupported(f"compiled code: unsupported control transfer "
                                      f"(kind {kind}, value {arg})")
        return self._located(self._prog, slot, exc)


def _in_span(per_packet: dict[int, Any], start: int, stop: int) -> list[tuple[int, Any]]:
    """The items of chunk packets ``start .. stop`` (a tail call ends a span per packet:
    walking a chunk's whole dict each time would be quadratic)."""
    if stop - start < len(per_packet):
        return [(k, per_packet[k]) for k in range(start, stop) if k in per_packet]
    return [(k, v) for k, v in per_packet.items() if start <= k < stop]


assert STACK_SIZE == 512
