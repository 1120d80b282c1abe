"""The report's simulation runs: throughput against frame size, and a latency distribution.

Per program and target: one run per frame size at the target's line rate (``<size>B@100%``;
every built-in target but nfp (40 Gb/s) and hxdp (10 Gb/s) runs at 100 Gb/s), and one run of
the latency traffic (default IMIX at line rate) whose per-packet latencies give the CDF.
Runs go through ``sim.scenario.run_prepared`` as ``offload sim`` does: ``packets`` per run,
or (``packets`` None) the simulator's steady-state run length; the latency CDF re-runs the
prepared workload on the fast engine for its departure times (``sim.engine_fast.run``:
deterministic, the same answer) since the report dict keeps only quantiles. The punted fraction is the share of generated packets whose representative
the NIC punted (``Prepared.outcomes[rep].punted``).

The NIC cost of each target comes from the caller (``nic_costs``: the report's mapped cost
of pipelines, ``offload.report.mapping.nic_cost``) and every run records it (``nic_cost``:
its numbers and ``source``). One ``sim.scenario.RunCache`` serves all runs of a program, so a
representative packet is timed with BPF_PROG_TEST_RUN once, whatever the target and size
(``kernel_timed_packets`` counts the packets actually timed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ebpf.errors import EbpfError
from hw.errors import HwError
from sim.errors import SimError

DEFAULT_SIZES = (64, 128, 256, 512, 1024, 1518)
DEFAULT_LATENCY_TRAFFIC = "imix@100%"
CDF_POINTS = 160
_KEEP_METRICS = ("packets", "offered", "achieved", "finished", "finished_on", "verdicts",
                 "lost", "latency_ns", "utilisation", "host_cores_needed",
                 "host_load_erlangs", "duration_ns", "steady")


def size_traffic(size: int) -> str:
    """The sweep's traffic spec for one frame size: back to back at line rate."""
    return f"{size}B@100%"


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def latency_cdf(arrival_ns: np.ndarray, depart_ps: np.ndarray, points: int = CDF_POINTS
                ) -> list[list[float]]:
    """``[[latency ns, fraction of finished packets <= it], ...]``: ``points`` quantiles,
    denser in the tail (half of them above the 90th percentile); lost packets left out."""
    done = depart_ps >= 0
    if not done.any():
        return []
    lat = np.sort(depart_ps[done] / 1000.0 - arrival_ns[done].astype(np.float64))
    n = len(lat)
    body = np.linspace(0.0, 0.9, points // 2, endpoint=False)
    tail = 1.0 - np.geomspace(0.1, 1.0 / max(n, 10), points - points // 2)
    qs = np.unique(np.concatenate([body, tail, [1.0]]))
    idx = np.clip(np.ceil(qs * n).astype(int) - 1, 0, n - 1)
    return [[round(float(lat[i]), 3), round(float((i + 1) / n), 6)] for i in idx]


def run_one(scenario: Any, *, cdf: bool = False, cache: Any = None) -> dict[str, Any]:
    """One simulation run: the metrics the report keeps, the punted fraction, the NIC cost
    it used, the model's assumptions, and (``cdf``) the latency CDF; ``cache`` is a
    ``sim.scenario.RunCache`` shared with other runs. Errors become ``{"error": one line}``."""
    from offload.sim_cost import mapped_nic_cost
    from sim import engine_fast
    from sim.scenario import run_prepared

    try:
        # sim.scenario.run: without a packet count, the steady-state run length
        prep, report = run_prepared(scenario, cache=cache, nic_cost_for=mapped_nic_cost,
                                    progress_enabled=False)
    except (SimError, EbpfError, HwError) as exc:
        return {"error": _one_line(exc)}
    metrics = {k: report["metrics"][k] for k in _KEEP_METRICS if k in report["metrics"]}
    punted = np.array([o.punted for o in prep.outcomes], dtype=bool)
    assert prep.behaviour is not None
    klass = prep.behaviour.klass
    out: dict[str, Any] = {
        "metrics": metrics,
        "punted_fraction": float(punted[klass].mean()) if len(klass) else 0.0,
        "punted_packets": int(punted[klass].sum()),
        "nic_cost": report.get("nic_cost"),
        "line_rate_gbps": float(prep.target.line_rate_gbps),
        "host_cost_source": prep.host_cost_source,
        "assumptions": report["assumptions"],
        "classes": len(prep.outcomes),
        "executor": prep.behaviour.executor,
    }
    if cdf:
        result = engine_fast.run(prep.workload)
        out["latency_cdf"] = latency_cdf(prep.workload.arrival_ns, result.depart_ps)
    return out


def simulate_program(path: str, program: str, maps: str | None, targets: Sequence[Any], *,
                     packets: int | None, seed: int, sizes: Sequence[int] = DEFAULT_SIZES,
                     latency_traffic: str = DEFAULT_LATENCY_TRAFFIC,
                     target_files: Sequence[str] = (),
                     nic_costs: dict[str, Any] | None = None,
                     cache: Any = None,
                     step: Callable[[str], None] | None = None,
                     executor: str = "auto") -> dict[str, Any]:
    """Every run for one program: ``{"sweep": [...], "latency": [...]}``, one entry per
    (target, size) and per target; ``packets`` None: each run at steady-state length (the
    simulator's default run length). ``nic_costs`` maps a target name to its ``NicCost``
    (default: the simulator's own, the mapping on a pipeline; each run's ``nic_cost`` says
    which). ``cache``: a ``sim.scenario.RunCache`` for every run (default: a new one)."""
    from sim.scenario import RunCache, Scenario

    cache = cache if cache is not None else RunCache()
    timed_before = cache.timed
    sweep, latency = [], []
    for t in targets:
        base: dict[str, Any] = {"program": path, "program_name": program, "maps": maps,
                                "target": t.name, "target_files": tuple(target_files),
                                "packets": packets, "seed": seed, "executor": executor}
        cost = (nic_costs or {}).get(t.name)
        if cost is not None:
            base["nic_cost"] = cost
        for size in sizes:
            traffic = size_traffic(size)
            if step:
                step(f"{program}: sim {t.name} {traffic}")
            res = run_one(Scenario(traffic=traffic, **base), cache=cache)
            sweep.append({"target": t.name, "size": size, "traffic": traffic, **res})
        if step:
            step(f"{program}: sim {t.name} {latency_traffic}")
        res = run_one(Scenario(traffic=latency_traffic, **base), cdf=True, cache=cache)
        latency.append({"target": t.name, "traffic": latency_traffic, **res})
    return {"packets": packets, "seed": seed, "sizes": list(sizes),
            "latency_traffic": latency_traffic, "sweep": sweep, "latency": latency,
            "kernel_timed_packets": cache.timed - timed_before}


def count_runs(num_targets: int, sizes: Sequence[int]) -> int:
    """Progress steps ``simulate_program`` reports for ``num_targets`` targets."""
    return num_targets * (len(sizes) + 1)
