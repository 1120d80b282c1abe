"""ns per packet of each executor against the kernel's own BPF_PROG_TEST_RUN ns, per corpus
program, on the same packets.

    .venv/bin/python bench/executor.py [--packets N] [--seed S]

For every corpus object with its scenario (examples/xdp/scenarios), N seeded random packets
(sim.packets) run through each backend of ebpf.executor in order, maps persisting, timed
end to end in this process (the Python loop included). The reference is the kernel's own
measurement: the mean of test_run's ``duration`` over the same packets (repeat 1). The
ratios are what to read: wall-clock numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ebpf.differential import Scenario
from ebpf.errors import EbpfError
from ebpf.executor import open_executor
from ebpf.loader.elf import load
from sim.packets import random_packets

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "build" / "xdp"
SCENARIOS = ROOT / "examples" / "xdp" / "scenarios"
BACKENDS = ("kernel", "vm")


def _timed(kind: str, path: Path, state: Scenario, packets: list[bytes]
           ) -> tuple[float, float | None]:
    """(wall ns per packet, kernel-measured ns per packet or None) of one backend."""
    with open_executor(kind, str(path), load(str(path)), None, state) as ex:
        times = [i * state.clock_step_ns for i in range(len(packets))]
        t0 = time.perf_counter_ns()
        results = ex.run_all(packets, times)
        wall = (time.perf_counter_ns() - t0) / len(packets)
    ns = [r.kernel_ns for r in results if r.kernel_ns is not None]
    return wall, (sum(ns) / len(ns) if ns else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    objs = sorted(CORPUS.glob("*.o"))
    if not objs:
        print("build the corpus first (make corpus)", file=sys.stderr)
        return 2
    packets = random_packets(args.packets, args.seed)
    print(f"{args.packets} random packets (seed {args.seed}) per program; ns per packet; "
          f"ratio = backend wall ns / kernel TEST_RUN ns")
    head = f"{'program':<18} {'TEST_RUN ns':>11}" + "".join(
        f" {b + ' ns':>12} {'ratio':>8}" for b in BACKENDS)
    print(head)
    print("-" * len(head))
    for path in objs:
        scen = SCENARIOS / f"{path.stem}.json"
        state = Scenario.load(scen) if scen.exists() else Scenario()
        row, ref = {}, None
        try:
            for kind in BACKENDS:
                wall, kernel_ns = _timed(kind, path, state, packets)
                row[kind] = wall
                if kernel_ns is not None:
                    ref = kernel_ns
        except EbpfError as exc:
            print(f"{path.stem:<18} skipped: {str(exc).splitlines()[0]}")
            continue
        cells = "".join(f" {row[b]:>12,.0f} {row[b] / ref if ref else float('nan'):>7.0f}x"
                        for b in BACKENDS)
        print(f"{path.stem:<18} {ref or float('nan'):>11,.1f}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
