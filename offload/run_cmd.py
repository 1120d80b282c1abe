"""`offload run`, `offload kernel` and `offload diff`: one program on packets, VM and kernel."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ebpf.differential import Scenario, differential, kernel_side, prepare
from ebpf.display import markup
from ebpf.errors import EbpfError
from ebpf.executor import EXECUTORS, open_executor
from ebpf.loader.elf import load
from ebpf.vm.xdp import VERDICT_NAMES
from offload import cli_args

PROGRESS_MIN = 500  # packets: show a progress bar on stderr from this many on


def _console() -> Console:
    return Console(highlight=False, emoji=False,
                   width=None if sys.stdout.isatty() else 120)


def _packets(args: argparse.Namespace) -> list[bytes]:
    if getattr(args, "pcap", None):
        from sim.pcap import read_pcap

        return [p.data for p in read_pcap(args.pcap)]
    from sim.packets import random_packets

    return random_packets(args.random, args.seed)


def _scenario(args: argparse.Namespace) -> Scenario:
    return Scenario.load(args.maps) if args.maps else Scenario()


def _progress(total: int, label: str):
    if total < PROGRESS_MIN or not sys.stderr.isatty():
        return None
    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                        console=Console(stderr=True), transient=True)
    return progress


def _verdicts(counter: Counter) -> dict[str, int]:
    return {VERDICT_NAMES.get(k, str(k)): v for k, v in sorted(counter.items())}


def _times(scenario: Scenario, n: int) -> list[int]:
    """Packet i's clock offset from the scenario's start (docs/state.md "clock")."""
    return [i * scenario.clock_step_ns for i in range(n)]


def cmd_run(args: argparse.Namespace) -> int:
    obj = load(args.program_file)
    scenario = _scenario(args)
    packets = _packets(args)
    results, outputs, verdicts = [], [], Counter()
    progress = _progress(len(packets), args.executor)
    task = progress.add_task("run", total=len(packets)) if progress else None
    with open_executor(args.executor, args.program_file, obj, args.program, scenario,
                       seed=args.seed) as ex:
        if progress:
            progress.start()
        try:
            times = _times(scenario, len(packets))
            for i, packet in enumerate(packets):
                try:
                    res = ex.run(packet, times[i])
                except EbpfError as exc:
                    raise type(exc)(f"{args.program_file}: packet {i}: {exc}") from exc
                verdicts[res.verdict] += 1
                outputs.append(res.packet)
                entry: dict[str, Any] = {"index": i, "verdict": res.verdict_name,
                                         "len_in": len(packet), "len_out": len(res.packet)}
                if args.json and res.trace is not None:
                    entry["trace"] = res.trace.to_dict()
                if args.json and res.kernel_ns is not None:
                    entry["ns"] = res.kernel_ns
                results.append(entry)
                if progress:
                    progress.advance(task)
        finally:
            if progress:
                progress.stop()
        maps = ex.dump_maps()["maps"]
        program, clock, executor = ex.program, ex.clock, ex.name
    if args.out:
        from sim.pcap import write_pcap

        write_pcap(args.out, outputs)
    doc = {"program": program, "executor": executor, "packets": len(packets),
           "verdicts": _verdicts(verdicts), "clock_injected": clock, "results": results,
           "maps": maps}
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    console = _console()
    where = {"vm": "the VM", "kernel": "the kernel (BPF_PROG_TEST_RUN)"}[executor]
    console.print(f"{markup(args.program_file)}: {len(packets)} packets on {where}")
    table = Table()
    for col in ("verdict", "packets"):
        table.add_column(col)
    for name, n in doc["verdicts"].items():
        table.add_row(markup(name), str(n))
    console.print(table)
    if args.out:
        console.print(f"wrote {len(outputs)} packets to {markup(args.out)}")
    return 0


def cmd_kernel(args: argparse.Namespace) -> int:
    obj = load(args.program_file)
    scenario = _scenario(args)
    packets = _packets(args)
    run_obj, clock = prepare(obj, scenario)
    prog = run_obj.get_xdp_program(args.program)
    verdicts, results, total_ns = Counter(), [], 0
    with kernel_side(args.program_file, run_obj, scenario, raw=clock) as kobj:
        for i, packet in enumerate(packets):
            if clock:
                kobj.update("offload_clock", bytes(4),
                            scenario.clock_ns(i).to_bytes(8, "little"))
            # every run on a fresh copy: a program that rewrites its packet is timed on
            # the packet, never on its own output
            res, ns = kobj.time_fresh(packet, args.repeat, prog.name)
            verdicts[res.retval] += 1
            total_ns += ns
            results.append({"index": i, "verdict": VERDICT_NAMES.get(res.retval, res.retval),
                            "len_in": len(packet), "len_out": len(res.data_out),
                            "ns": round(ns, 1)})
        info = kobj.prog_info(prog.name)
        state = kobj.dump_state()
    mean_ns = total_ns / len(packets) if packets else 0.0
    doc = {"program": prog.name, "packets": len(packets), "repeat": args.repeat,
           "verdicts": _verdicts(verdicts), "ns_per_packet": round(mean_ns, 1),
           "xlated_bytes": info.xlated_prog_len, "jited_bytes": info.jited_prog_len,
           "clock_injected": clock, "results": results, "maps": state["maps"]}
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    console = _console()
    console.print(f"{markup(args.program_file)}: {len(packets)} packets in the kernel "
                  f"(BPF_PROG_TEST_RUN, repeat {args.repeat})")
    table = Table()
    for col in ("verdict", "packets"):
        table.add_column(col)
    for name, n in doc["verdicts"].items():
        table.add_row(markup(name), str(n))
    console.print(table)
    console.print(f"{mean_ns:.1f} ns per packet (kernel-measured); jited {info.jited_prog_len} "
                  f"bytes, xlated {info.xlated_prog_len} bytes")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    obj = load(args.program_file)
    scenario = _scenario(args)
    packets = _packets(args)
    progress = _progress(len(packets), "diff")
    if progress:
        task = progress.add_task("diff", total=len(packets))
        progress.start()
        tick = lambda: progress.advance(task)  # noqa: E731
    else:
        tick = None
    try:
        report = differential(args.program_file, obj, packets, scenario, args.program,
                              progress=tick)
    finally:
        if progress:
            progress.stop()
    doc = report.to_dict()
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        console = _console()
        status = "[green]0 mismatches[/green]" if not report.mismatches else \
            f"[red]{len(report.mismatches)} mismatches[/red]"
        console.print(f"{markup(args.program_file)} ({markup(report.program)}): "
                      f"{report.packets} packets, "
                      f"{status}")
        console.print(f"  verdicts  vm: {doc['verdicts']['vm']}")
        console.print(f"        kernel: {doc['verdicts']['kernel']}")
        if report.clock_injected:
            console.print("  clock reads replaced by the clock map on both sides")
        if report.mismatches:
            first = report.mismatches[0]
            where = f"packet {first.index}" if first.index >= 0 else "final map state"
            console.print(f"  first mismatch: {where}, {markup(first.what)}")
            console.print(f"    vm:     {markup(first.vm[:200])}")
            console.print(f"    kernel: {markup(first.kernel[:200])}")
            if report.first_packet is not None:
                console.print(f"    packet: {report.first_packet.hex()}")
    return 1 if report.mismatches else 0


def _common(p: argparse.ArgumentParser, *, random_ok: bool) -> None:
    p.add_argument("program_file", metavar="PROG.o")
    p.add_argument("--program", metavar="NAME", help="program in the object (default: the first XDP program)")
    if random_ok:
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--pcap", metavar="IN", help="packets from a pcap file")
        src.add_argument("--random", type=cli_args.vm_packets, metavar="N",
                         help="N seeded random packets")
    else:
        p.add_argument("--pcap", metavar="IN", required=True, help="packets from a pcap file")
        p.set_defaults(random=None)
    p.add_argument("--seed", type=cli_args.seed, default=1,
                   help="seed for --random and the VM (1)")
    p.add_argument("--maps", metavar="STATE.json",
                   help="map state to start from (also routes and clock: docs/state.md)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an XDP program on the reference VM")
    _common(p, random_ok=True)
    p.add_argument("--executor", choices=EXECUTORS, default="vm",
                   help="what runs the packets: vm (reference VM, default), kernel "
                        "(BPF_PROG_TEST_RUN per packet), auto (kernel when it loads)")
    p.add_argument("--out", metavar="OUT.pcap", help="write the output packets")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("kernel", help="run an XDP program in the kernel (BPF_PROG_TEST_RUN)")
    _common(p, random_ok=True)
    p.add_argument("--repeat", type=cli_args.test_run_repeat, default=1, metavar="N",
                   help="test_run runs per packet, each on a fresh copy of the packet; "
                        "the time is their mean (1)")
    p.set_defaults(func=cmd_kernel)

    p = sub.add_parser("diff", help="compare the VM with the kernel on the same packets")
    _common(p, random_ok=True)
    p.set_defaults(func=cmd_diff)
