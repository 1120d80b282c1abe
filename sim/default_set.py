"""`make sim`: the default scenario set, the offloaded-versus-host-JIT comparison.

Every corpus program (examples/xdp, built into build/xdp) with its scenario state, on the
`pipe` NIC and on the `host` (kernel JIT), under 64-byte and IMIX traffic at 100 Gb/s line
rate: one table with offered and achieved Mpps, drops, p99 latency and host cores needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sim.scenario import Scenario, run

TARGETS = ("pipe", "host")
TRAFFIC = ("64B@100G", "imix@100G")
DEFAULT_PACKETS = 50_000


def default_set(root: Path, packets: int = DEFAULT_PACKETS, seed: int = 1) -> list[dict[str, Any]]:
    """One report per (program, target, traffic), in corpus order."""
    rows = []
    for src in sorted((root / "examples" / "xdp").glob("*.c")):
        obj = root / "build" / "xdp" / f"{src.stem}.o"
        state = root / "examples" / "xdp" / "scenarios" / f"{src.stem}.json"
        for target in TARGETS:
            for traffic in TRAFFIC:
                sc = Scenario(program=str(obj), maps=str(state) if state.exists() else None,
                              target=target, traffic=traffic, packets=packets, seed=seed)
                report = run(sc, progress_enabled=False)
                report["traffic"] = traffic
                rows.append(report)
                _progress(len(rows), src.stem, target, traffic)
    return rows


def _progress(done: int, name: str, target: str, traffic: str) -> None:
    if sys.stderr.isatty():
        print(f"\r{done:3d} runs: {name} on {target}, {traffic}".ljust(70), end="",
              file=sys.stderr, flush=True)


def render(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    table = Table(title="offloaded (pipe) versus host JIT (host), 100 Gb/s line rate")
    for col in ("program", "target", "traffic", "offered Mpps", "achieved Mpps", "drops",
                "p99 latency", "host cores needed"):
        table.add_column(col, justify="left" if col in ("program", "target", "traffic")
                         else "right")
    for r in rows:
        m = r["metrics"]
        p99 = m["latency_ns"].get("p99")
        offered = m["offered"]["generated_mpps"] or m["offered"]["mpps"]  # as drawn
        table.add_row(r["program"], r["target"], r["traffic"], f"{offered:.2f}",
                      f"{m['achieved']['mpps']:.2f}", str(m["lost"]["total"]),
                      "-" if p99 is None else f"{p99:,.0f} ns", str(m["host_cores_needed"]))
    console.print(table)
    console.print("NIC costs for `pipe` use the simulator's default NicCost (II 1, no "
                  "recirculation) until the mapper supplies per-program stage counts; "
                  "host costs are measured with BPF_PROG_TEST_RUN where bpf(2) is permitted "
                  "(see `offload sim` for the assumptions of one run).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument("--packets", type=int, default=DEFAULT_PACKETS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = default_set(Path(args.root), args.packets, args.seed)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        render(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
