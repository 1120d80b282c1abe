"""Every packet of a stream through the executor, with the costs the simulator reads:
``sim.scenario.run_behaviour``'s two ways, in batches on the compiled executor
(``behaviour_batched``, tail-calling programs included) or one packet at a time with its
trace (``behaviour_one_by_one``: the VM, the kernel, and ``behaviour = "sampled"``).

``run_behaviour`` needs, per packet, the verdict, the cost of the path it took
(``sim.model.TraceCost``: instructions, helper calls) and, with a mapping, whether the
pipeline punts it. Running the compiled code one packet at a time with a trace costs tens of
us per packet; here the executor runs whole spans of the stream natively
(``Executor.run_batch_paths``: each packet's verdict, instruction count, basic-block path
and tail calls), and the costs are worked out once per distinct path (``path_trace``: the
helper calls on the blocks the path executes in each program it tail-called into,
``hw.rtc.common.iter_executed_blocks``, which also checks that the blocks add up to the
instruction count).

Punts come from ``sim.mapping.PipelinePunts``: where the configuration can only punt a frame
longer than the window (``PipelinePunts.static``) they are a function of each packet's
length; otherwise the model runs ahead of the executor up to the next punted packet, the
executor runs the span up to it, and the model's maps are reloaded after the host ran it,
exactly the order of the packet-by-packet loop; where a reload cannot bring anything new
(``PipelinePunts.ahead``) the model decides the whole span first.

The batched result is the packet-by-packet loop's, class for class
(tests/sim/test_behaviour.py compares both): classes in order of first appearance, the same keys, labels and counts. A
class's ``trace`` is rebuilt from its path (program, verdict, path, instruction count and
helper calls with their slots, ids and names, tail calls; no arguments, return values or
map operations):
what the run-to-completion cost models (``hw.cost.nic``) read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sim.model import TraceCost

SPAN = 16_384
"""Packets per call of the executor (the progress bar advances per span)."""
SHORT = 16
"""A span between punts shorter than this runs one packet at a time (``Executor.run`` with
its trace: the same results, without a batch's set-up)."""


@dataclass
class BatchResult:
    """What ``run_batched`` gives ``run_behaviour`` (``sim.scenario.Behaviour``'s fields)."""

    klass: np.ndarray
    verdicts: list[int]
    costs: list[TraceCost]
    firsts: list[bytes]
    labels: list[str]
    counts: list[int]
    traces: list[Any]


def path_trace(obj: Any, program: str, path: tuple[int, ...], steps: int,
               verdict: int | None = None, tail_calls: tuple[tuple, ...] = ()) -> Any:
    """The ``ebpf.vm.trace.Trace`` of a run that took ``path`` in ``steps`` instructions
    with the tail calls ``tail_calls`` (``ebpf.columns.TailRecord``): its helper calls read
    off the executed blocks, in whichever program each ran (slot, id, name; no
    arguments)."""
    from ebpf.code.isa import CallKind, Kind
    from ebpf.helpers.core import get_helper
    from ebpf.vm.trace import HelperCall, TailCall, Trace
    from hw.rtc.common import iter_executed_blocks

    prog = obj.get_program(program)
    trace = Trace(program=program, verdict=verdict, path=list(path), insns=int(steps),
                  tail_calls=[TailCall(*t) for t in tail_calls])
    programs = {p.name: p for p in obj.programs} if tail_calls else None
    for _p, block in iter_executed_blocks(prog, trace, programs):
        for slot, insn in zip(block.slots, block.insns, strict=True):
            if insn.spec.kind is Kind.CALL and insn.src == CallKind.HELPER:
                trace.helper_calls.append(HelperCall(slot, insn.imm,
                                                     get_helper(insn.imm).name, [], None))
    return trace


def _at(i: int, label_of: Callable[[int], str], fn: Callable[..., Any], *args: Any,
        span: int | None = None, first: int = 0) -> Any:
    """``fn(*args)``, an error naming packet ``i`` (or the packets ``i .. span - 1``) of a
    call that began at packet ``first`` of the stream."""
    from ebpf.errors import EbpfError
    from hw.errors import HwError

    try:
        return fn(*args)
    except (EbpfError, HwError) as exc:
        where = f"packet {first + i} ({label_of(i)})" if span is None or span == i + 1 \
            else f"packets {first + i} .. {first + span - 1} (counted from {first + i})"
        raise type(exc)(f"{where}: {exc}") from exc


def _distinct_punts(pipe: Any, packets: list[bytes], pos: int, end: int, punted: np.ndarray,
                    label_of: Callable[[int], str], first: int) -> None:
    """``punted[pos:end]`` from the model run once per distinct packet object, in order of
    first appearance: where the model decides a span ahead and remembers (``pipe.ahead``
    and ``pipe.remembers``), its decision is a function of the packet's bytes over the span
    (nothing it reads changes before the span is checked), so a packet repeats the
    decision of the first with its bytes, as ``PipelinePunts.process`` would give it; an
    error names the first packet whose run fails, as the packet-by-packet loop does."""
    ids = np.fromiter(map(id, packets[pos:end]), dtype=np.int64, count=end - pos)
    _u, firsts, inverse = np.unique(ids, return_index=True, return_inverse=True)
    decided = np.zeros(len(firsts), dtype=np.int8)
    for u in np.argsort(firsts, kind="stable").tolist():
        i = pos + int(firsts[u])
        decided[u] = bool(_at(i, label_of, pipe.process, packets[i], first=first))
    punted[pos:end] = decided[inverse.reshape(-1)]
    pipe.punts += int(punted[pos:end].sum()) - int(decided.sum())  # the repeats


class BatchRun:
    """``run_batched`` that can go on: ``run`` takes the stream's next packets (the
    executor, its maps and the pipeline model carry on from where the last call stopped),
    ``result`` classes every packet run so far. Per packet it keeps the verdict, path id,
    instruction count and punt; the classes are worked out from those each time."""

    def __init__(self, ex: Any, obj: Any, pipe: Any) -> None:
        self.ex, self.obj, self.pipe = ex, obj, pipe
        self.n = 0
        self._cols: list[tuple[np.ndarray, ...]] = []  # (verdict, path id, steps, punted)
        # (path, tail calls) -> its id over the whole stream
        self.ids: dict[tuple[tuple[int, ...], tuple], int] = {}
        self.path_list: list[tuple[int, ...]] = []
        self.tail_list: list[tuple] = []  # each path's tail calls (TailRecord tuples)

    def run(self, packets: list[bytes], arrival: Any, label_of: Callable[[int], str],
            advance: Callable[[int], None] | None = None) -> None:
        """Packets ``self.n ..`` of the stream (``packets``, ``arrival``: those only;
        ``label_of`` takes the index in the whole stream)."""
        ex, pipe, first = self.ex, self.pipe, self.n
        n = len(packets)

        def label(i: int) -> str:
            return label_of(first + i)

        verdict = np.zeros(n, dtype=np.int64)
        path_id = np.zeros(n, dtype=np.int32)
        steps = np.zeros(n, dtype=np.int64)
        punted = np.zeros(n, dtype=np.int8)  # 0 no, 1 yes, 2 no mapping (None)
        ids, path_list, tail_list = self.ids, self.path_list, self.tail_list
        runt = n  # the first packet the pipeline's parser refuses (the model's error)
        if pipe is None:
            punted[:] = 2
        elif pipe.static:
            lengths = np.fromiter(map(len, packets), dtype=np.int64, count=n)
            short = np.flatnonzero(lengths < pipe.config.target.min_packet_bytes)
            runt = int(short[0]) if len(short) else n
            punted[:runt] = pipe.punted_by_length(lengths[:runt])
        pos = 0
        while pos < n:
            end = min(runt if pos < runt else n, pos + SPAN)
            if pos == runt:
                _at(pos, label, pipe.process, packets[pos], first=first)  # the model's error
            if pipe is not None and not pipe.static and pipe.ahead and pipe.remembers:
                _distinct_punts(pipe, packets, pos, end, punted, label, first)
            elif pipe is not None and not pipe.static:
                for i in range(pos, end):  # the model ahead of the executor, to the next punt
                    if _at(i, label, pipe.process, packets[i], first=first):
                        punted[i] = 1
                        if not pipe.ahead:
                            end = i + 1
                            break
            if end - pos < SHORT:  # a batch call costs more than a few packets with traces
                from ebpf.executor import Executor

                cols, pc = _at(pos, label, Executor.run_batch_paths, ex, packets[pos:end],
                               arrival[pos:end], span=end, first=first)
            else:
                cols, pc = _at(pos, label, ex.run_batch_paths, packets[pos:end],
                               arrival[pos:end], span=end, first=first)
            if pipe is not None and not pipe.static:
                if pipe.ahead:
                    pipe.check_unchanged()
                elif punted[end - 1] == 1:
                    pipe.after_host()
            local = np.array([ids.setdefault(pt, len(ids))
                              for pt in zip(pc.paths, pc.tail_calls, strict=True)],
                             dtype=np.int32)
            new = [k for k in range(len(pc.paths)) if local[k] >= len(path_list)]
            path_list.extend(pc.paths[k] for k in new)
            tail_list.extend(pc.tail_calls[k] for k in new)
            verdict[pos:end] = cols.verdict
            path_id[pos:end] = local[pc.path_id]
            steps[pos:end] = pc.steps
            if advance is not None:
                advance(end - pos)
            pos = end
        self._cols.append((verdict, path_id, steps, punted))
        self.n += n

    def result(self, packets: list[bytes], paths: bool,
               label_of: Callable[[int], str]) -> BatchResult:
        """Every packet run so far classed as ``run_behaviour`` classes them (``packets``:
        the whole stream's, at least ``self.n``)."""
        from ebpf.vm.xdp import VERDICT_NAMES

        n, path_list, ex = self.n, self.path_list, self.ex
        verdict, path_id, steps, punted = (
            np.concatenate([c[k] for c in self._cols]) if self._cols else
            np.zeros(0, dtype=np.int64) for k in range(4))
        # one cost per distinct path, checked against every packet's instruction count
        _ids, first_of_path = np.unique(path_id, return_index=True)
        path_cost: list[TraceCost] = []
        path_traces: list[Any] = []
        for j, p in enumerate(path_list):
            i = int(first_of_path[j])
            trace = path_trace(self.obj, ex.program, p, int(steps[i]),
                               tail_calls=self.tail_list[j])
            path_traces.append(trace)
            path_cost.append(TraceCost.from_trace(trace))
        expected = np.array([c.insns for c in path_cost], dtype=np.int64)
        if n and not np.array_equal(expected[path_id], steps):
            bad = int(np.flatnonzero(expected[path_id] != steps)[0])
            from ebpf.errors import VmError

            raise VmError(f"packet {bad}: {steps[bad]} instructions on a path of "
                          f"{expected[path_id[bad]]}")
        # classes in order of first appearance, keyed as the packet-by-packet loop keys them
        _v, vcode = np.unique(verdict, return_inverse=True)
        combo = (vcode.reshape(-1).astype(np.uint64) << np.uint64(34)) | \
            (path_id.astype(np.uint64) << np.uint64(2)) | punted.astype(np.uint64)
        uniq, first, inverse = np.unique(combo, return_index=True, return_inverse=True)
        klass_of_combo = np.empty(len(uniq), dtype=np.int32)
        keys: dict[Any, int] = {}
        out = BatchResult(np.empty(n, dtype=np.int32), [], [], [], [], [], [])
        for u in np.argsort(first, kind="stable").tolist():
            i = int(first[u])
            v, j, pv = int(verdict[i]), int(path_id[i]), int(punted[i])
            tc = replace(path_cost[j], punted=None if pv == 2 else bool(pv))
            key: Any = (v, tc)
            if paths:
                key = (*key, path_list[j], tuple(t[3] for t in self.tail_list[j]))
            k = keys.get(key)
            if k is None:
                k = keys[key] = len(out.verdicts)
                out.verdicts.append(v)
                out.costs.append(tc)
                out.firsts.append(packets[i])
                out.traces.append(replace(path_traces[j], verdict=v, helper_calls=list(
                    path_traces[j].helper_calls), tail_calls=list(path_traces[j].tail_calls)))
                name = VERDICT_NAMES.get(v, f"unknown({v})")
                out.labels.append(f"{name} like packet {i} ({label_of(i)})")
            klass_of_combo[u] = k
        out.klass[:] = klass_of_combo[inverse.reshape(-1)]
        out.counts = np.bincount(out.klass, minlength=len(out.verdicts)).tolist()
        return out


def run_batched(ex: Any, obj: Any, packets: list[bytes], arrival: Any,
                pipe: Any, paths: bool, label_of: Callable[[int], str],
                advance: Callable[[int], None] | None = None) -> BatchResult:
    """Every packet through ``ex`` (an executor with ``run_batch_paths``) in order, the
    punts from ``pipe`` (``sim.mapping.PipelinePunts``, or None: no mapping), classed as
    ``run_behaviour`` classes them; ``arrival[i]``: packet i's time, ns (an int64 array
    or a sequence); ``label_of(i)`` names packet i's template."""
    run = BatchRun(ex, obj, pipe)
    run.run(packets, arrival, label_of, advance)
    return run.result(packets, paths, label_of)


def batches(ex: Any) -> bool:
    """Whether ``ex`` runs a stream in batches with per-packet paths (the compiled
    executor; a program that tail-calls too)."""
    return ex.name == "compiled"


def behaviour_batched(sc: Any, traffic: Any, ex: Any, pipe: Any, paths: bool,
                      stateless: bool, run: BatchRun | None = None) -> Any:
    """``sim.scenario.run_behaviour``'s ``Behaviour`` of ``traffic`` on ``ex`` by a
    ``BatchRun`` (a progress bar on long runs; errors name the program). ``run``: go on
    with it (``sim.resume``): its packets are the first of ``traffic``, only the others
    run."""
    from ebpf.errors import EbpfError
    from hw.errors import HwError
    from sim.metrics import progress_bar
    from sim.scenario import Behaviour

    if run is None or run.n == 0:
        if pipe is not None:
            pipe.allow_ahead(ex.obj, ex.obj.get_program(ex.program))
        run = run if run is not None else BatchRun(ex, ex.obj, pipe)
    reps, rep = traffic.reps, traffic.rep.tolist()
    packets = [reps[r] for r in rep]
    labels = traffic.rep_labels
    start = run.n
    try:
        with progress_bar(len(packets) - start, f"{ex.name} executor") as advance:
            run.run(packets[start:], traffic.arrival_ns[start:], lambda i: labels[rep[i]],
                    advance)
        got = run.result(packets, paths, lambda i: labels[rep[i]])
    except (EbpfError, HwError) as exc:  # (run_batched names the packet)
        raise type(exc)(f"{sc.program}: {exc}") from exc
    return Behaviour(ex.program, ex.name, ex.clock, got.klass, got.verdicts, got.costs,
                     got.firsts, got.labels, got.counts, stateless, got.traces, ex.obj)


def behaviour_one_by_one(sc: Any, traffic: Any, ex: Any, pipe: Any, paths: bool,
                         sampled: bool, stateless: bool) -> Any:
    """``sim.scenario.run_behaviour``'s ``Behaviour`` of ``traffic`` on ``ex`` one packet
    at a time, each with its trace (the VM; the kernel, whose classes go by verdict and
    length): the model (``pipe``)
    decides a packet's punt before it runs, ``after_host`` follows a punted one. ``sampled``:
    only each distinct packet's first occurrence runs, the later ones take its class."""
    from ebpf.errors import EbpfError
    from hw.errors import HwError
    from sim.scenario import Behaviour

    n = traffic.num_packets
    klass = np.empty(n, dtype=np.int32)
    keys: dict[Any, int] = {}
    verdicts: list[int] = []
    costs: list[TraceCost] = []
    firsts: list[bytes] = []
    labels: list[str] = []
    counts: list[int] = []
    traces: list[Any] = []
    reps, rep = traffic.reps, traffic.rep.tolist()
    arrival = traffic.arrival_ns.tolist()
    template_class: dict[int, int] = {}
    for i in range(n):
        if sampled and rep[i] in template_class:
            k = template_class[rep[i]]
            counts[k] += 1
            klass[i] = k
            continue
        packet = reps[rep[i]]
        try:
            punted = pipe.process(packet) if pipe is not None else None
            res = ex.run(packet, arrival[i])
            if punted:
                assert pipe is not None
                pipe.after_host()
        except (EbpfError, HwError) as exc:
            raise type(exc)(f"{sc.program}: packet {i} ({traffic.rep_labels[rep[i]]}): "
                            f"{exc}") from exc
        if res.trace is not None:
            tc = replace(TraceCost.from_trace(res.trace), punted=punted)
            key: Any = (res.verdict, tc)
            if paths:
                key = (*key, tuple(res.trace.path),
                       tuple(t.target for t in res.trace.tail_calls))
        else:
            tc = TraceCost(insns=0, map_helpers=0, helpers=0, punted=punted)
            key = (res.verdict, len(packet), punted)
        k = keys.get(key)
        if k is None:
            k = keys[key] = len(verdicts)
            verdicts.append(int(res.verdict))
            costs.append(tc)
            firsts.append(packet)
            traces.append(res.trace)
            labels.append(f"{res.verdict_name} like packet {i} "
                          f"({traffic.rep_labels[rep[i]]})")
            counts.append(0)
        counts[k] += 1
        klass[i] = k
        template_class[rep[i]] = k
    return Behaviour(ex.program, ex.name, ex.clock, klass, verdicts, costs, firsts, labels,
                     counts, stateless, traces, ex.obj)
