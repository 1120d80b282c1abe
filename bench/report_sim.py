"""The report's simulation runs with and without the reuse of executor work, side by side.

    .venv/bin/python bench/report_sim.py [--program STEM ...] [--packets 4000]

For each corpus program (default: fib_router, katran_lb, firewall) every run the report makes
(``offload.report.simulate.simulate_program``: each target x each frame size + the latency
traffic, the report's defaults) twice in one process: as the report runs them (one
behaviour per program and traffic shared by the targets, ``sim.reuse``; the pipe's punts
remembered per distinct packet while the pipeline's state is unchanged, ``sim.mapping``; the
compiled executor's native code built once per process, ``ebpf.compiled.native``),
and with all three switched off. Prints CPU seconds of each and their ratio, and checks that
both give the same runs (the engines' own wall times left out; the second run takes the
first one's BPF_PROG_TEST_RUN timings, which vary from measurement to measurement). Read the ratio: the
absolute times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ebpf.compiled.native  # noqa: E402
import sim.mapping  # noqa: E402
import sim.scenario  # noqa: E402
from offload.report.collect import ReportOptions, plan  # noqa: E402
from offload.report.simulate import simulate_program  # noqa: E402
from offload.sim_cost import mapped_nic_cost  # noqa: E402
from sim.scenario import RunCache  # noqa: E402


def _timeless(doc):
    if isinstance(doc, dict):
        return {k: _timeless(v) for k, v in doc.items()
                if k not in ("wall_s", "simulated_pps", "kernel_timed_packets")}
    if isinstance(doc, list):
        return [_timeless(v) for v in doc]
    return doc


class _Forgetful(sim.mapping.PipelinePunts):
    """PipelinePunts that remembers nothing: the model on every packet."""

    def __init__(self, *args):
        super().__init__(*args)
        self._known, self.remembers = None, False


class _NoCache(dict):
    """A native-code cache that keeps nothing: every executor builds its code."""

    def __setitem__(self, key, value):
        pass


def _run(spec, plan_, packets: int, reuse: bool, cache: RunCache) -> tuple[float, dict]:
    saved = sim.scenario._behaviour, sim.scenario.PipelinePunts, ebpf.compiled.native._BUILT
    if not reuse:
        ebpf.compiled.native._BUILT = _NoCache()
        sim.scenario._behaviour = (  # nor a resumed attempt (sim.resume)
            lambda sc, traffic, kind, cost, cache, step, paths, resume=None:
            sim.scenario.run_behaviour(sc, traffic, kind, cost, step, paths))
        sim.scenario.PipelinePunts = _Forgetful
    try:
        costs = {t.name: mapped_nic_cost(spec.path, spec.program, t)
                 for t in plan_.targets if t.kind == "pipeline"}
        t0 = time.process_time()
        doc = simulate_program(spec.path, spec.program, spec.maps, plan_.targets,
                               packets=packets, seed=plan_.options.seed, nic_costs=costs,
                               cache=cache)
        return time.process_time() - t0, doc
    finally:
        (sim.scenario._behaviour, sim.scenario.PipelinePunts,
         ebpf.compiled.native._BUILT) = saved


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--program", action="append", metavar="STEM",
                   help="corpus object stem (repeatable)")
    p.add_argument("--packets", type=int, default=ReportOptions.packets)
    args = p.parse_args(argv)
    stems = args.program or ["fib_router", "katran_lb", "firewall"]
    objects = [str(ROOT / "build" / "xdp" / f"{s}.o") for s in stems]
    plan_ = plan(objects, ReportOptions(maps_dir=str(ROOT / "examples" / "xdp" / "scenarios")))
    print(f"{'program':<24} {'reuse (s)':>10} {'none (s)':>10} {'ratio':>7}  same runs")
    total = [0.0, 0.0]
    same_all = True
    for spec in plan_.programs:
        first = RunCache()
        fast, a = _run(spec, plan_, args.packets, True, first)
        # the same kernel timings (measured once: they vary from run to run), nothing else
        slow, b = _run(spec, plan_, args.packets, False, RunCache(host_ns=dict(first.host_ns)))
        same = _timeless(a) == _timeless(b)
        same_all &= same
        total[0] += fast
        total[1] += slow
        print(f"{spec.program:<24} {fast:>10.1f} {slow:>10.1f} {slow / fast:>6.2f}x  "
              f"{'yes' if same else 'NO'}")
    print(f"{'all':<24} {total[0]:>10.1f} {total[1]:>10.1f} {total[1] / total[0]:>6.2f}x")
    return 0 if same_all else 1


if __name__ == "__main__":
    sys.exit(main())
