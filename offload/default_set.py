"""`make sim`: the default scenario set, the offloaded-versus-host-JIT comparison.

Every corpus program (examples/xdp, built into build/xdp) with its scenario state, on the
`pipe` NIC and on the `host` (kernel JIT), under 64-byte and IMIX traffic at 100 Gb/s line
rate: one table with offered and achieved Mpps, drops, p99 latency, host cores needed and,
for `pipe`, where its NIC cost came from: the program's mapping (``sim.mapping``, the
mapper passed as ``offload.sim_cost.mapped_nic_cost``: a command-line layer, not simulator
core), each program mapped once per target over the whole set.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ebpf.display import markup
from offload.console import show
from offload.sim_cost import mapped_nic_cost
from sim.scenario import RunCache, Scenario, run

TARGETS = ("pipe", "host")
TRAFFIC = ("64B@100G", "imix@100G")
DEFAULT_PACKETS: int | None = None  # None: sim.scenario's steady-state run length


def default_set(root: Path, packets: int | None = DEFAULT_PACKETS, seed: int = 1, *,
                progress: bool | None = None, cache: RunCache | None = None
                ) -> list[dict[str, Any]]:
    """One report per (program, target, traffic), in corpus order. One ``RunCache`` serves
    the whole set: each program is mapped once per target and each distinct packet timed
    once in the kernel. ``progress``: a rich progress bar on stderr (default: when stderr is
    a terminal)."""
    cache = cache if cache is not None else RunCache()
    sources = sorted((root / "examples" / "xdp").glob("*.c"))
    with _progress(len(sources) * len(TARGETS) * len(TRAFFIC), progress) as status:
        rows = []
        for src in sources:
            obj = root / "build" / "xdp" / f"{src.stem}.o"
            state = root / "examples" / "xdp" / "scenarios" / f"{src.stem}.json"
            for target in TARGETS:
                for traffic in TRAFFIC:
                    where = f"{src.stem} on {target}, {traffic}"
                    status(where, False)
                    sc = Scenario(program=str(obj),
                                  maps=str(state) if state.exists() else None,
                                  target=target, traffic=traffic, packets=packets, seed=seed)
                    report = run(sc, progress_enabled=False, cache=cache,
                                 step=lambda what, where=where: status(f"{where}: {what}",
                                                                       False),
                                 nic_cost_for=mapped_nic_cost)
                    report["traffic"] = traffic
                    rows.append(report)
                    status(where, True)
    return rows


@contextmanager
def _progress(total: int, enabled: bool | None) -> Iterator[Callable[[str, bool], None]]:
    """``status(text, done)``: describe the current step; ``done`` counts one run."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda text, done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("", total=total)
    with bar:
        yield lambda text, done: bar.update(task, description=text, advance=int(done))


def nic_cost_text(report: dict[str, Any]) -> str:
    """The NIC cost of a NIC row in a few words: verdict, stages x passes, punted share."""
    cost = report.get("nic_cost")
    if not cost:
        return "-"
    pct = 100 * cost.get("punted_fraction", 0.0)
    share = f"{pct:.0f}" if pct in (0, 100) else f"{pct:.3g}"
    if cost.get("verdict") is None:
        return f"defaults, {share} % punted"
    if cost.get("punt") == "all":
        return f"{cost['verdict']}, all punted"
    return (f"{cost['verdict']}, {cost['stages']} st, {cost['passes']} pass, "
            f"{share} % punted")


def render(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, emoji=False,
                      width=None if sys.stdout.isatty() else 160)
    table = Table(title="offloaded (pipe) versus host JIT (host), 100 Gb/s line rate")
    for col in ("program", "target", "traffic", "offered Mpps", "achieved Mpps", "drops",
                "p99 latency", "host cores needed", "NIC cost (mapping)"):
        table.add_column(col, justify="left" if col in ("program", "target", "traffic",
                                                         "NIC cost (mapping)") else "right")
    for r in rows:
        m = r["metrics"]
        p99 = m["latency_ns"].get("p99")
        offered = m["offered"]["generated_mpps"] or m["offered"]["mpps"]  # as drawn
        table.add_row(markup(r["program"]), markup(r["target"]), markup(r["traffic"]),
                      f"{offered:.2f}",
                      f"{m['achieved']['mpps']:.2f}", str(m["lost"]["total"]),
                      "-" if p99 is None else f"{p99:,.0f} ns", str(m["host_cores_needed"]),
                      markup(nic_cost_text(r)))
    console.print(table)
    console.print("NIC costs for `pipe` come from each program's mapping (offload.mapper): "
                  "one packet per pass cycle, the configuration's latency, and a packet "
                  "punted to the host iff the mapped configuration on the pipeline model "
                  "punts it (st: logical stages); host costs are measured with "
                  "BPF_PROG_TEST_RUN where bpf(2) is permitted (see `offload sim` for the "
                  "assumptions of one run).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument("--packets", type=int, default=DEFAULT_PACKETS,
                        help="packets per run (default: at least 1 ms of traffic, steady)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    show(default_set(Path(args.root), args.packets, args.seed), args.json, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
