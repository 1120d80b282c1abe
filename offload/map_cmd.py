"""`offload map`: map a program onto a target, say how well, and write the configuration.

    offload map PROG.o --target T [--program NAME] [-o CONFIG.json] [--images DIR]
                       [--json] [--time-limit S] [--scenario FILE] [--no-equivalence]

Wired into the command line through ``register(sub)``. Bad input (unknown target, an object
or program that does not load) raises a ``MapperError``; the command line prints one line
and exits with status 2. A program that does not fit is not an error: the report says why.

``--json`` prints ``offload.mapper.MapReport.to_dict()``: ``verdict``, ``explanation``,
``reasons``, ``cuts``, ``stages`` (the schedule used), ``greedy_stages``, ``solver_stages``,
``recirculations``, ``punted_fraction``, ``equivalence``, ``resources`` (per stage and
totals against the target), ``cost`` (run-to-completion targets), ``messages``.
docs/mapping.md ("Reading a mapping report") explains each part.
"""

from __future__ import annotations

import argparse
from typing import Any

from ebpf.display import markup, printable
from offload import cli_args
from offload.console import print_json, print_verdict, reasons_table, table_console
from offload.errors import MapperError
from offload.mapper import DEFAULT_TIME_LIMIT_S, MapReport, map_program, write_config
from offload.targets_cmd import add_target_options


def render_map(report: MapReport, path: str) -> None:

    console = table_console()
    print_verdict(console, path, report.program, report.target, report.verdict,
                  report.explanation)
    if report.stages is not None:
        console.print(f"  stages: {report.stages} used (greedy {report.greedy_stages}, solver "
                      f"{report.solver_stages if report.solver_stages is not None else '-'} "
                      f"({report.solver_status})); {report.physical_stages} physical, "
                      f"{report.passes} pass(es), {report.recirculations} recirculation(s); "
                      f"{report.containers} containers, {report.predicates} predicates")
    if report.punted_fraction is not None:
        reasons = markup(", ".join(f"{k}: {v}" for k, v in report.punt_reasons.items()))
        console.print(f"  punted: {report.punted} of {report.packets} trace packets "
                      f"({100 * report.punted_fraction:.1f} %)" +
                      (f" by punt reason ({reasons})" if reasons else ""))
    if report.equivalence is not None:
        eq = report.equivalence
        console.print("  equivalence: " + ("[green]holds[/green]" if eq["ok"] else
                                           f"[red]failed[/red]: {markup(eq['failure'])}") +
                      f" ({eq['packets']} packets, verdicts {markup(eq['verdicts'])})")
    if report.cost is not None:
        c = report.cost
        console.print(f"  cost: {c['ns_per_packet']:.1f} ns/packet, {c['mpps_total']:.2f} Mpps "
                      f"on {c['units']} unit(s), bound by {markup(c['bound'])} ({markup(c['source'])})")
    for m in report.messages:
        console.print(f"  note: {markup(m)}")
    if report.schedule is not None and report.stages:
        from offload.schedule import resource_table
        console.print(resource_table(report.schedule))
    if report.reasons:
        console.print(reasons_table("Reasons", report.reasons))


def cmd_map(args: argparse.Namespace) -> int:
    if args.images and not args.output:
        raise MapperError("--images DIR writes the images of the configuration: it needs "
                          "-o CONFIG.json")
    from offload.inspect import note_default_program

    report = map_program(args.program_file, args.target, args.program,
                         time_limit_s=args.time_limit, scenario=args.scenario,
                         equivalence=not args.no_equivalence,
                         extra_targets=args.target_file, executor=args.executor)
    # after the work: a bad input stays one line (the error), a good one gets the note
    note_default_program(args.program_file, args.program)
    if args.output:
        write_config(report, args.output, args.images)
    if args.json:
        doc: dict[str, Any] = report.to_dict()
        if args.output:
            doc["config_file"] = args.output
        print_json(doc, indent=2)
    else:
        render_map(report, args.program_file)
        if args.output:
            print(f"configuration written to {printable(args.output)}" +
                  (f", memory images in {printable(args.images)}" if args.images else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``offload map PROG.o --target T [--program NAME] [-o CONFIG.json] [--json]
    [--time-limit S]`` (and ``--images DIR``, ``--scenario FILE``, ``--no-equivalence``)."""
    p = sub.add_parser("map", help="map a program onto a target: configuration, stages, "
                                   "cuts, punted fraction, equivalence",
                       description="Map an XDP program onto a target (docs/mapping.md): the "
                                   "pipeline configuration with its schedule and resource "
                                   "table, the cuts to the host, the share of a packet trace "
                                   "punted, and the equivalence with the VM.")
    p.add_argument("program_file", metavar="PROG.o")
    p.add_argument("--program", metavar="NAME", help="program in the object (default: the first XDP program)")
    p.add_argument("-o", "--output", metavar="CONFIG.json",
                   help="write the pipeline configuration document here")
    p.add_argument("--images", metavar="DIR",
                   help="with -o: also write the memory images ($readmemh files) to DIR")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--time-limit", type=cli_args.time_limit, default=DEFAULT_TIME_LIMIT_S,
                   metavar="S",
                   help=f"CP-SAT time limit in deterministic seconds, the same on any "
                        f"machine (default {DEFAULT_TIME_LIMIT_S:g}); past it the best "
                        f"schedule found is used")
    p.add_argument("--scenario", metavar="FILE",
                   help="map state for the trace (default: examples/xdp/scenarios/<stem>.json)")
    p.add_argument("--executor", choices=("auto", "compiled", "vm"), default="auto",
                   help="what runs the VM's semantics for the equivalence check and the "
                        "traces: compiled (native code), vm (the reference interpreter), "
                        "auto (compiled where the program compiles, else vm; default). The "
                        "kernel is not offered: the check reads the VM's helper state")
    p.add_argument("--no-equivalence", action="store_true",
                   help="skip the equivalence run (the verdict is then unproven)")
    add_target_options(p, choose=True)
    p.set_defaults(func=cmd_map)
