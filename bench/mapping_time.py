"""How long mapping takes, as a ratio to loading the object, for the largest corpus program.

    .venv/bin/python bench/mapping_time.py [--target pipe] [--repeat 3] [--time-limit 10]

Side by side, in one run, on the corpus program with the most instructions and on the
largest one that maps whole (or on ``--program OBJ[:NAME]``): loading the ELF object (``ebpf.loader.elf.load``: sections, BTF,
relocations, linking); mapping it without the equivalence run (analysis, feasibility,
lowering, greedy and CP-SAT scheduling, allocation, the configuration document); and the
equivalence run on its own (the VM and the pipeline model on random_packets(2000, seed=1)).
Best of ``--repeat`` runs each. Wall-clock numbers depend on the machine: read the ratios.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import best_of  # noqa: E402
from ebpf.loader.elf import load  # noqa: E402
from offload.mapper import map_program  # noqa: E402

CORPUS = ROOT / "build" / "xdp"


def largest() -> tuple[Path, str]:
    """(object, program) with the most instruction slots in the built corpus."""
    best: tuple[int, Path, str] | None = None
    for path in sorted(CORPUS.glob("*.o")):
        for prog in load(path).programs:
            if best is None or prog.num_slots > best[0]:
                best = (prog.num_slots, path, prog.name)
    if best is None:
        raise SystemExit("build the corpus first (make corpus)")
    return best[1], best[2]


def largest_full(target: str) -> tuple[Path, str] | None:
    """The program with the most slots that maps whole (verdict full) on ``target``."""
    found = []
    for path in sorted(CORPUS.glob("*.o")):
        for prog in load(path).programs:
            found.append((prog.num_slots, path, prog.name))
    for _, path, name in sorted(found, reverse=True):
        if map_program(path, target, name, equivalence=False, time_limit_s=2).verdict == "full":
            return path, name
    return None


def bench(path: Path, program: str, target: str, repeat: int, time_limit: float) -> None:
    slots = load(path).get_program(program).num_slots
    load_s, _ = best_of(lambda: load(path), repeat)
    map_s, report = best_of(lambda: map_program(path, target, program, equivalence=False,
                                              time_limit_s=time_limit), repeat)
    full_s, full = best_of(lambda: map_program(path, target, program,
                                             time_limit_s=time_limit), 1)
    eq_s = max(0.0, full_s - map_s)
    print(f"{program} ({path.name}, {slots} slots) on {target}: {report.verdict}, "
          f"{report.stages} stages (greedy {report.greedy_stages}, solver "
          f"{report.solver_stages}), equivalence "
          f"{'holds' if full.equivalence and full.equivalence['ok'] else 'not proven'}")
    print(f"  {'load':<32} {load_s * 1e3:>10.1f} ms {1.0:>9.1f}x")
    print(f"  {'map (no equivalence)':<32} {map_s * 1e3:>10.1f} ms {map_s / load_s:>9.1f}x")
    print(f"  {'equivalence (2000 packets)':<32} {eq_s * 1e3:>10.1f} ms "
          f"{eq_s / load_s:>9.1f}x")
    print(f"  {'map + equivalence':<32} {full_s * 1e3:>10.1f} ms {full_s / load_s:>9.1f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="pipe")
    ap.add_argument("--program", metavar="OBJ[:NAME]",
                    help="default: the largest program, and the largest that maps whole")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT limit, seconds")
    args = ap.parse_args(argv)
    if args.program:
        obj, _, name = args.program.partition(":")
        runs = [(Path(obj), name or load(obj).programs[0].name)]
    else:
        runs = [largest()]
        whole = largest_full(args.target)
        if whole is not None and whole != runs[0]:
            runs.append(whole)
    for path, program in runs:
        bench(path, program, args.target, args.repeat, args.time_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
