"""Simulated packets per second of the two engines, side by side, on the same scenarios.

    .venv/bin/python bench/sim_engines.py [--fast-packets N] [--simpy-packets N]

Each scenario is prepared once (traffic, the VM on each distinct packet once: behaviour
"sampled", since only the engines are timed here; host cost
from the per-instruction model so that no kernel timing noise enters); then both engines
run the same first ``--simpy-packets`` packets (their results must be identical: checked),
and the fast engine also runs all ``--fast-packets``. Only the engines' run time is
timed (``run()``: service times, queues, routing); traffic generation is timed on its own
line. Wall-clock numbers depend on the machine: read the ratio, not the absolutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import best_of  # noqa: E402
from sim import engine_fast, engine_simpy  # noqa: E402
from sim.scenario import Scenario, prepare  # noqa: E402

CORPUS = ROOT / "build" / "xdp"
SCENARIOS = [
    # (label, program, target, traffic): the first is the uncongested pipeline case.
    ("uncongested pipeline", "xdp_drop", "pipe", "64B@100G"),
    ("pipeline + PCIe + host", "firewall", "pipe", "imix@40G,flows=1000"),
    ("congested host cores", "xdp_pass", "host", "64B@100G,flows=1000"),
    ("NPU, 384 servers", "firewall", "nfp", "64B@40G,poisson,flows=1000"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast-packets", type=int, default=4_000_000)
    ap.add_argument("--simpy-packets", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (fast engine)")
    args = ap.parse_args(argv)
    missing = [p for _, p, _, _ in SCENARIOS if not (CORPUS / f"{p}.o").exists()]
    if missing:
        print(f"build the corpus first (make corpus): missing {', '.join(missing)}",
              file=sys.stderr)
        return 2
    print(f"machine: {os.cpu_count()} CPUs; simpy engine on {args.simpy_packets} packets, "
          f"fast engine on the same packets and on {args.fast_packets}")
    header = (f"{'scenario':<24} {'lost %':>7} {'simpy pkt/s':>12} {'fast pkt/s (same N)':>20} "
              f"{'ratio':>7} {'fast pkt/s (big N)':>19}")
    print(header)
    print("-" * len(header))
    for label, prog, target, traffic in SCENARIOS:
        maps = ROOT / "examples" / "xdp" / "scenarios" / f"{prog}.json"
        sc = Scenario(program=str(CORPUS / f"{prog}.o"), target=target, traffic=traffic,
                      packets=args.fast_packets, seed=1, host_cost="model",
                      behaviour="sampled",
                      maps=str(maps) if maps.exists() else None)
        t0 = time.perf_counter()
        prep = prepare(sc)
        prep_s = time.perf_counter() - t0
        big = prep.workload
        small = big.head(args.simpy_packets)

        simpy_s, ref = best_of(lambda w=small: engine_simpy.run(w), 1)
        fast_small_s, fast_small = best_of(lambda w=small: engine_fast.run(w), args.repeat)
        same = (np.array_equal(ref.depart_ps, fast_small.depart_ps)
                and np.array_equal(ref.lost_at, fast_small.lost_at))
        fast_big_s, fast_big = best_of(lambda w=big: engine_fast.run(w), args.repeat)
        lost = 100 * float((fast_big.lost_at >= 0).mean())
        simpy_pps = small.num_packets / simpy_s
        fast_pps = small.num_packets / fast_small_s
        print(f"{label:<24} {lost:>7.2f} {simpy_pps:>12,.0f} {fast_pps:>20,.0f} "
              f"{fast_pps / simpy_pps:>6.0f}x {big.num_packets / fast_big_s:>19,.0f}"
              + ("" if same else "   RESULTS DIFFER"))
        print(f"{'':<24} (prepare: {prep_s:.2f} s for {big.num_packets} packets incl. "
              f"traffic generation, {len(prep.traffic.reps)} VM runs: behaviour sampled)")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
