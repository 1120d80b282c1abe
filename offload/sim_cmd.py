"""`offload sim`: packet-rate simulation of one XDP program on one target.

    offload sim PROG.o --target T --traffic SPEC [--packets N] [--seed S] [--json]
                [--engine fast|simpy] [--scenario FILE.toml] [...]

Wired into the command line by ``offload.cli.EXTRA_COMMANDS`` (``register``). A scenario
file (``sim.scenario``) gives defaults; flags given on the command line win. A command-line
layer, not simulator core: it passes the mapper (``offload.sim_cost.mapped_nic_cost``) as
the NIC cost of pipeline targets. Errors are
``SimError`` / ``EbpfError`` / ``HwError`` lines (exit status 2 through ``offload.cli``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ebpf.display import markup
from offload import cli_args
from offload.console import show
from offload.sim_cost import mapped_nic_cost
from sim.scenario import (
    BEHAVIOURS,
    DEFAULT_QUEUES,
    ENGINES,
    EXECUTORS,
    HOST_COSTS,
    MAX_QUEUE,
    Scenario,
    ScenarioError,
    run,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sim`` to the ``offload`` subcommands."""
    p = sub.add_parser("sim", help="simulate packet rates: traffic through link, NIC, PCIe "
                                   "and host cores",
                       description="Simulate an XDP program on a target at a packet rate: "
                                   "throughput, losses by place, latency, utilisation.")
    p.add_argument("program_file", nargs="?", metavar="PROG.o",
                   help="the XDP object (or 'program' in --scenario)")
    p.add_argument("--target", metavar="NAME", help="target name or profile path "
                   "(default: pipe)")
    p.add_argument("--target-file", action="append", default=[], metavar="PATH",
                   help="extra target profile (.toml) or directory of them; repeatable")
    p.add_argument("--traffic", metavar="SPEC",
                   help="traffic spec, e.g. 64B@100G, imix@40G,poisson, "
                        "512B@20Mpps,flows=1000,zipf=1.1, pcap:trace.pcap@10G "
                        "(default: 64B@10G)")
    p.add_argument("--packets", type=cli_args.sim_packets, metavar="N",
                   help="packets to simulate (default: at least 1.25 ms of traffic, run "
                        "longer until the steady rate converges; a capture: its length)")
    p.add_argument("--seed", type=cli_args.seed, metavar="S", help="seed of everything random "
                   "(default: 0)")
    p.add_argument("--engine", choices=ENGINES, help="fast (numpy, default) or simpy "
                   "(reference, ~1e5 packets/s)")
    p.add_argument("--scenario", metavar="FILE.toml", help="scenario file with defaults "
                   "for every option (see sim/scenario.py)")
    p.add_argument("--program", metavar="NAME", help="program in the object (default: first)")
    p.add_argument("--maps", metavar="STATE.json", help="map state (docs/state.md)")
    p.add_argument("--host", metavar="NAME", help="host profile behind a NIC target "
                   "(default: host)")
    p.add_argument("--host-cores", type=cli_args.host_cores, metavar="N",
                   help="host cores running XDP (default: the host profile's)")
    p.add_argument("--host-cost", choices=HOST_COSTS,
                   help="program cost on the host: kernel (BPF_PROG_TEST_RUN here), model "
                        "(per instruction), auto (kernel when permitted; default)")
    p.add_argument("--executor", choices=EXECUTORS,
                   help="what runs every packet: vm (reference VM), compiled (native code, "
                        "the VM's results), kernel (BPF_PROG_TEST_RUN per packet), auto "
                        "(compiled where the program compiles, else kernel when no "
                        "per-packet path is needed and bpf(2) permits, else vm; default)")
    p.add_argument("--behaviour", choices=BEHAVIOURS,
                   help="exact: every packet runs the program (default); sampled: each "
                        "distinct packet once, later ones repeat its verdict (an "
                        "approximation, marked in the output)")
    p.add_argument("--queues", metavar="K=N,...",
                   help="queue sizes in packets (0: unbounded): "
                        + ", ".join(f"{k}" for k in DEFAULT_QUEUES))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_sim)


