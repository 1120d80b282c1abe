"""The calibration table: every published microbenchmark against the cost models' value.

    .venv/bin/python bench/calibration.py [--corpus build/xdp] [--no-validation]

Computed from the code (``hw.cost.calibration``, ``hw.cost.validation``,
``hw.rtc.vliw.optimization_effects``), not copied: docs/calibration.md is this script's
output with its explanation. Four tables: the calibration points (the held ones must stay
within 5 %, tests/hw/cost/test_calibration.py; the ones marked NOT MATCHED show how far they
are and why, and make the script exit 1 with a FAILING line), Figs. 14 and 15 with the
hXDP artifact compiler's call scheduling (a what-if, never held), what each
hXDP compiler optimisation saves on the corpus, and the application programs validated
against published results (the program's cost on the host measured here with
BPF_PROG_TEST_RUN).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hw.cost.calibration import (  # noqa: E402
    TOLERANCE,
    all_points,
    call_args_what_if,
    markdown,
)
from hw.rtc.vliw import OPTIMIZATIONS, optimization_effects  # noqa: E402

EFFECT_PACKETS = 20
"""Seeded random packets per corpus program for the optimisation table."""


def effects_table(corpus: Path) -> str:
    """Per corpus program on hxdp: rows and mean cycles with no optimisation and with all,
    and the cycles each optimisation saves given the others."""
    from ebpf.loader.elf import load
    from ebpf.vm.machine import Vm
    from hw.targets import load_target
    from sim.packets import random_packets

    target = load_target("hxdp")
    head = ["program", "rows none", "rows all", "cycles none", "cycles all",
            *(f"-{o}" for o in OPTIMIZATIONS)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for path in sorted(corpus.glob("*.o")):
        obj = load(path)
        prog = obj.get_program()
        vm = Vm(obj, prog)
        traces = [vm.run_xdp(p).trace for p in random_packets(EFFECT_PACKETS, 1)]
        eff = optimization_effects(target, obj, prog, traces)
        saved = [eff[f"-{o}"]["cycles"] - eff["all"]["cycles"] for o in OPTIMIZATIONS]
        cells = [path.stem, f"{eff['none']['rows']:.0f}", f"{eff['all']['rows']:.0f}",
                 f"{eff['none']['cycles']:.1f}", f"{eff['all']['cycles']:.1f}",
                 *(f"{x:+.1f}" for x in saved)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def validation_table(corpus: Path) -> str:
    """The application programs against published results, and the mean absolute error."""
    from ebpf.errors import EbpfError
    from hw.cost import validation

    try:
        points = validation.all_points(corpus)
    except EbpfError as exc:
        points = validation.hxdp_points(corpus)
        print(f"(host validation left out: {exc})")
    errors = [abs(p.error) for p in points if p.error is not None]
    return (markdown(points) + f"\n\nvalidation points: {len(points)}, mean |error| "
            f"{100 * sum(errors) / len(errors):.1f} %")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(ROOT / "build" / "xdp"),
                        help="built corpus for the application programs (default: build/xdp)")
    parser.add_argument("--no-validation", action="store_true",
                        help="leave out the application programs (which need bpf(2))")
    args = parser.parse_args(argv)
    points = all_points()
    print(markdown(points))
    bad = [p for p in points if p.calibrated and p.error is not None
           and abs(p.error) > TOLERANCE]
    worst = max((abs(p.error) for p in points if p.calibrated and p.error is not None),
                default=0.0)
    missed = [p for p in points if p.model is not None and not p.within]
    print(f"\ncalibrated points: {sum(p.calibrated for p in points)}, worst error "
          f"{100 * worst:.1f} % (tolerance {100 * TOLERANCE:.0f} %), {len(bad)} outside")
    if missed:
        print(f"FAILING: {len(missed)} published point(s) outside {100 * TOLERANCE:.0f} % "
              f"(the reasons are in the table): "
              + "; ".join(f"{p.target} {p.what} {100 * p.error:+.1f} %" for p in missed))
    print("\n## What if: helper calls scheduled as the hXDP artifact's compiler does "
          "(call_args, off by default)\n")
    print(markdown(call_args_what_if()))
    corpus = Path(args.corpus)
    if corpus.is_dir():
        print("\n## hXDP optimisations: cycles saved per packet (hxdp, corpus)\n")
        print(effects_table(corpus))
        if not args.no_validation:
            print("\n## Application programs against published results\n")
            print(validation_table(corpus))
    return 1 if bad or missed else 0


if __name__ == "__main__":
    sys.exit(main())
