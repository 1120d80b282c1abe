"""The report's plots as SVG text (matplotlib, Agg backend, text as paths: no font needed
at view time; fixed hash salt and no date, so the same data gives the same bytes).

- ``throughput_svg``: achieved Mpps and Gb/s against frame size, per target, with each
  target's line rate (dashed);
- ``latency_cdf_svg``: the latency CDF of the latency-traffic run, per target;
- ``utilisation_svg``: the mapper's per-stage resource use against capacity when a stage map
  is available, else the simulator's utilisation per station (link, NIC, PCIe, host cores);
- ``overview_svg``: programs x targets, achieved Mpps at the smallest frame size.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from ebpf.display import printable

WIRE_OVERHEAD_BYTES = 20  # preamble + SFD + inter-frame gap (IEEE 802.3)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    # Names from objects and profiles are drawn through printable() and never parsed as
    # mathtext ('$' pairs): no plot here uses mathtext.
    plt.rcParams.update({"svg.hashsalt": "offload-report", "svg.fonttype": "path",
                         "font.size": 9, "axes.grid": True, "grid.alpha": 0.3,
                         "text.parse_math": False})
    return plt


def _svg(fig: Any) -> str:
    from matplotlib import pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    i = text.find("<svg")
    return text[i:] if i >= 0 else text


def target_colors(names: Sequence[str]) -> dict[str, Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def _empty(message: str, size: tuple[float, float] = (6.0, 2.0)) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=size)
    ax.axis("off")
    ax.text(0.5, 0.5, printable(message), ha="center", va="center", wrap=True)
    return _svg(fig)


def throughput_svg(sim: dict[str, Any] | None, targets: Sequence[dict[str, Any]],
                   title: str = "") -> str:
    """Achieved Mpps (left) and Gb/s (right) against frame size, per target."""
    if not sim or not sim.get("sweep"):
        return _empty("no simulation runs")
    plt = _plt()
    names = [t["name"] for t in targets]
    colors = target_colors(names)
    rates = {t["name"]: t["line_rate_gbps"] for t in targets}
    fig, (ax_p, ax_g) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    sizes = sorted(sim["sizes"])
    for name in names:
        runs = sorted((r for r in sim["sweep"] if r["target"] == name and "error" not in r),
                      key=lambda r: r["size"])
        if not runs:
            continue
        xs = [r["size"] for r in runs]
        ax_p.plot(xs, [r["metrics"]["achieved"]["mpps"] for r in runs], marker="o", ms=3,
                  color=colors[name], label=printable(name))
        ax_g.plot(xs, [r["metrics"]["achieved"]["gbps"] for r in runs], marker="o", ms=3,
                  color=colors[name], label=printable(name))
    drawn: set[float] = set()
    label = "line rate"
    for name in names:
        gbps = rates.get(name)
        if gbps is None or gbps in drawn or not any(r["target"] == name for r in sim["sweep"]):
            continue
        drawn.add(gbps)
        fine = [sizes[0] + (sizes[-1] - sizes[0]) * i / 200 for i in range(201)]
        ax_p.plot(fine, [gbps * 1e3 / ((s + WIRE_OVERHEAD_BYTES) * 8) for s in fine],
                  ls="--", lw=0.8, color="#455a64", label=label if len(drawn) == 1 else None)
        ax_g.axhline(gbps, ls="--", lw=0.8, color="#455a64",
                     label=label if len(drawn) == 1 else None)
        ax_p.annotate(f"{gbps:g}G", (fine[-1], gbps * 1e3 / ((fine[-1] + WIRE_OVERHEAD_BYTES)
                                                          * 8)),
                      xytext=(3, 0), textcoords="offset points", fontsize=7, va="center",
                      color="#455a64")
        ax_g.annotate(f"{gbps:g}G", (sizes[-1], gbps), xytext=(3, 2),
                      textcoords="offset points", fontsize=7, color="#455a64")
    for ax, unit in ((ax_p, "achieved Mpps"), (ax_g, "achieved Gb/s (wire)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("frame size (B)")
        ax.set_ylabel(unit)
    ax_p.set_yscale("log")
    ax_g.set_ylim(bottom=0)
    ax_g.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    fig.suptitle(printable(title) or "throughput against frame size, at each target's line rate")
    return _svg(fig)


def latency_cdf_svg(sim: dict[str, Any] | None, targets: Sequence[dict[str, Any]],
                    title: str = "") -> str:
    """Latency CDF (log ns) of the latency-traffic run, per target."""
    runs = [r for r in (sim or {}).get("latency", []) if r.get("latency_cdf")]
    if not runs:
        return _empty("no latency distribution (simulation not run or failed)")
    plt = _plt()
    colors = target_colors([t["name"] for t in targets])
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for r in runs:
        pts = r["latency_cdf"]
        ax.step([max(p[0], 1e-3) for p in pts], [p[1] for p in pts], where="post",
                color=colors.get(r["target"]), label=printable(r["target"]))
    ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("latency, arrival to departure (ns)")
    ax.set_ylabel("fraction of packets")
    ax.legend(loc="lower right", fontsize=8)
    traffic = runs[0].get("traffic", "")
    ax.set_title(printable(title or f"latency CDF, {traffic}"))
    return _svg(fig)


def utilisation_svg(program: dict[str, Any], targets: Sequence[dict[str, Any]]
                    ) -> tuple[str, str]:
    """(SVG, what it shows: ``stage map`` or ``simulator``)."""
    maps = [(f["target"], f["stage_map"]) for f in program.get("feasibility", [])
            if (f.get("stage_map") or {}).get("available") and f["stage_map"].get("stages")]
    plt = _plt()
    if maps:
        fig, axes = plt.subplots(len(maps), 1, figsize=(9.0, 2.8 * len(maps)), squeeze=False)
        for ax, (name, sm) in zip(axes[:, 0], maps, strict=True):
            cap = sm.get("capacity", {})
            resources = [r for r in cap if cap[r] and any(s["usage"].get(r)
                                                          for s in sm["stages"])]
            n = max(1, len(resources))
            width = 0.8 / n
            for k, r in enumerate(resources):
                xs = [s["stage"] + (k - (n - 1) / 2) * width for s in sm["stages"]]
                ax.bar(xs, [s["usage"].get(r, 0) / cap[r] for s in sm["stages"]], width,
                       label=r)
            ax.axhline(1.0, ls="--", lw=0.8, color="#455a64")
            ax.set_xlabel("logical stage")
            ax.set_ylabel("used / capacity")
            ax.set_title(f"{printable(name)}: per-stage resources ({sm.get('stages_used', '?')} stages, "
                         f"{sm.get('status', '')})")
            ax.legend(fontsize=7, ncol=min(5, n), loc="upper right")
        return _svg(fig), "stage map"
    runs = [r for r in (program.get("simulation") or {}).get("latency", [])
            if "error" not in r]
    if not runs:
        return _empty("no stage map (mapper unavailable) and no simulation"), "none"
    stations = ("link", "nic", "pcie", "host_mean")
    fig, ax = plt.subplots(figsize=(8.0, 3.4))
    n = len(runs)
    width = 0.8 / n
    colors = target_colors([t["name"] for t in targets])
    for k, r in enumerate(runs):
        util = r["metrics"]["utilisation"]
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(stations))]
        ax.bar(xs, [util.get(s, 0.0) or 0.0 for s in stations], width,
               color=colors.get(r["target"]), label=printable(r["target"]))
    ax.set_xticks(range(len(stations)), ["link", "NIC", "PCIe", "host cores (mean)"])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("utilisation")
    ax.legend(fontsize=8, ncol=min(6, n), loc="upper right")
    ax.set_title(f"simulator utilisation per station, {runs[0].get('traffic', '')} "
                 "(stage map unavailable)")
    return _svg(fig), "simulator"


def overview_svg(rows: Sequence[dict[str, Any]], programs: Sequence[str],
                 targets: Sequence[str], size: int | None) -> str:
    """Heat map: achieved Mpps at ``size`` B per program (rows) and target (columns), the
    verdict under each number."""
    if not rows or size is None:
        return _empty("no simulation runs to compare")
    plt = _plt()
    from matplotlib.colors import LogNorm

    cell = {(r["id"], r["target"]): r for r in rows}
    data = [[(cell.get((p, t)) or {}).get("sim_mpps_small") for t in targets] for p in programs]
    vals = [v for row in data for v in row if v]
    fig, ax = plt.subplots(figsize=(1.3 * len(targets) + 3.0, 0.36 * len(programs) + 1.4))
    grid = [[v if v else math.nan for v in row] for row in data]
    if vals:
        im = ax.imshow(grid, aspect="auto", cmap="viridis",
                       norm=LogNorm(vmin=max(min(vals), 1e-3), vmax=max(vals) * 1.0001))
        fig.colorbar(im, ax=ax, label=f"achieved Mpps at {size} B", shrink=0.8)
    for i, p in enumerate(programs):
        for j, t in enumerate(targets):
            r = cell.get((p, t))
            if r is None:
                continue
            v = r.get("sim_mpps_small")
            text = (f"{v:.3g}" if v else "-") + f"\n{r['verdict']}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                    color="white" if v and vals and v < math.sqrt(max(vals) * min(vals))
                    else "black")
    ax.set_xticks(range(len(targets)), [printable(t) for t in targets])
    ax.set_yticks(range(len(programs)), [printable(p) for p in programs], fontsize=7.5)
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.grid(False)
    ax.set_title(f"achieved Mpps at {size} B line rate, and feasibility", pad=22)
    return _svg(fig)
