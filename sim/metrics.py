"""What a run measured: throughput, losses by place and cause, latency, utilisation.

``summarize`` reads a ``Workload`` and the ``SimResult`` of either engine and returns a
JSON-ready dict (plain ints, floats, strings, lists, dicts). Definitions:

- offered: the traffic's mean rate (nominal from the spec) and as generated, ``(N - 1) /
  (last arrival - first arrival)``;
- achieved: packets the system finished (left the NIC by verdict, or done on a host core)
  per second over their departure window, ``(P - 1) / (last departure - first departure)``,
  and the same in wire Gb/s (their frames plus preamble, SFD and gap);
- punted: packets the NIC punted to the host (whether or not a queue behind it lost them),
  and their share of all packets; ``finished_on.host_punted``: those the host finished;
- lost: packets a full queue dropped, by station (``link``, ``nic``, ``pcie``, ``host``)
  with the cause; the program's own XDP_DROP is a verdict, not a loss;
- latency: from arrival at the link to departure (NIC exit, or end of host processing),
  over finished packets, ns: p50, p99, p99.9 (nearest rank), mean, max;
- utilisation: busy time of a station's servers (sum of the services of the packets it
  admitted) over servers x the run's duration (first arrival to last departure);
- steady: the same over the packets that arrive after a warm-up (``warmup_ns`` from the first
  arrival, discarded): achieved Mpps, losses and their share, and ``converged`` when the
  achieved rates of the window's two halves (by arrival) agree within ``CONVERGED`` (2 %);
- host cores needed: the offered host load in Erlangs (offered packet rate x mean host
  service per offered packet, over the packets that go to the host) rounded up: the fewest
  cores that keep utilisation below 1, ignoring RSS imbalance.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from sim.model import (
    HOST,
    LINK,
    LOSS_CAUSES,
    MIN_FRAME_BYTES,
    NIC,
    PCIE,
    PS_PER_NS,
    STATION_NAMES,
    WIRE_OVERHEAD_BYTES,
    SimResult,
    Workload,
)

VERDICT_NAMES = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
QUANTILES = (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))
_CHUNK = 1 << 20
CONVERGED = 0.02  # modelling choice: two halves within 2 % count as a steady rate


def _rate(count: int, span_ps: int) -> float:
    """Events per second over a span: (count - 1) / span."""
    return (count - 1) / span_ps * 1e12 if count > 1 and span_ps > 0 else 0.0


def steady_state(workload: Workload, result: SimResult, warmup_ns: float) -> dict[str, Any]:
    """Achieved rate and losses over the packets arriving ``warmup_ns`` after the first, and
    whether the rate is steady over that window (see the module docstring)."""
    arrival_ps = workload.arrival_ns * PS_PER_NS
    n = len(arrival_ps)
    start = (int(arrival_ps[0]) if n else 0) + int(round(warmup_ns * PS_PER_NS))
    lo = int(np.searchsorted(arrival_ps, start, side="left"))
    depart, lost_at = result.depart_ps[lo:], result.lost_at[lo:]
    m = len(depart)

    def achieved(d: np.ndarray) -> float:
        d = d[d >= 0]
        return _rate(len(d), int(d.max() - d.min())) if len(d) > 1 else 0.0

    whole = achieved(depart)
    halves = [achieved(depart[: m // 2]), achieved(depart[m // 2:])]
    lost = int(np.count_nonzero(lost_at >= 0))
    top = max(halves)
    return {"warmup_ns": float(warmup_ns),
            "window_ns": float(arrival_ps[-1] - arrival_ps[lo]) / PS_PER_NS if m else 0.0,
            "packets": m, "achieved_mpps": whole / 1e6,
            "halves_mpps": [h / 1e6 for h in halves],
            "converged": m > 3 and top > 0 and abs(halves[0] - halves[1]) <= CONVERGED * top,
            "lost": lost, "loss_fraction": lost / m if m else 0.0}


def summarize(workload: Workload, result: SimResult, *,
              offered_pps: float | None = None,
              warmup_ns: float | None = None) -> dict[str, Any]:
    """The run's metrics, JSON-ready; with ``warmup_ns`` also the steady-state window."""
    n = workload.num_packets
    depart = result.depart_ps
    done = depart >= 0
    finished = int(done.sum())
    arrival_ps = workload.arrival_ns * PS_PER_NS
    first = int(arrival_ps[0]) if n else 0
    last_event = max(int(arrival_ps[-1]) if n else 0, int(depart.max()) if n else 0)
    duration_ps = max(1, last_event - first)

    lost_counts = np.array([np.count_nonzero(result.lost_at == k)
                            for k in (LINK, NIC, PCIE, HOST)], dtype=np.int64)
    lost = {STATION_NAMES[k]: int(lost_counts[k]) for k in (LINK, NIC, PCIE, HOST)}
    classes = workload.classes
    every = finished == n

    def pick(a: np.ndarray) -> np.ndarray:
        return a if every else a[done]

    per_rep = np.bincount(pick(classes.rep), minlength=len(classes.verdict))
    by_verdict = np.bincount(classes.verdict, weights=per_rep, minlength=5)
    verdicts = {VERDICT_NAMES.get(v, str(v)): int(c) for v, c in enumerate(by_verdict) if c}
    on_host = int(per_rep[classes.to_host].sum())
    punted_rep = (classes.punted if classes.punted is not None
                  else np.zeros(len(classes.verdict), dtype=bool))
    punted_done = int(per_rep[punted_rep].sum())
    punted_all = int(np.count_nonzero(punted_rep[classes.rep])) if n else 0

    measured_offered = _rate(n, int(arrival_ps[-1] - arrival_ps[0])) if n > 1 else 0.0
    offered = offered_pps if offered_pps is not None else measured_offered
    if finished:
        d = pick(depart)
        achieved = _rate(finished, int(d.max() - d.min()))
        mean_wire = _mean_wire(pick(workload.size))
        lat = d - pick(arrival_ps)
        ranks = [max(0, math.ceil(q * finished) - 1) for _, q in QUANTILES]  # nearest rank
        lat_max, lat_mean = float(lat.max()), float(lat.mean())
        lat.partition(ranks)
        latency = {name: float(lat[r]) / PS_PER_NS for (name, _), r in
                   zip(QUANTILES, ranks, strict=True)}
        latency.update(mean=lat_mean / PS_PER_NS, max=lat_max / PS_PER_NS)
    else:
        achieved, mean_wire, latency = 0.0, 0.0, {}
    offered_wire = _mean_wire(workload.size) if n else 0.0

    busy, host_load_ps = _busy(workload, result)
    util: dict[str, Any] = {"link": busy["link"] / duration_ps}
    if workload.nic:
        util["nic"] = busy["nic"] / (workload.nic.servers * duration_ps)
    if workload.pcie:
        util["pcie"] = busy["pcie"] / duration_ps
    if workload.host:
        cores = [b / duration_ps for b in busy["host"]]
        util["host_cores"] = cores
        util["host_mean"] = float(np.mean(cores))
    erlangs = offered * host_load_ps / n / 1e12 if n else 0.0
    return {
        "packets": n,
        "offered": {"mpps": offered / 1e6, "gbps": offered * offered_wire * 8 / 1e9,
                    "generated_mpps": measured_offered / 1e6},
        "achieved": {"mpps": achieved / 1e6, "gbps": achieved * mean_wire * 8 / 1e9},
        "finished": finished,
        "finished_on": {"nic": finished - on_host, "host": on_host,
                        "host_punted": punted_done},
        "punted": {"packets": punted_all, "fraction": punted_all / n if n else 0.0},
        "verdicts": verdicts,
        "lost": {**lost, "total": int(lost_counts.sum())},
        "loss_causes": {STATION_NAMES[k]: LOSS_CAUSES[k] for k in (LINK, NIC, PCIE, HOST)},
        "latency_ns": latency,
        "utilisation": util,
        "host_load_erlangs": erlangs,
        "host_cores_needed": math.ceil(erlangs - 1e-9) if erlangs > 0 else 0,
        "duration_ns": duration_ps / PS_PER_NS,
        "engine": result.engine,
        "wall_s": result.wall_s,
        "simulated_pps": n / result.wall_s if result.wall_s > 0 else None,
    } | ({"steady": steady_state(workload, result, warmup_ns)} if warmup_ns is not None and n
         else {})


