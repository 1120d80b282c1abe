"""The system regression: every corpus program that maps, co-simulated on the RTL.

    python -m offload.regression [OBJ.o ...] [--packets N] [--seed S] [--jobs J]
        [--results DIR] [--junit FILE] [--summary FILE] [--reuse] [--target T]
        [--max-backpressure P]

For each program of each object (default: build/xdp/*.o) ``offload.cosim.cosim`` maps
it, loads its scenario and runs the trace through pipe_top under a random stimulus drawn
from the seed (``stimulus``: idle up to 0.5, back-pressure up to ``--max-backpressure``,
default 0.99); programs the mapper keeps on the host are listed, not simulated. The
report's results (``make rtl-results``) bound the back-pressure (``REPORT_BACKPRESSURE``):
the simulated cycles grow as 1 / (1 - back-pressure), so the full range stays in
``make regression``. Work runs in ``--jobs`` processes (default: the CPUs,
at most 2: Icarus is single-threaded). Each result goes to ``DIR/<stem>.<program>.json``
(what ``offload report --rtl-results DIR`` reads); ``--reuse`` keeps a result that is newer
than its object and every RTL source. The summary table (program, packets, mismatches,
cycles per packet, II, Mpps against 148.8 Mpps) is printed and written as Markdown, the
JUnit XML has one test case per co-simulated program. Exit status 1 when any differs.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ebpf.display import file_part, markup, printable
from offload import cli_args
from offload.cli_args import OneLineParser
from offload.cosim import DEFAULT_SEED, ROW_HEADER, row
from rtl_models.errors import CosimError, RtlError
from rtl_models.runner import ROOT, build_root, sources

DEFAULT_PACKETS = 200
MAX_BACKPRESSURE = 0.99
# modelling choice: the report's co-simulations draw back-pressure up to 0.5, so a
# program's random-stimulus phase waits at most 2 x 2 = 4 times its cycle bound (idle up
# to 0.5 too) instead of up to 200 times; the full range stays in `make regression`.
REPORT_BACKPRESSURE = 0.5


def programs(objects: list[Path]) -> list[tuple[Path, str]]:
    from ebpf.loader.elf import load

    return [(o, p.name) for o in objects for p in load(o).programs]


def _fresh(result: Path, obj: Path) -> bool:
    if not result.exists():
        return False
    newest = max([obj.stat().st_mtime] + [p.stat().st_mtime for p in sources()])
    return result.stat().st_mtime > newest


def stimulus(seed: int, stem: str, program: str,
             max_backpressure: float = MAX_BACKPRESSURE) -> tuple[float, float]:
    """(idle, back-pressure) of one program's run: drawn from the run's seed and the
    program's name, so that a regression covers the whole range (back-pressure up to
    ``max_backpressure``, 0.99 by default; idle up to 0.5: modelling choice) and the same
    seed repeats the same draws (a lower bound scales the same draw down)."""
    rng = random.Random(f"{seed}:{stem}:{program}")
    return round(rng.uniform(0.0, 0.5), 2), round(rng.uniform(0.0, max_backpressure), 2)


def longest_first(todo: list[tuple[Path, str]], options: dict[str, Any]
                  ) -> list[tuple[Path, str]]:
    """``todo`` with the co-simulations expected to take longest first, so that the last
    ones to finish are short and no worker waits long for another (longest processing time
    first). A run's random-stimulus phase waits 1 / ((1 - idle)(1 - back-pressure)) times
    its cycle bound on average (see ``stimulus``): that factor orders them; ties keep the
    given order."""
    def factor(item: tuple[Path, str]) -> float:
        idle, bp = stimulus(options["seed"], item[0].stem, item[1],
                            options.get("max_backpressure", MAX_BACKPRESSURE))
        return 1.0 / ((1.0 - idle) * (1.0 - bp))
    return sorted(todo, key=factor, reverse=True)


def _run_one(obj: str, program: str, options: dict[str, Any]) -> dict[str, Any]:
    """One co-simulation in a worker: the result document, or why there is none."""
    from offload.cosim import cosim, write_result

    work = Path(options["workdir"]) / f"{Path(obj).stem}.{program}"
    idle, backpressure = stimulus(options["seed"], Path(obj).stem, program,
                                  options.get("max_backpressure", MAX_BACKPRESSURE))
    try:
        r = cosim(obj, program, target=options["target"], packets=options["packets"],
                  seed=options["seed"], workdir=work, quiet=True, idle=idle,
                  backpressure=backpressure)
    except CosimError as exc:
        return {"object": obj, "program": program, "refused": str(exc)}
    except RtlError as exc:
        return {"object": obj, "program": program, "error": str(exc)}
    write_result(r, options["results"])
    return r.to_dict()


def _outcomes(todo: list[tuple[Path, str]], options: dict[str, Any], jobs: int,
              scheduler: str | None) -> Iterator[dict[str, Any]]:
    """Each co-simulation's document as it finishes: in ``jobs`` local processes, or as
    tasks on a Dask ``scheduler`` (the engine of ``offload sweep``)."""
    if scheduler:
        from offload.sweep.engine import dask_client, run_all

        items = [(str(o), p, options) for o, p in todo]
        keys = [f"rtl-{os.getpid()}-{i}-{file_part(f'{o.stem}.{p}')}"
                for i, (o, p) in enumerate(todo)]
        with dask_client(scheduler) as client:
            for outcome in run_all(client, _run_one, items, keys):
                obj, prog = todo[outcome.index]
                yield outcome.result if outcome.error is None else {
                    "object": str(obj), "program": prog, "error": outcome.error}
        return
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_run_one, str(o), p, options): (o, p) for o, p in todo}
        for f in as_completed(futures):
            yield f.result()


def run(jobs_list: list[tuple[Path, str]], *, options: dict[str, Any], jobs: int,
        reuse: bool, scheduler: str | None = None) -> list[dict[str, Any]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    results: list[dict[str, Any]] = []
    todo = []
    for obj, prog in jobs_list:
        saved = Path(options["results"]) / f"{file_part(f'{obj.stem}.{prog}')}.json"
        if reuse and _fresh(saved, obj):
            results.append(json.loads(saved.read_text()) | {"reused": True})
        else:
            todo.append((obj, prog))
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(),
                  console=_console(sys.stderr), transient=False) as bar:
        task = bar.add_task("RTL co-simulation", total=len(todo))
        for doc in _outcomes(longest_first(todo, options), options, jobs, scheduler):
            results.append(doc)
            bar.update(task, advance=1, description="RTL co-simulation: " + markup(
                f"{Path(doc['object']).stem}:{doc['program']} {_status(doc)}"))
    order = {(str(o), p): i for i, (o, p) in enumerate(jobs_list)}
    return sorted(results, key=lambda d: order.get((str(d["object"]), d["program"]), 0))


def _status(doc: dict[str, Any]) -> str:
    if "refused" in doc:
        return "host-only"
    if "error" in doc:
        return "ERROR"
    return "pass" if doc["ok"] else "FAIL"


def _console(file: Any) -> Any:
    from rich.console import Console

    console = Console(file=file, highlight=False, emoji=False)
    if not console.is_terminal:
        console.width = 150
    return console


def table_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for d in results:
        if "packets" in d:
            out.append(row(d))
        else:
            why = d.get("refused") or d.get("error", "")
            out.append([printable(f"{Path(d['object']).stem}:{d['program']}"), "-", "-", "-",
                        "-", "-", "-",
                        ("host-only" if "refused" in d else "ERROR: " + printable(why)[:60])])
    return out


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(ROW_HEADER) + " |", "|" + "---|" * len(ROW_HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(results)]
    return "\n".join(lines) + "\n"


def print_table(results: list[dict[str, Any]], file: Any = None) -> None:
    from rich.table import Table

    table = Table(title="RTL system regression (pipe_top under Icarus)")
    for col in ROW_HEADER:
        table.add_column(col, justify="left" if col in ("program", "result") else "right")
    for r in table_rows(results):
        style = "red" if r[-1] not in ("pass", "host-only") else None
        table.add_row(*(markup(c) for c in r), style=style)
    _console(file or sys.stdout).print(table)


def junit(results: list[dict[str, Any]], path: Path) -> None:
    """One test case per co-simulated program (host-only programs are not test cases)."""
    cases = [d for d in results if "refused" not in d]
    suite = ET.Element("testsuite", name="rtl-system", tests=str(len(cases)),
                       failures=str(sum(1 for d in cases if "packets" in d and not d["ok"])),
                       errors=str(sum(1 for d in cases if "error" in d)))
    for d in cases:
        case = ET.SubElement(suite, "testcase", classname="offload.regression",
                             name=printable(f"{Path(d['object']).stem}:{d['program']}"),
                             time=f"{d.get('wall_s', 0):.2f}")
        if "error" in d:
            error = printable(d["error"])  # XML 1.0 cannot hold control characters
            ET.SubElement(case, "error", message=error[:200]).text = error
        elif not d["ok"]:
            diffs = [printable(x) for x in d["differences"]] or ["differs"]
            ET.SubElement(case, "failure", message=diffs[0][:200]).text = "\n".join(diffs)
        ET.SubElement(case, "system-out").text = json.dumps(
            {k: d.get(k) for k in ("packets", "mismatches", "cycles_per_packet", "ii",
                                   "mpps", "vm_equivalence", "workdir")})
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m offload.regression",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("objects", nargs="*", metavar="OBJ.o",
                   help="BPF objects (default: build/xdp/*.o)")
    p.add_argument("--program", action="append", metavar="NAME",
                   help="only these programs (repeatable)")
    p.add_argument("--target", default="pipe")
    p.add_argument("--packets", type=cli_args.vm_packets, default=DEFAULT_PACKETS, metavar="N")
    p.add_argument("--seed", type=cli_args.seed, default=DEFAULT_SEED, metavar="S")
    p.add_argument("--jobs", type=cli_args.jobs, default=min(2, os.cpu_count() or 1),
                   metavar="J")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the co-simulations as tasks on a running dask.distributed "
                        "scheduler (tcp://HOST:8786), the engine of offload sweep "
                        "(default: --jobs local processes)")
    p.add_argument("--results", default=str(build_root() / "results"), metavar="DIR")
    p.add_argument("--junit", default=str(build_root() / "junit-system.xml"), metavar="FILE")
    p.add_argument("--summary", default=str(build_root() / "summary.md"), metavar="FILE")
    p.add_argument("--max-backpressure", type=cli_args.float_range(0.0, MAX_BACKPRESSURE, lo_open=False), default=MAX_BACKPRESSURE,
                   metavar="P", help="draw each program's back-pressure from 0..P "
                                     f"(default {MAX_BACKPRESSURE}; make rtl-results, for the "
                                     f"report: {REPORT_BACKPRESSURE})")
    p.add_argument("--reuse", action="store_true",
                   help="keep results newer than their object and the RTL sources")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed on one line
        return exc.code if isinstance(exc.code, int) else 2
    objects = [Path(o) for o in args.objects] or sorted((ROOT / "build" / "xdp").glob("*.o"))
    if not objects:
        print("offload.regression: no objects (run make corpus)", file=sys.stderr)
        return 2
    from ebpf.errors import EbpfError

    try:
        todo = [(o, prog) for o, prog in programs(objects)
                if not args.program or prog in args.program]
    except (EbpfError, OSError) as exc:  # a broken or missing object: one line
        print(f"offload.regression: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    options = {"target": args.target, "packets": args.packets, "seed": args.seed,
               "results": args.results, "workdir": str(build_root() / "system"),
               "max_backpressure": args.max_backpressure}
    results = run(todo, options=options, jobs=args.jobs, reuse=args.reuse,
                  scheduler=args.scheduler)
    print_table(results)
    Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
    Path(args.summary).write_text(markdown(results))
    junit(results, Path(args.junit))
    engine = (f"dask scheduler {args.scheduler}" if args.scheduler
              else f"{args.jobs} local processes")
    bad = [d for d in results if "error" in d or ("packets" in d and not d["ok"])]
    done = [d for d in results if "packets" in d]
    print(f"{len(done)} programs co-simulated ({sum(d['packets'] for d in done)} packets), "
          f"{len(results) - len(done) - sum('error' in d for d in results)} host-only, "
          f"{len(bad)} failed; {time.perf_counter() - started:.0f} s on {engine}. "
          f"Results: {args.results}, "
          f"JUnit: {args.junit}, summary: {args.summary}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
