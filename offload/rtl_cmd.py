"""`offload rtl`: co-simulate one program on the pipeline target's RTL (Icarus + cocotb).

    offload rtl PROG.o [--program NAME] [--target pipe] [--packets N] [--seed S] [--json]
                [--scenario FILE] [--workdir DIR] [--results DIR] [--waves]

Maps the program, loads its scenario into the tables and registers, runs the trace through
``pipe_top`` and prints the regression's row: packets, mismatches, cycles per packet,
initiation interval, Mpps at the target clock against 100 Gb/s of 64-byte frames
(``offload.cosim``). ``--json`` prints ``CosimResult.to_dict()`` (keys ``packets,
mismatches, cycles_per_packet, ii, mpps`` and the details). Exit status 0 when the RTL, the
pipeline model, the timing model and the VM agree, 1 when they differ, 2 on bad input
(an object that does not load, a target without RTL, a program that does not map).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

from ebpf.display import markup, printable
from offload import cli_args
from offload.cleanup import Janitor
from offload.console import print_json, table_console
from offload.cosim import (
    DEFAULT_BACKPRESSURE,
    DEFAULT_IDLE,
    DEFAULT_PACKETS,
    DEFAULT_SEED,
    ROW_HEADER,
    CosimResult,
    row,
)


def render(result: CosimResult, kept: bool = True) -> None:
    """The result as text; ``kept``: the work directory is still there to point at."""
    from rich.table import Table

    console = table_console(140)
    table = Table(title=f"RTL co-simulation on {markup(result.target)} ({result.verdict}: "
                        f"{result.stages} stages, {result.passes} pass(es), "
                        f"{result.clock_mhz:g} MHz)")
    for col in ROW_HEADER:
        table.add_column(col, justify="left" if col in ("program", "result") else "right")
    table.add_row(*(markup(c) for c in row(result)))
    console.print(table)
    console.print(f"  outputs: {result.output_mismatches} differ, registers and table words: "
                  f"{result.state_mismatches} differ, {result.punted} punted, "
                  f"{result.table_hits} hit a table entry; cycles "
                  f"per packet {result.cycles_per_packet:.1f} (model "
                  f"{result.model_cycles_per_packet:.1f}), II {result.ii:.3f} (model "
                  f"{result.model_ii:.3f}), {result.timing_mismatches} timing differences",
                  soft_wrap=True)
    console.print(f"  VM (kernel semantics), {result.vm_packets} packets: "
                  + ("[green]equivalent[/green]" if result.vm_equivalence == "ok"
                     else f"[red]{markup(result.vm_equivalence)} [/red]"))
    for d in result.differences[:10]:
        console.print(f"  [red]difference[/red]: {markup(d)}")
    if kept:
        console.print(f"  work directory: {markup(result.workdir)} (sim.log, images, build"
                      f"{', waveform' if result.waves else ''}); {result.wall_s:.1f} s")
    else:
        console.print(f"  work directory removed (--workdir DIR keeps sim.log, images and "
                      f"build); {result.wall_s:.1f} s")


def cmd_rtl(args: argparse.Namespace) -> int:
    from rich.console import Console

    from offload.cosim import prepare, simulate, write_result
    from offload.inspect import note_default_program

    err = Console(file=sys.stderr, highlight=False, emoji=False)
    # Without --workdir (or --waves, whose waveform is the point) the images, build and log
    # (~22 MB) go to a temporary folder that is removed however the command ends (Janitor:
    # also on SIGKILL); --workdir keeps them.
    kept = args.workdir is not None or bool(args.waves)
    temp = None if kept else Path(tempfile.mkdtemp(prefix="cosim-"))
    with Janitor([temp]) if temp is not None else nullcontext():
        with err.status(f"mapping {markup(args.program_file)} onto {markup(args.target)}",
                        spinner="dots"):
            job = prepare(args.program_file, args.program, target=args.target,
                          packets=args.packets, seed=args.seed, scenario=args.scenario,
                          workdir=args.workdir or temp, idle=args.idle,
                          backpressure=args.backpressure)
        with err.status(f"simulating {markup(job.report.program)} under Icarus: "
                        f"{args.packets} packets + {min(job.timed, args.packets)} timed",
                        spinner="dots"):
            result = simulate(job, waves=args.waves or None, quiet=True)
    # after the work: a bad input stays one line (the error), a good one gets the note
    note_default_program(args.program_file, args.program)
    if not result.ok:
        where = f"kept in {printable(job.workdir)}" if kept else \
            "removed; run again with --workdir DIR to keep it"
        err.print(f"work folder (images, build, sim.log) {where}", soft_wrap=True,
                  markup=False)
    if args.results:
        write_result(result, args.results)
    if args.json:
        print_json(result.to_dict(), indent=2)
    else:
        render(result, kept=kept)
    return 0 if result.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``offload rtl PROG.o --target pipe [--packets N] [--seed S] [--json]``."""
    p = sub.add_parser("rtl", help="co-simulate a program on the pipeline RTL (Icarus): "
                                   "mismatches, cycles per packet, II, Mpps",
                       description="Map an XDP program, load its scenario into the tables "
                                   "and registers, and run a packet trace through the "
                                   "pipe target's Verilog under Icarus: every output, the "
                                   "final state and the cycle counts against the pipeline "
                                   "model, and the model against the VM.")
    p.add_argument("program_file", metavar="PROG.o")
    p.add_argument("--program", metavar="NAME", help="program in the object (default: the first XDP program)")
    p.add_argument("--target", default="pipe", help="a pipeline target (default: pipe)")
    p.add_argument("--packets", type=cli_args.vm_packets, default=DEFAULT_PACKETS, metavar="N",
                   help=f"trace packets (random_packets(N, seed); default {DEFAULT_PACKETS})")
    p.add_argument("--seed", type=cli_args.seed, default=DEFAULT_SEED, metavar="S",
                   help=f"seed of the trace, idle cycles and back-pressure (default "
                        f"{DEFAULT_SEED})")
    p.add_argument("--idle", type=cli_args.probability, default=DEFAULT_IDLE, metavar="P",
                   help=f"probability of an idle input cycle (default {DEFAULT_IDLE})")
    p.add_argument("--backpressure", type=cli_args.probability, default=DEFAULT_BACKPRESSURE,
                   metavar="P", help="probability of a cycle without output ready (default "
                                     f"{DEFAULT_BACKPRESSURE})")
    p.add_argument("--scenario", metavar="FILE",
                   help="map state (default: examples/xdp/scenarios/<stem>.json)")
    p.add_argument("--workdir", metavar="DIR",
                   help="keep the images, build, log and waveform here (default: a new "
                        "temporary folder)")
    p.add_argument("--results", metavar="DIR",
                   help="also write DIR/<object stem>.<program>.json (what make report reads)")
    p.add_argument("--waves", action="store_true", help="dump an FST waveform (build/)")
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.set_defaults(func=cmd_rtl)
