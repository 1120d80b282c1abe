"""The calibration table: every published microbenchmark against the cost models' value.

    .venv/bin/python bench/calibration.py [--corpus build/xdp]

Computed from the code (``hw.cost.calibration``), not copied: docs/calibration.md is this
script's output with its explanation. Calibrated targets (host, host-hxdp) must stay within
5 % (tests/hw/cost/test_calibration.py); the others show how far they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hw.cost.calibration import TOLERANCE, all_points, markdown  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(ROOT / "build" / "xdp"),
                        help="built corpus for the hXDP points (default: build/xdp)")
    args = parser.parse_args(argv)
    points = all_points(args.corpus)
    print(markdown(points))
    bad = [p for p in points if p.calibrated and p.error is not None
           and abs(p.error) > TOLERANCE]
    worst = max((abs(p.error) for p in points if p.calibrated and p.error is not None),
                default=0.0)
    print(f"\ncalibrated points: {sum(p.calibrated for p in points)}, worst error "
          f"{100 * worst:.1f} % (tolerance {100 * TOLERANCE:.0f} %), {len(bad)} outside")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
