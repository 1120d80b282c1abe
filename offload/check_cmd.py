"""`offload check`: can a program run on a target, which part, and why not (one line each).

Wired into the command line through ``offload.cli.EXTRA_COMMANDS`` (``register``). Bad
input (an unknown target, a missing object or program) raises ``HwError`` / ``EbpfError`` /
``MapperError``, which the command line prints as one line with exit status 2.

``--json`` prints ``{"program", "target", "verdict", "explanation", "reasons": [{"insn",
"file", "line", "what", "fix", "kind", "insns", "source", "scope"}], "stats"}``; the table
shows the same reasons, one row each. docs/mapping.md says how to read them.
"""

from __future__ import annotations

import argparse

from ebpf.display import markup
from offload.console import print_json, print_verdict, reasons_table, table_console
from offload.feasibility import CheckResult
from offload.targets_cmd import add_target_options


def render_check(result: CheckResult, path: str) -> None:

    console = table_console()
    print_verdict(console, path, result.program, result.target, result.verdict,
                  result.explanation)
    stats = result.stats
    console.print(f"  {stats['nic_insns']} of {stats['reachable_insns']} reachable instructions "
                  f"stay on the NIC; {stats['infeasible_insns']} infeasible, "
                  f"{stats['side_effects']} side-effect sites, stack {stats['stack_bytes']} B")
    mapper = stats.get("mapper")
    if mapper and mapper["packets"]:
        console.print(f"  mapper: {mapper['stages']} stage(s), {mapper['punted']} of "
                      f"{mapper['packets']} trace packets punted, equivalence "
                      f"{mapper['equivalence']}")
    kernel = stats.get("kernel")
    if kernel and not kernel["verifier"]:
        said = f"{kernel['why']}: {kernel['message']}" if kernel["message"] else kernel["why"]
        console.print(f"  kernel: {markup(said)}")
    bounds = stats.get("bounds")
    if bounds and not bounds["refused"]:
        said = "every packet access is proven on every path" if bounds["complete"] else \
            f"no answer ({bounds['why']})"
        console.print(f"  packet bounds (the kernel was not asked): {said}")
    for loop in stats.get("loops", []):
        trips = loop["trips"] if loop["trips"] is not None else "unbounded"
        console.print(f"  loop in {markup(loop['function'])} at slot {loop['header']}: {trips} "
                      f"iterations x {loop['ops_per_iteration']} ops"
                      + ("" if loop["unrollable"] else " (does not unroll into the stages)"))
    if not result.reasons:
        return
    console.print(reasons_table("Why not", result.reasons))


def cmd_check(args: argparse.Namespace) -> int:
    from offload.inspect import note_default_program
    from offload.verdict import check_program

    result = check_program(args.program_file, args.program, args.target,
                           extra_targets=args.target_file, scenario=args.scenario,
                           kernel=not args.no_kernel)
    # after the work: a bad input stays one line (the error), a good one gets the note
    note_default_program(args.program_file, args.program)
    if args.json:
        print_json(result.to_dict(), indent=2)
    else:
        render_check(result, args.program_file)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``offload check PROG.o [--target T] [--program NAME] [--json] [--target-file P]``."""
    p = sub.add_parser("check", help="can a program run on a target: full, partial or "
                                     "host-only, with the reasons",
                       description="Check an XDP program against a target profile: every "
                                   "construct the target cannot do, with its C line and a fix, "
                                   "and the verdict (docs/mapping.md).")
    p.add_argument("program_file", metavar="PROG.o")
    p.add_argument("--program", metavar="NAME", help="program in the object (default: the first XDP program)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--scenario", metavar="FILE",
                   help="pipelines: map state for the mapper's equivalence trace (default: "
                        "examples/xdp/scenarios/<stem>.json)")
    p.add_argument("--no-kernel", action="store_true",
                   help="do not load the program into the running kernel (by default its "
                        "verifier is asked where bpf(2) is permitted)")
    add_target_options(p, choose=True)
    p.set_defaults(func=cmd_check)
