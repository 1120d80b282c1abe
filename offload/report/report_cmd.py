"""`offload report`: the offload feasibility report of XDP objects, as HTML, JSON and Markdown.

``offload report PROG.o [PROG.o ...] -o DIR [--target T ...] [--maps-dir DIR]
[--rtl-results DIR] [--packets N|steady] [--sizes 64,128,...] [--latency-traffic SPEC] [--seed S]
[--jobs N] [--no-sim]``

Every input is checked first (``offload.report.collect.plan``): an unknown target, a broken
ELF, a bad map state or RTL result, an output folder that cannot be written are one line and
exit status 2, before any slow work. The report is written into a temporary folder next to
``DIR`` and renamed into place at the end, so ``DIR`` is either the whole new report or
untouched. An existing ``DIR`` is replaced only when it is empty or holds a previous report
(``report.json``). Programs are gathered in ``--jobs`` worker processes (``default_jobs``),
heaviest first (``submission_order``); a rich progress bar on stderr counts the steps when
stderr is a terminal.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import queue
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ebpf.display import file_part, markup, printable
from offload import cli_args
from offload.cleanup import Janitor, die_with_parent
from offload.report.collect import (
    Plan,
    ReportError,
    ReportOptions,
    collect_program,
    finish_document,
    new_document,
    plan,
)
from offload.report.simulate import DEFAULT_LATENCY_TRAFFIC, DEFAULT_SIZES
from offload.report.source import display_name, display_path

REPORT_MARKER = "report.json"


# --- the output folder -------------------------------------------------------------------

def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ReportError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / REPORT_MARKER).exists():
        raise ReportError(f"{target}: folder is not empty and holds no previous report "
                          f"({REPORT_MARKER}); choose another output folder")


def prepare_output(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Fresh temporary folders next to ``out``: (the new report, a place for the old one);
    ``ReportError`` when that is impossible or ``out`` is something the report must not
    replace. Both get the user's umask."""
    target = Path(out)
    _check_target(target)
    parent = target.resolve().parent
    if not parent.is_dir():
        raise ReportError(f"{target}: parent folder {parent} does not exist")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
    except OSError as exc:
        raise ReportError(f"{target}: cannot write in {parent}: "
                          f"{exc.strerror or exc}") from exc
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp, old


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive flock on ``folder`` itself: two reports into one place take turns at
    the swap instead of racing between its check and its renames."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def commit_output(tmp: Path, out: str | os.PathLike[str], old: Path) -> None:
    """Put the finished report in place of ``out`` (two renames, under the parent folder's
    lock; the old report goes to ``old`` and is removed). A writer that finds ``out``
    replaced by something that is not a report fails with ReportError; otherwise the last
    writer's report stays, as if they had run one after the other."""
    target = Path(out)
    with _locked(tmp.parent):
        _check_target(target)
        if target.exists():
            os.rename(target, old / "report")
        try:
            os.rename(tmp, target)
        except OSError:
            if (old / "report").exists():
                os.rename(old / "report", target)
            raise
    shutil.rmtree(old, ignore_errors=True)


# --- gathering, in worker processes ------------------------------------------------------

_QUEUE: Any = None


def _init_worker(q: Any, parent_pid: int) -> None:
    global _QUEUE  # one per worker process, set once by its initializer
    _QUEUE = q
    die_with_parent(parent_pid)
    q.put(("worker", os.getpid()))  # so that the parent can stop it (see gather)


def _worker(spec: Any, plan_: Plan, permitted: tuple[bool, str]) -> dict[str, Any]:
    def step(msg: str) -> None:
        if _QUEUE is not None:
            _QUEUE.put(msg)
    return collect_program(spec, plan_, permitted=permitted, step=step)


def _remote(spec: Any, plan_: Plan, permitted: tuple[bool, str]) -> dict[str, Any]:
    """One program on a Dask worker (no progress queue there: the bar moves per program)."""
    return collect_program(spec, plan_, permitted=permitted)


