"""`offload sweep SPEC.toml -o DIR`: a design-space sweep (``offload.sweep``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ebpf.display import printable


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"expected 1 to 256, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sweep`` to the ``offload`` subcommands."""
    p = sub.add_parser(
        "sweep", help="design-space sweep: programs x targets x parameters x traffic on Dask",
        description="Map and simulate every point of a sweep specification (TOML) on a Dask "
                    "cluster; results.parquet, summary.md and plots in the output folder. "
                    "Finished points are reused by content hash. Exit status 1 when a point "
                    "failed (its row says why), 2 on a bad spec.")
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep specification")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running dask.distributed scheduler, e.g. tcp://HOST:8786 "
                        "(default: a local cluster)")
    p.add_argument("--workers", type=_workers, default=2, metavar="N",
                   help="worker processes of the local cluster (default 2)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_sweep)


def _text(summary: dict[str, Any]) -> None:
    print(f"{summary['points']} points: {summary['computed']} computed, {summary['reused']} "
          f"reused, {summary['failed']} failed ({summary['engine']}, "
          f"{summary['wall_s']:.1f} s)")
    for row in summary["rows"]:
        if row["error"]:
            print(printable(f"  FAILED {row['program']} on {row['target']} {row['params']} "
                            f"{row['traffic']}: {row['error']}"))
    print(f"results: {printable(summary['results'])}")
    print(f"summary: {printable(summary['summary'])}")


def cmd_sweep(args: argparse.Namespace) -> int:
    from offload.sweep import load_spec, run_sweep

    spec = load_spec(args.spec)
    summary = run_sweep(spec, args.output, scheduler=args.scheduler, workers=args.workers)
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        _text(summary)
    return 1 if summary["failed"] else 0