def _queues(text: str, base: dict[str, int | None]) -> dict[str, int | None]:
    out = dict(base)
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        value = value.strip()
        if key not in DEFAULT_QUEUES or not sep or not (value.isascii() and value.isdigit()) \
                or int(value) > MAX_QUEUE:
            raise ScenarioError(f"--queues: expected K=N with K one of "
                                f"{', '.join(DEFAULT_QUEUES)} and N in 0..{MAX_QUEUE}, "
                                f"got {item.strip()!r}")
        out[key] = int(value) or None
    return out


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario file (if any) with the command line's flags over it."""
    sc = Scenario.load(args.scenario) if args.scenario else Scenario()
    if args.packets is not None and args.packets < 1:
        raise ScenarioError(f"--packets: expected a positive number, got {args.packets}")
    if args.host_cores is not None and args.host_cores < 1:
        raise ScenarioError(f"--host-cores: expected a positive number, got {args.host_cores}")
    sc = sc.with_overrides(program=args.program_file, program_name=args.program,
                           maps=args.maps, target=args.target, host=args.host,
                           traffic=args.traffic, packets=args.packets, seed=args.seed,
                           engine=args.engine, executor=args.executor,
                           behaviour=args.behaviour,
                           host_cost=args.host_cost,
                           host_cores=args.host_cores)
    if args.traffic is not None:  # a capture named on the command line is relative to here
        sc.base_dir = os.getcwd()
    if args.target_file:
        sc.target_files = tuple(sc.target_files) + tuple(args.target_file)
    if args.queues:
        sc.queues = _queues(args.queues, sc.queues)
    if sc.program is None:
        raise ScenarioError("no XDP object: give PROG.o or a --scenario with 'program'")
    return sc


def cmd_sim(args: argparse.Namespace) -> int:
    show(run(scenario_from_args(args), nic_cost_for=mapped_nic_cost), args.json, render)
    return 0


def _fmt(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}"


def render(report: dict[str, Any]) -> None:
    """The summary table, losses by place, utilisation, then the assumptions."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, emoji=False,
                      width=None if sys.stdout.isatty() else 120)
    m = report["metrics"]
    approx = ", APPROXIMATE behaviour: sampled" if report.get("behaviour") == "sampled" else ""
    table = Table(title=f"offload sim ({report['engine']} engine, {m['packets']} packets"
                        f"{approx})")
    for col in ("program", "target", "offered Mpps", "achieved Mpps", "drops",
                "p99 latency", "host cores needed"):
        table.add_column(col, justify="left" if col in ("program", "target") else "right")
    lost = m["lost"]["total"]
    share = f" ({100 * lost / m['packets']:.2f} %)" if m["packets"] else ""
    p99 = m["latency_ns"].get("p99")
    offered = m["offered"]["generated_mpps"] or m["offered"]["mpps"]  # the traffic as drawn
    table.add_row(markup(report["program"]), markup(report["target"]), _fmt(offered),
                  _fmt(m["achieved"]["mpps"]), f"{lost}{share}",
                  "-" if p99 is None else f"{p99:,.0f} ns",
                  f"{m['host_cores_needed']} ({m['host_load_erlangs']:.2f} Erlang)")
    console.print(table)
    places = ", ".join(f"{k} {v} ({m['loss_causes'][k]})" for k, v in m["lost"].items()
                       if k != "total" and v)
    console.print(markup(f"drops by place: {places or 'none'}; program verdicts: "
                         + ", ".join(f"{k} {v}" for k, v in m["verdicts"].items())))
    st = m.get("steady")
    if st:
        console.print(f"steady state (after {st['warmup_ns'] / 1e3:,.0f} us warm-up, "
                      f"{st['window_ns'] / 1e3:,.0f} us): achieved "
                      f"{_fmt(st['achieved_mpps'])} Mpps, drops {st['lost']} "
                      f"({100 * st['loss_fraction']:.2f} %), "
                      + ("converged" if st["converged"] else "NOT converged"))
    lat = m["latency_ns"]
    if lat:
        console.print(f"latency: p50 {lat['p50']:,.0f} ns, p99 {lat['p99']:,.0f} ns, "
                      f"p99.9 {lat['p99.9']:,.0f} ns, max {lat['max']:,.0f} ns")
    u = m["utilisation"]
    parts = [f"{k} {100 * u[k]:.1f} %" for k in ("link", "nic", "pcie", "host_mean") if k in u]
    console.print("utilisation: " + ", ".join(parts).replace("host_mean", "host (mean)")
                  + (f"; achieved {m['achieved']['gbps']:.4g} Gb/s of "
                     f"{m['offered']['gbps']:.4g} Gb/s offered"))
    cost = report.get("nic_cost")
    if cost:
        console.print(f"NIC cost: {markup(cost['source'])}", soft_wrap=True)
    console.print("assumptions:")
    for note in report["assumptions"]:
        console.print(f"  - {markup(note)}", soft_wrap=True)