def _gather_dask(plan_: Plan, doc: dict[str, Any], permitted: tuple[bool, str],
                 scheduler: str, step: Callable[[str], None]) -> dict[str, Any]:
    """Every program as a task on the Dask scheduler (``offload.sweep.engine``)."""
    from offload.sweep.engine import dask_client, run_all

    results: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    items = [(s, plan_, permitted) for s in plan_.programs]
    keys = [f"report-{os.getpid()}-{i}-{file_part(s.id)}" for i, s in enumerate(plan_.programs)]
    with dask_client(scheduler) as client:
        for outcome in run_all(client, _remote, items, keys):
            spec = plan_.programs[outcome.index]
            if outcome.error is None:
                results[spec.id] = outcome.result
            else:
                failed[spec.id] = outcome.error
            for _ in range(plan_.steps_per_program()):
                step(f"{spec.program}: done")
    return _finish(doc, plan_, results, failed)


def gather(plan_: Plan, *, jobs: int = 1, progress: Callable[[str], None] | None = None,
           scheduler: str | None = None) -> dict[str, Any]:
    """The whole document: every program of the plan, in ``jobs`` processes (1: here), or
    as tasks on a Dask ``scheduler`` (the engine ``offload sweep`` uses)."""
    from ebpf.kernel.load import bpf_permitted

    permitted = bpf_permitted()
    doc = new_document(plan_, permitted)
    step = progress or (lambda _msg: None)
    doc["engine"] = engine_text(jobs, scheduler, len(plan_.programs))
    if scheduler:
        return _gather_dask(plan_, doc, permitted, scheduler, step)
    results: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    if jobs <= 1 or len(plan_.programs) <= 1:
        for s in plan_.programs:
            try:
                results[s.id] = collect_program(s, plan_, permitted=permitted, step=step)
            except Exception as exc:  # MemoryError included: the row says why
                failed[s.id] = _failure(exc)
        return _finish(doc, plan_, results, failed)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # fork: the workers inherit the imported modules; ProcessPoolExecutor forks all of
    # them at the first submit, before the progress bar starts its refresh thread.
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    workers: set[int] = set()
    broken: list[Any] = []

    def new_pool(size: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=size, mp_context=ctx,
                                   initializer=_init_worker, initargs=(q, os.getpid()))

    pool = new_pool(jobs)
    try:
        futures = {pool.submit(_worker, s, plan_, permitted): s
                   for s in submission_order(plan_.programs)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.1)
            _drain(q, step, workers)
            for f in done:
                try:
                    results[futures[f].id] = f.result()
                except BrokenProcessPool:
                    broken.append(futures[f])
                except Exception as exc:  # MemoryError included: the row says why
                    failed[futures[f].id] = _failure(exc)
        _drain(q, step, workers)
        pool.shutdown()
        # A dead worker breaks the whole pool and every program still in it: each of
        # those runs again alone, so only the one that kills its worker fails.
        for s in broken:
            pool = new_pool(1)
            try:
                results[s.id] = pool.submit(_worker, s, plan_, permitted).result()
            except Exception as exc:  # BrokenProcessPool or the program's error
                failed[s.id] = _failure(exc)
            pool.shutdown()
            _drain(q, step, workers)
    except BaseException:
        # interrupted or terminated: stop the workers now rather than wait for their
        # programs (they also die with us: die_with_parent)
        _drain(q, step, workers)
        pool.shutdown(wait=False, cancel_futures=True)
        for pid in workers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise
    return _finish(doc, plan_, results, failed)


def submission_order(specs: list[Any]) -> list[Any]:
    """The programs heaviest first, so that the workers end together (longest processing
    time first): a program that keeps state (maps or helper calls) runs every simulated
    packet, the others each distinct packet once; then more instructions first, then the
    plan's order. The document keeps the plan's order whatever the order of work."""
    from ebpf.loader.elf import load

    def weight(k: int) -> tuple[bool, int, int]:
        obj = load(specs[k].path)
        prog = obj.get_xdp_program(specs[k].program)
        stateful = bool(obj.maps) or any(p.helper_ids() for p in obj.programs)
        return (not stateful, -len(prog.insns), k)
    return [specs[k] for k in sorted(range(len(specs)), key=weight)]


def _failure(exc: BaseException) -> str:
    """One line for a program whose gathering failed: the exception's first line."""
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(exc, BrokenProcessPool):
        return ("its worker process died (killed, e.g. out of memory, or a crash) "
                "before it finished")
    if isinstance(exc, MemoryError):
        return "out of memory while gathering it (MemoryError)"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _finish(doc: dict[str, Any], plan_: Plan, results: dict[str, dict[str, Any]],
            failed: dict[str, str]) -> dict[str, Any]:
    """The document with every program gathered, and one ``failed`` row (object, program,
    reason) per program whose gathering failed: one bad object does not lose the rest."""
    doc["programs"] = [results[s.id] for s in plan_.programs if s.id in results]
    doc["failed"] = [{"id": s.id, "name": display_name(s.path, s.program),
                      "object": display_path(s.path), "program": s.program,
                      "reason": failed[s.id]} for s in plan_.programs if s.id in failed]
    return finish_document(doc)




