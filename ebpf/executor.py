"""One interface for running an XDP program on a stream of packets, several backends.

An ``Executor`` runs packets one at a time, in arrival order, on one loaded program whose
maps persist from packet to packet. When the program reads the clock (rewritten by
``ebpf.differential.prepare`` to read the one-entry clock map), the executor sets the clock
to the packet's time before running it. Each run returns a ``PacketResult``: the verdict,
the output bytes (``data_meta .. data_end``, as BPF_PROG_TEST_RUN's ``data_out`` with the
metadata in front), and what else the backend can observe. ``run_batch`` runs a whole
stream and returns the results as columns (``ebpf.columns.ResultColumns``), which the
compiled backend writes without a Python object per packet.

Backends:

- ``vm``: the reference VM (``ebpf.vm``), the oracle. Also returns the redirect target and
  the full trace (path, helper calls, map operations: the map writes).
- ``kernel``: BPF_PROG_TEST_RUN on each packet in the kernel (the truth itself where bpf(2)
  is permitted), the clock map written before each packet as ``offload kernel`` does; also
  returns the kernel's own ns for the run. test_run does not say where a redirect goes,
  so ``redirect`` stays None; maps are read back only when asked (``dump_maps``).

- ``compiled``: the program compiled to native code with LLVM (``ebpf.compiled``): the
  VM's maps, helpers and memory, its instruction loop replaced by the native function, so
  every result is the VM's (verdict, bytes, redirect target, map writes) without its
  per-instruction cost. No trace (``trace`` stays None). Programs it does not compile
  (``ebpf.compiled.unsupported_reason``) are refused with that reason.

``auto`` is ``compiled`` where the program compiles, else ``kernel`` where the object loads
into the kernel, else ``vm``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from ebpf.columns import PathColumns, PathsBuilder, ResultColumns
from ebpf.errors import EbpfError
from ebpf.loader.program import ElfObject
from ebpf.vm.trace import Redirect, Trace
from ebpf.vm.xdp import VERDICT_NAMES

EXECUTORS = ("auto", "kernel", "compiled", "vm")
"""The names ``--executor`` accepts."""


class ExecutorError(EbpfError):
    """An executor that cannot be opened (unknown name, kernel refused the program)."""


@dataclass
class PacketResult:
    """One packet through the program."""

    verdict: int
    packet_out: bytes
    """data_meta .. data_end after the program (BPF_PROG_TEST_RUN's data_out)."""
    meta_len: int = 0
    redirect: Redirect | None = None
    """Where XDP_REDIRECT sends the packet (vm and compiled; None from the kernel)."""
    trace: Trace | None = None
    """The VM's trace (vm and compiled; compiled: no map_ops for pointer stores)."""
    kernel_ns: int | None = None
    """The kernel's own duration of this run, ns (kernel only)."""

    @property
    def packet(self) -> bytes:
        return self.packet_out[self.meta_len:]

    @property
    def verdict_name(self) -> str:
        return VERDICT_NAMES.get(self.verdict, f"unknown({self.verdict})")


class Executor:
    """Base of the backends: ``run`` one packet, ``run_all`` a stream, ``dump_maps``."""

    name = "?"

    def __init__(self, obj: ElfObject, program: str | None, clock: bool, clock_start_ns: int):
        self.obj = obj
        self.program = obj.get_program(program).name
        self.clock = clock
        self.clock_start_ns = clock_start_ns
        self._stack = ExitStack()

    def _set_clock(self, ns: int) -> None:
        raise NotImplementedError

    def _run(self, packet: bytes) -> PacketResult:
        raise NotImplementedError

    def run(self, packet: bytes, time_ns: int = 0) -> PacketResult:
        """Run one packet; a clock-reading program reads ``clock_start_ns + time_ns``."""
        if self.clock:
            self._set_clock((self.clock_start_ns + int(time_ns)) & ((1 << 64) - 1))
        return self._run(packet)

    def iter_results(self, packets: Iterable[bytes], time_ns: Sequence[int] | None = None
                     ) -> Iterator[PacketResult]:
        """Each packet in order; packet i at ``time_ns[i]`` (default: i ms)."""
        for i, packet in enumerate(packets):
            t = int(time_ns[i]) if time_ns is not None else i * 1_000_000
            try:
                yield self.run(packet, t)
            except EbpfError as exc:
                raise type(exc)(f"packet {i}: {exc}") from exc

    def run_all(self, packets: Iterable[bytes], time_ns: Sequence[int] | None = None
                ) -> list[PacketResult]:
        return list(self.iter_results(packets, time_ns))

    def run_batch(self, packets: Sequence[bytes], time_ns: Sequence[int] | None = None
                  ) -> ResultColumns:
        """``run_all`` as columns (``ebpf.columns``): what a stream's consumers read without
        a Python object per packet (the compiled backend writes them directly)."""
        return ResultColumns.from_results(self.run_all(packets, time_ns))

    def run_batch_paths(self, packets: Sequence[bytes], time_ns: Sequence[int] | None = None
                        ) -> tuple[ResultColumns, PathColumns]:
        """``run_batch`` and each packet's instruction count and basic-block path
        (``ebpf.columns.PathColumns``), from its trace (vm; compiled: recorded natively)."""
        results = list(Executor.iter_results(self, packets, time_ns))  # with traces
        paths = PathsBuilder()
        for r in results:
            if r.trace is None:
                raise ExecutorError(f"the {self.name} executor gives no per-packet path")
            paths.add_one(r.trace.path, r.trace.insns, r.trace.tail_calls)
        return ResultColumns.from_results(results), paths.build()

    def dump_maps(self) -> dict[str, Any]:
        """The maps' contents now (docs/state.md form)."""
        raise NotImplementedError

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VmExecutor(Executor):
    """The reference VM: the oracle."""

    name = "vm"

    def __init__(self, obj: ElfObject, program: str | None, scenario: Any, *, clock: bool,
                 seed: int = 0, cpus: int | None = None):
        from ebpf.differential import VmSide

        super().__init__(obj, program, clock, scenario.clock_start_ns)
        self.side = VmSide(obj, self.program, scenario, seed=seed, cpus=cpus,
                           vm_class=self._vm_class())

    @staticmethod
    def _vm_class() -> type:
        from ebpf.vm.machine import Vm

        return Vm

    @property
    def maps(self) -> dict[str, Any]:
        return self.side.maps

    def _set_clock(self, ns: int) -> None:
        self.side.set_clock(ns)

    def _run(self, packet: bytes) -> PacketResult:
        res = self.side.run(packet)
        return PacketResult(res.verdict, bytes(res.packet_out), res.meta_len, res.redirect,
                            res.trace)

    def dump_maps(self) -> dict[str, Any]:
        return self.side.dump()


class CompiledExecutor(VmExecutor):
    """Native code (``ebpf.compiled.CompiledVm``): the VM's results at native speed."""

    name = "compiled"

    @staticmethod
    def _vm_class() -> type:
        from ebpf.compiled import CompiledVm

        return CompiledVm

    def run_batch(self, packets: Sequence[bytes], time_ns: Sequence[int] | None = None
                  ) -> ResultColumns:
        """As ``Executor.run_batch``, many packets per native call
        (``CompiledVm.run_xdp_columns``); no traces (``run`` gives them)."""
        packets = packets if isinstance(packets, Sequence) else list(packets)
        return self.side.vm.run_xdp_columns(packets, self._clock(len(packets), time_ns))

    def run_batch_paths(self, packets: Sequence[bytes], time_ns: Sequence[int] | None = None
                        ) -> tuple[ResultColumns, PathColumns]:
        """As ``Executor.run_batch_paths``, many packets per native call
        (``CompiledVm.run_xdp_paths``, tail calls included)."""
        packets = packets if isinstance(packets, Sequence) else list(packets)
        return self.side.vm.run_xdp_paths(packets, self._clock(len(packets), time_ns))

    def _clock(self, n: int, time_ns: Sequence[int] | None) -> Any:
        """The clock argument of ``CompiledVm.run_xdp_columns`` (None: no clock)."""
        import numpy as np

        from ebpf.differential import CLOCK_MAP

        if not self.clock:
            return None
        t = np.asarray(time_ns if time_ns is not None else
                       [i * 1_000_000 for i in range(n)], dtype=np.uint64)
        ns = t + np.uint64(self.clock_start_ns & ((1 << 64) - 1))  # wraps like the VM's
        return self.maps[CLOCK_MAP].lookup(bytes(4)), ns

    def iter_results(self, packets: Iterable[bytes], time_ns: Sequence[int] | None = None
                     ) -> Iterator[PacketResult]:
        """As ``Executor.iter_results``, from ``run_batch`` (no traces)."""
        yield from self.run_batch(list(packets), time_ns)

    def run_all(self, packets: Iterable[bytes], time_ns: Sequence[int] | None = None
                ) -> list[PacketResult]:
        return list(self.iter_results(packets, time_ns))


class _TestRunner:
    """BPF_PROG_TEST_RUN of one program on one packet, buffers and options allocated once:
    the same call as ``KernelObject.test_run(packet, prog)`` (no metadata, ingress ifindex
    and rx queue 0) without its per-call allocations. A failing call is repeated through
    ``test_run`` so that the error carries its explanation."""

    def __init__(self, kobj: Any, prog: str):
        import ctypes

        from ebpf.kernel.load import TestRunOpts, libbpf
        from ebpf.kernel.results import DATA_OUT_SLACK

        self.ct, self.kobj, self.prog = ctypes, kobj, prog
        self.fd = kobj.prog_fd(prog)
        kobj.mark_programs_run()  # our own test runs bypass test_run: dumps must ask
        self.call = libbpf().bpf_prog_test_run_opts
        self.slack = DATA_OUT_SLACK
        self.ctx_in = ctypes.create_string_buffer(24)  # struct xdp_md: six u32
        self.ctx_out = ctypes.create_string_buffer(24)
        self.opts = TestRunOpts(sz=ctypes.sizeof(TestRunOpts), ctx_in=ctypes.addressof(
            self.ctx_in), ctx_size_in=24, ctx_out=ctypes.addressof(self.ctx_out),
            ctx_size_out=24, repeat=1)
        self._size = 0
        self._grow(2048)
        self.update = libbpf().bpf_map_update_elem
        self.clock_key = ctypes.create_string_buffer(4)
        self.clock_value = ctypes.create_string_buffer(8)
        self.clock_fd: int | None = None

    def set_clock(self, map_name: str, ns: int) -> None:
        """Write the one-entry clock map (key 0, u64 ns): bpf_map_update_elem, BPF_ANY."""
        if self.clock_fd is None:
            self.clock_fd = self.kobj.map_fd(map_name)
        self.ct.memmove(self.clock_value, ns.to_bytes(8, "little"), 8)
        if self.update(self.clock_fd, self.clock_key, self.clock_value, 0) < 0:
            self.kobj.update(map_name, bytes(4), ns.to_bytes(8, "little"))  # raises why

    def _grow(self, size: int) -> None:
        ct = self.ct
        self._size = size
        self.in_buf = ct.create_string_buffer(size)
        self.out_buf = ct.create_string_buffer(size + self.slack)
        self.opts.data_in = ct.addressof(self.in_buf)
        self.opts.data_out = ct.addressof(self.out_buf)

    def run(self, packet: bytes) -> PacketResult:
        n = len(packet)
        if n > self._size:
            self._grow(n)
        self.ct.memmove(self.in_buf, packet, n)
        self.ct.memmove(self.ctx_in, (0).to_bytes(4, "little") + n.to_bytes(4, "little"), 8)
        opts = self.opts
        opts.data_size_in = n
        opts.data_size_out = n + self.slack
        opts.ctx_size_out = 24
        if self.call(self.fd, self.ct.byref(opts)) < 0:
            res = self.kobj.test_run(packet, self.prog)  # raises with the reason
            meta = bytes(res.meta_out)
            return PacketResult(res.retval, meta + bytes(res.data_out), len(meta),
                                kernel_ns=res.duration_ns)
        meta_len = int.from_bytes(self.ctx_out.raw[:4], "little")
        return PacketResult(opts.retval, self.out_buf.raw[:opts.data_size_out], meta_len,
                            kernel_ns=opts.duration)


class KernelExecutor(Executor):
    """BPF_PROG_TEST_RUN per packet (the clock map written first when the program reads it)."""

    name = "kernel"

    def __init__(self, path: str, obj: ElfObject, program: str | None, scenario: Any, *,
                 clock: bool):
        from ebpf.differential import CLOCK_MAP, kernel_side

        super().__init__(obj, program, clock, scenario.clock_start_ns)
        self._clock_map = CLOCK_MAP
        try:
            self.kobj = self._stack.enter_context(kernel_side(path, obj, scenario, raw=clock))
            self._runner = _TestRunner(self.kobj, self.program)
        except BaseException:
            self._stack.close()
            raise

    @property
    def num_cpus(self) -> int:
        return self.kobj.num_possible_cpus

    def _set_clock(self, ns: int) -> None:
        self._runner.set_clock(self._clock_map, ns)

    def _run(self, packet: bytes) -> PacketResult:
        return self._runner.run(packet)

    def dump_maps(self) -> dict[str, Any]:
        return self.kobj.dump_state()


def reference_executor(kind: str, path: str, obj: ElfObject, program: str | None,
                       scenario: Any, *, clock: bool, cpus: int | None = None,
                       seed: int = 0) -> VmExecutor:
    """The VM's semantics on ``kind``: ``vm``, ``compiled``, or ``auto`` (compiled where
    the program compiles, else vm). ``obj`` is already prepared (``differential.prepare``).
    ``kernel`` is refused: this is the side compared with the kernel."""
    from ebpf.compiled import CompiledUnsupported

    if kind not in ("auto", "compiled", "vm"):
        raise ExecutorError(f"executor: expected auto, compiled or vm for the side compared "
                            f"with the kernel, got {kind!r}")
    if kind != "vm":
        try:
            return CompiledExecutor(obj, program, scenario, clock=clock, seed=seed, cpus=cpus)
        except CompiledUnsupported as exc:
            if kind == "compiled":
                raise ExecutorError(f"{path}: the compiled executor cannot run it: "
                                    f"{exc}") from exc
    return VmExecutor(obj, program, scenario, clock=clock, seed=seed, cpus=cpus)


def open_executor(kind: str, path: str, obj: ElfObject, program: str | None = None,
                  scenario: Any = None, *, seed: int = 0) -> Executor:
    """An executor of ``kind`` (one of EXECUTORS) for ``program`` in ``obj`` (loaded from
    ``path``), maps from ``scenario`` (an ``ebpf.differential.Scenario``; None: empty).
    The clock is injected when the program reads it; ``auto`` takes the compiled backend
    where the program compiles, else the kernel, else the VM (when the kernel refuses the
    object or bpf(2) is not permitted)."""
    from ebpf.compiled import CompiledUnsupported
    from ebpf.differential import Scenario, prepare

    scenario = scenario if scenario is not None else Scenario()
    if kind not in EXECUTORS:
        raise ExecutorError(f"executor: expected one of {', '.join(EXECUTORS)}, got {kind!r}")
    run_obj, clock = prepare(obj, scenario)
    if kind in ("compiled", "auto"):
        try:
            return CompiledExecutor(run_obj, program, scenario, clock=clock, seed=seed)
        except CompiledUnsupported as exc:
            if kind == "compiled":
                raise ExecutorError(f"{path}: the compiled executor cannot run it: "
                                    f"{exc}") from exc
    if kind in ("kernel", "auto"):
        try:
            return KernelExecutor(path, run_obj, program, scenario, clock=clock)
        except (EbpfError, OSError) as exc:
            if kind == "kernel":
                if isinstance(exc, EbpfError):
                    raise
                raise ExecutorError(f"{path}: the kernel executor cannot start: {exc}") from exc
    return VmExecutor(run_obj, program, scenario, clock=clock, seed=seed)
