"""Run a sweep: reuse what is finished, compute the rest on Dask, write the results.

Every point of the spec is keyed by its content (``offload.sweep.point.point_key``). Points
whose row is already in ``DIR/points`` are reused; the others go to the engine, and each row
is written the moment it arrives. A point that fails is a row with its reason. Then the
results table, the summary and the plots are written from the spec's rows (and only
those: rows of other specs in the same folder are kept but not reported).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from offload.errors import SweepError
from offload.sweep import results
from offload.sweep.engine import dask_client, describe, run_all
from offload.sweep.point import code_version, point_key, run_point, versions
from offload.sweep.spec import Point, SweepSpec


def _failed_row(point: Point, key: str, error: str) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in results.COLUMNS}
    row.update(key=key, object=point.program.object, program=point.program.program or
               os.path.basename(point.program.object), maps=point.program.maps or "",
               target=point.target, kind=point.kind,
               params=json.dumps(dict(point.params), sort_keys=True),
               traffic=point.traffic, seed=point.seed, versions=versions(), error=error)
    return row


@contextmanager
def _progress(total: int, enabled: bool | None):
    """A rich progress bar on stderr (points done / failed / reused, ETA)."""
    import sys

    from rich.console import Console

    from offload.console import progress_bar

    console = Console(stderr=True)
    show = console.is_terminal if enabled is None else enabled
    if not show:
        yield lambda **_: None
        return
    with progress_bar("sweep", "{task.fields[status]}", console=console,
                      transient=not sys.stderr.isatty()) as bar:
        task = bar.add_task("sweep", total=total, status="")

        def update(**fields: Any) -> None:
            bar.update(task, **fields)

        yield update


def run_sweep(spec: SweepSpec, out_dir: str | os.PathLike[str], *,
              scheduler: str | None = None, workers: int = 2,
              progress: bool | None = None) -> dict[str, Any]:
    """Run ``spec`` into ``out_dir``; the summary (counts, engine, paths, rows)."""
    out = Path(out_dir)
    try:
        (out / "points").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"{out}: cannot create the output folder: "
                         f"{exc.strerror or exc}") from exc
    version = code_version()
    keys = [point_key(p, version) for p in spec.points]
    if len(set(keys)) != len(keys):
        raise SweepError(f"{spec.source}: two points have the same inputs (a program or "
                         f"a traffic spec listed twice?)")
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for point, key in zip(spec.points, keys, strict=True):
        row = results.read_point(out, key)
        if row is not None and not row.get("error"):
            rows[key] = row
        else:
            todo.append((point, key))
    counts = {"points": len(keys), "reused": len(rows), "computed": 0, "failed": 0}
    engine = describe(scheduler, workers)
    started = time.perf_counter()

    def status() -> str:
        return (f"done {counts['computed']} · failed {counts['failed']} · reused "
                f"{counts['reused']}")

    with _progress(len(keys), progress) as update:
        update(completed=len(rows), status=status())
        if todo:
            with dask_client(scheduler, workers) as client:
                for outcome in run_all(client, run_point, todo, [k for _, k in todo]):
                    point, key = todo[outcome.index]
                    if outcome.error is None:
                        row = outcome.result
                        counts["computed"] += 1
                    else:
                        row = _failed_row(point, key, outcome.error)
                        counts["failed"] += 1
                    results.write_point(out, row)
                    rows[key] = row
                    update(advance=1, status=status())
    ordered = [rows[k] for k in keys]
    results.write_table(out / "results.parquet", ordered)
    plots = results.write_plots(out, ordered)
    summary_md = results.summary_markdown(ordered, counts, engine, plots)
    from offload.cli import write_atomically

    write_atomically(out / "summary.md", summary_md)
    return {"spec": spec.source, "engine": engine, **counts,
            "wall_s": time.perf_counter() - started,
            "results": str(out / "results.parquet"), "summary": str(out / "summary.md"),
            "plots": [str(out / p) for p in plots], "rows": ordered}