def _drain(q: Any, step: Callable[[str], None], workers: set[int]) -> None:
    while True:
        try:
            msg = q.get_nowait()
        except queue.Empty:
            return
        if isinstance(msg, tuple):
            workers.add(msg[1])
        else:
            step(msg)


# --- the command -------------------------------------------------------------------------

def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s.strip().removesuffix("B").removesuffix("b"))
                      for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frame sizes like 64,128,1518, got "
                                         f"{text!r}") from None
    if not sizes or any(s < 60 or s > 9018 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected frame sizes of 60..9018 bytes, got {text!r}")
    return tuple(sorted(set(sizes)))


STEADY = "steady"


def _run_packets(text: str) -> int | None:
    """``--packets``: a count, or ``steady`` for the simulator's steady-state run length."""
    if text.strip().lower() == STEADY:
        return None
    try:
        return cli_args.sim_packets(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (or {STEADY})") from None


_run_packets.__name__ = "packets"


def engine_text(jobs: int, scheduler: str | None, programs: int) -> str:
    """Where the programs were gathered, for the outputs that state it."""
    from offload.sweep.engine import describe

    if scheduler:
        return describe(scheduler, 0)
    if jobs <= 1 or programs <= 1:
        return "this process"
    return f"local process pool, {jobs} workers"


def default_jobs() -> int:
    """Two worker processes where there are two CPUs. Not more: most of the gathering time
    is BPF_PROG_TEST_RUN, which the kernel serialises (each call with repeat > 1 waits
    ~16 ms; two concurrent callers take 3x as long, measured on the development machine),
    so only the mapper, VM and simulator work overlaps."""
    return max(1, min(2, os.cpu_count() or 1))


def options_from_args(args: argparse.Namespace) -> ReportOptions:
    return ReportOptions(
        targets=tuple(args.target or ()), target_files=tuple(args.target_file or ()),
        packets=args.packets, sizes=args.sizes, latency_traffic=args.latency_traffic,
        trace_packets=args.trace_packets, host_packets=args.host_packets,
        host_repeat=args.host_repeat, seed=args.seed, maps_dir=args.maps_dir,
        rtl_results=args.rtl_results, simulate=not args.no_sim,
        mapper_time_limit_s=args.mapper_time_limit, executor=args.executor)


def run_report(objects: list[str], out: str, options: ReportOptions, *, jobs: int = 1,
               scheduler: str | None = None,
               show_progress: bool | None = None) -> dict[str, Any]:
    """Check the inputs, gather, write DIR atomically; the document."""
    from offload.report.render import write_report

    plan_ = plan(objects, options)
    tmp, old = prepare_output(out)
    # the watcher removes both folders even when we are killed (SIGKILL), and puts the
    # previous report back if the kill came between the two renames of the swap
    with Janitor([tmp, old], restore=(old / "report", Path(out).resolve())):
        with _progress(plan_.num_steps() + len(plan_.programs) + 1, show_progress) as advance:
            doc = gather(plan_, jobs=jobs, progress=advance, scheduler=scheduler)
            write_report(doc, tmp, step=advance)
        commit_output(tmp, out, old)
    return doc


class _progress:
    """A rich progress bar on stderr (when it is a terminal, or ``enabled``)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if not self.enabled:
            return lambda _msg: None
        from offload.console import progress_bar

        self.bar = progress_bar("report", "[dim]{task.description}", transient=True)
        task = self.bar.add_task("", total=self.total)
        started = False

        def advance(msg: str) -> None:
            nonlocal started
            if not started:  # lazily: worker processes fork before the refresh thread runs
                self.bar.start()
                started = True
            self.bar.update(task, advance=1, description=markup(printable(msg)[:60]))
        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def cmd_report(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    jobs = args.jobs if args.jobs is not None else default_jobs()
    doc = run_report(args.objects, args.output, options, jobs=jobs, scheduler=args.scheduler)
    rows = doc["comparison"]
    print(f"{printable(args.output)}: {len(doc['programs'])} programs x "
          f"{len(doc['targets'])} targets ({len(rows)} rows; engine: {doc['engine']}); "
          f"open {printable(os.path.join(args.output, 'index.html'))}",
          file=sys.stderr)
    for f in doc.get("failed", []):
        print(printable(f"{args.output}: {f['id']} failed ({f['object']}): {f['reason']}"),
              file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``offload report`` (see the module docstring)."""
    p = sub.add_parser(
        "report", help="offload feasibility report (HTML, JSON, Markdown) of XDP objects",
        description="Everything side by side, per program: feasibility on each target with "
                    "the source lines, the CFG with what stays on the NIC, stage map, cost "
                    "models, RTL results, host verifier/JIT/timing, simulation plots. "
                    "Schema: docs/report-schema.md.")
    p.add_argument("objects", nargs="+", metavar="PROG.o")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="output folder (written whole or not at all)")
    p.add_argument("--target", action="append", metavar="NAME|PATH",
                   help="target (repeatable; default: every known target; the host is "
                        "always added)")
    p.add_argument("--target-file", action="append", default=[], metavar="PATH",
                   help="extra target profile (.toml) or directory of profiles; repeatable")
    p.add_argument("--maps-dir", metavar="DIR",
                   help="map states: DIR/<object stem>.json for each object that has one "
                        "(e.g. examples/xdp/scenarios)")
    p.add_argument("--rtl-results", metavar="DIR",
                   help="RTL co-simulation results: DIR/<object stem>.<program>.json as "
                        "`offload rtl PROG.o --results DIR` writes them (else "
                        "DIR/<program>.json or DIR/<object stem>.json); at least packets, "
                        "mismatches, cycles_per_packet, ii, mpps")
    p.add_argument("--executor", choices=("auto", "compiled", "vm"),
                   default=ReportOptions.executor,
                   help="what runs every simulated packet: vm, compiled (native code, the "
                        "VM's results and paths), or auto (compiled where the program "
                        "compiles, else the VM where a cost model reads paths, else the "
                        "kernel's BPF_PROG_TEST_RUN; default). The kernel is not offered: "
                        "the NIC runs read per-packet paths")
    p.add_argument("--packets", type=_run_packets, default=ReportOptions.packets,
                   metavar=f"N|{STEADY}",
                   help=f"packets per simulation run, or {STEADY} (the default): the "
                        f"simulator's run length (at least 1.25 ms of traffic, warm-up left "
                        f"out, longer until the steady rate converges)")
    p.add_argument("--sizes", type=_sizes, default=DEFAULT_SIZES, metavar="LIST",
                   help="frame sizes of the throughput sweep (default "
                        f"{','.join(map(str, DEFAULT_SIZES))})")
    p.add_argument("--latency-traffic", default=DEFAULT_LATENCY_TRAFFIC, metavar="SPEC",
                   help="traffic of the latency CDF run (default "
                        f"{DEFAULT_LATENCY_TRAFFIC.replace('%', '%%')})")
    p.add_argument("--trace-packets", type=cli_args.vm_packets,
                   default=ReportOptions.trace_packets,
                   help="VM traces per program for the cost models and the punted fraction")
    p.add_argument("--host-packets", type=cli_args.vm_packets,
                   default=ReportOptions.host_packets,
                   help="packets timed with BPF_PROG_TEST_RUN per program")
    p.add_argument("--host-repeat", type=cli_args.test_run_repeat,
                   default=ReportOptions.host_repeat,
                   help="BPF_PROG_TEST_RUN repeat per packet")
    p.add_argument("--mapper-time-limit", type=cli_args.time_limit,
                   default=ReportOptions.mapper_time_limit_s,
                   metavar="S", help="CP-SAT time limit per program and pipeline target")
    p.add_argument("--seed", type=cli_args.seed, default=ReportOptions.seed)
    p.add_argument("--jobs", type=cli_args.jobs, default=None,
                   help="worker processes (default: 2, or 1 on one CPU; the kernel "
                        "serialises BPF_PROG_TEST_RUN, so more do not help)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="gather the programs as tasks on a running dask.distributed "
                        "scheduler (tcp://HOST:8786), the engine of offload sweep; its "
                        "workers must see the same files (default: --jobs local processes)")
    p.add_argument("--no-sim", action="store_true", help="skip the simulation runs")
    p.set_defaults(func=cmd_report)
