"""A sweep's results: one JSON file per finished point, then the table, summary and plots.

``DIR/points/<key>.json`` is written (atomically) the moment a point finishes, so an
interrupted sweep keeps everything it finished and the next run reuses it. At the end the
rows of the spec's points become ``DIR/results.parquet`` (one row per point, the columns of
``COLUMNS``), ``DIR/summary.md`` and the plots in ``DIR/plots/``: achieved Mpps against each
swept parameter, and per program the Pareto front of resources (``offload.sweep.point``'s
``resources``: stages, threads, lanes or host cores) against achieved Mpps.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from ebpf.display import printable

# Column -> Arrow type name. A failed point has its inputs, its error, and nulls elsewhere.
COLUMNS: dict[str, str] = {
    "key": "string", "object": "string", "program": "string", "maps": "string",
    "target": "string", "kind": "string", "params": "string", "traffic": "string",
    "packets": "int64", "seed": "int64", "clock_mhz": "float64", "host_cores": "int64",
    "resources": "float64", "verdict": "string", "stages": "int64", "passes": "int64",
    "punted_share": "float64", "offered_mpps": "float64", "achieved_mpps": "float64",
    "lost": "int64", "p99_latency_ns": "float64", "host_cores_needed": "int64",
    "nic_share": "float64", "duration_ns": "float64", "wall_s": "float64",
    "versions": "string", "error": "string",
}


def point_path(out_dir: Path, key: str) -> Path:
    return out_dir / "points" / f"{key}.json"


def read_point(out_dir: Path, key: str) -> dict[str, Any] | None:
    """A finished point's row, or None (absent, or unreadable: then it is computed again)."""
    try:
        row = json.loads(point_path(out_dir, key).read_text())
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and row.get("key") == key else None


def write_point(out_dir: Path, row: dict[str, Any]) -> None:
    """Write one row whole or not at all."""
    from offload.cli import write_atomically

    path = point_path(out_dir, row["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(row, sort_keys=True, allow_nan=True))


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in COLUMNS.items()])
    table = pa.Table.from_pylist([{c: row.get(c) for c in COLUMNS} for row in rows],
                                 schema=schema)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_table(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _param_names(rows: list[dict[str, Any]]) -> list[str]:
    names: set[str] = set()
    for row in rows:
        names.update(json.loads(row["params"]))
    return sorted(names)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (resources, Mpps) points no other point beats: as fast with fewer resources or
    faster with as few. Sorted by resources."""
    front: list[tuple[float, float]] = []
    for res, mpps in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or mpps > front[-1][1]:
            if front and front[-1][0] == res:
                continue
            front.append((res, mpps))
    return front


def _fronts(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(resources, achieved Mpps) per (target, traffic): one front each, since resources
    are counted in a unit per target kind and traffic changes what a resource buys."""
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in sorted(rows, key=lambda r: (r["target"], r["traffic"])):
        out.setdefault((r["target"], r["traffic"]), []).append(
            (r["resources"], r["achieved_mpps"]))
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_plots(out_dir: Path, rows: list[dict[str, Any]]) -> list[str]:
    """PNG plots; returns their paths relative to ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if not r["error"]]
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in _param_names(ok):
        fig, ax = plt.subplots(figsize=(7, 4))
        series: dict[str, list[tuple[Any, float]]] = {}
        for r in ok:
            params = json.loads(r["params"])
            if name in params and isinstance(params[name], (int, float)):
                others = {k: v for k, v in params.items() if k != name}
                label = printable(f"{r['program']} {r['target']} {r['traffic']}") + (
                    f" {others}" if others else "")
                series.setdefault(label, []).append((params[name], r["achieved_mpps"]))
        if not series:
            plt.close(fig)
            continue
        for label, pts in sorted(series.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xlabel(name)
        ax.set_ylabel("achieved Mpps")
        ax.set_title(f"Achieved Mpps against {name}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="best")
        fig.tight_layout()
        rel = f"plots/mpps_vs_{_safe(name)}.png"
        fig.savefig(out_dir / rel, dpi=100)
        plt.close(fig)
        written.append(rel)
    for program in sorted({r["program"] for r in ok}):
        fig, ax = plt.subplots(figsize=(7, 4))
        mine = [r for r in ok if r["program"] == program]
        for (target, traffic), pts in _fronts(mine).items():
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, alpha=0.5,
                       label=f"{target} {traffic} points")
            front = pareto_front(pts)
            ax.step([p[0] for p in front], [p[1] for p in front], where="post",
                    label=f"{target} {traffic} Pareto front")
        ax.set_xlabel("resources (pipeline stages / NPU threads / VLIW lanes / host cores)")
        ax.set_ylabel("achieved Mpps")
        ax.set_title(f"{printable(program)}: resources against throughput")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        rel = f"plots/pareto_{_safe(program)}.png"
        fig.savefig(out_dir / rel, dpi=100)
        plt.close(fig)
        written.append(rel)
    return written


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return printable(value).replace("|", "\\|")


def summary_markdown(rows: list[dict[str, Any]], counts: dict[str, int], engine: str,
                     plots: list[str]) -> str:
    """The summary: counts, the engine, every row, the Pareto fronts, the plots."""
    lines = ["# Sweep summary", "",
             f"{counts['points']} points: {counts['computed']} computed, {counts['reused']} "
             f"reused, {counts['failed']} failed. Engine: {engine}.", "",
             "| program | target | params | traffic | verdict | stages | passes | punted | "
             "achieved Mpps | p99 latency ns | host cores needed | NIC share | error |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = sorted(rows, key=lambda r: (r["program"] or "", r["target"], r["params"],
                                        r["traffic"]))
    for r in order:
        cells = [r["program"], r["target"], r["params"], r["traffic"], r["verdict"],
                 r["stages"], r["passes"], r["punted_share"], r["achieved_mpps"],
                 r["p99_latency_ns"], r["host_cores_needed"], r["nic_share"], r["error"]]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## Pareto fronts (resources against achieved Mpps)", ""]
    ok = [r for r in rows if not r["error"]]
    for program in sorted({r["program"] for r in ok}):
        mine = [r for r in ok if r["program"] == program]
        for (target, traffic), pts in _fronts(mine).items():
            front = ", ".join(f"{res:g} -> {mpps:.2f} Mpps" for res, mpps in pareto_front(pts))
            lines.append(f"- {_cell(program)} on {_cell(target)}, {_cell(traffic)}: {front}")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