def _mean_wire(size: np.ndarray) -> float:
    """Mean wire bytes of frames (padding, preamble, SFD and gap included)."""
    return float(np.maximum(size, MIN_FRAME_BYTES).mean()) + WIRE_OVERHEAD_BYTES


def _busy(workload: Workload, result: SimResult) -> tuple[dict[str, Any], int]:
    """Busy ps per station (host: per core) and the host service of every packet that goes
    to the host, in chunks to bound memory."""
    cores = workload.host.cores if workload.host else 0
    busy: dict[str, Any] = {"link": 0, "nic": 0, "pcie": 0, "host": [0] * cores}
    host_load = 0
    for lo in range(0, workload.num_packets, _CHUNK):
        hi = min(workload.num_packets, lo + _CHUNK)
        sv = workload.services(lo, hi)
        lost = result.lost_at[lo:hi]
        busy["link"] += int(sv.link_ps[lost != LINK].sum())
        reached = lost != LINK
        if sv.nic_ps is not None:
            busy["nic"] += int(sv.nic_ps[reached & (lost != NIC)].sum())
            reached &= lost != NIC
        if sv.host_ps is not None:
            host_load += int(sv.host_ps[sv.to_host].sum())
        reached &= sv.to_host
        if sv.pcie_ps is not None:
            busy["pcie"] += int(sv.pcie_ps[reached & (lost != PCIE)].sum())
            reached &= lost != PCIE
        if sv.host_ps is not None:
            ok = reached & (lost != HOST)
            per_core = np.bincount(sv.core[ok], weights=sv.host_ps[ok].astype(np.float64),
                                   minlength=cores)
            for c in range(cores):
                busy["host"][c] += int(round(per_core[c]))
    return busy, host_load


@contextmanager
def progress_bar(total: int, label: str, *, min_total: int = 200_000,
                 enabled: bool | None = None) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr for long runs (``total >= min_total`` packets, stderr a
    terminal); yields the ``advance(n)`` callback the engines take, or None."""
    if enabled is None:
        enabled = total >= min_total and sys.stderr.isatty()
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    task = progress.add_task(label, total=total)
    with progress:
        yield lambda k: progress.advance(task, k)
