"""`offload targets`: every target profile with its key figures, as a table or as JSON.

Wired into the command line through ``offload.cli.EXTRA_COMMANDS`` (``register``). Bad
profiles raise ``hw.TargetError``, which the command line prints as one line, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ebpf.display import markup
from hw.targets import (
    DEFAULT_TARGET,
    CpuTarget,
    NpuTarget,
    PacketWindow,
    PipelineTarget,
    Target,
    VliwTarget,
    list_targets,
)
from offload.console import print_json

COLUMNS = ("name", "kind", "clock", "compute", "memory", "window", "line rate", "notes")


def add_target_options(parser: argparse.ArgumentParser, *, choose: bool = False) -> None:
    """``--target-file PATH`` (repeatable: a profile or a directory of them) and, with
    ``choose``, ``--target NAME|PATH``; for every subcommand that takes a target."""
    if choose:
        parser.add_argument("--target", default=DEFAULT_TARGET, metavar="NAME",
                            help=f"target name or profile path (default: {DEFAULT_TARGET})")
    parser.add_argument("--target-file", action="append", default=[], metavar="PATH",
                        help="extra target profile (.toml) or directory of profiles; repeatable")


def _bits(n: int) -> str:
    for unit, size in (("Mib", 1 << 20), ("Kib", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} b"


def _window(p: PacketWindow) -> str:
    access = "variable offsets" if p.variable_offset_access else "constant offsets"
    return f"{p.window_bytes} B, {access}"


def summary_row(t: Target) -> dict[str, str]:
    """The table's cells for one target: key figures, units spelled out."""
    row = {"name": t.name + (" (default)" if t.name == DEFAULT_TARGET else ""),
           "kind": t.kind if t.location == "nic" else f"{t.kind} (host)",
           "clock": f"{t.clock_mhz:g} MHz", "line rate": f"{t.line_rate_gbps:g} Gb/s",
           "notes": t.notes or t.description}
    if isinstance(t, PipelineTarget):
        s = t.stages
        phv = " + ".join(f"{g.count}x{g.bits}b" for g in t.phv.containers)
        row["compute"] = (f"{s.count} stages x {s.tables} tables, "
                          f"{t.alu_slots_per_stage} ALUs/stage; PHV {phv}")
        row["memory"] = (f"SRAM {_bits(s.sram.total_bits)} + TCAM {_bits(s.tcam.total_bits)}"
                         f" per stage")
        row["window"] = _window(t.packet)
    elif isinstance(t, NpuTarget):
        c = t.cores
        row["compute"] = f"{c.usable}/{c.count} cores x {c.threads_per_core} threads"
        row["window"] = _window(t.packet)
    elif isinstance(t, VliwTarget):
        row["compute"] = (f"{t.vliw.lanes} lanes, {t.vliw.helper_calls_per_row} helper "
                          f"call/row")
        row["window"] = _window(t.packet)
    elif isinstance(t, CpuTarget):
        row["compute"] = (f"{t.cores.usable}/{t.cores.count} cores {t.cpu.model}, "
                          f"x{t.cpu.relative_speed:g} host speed")
        row["memory"] = f"DRAM; driver {t.cpu.driver_overhead_ns:g} ns/packet"
        row["window"] = "whole packet"
    if t.ebpf is not None and not isinstance(t, PipelineTarget):
        entry = (f", map entry <= {t.ebpf.max_map_entry_bytes} B"
                 if t.ebpf.max_map_entry_bytes else "")
        row["memory"] = f"stack {t.ebpf.stack_bytes} B{entry}"
    return {col: row.get(col, "") for col in COLUMNS}


def targets_doc(targets: Sequence[Target]) -> list[dict[str, Any]]:
    """``--json``: one dict per target with every field."""
    return [t.to_dict() for t in targets]


def render_targets(targets: Sequence[Target]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, emoji=False)
    if not console.is_terminal:
        console.width = 160     # a pipe or a file: do not fold at 80 columns
    table = Table(title="Offload targets")
    for col in COLUMNS:
        table.add_column(col, no_wrap=col in ("name", "kind", "clock", "line rate"))
    for t in targets:
        table.add_row(*(markup(cell) for cell in summary_row(t).values()))  # names from files
    console.print(table)


def cmd_targets(args: argparse.Namespace) -> int:
    targets = list_targets(extra=args.target_file)
    if args.json:
        print_json(targets_doc(targets), indent=2)
    else:
        render_targets(targets)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``offload targets [--json] [--target-file PATH ...]``."""
    p = sub.add_parser("targets", help="the target profiles (pipeline, NPU, VLIW, DPU, host)",
                       description="List every target profile: built-in (hw/targets/*.toml) "
                                   "and those given with --target-file.")
    p.add_argument("--json", action="store_true", help="every field of every profile, as JSON")
    add_target_options(p)
    p.set_defaults(func=cmd_targets)
