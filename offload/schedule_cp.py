"""The CP-SAT model behind ``offload.schedule.solve_schedule`` (OR-Tools, imported lazily).

Formulation, for units u with per-stage demand d[u][r], stages s = 0 .. H-1 (H the horizon:
the greedy stage count, or the allowed logical stages when the greedy schedule exceeds them):

- ``x[u,s]`` boolean, for s in [earliest(u), H - 1 - height(u)] (the longest dependency path
  from a source and to a sink, in stages); ``sum_s x[u,s] == 1``;
  ``stage[u] = sum_s s * x[u,s]`` (integer);
- a dependency a -> b of least gap g (1 for match and action, 0 for successor and reverse
  match): ``stage[b] >= stage[a] + g``;
- a banked resource r (tables, gateways, ALU slots, stateful units, externs), each logical
  stage s: ``sum_u d[u][r] * x[u,s] <= cap[r]``;
- a shared resource (SRAM, TCAM blocks), each physical stage p, over the passes:
  ``sum_u sum_{s = p mod S} d[u][r] * x[u,s] <= cap[r]``;
- ``stages`` integer in [lower bound, H], ``stages >= stage[u] + 1 + height(u)``;
  minimise ``stages``.

The search is deterministic: the same problem gives the same assignment on every run
(interleaved workers, a limit in deterministic time; see ``solve``).

The greedy assignment is the hint (``x`` and ``stage`` values), and H its stage count, so
the first solution is at least as good as greedy. Capacity rows are only written where the
units that could sit in the stage could overfill it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offload.schedule import Problem

WALL_BACKSTOP = 20  # wall-clock cap, in multiples of the deterministic limit (modelling choice)


@dataclass(frozen=True)
class CpResult:
    """What the solver gave: a stage per unit index or None, and how it went."""

    stage: list[int] | None
    optimal: bool
    infeasible: bool
    """Proven: no schedule within the horizon."""
    bound: int
    """Best lower bound on the stage count the solver proved (or the problem's own)."""
    wall_s: float
    message: str


def solve(p: Problem, horizon: int, *, hint: Sequence[int] | None, time_limit_s: float,
          workers: int = 8, seed: int = 0) -> CpResult:
    """Minimise the stages of problem ``p`` within ``horizon`` logical stages."""
    from offload.schedule import SHARED_RESOURCES

    started = time.perf_counter()
    lower = p.lower_bound()
    try:
        from ortools.sat.python import cp_model
    except ImportError as exc:
        return CpResult(None, False, False, lower, 0.0,
                        f"OR-Tools CP-SAT is not available ({exc})")
    lo = p.earliest
    hi = [horizon - 1 - p.height[u] for u in range(p.n)]
    for u in range(p.n):
        if lo[u] > hi[u]:
            return CpResult(None, False, True, lower, time.perf_counter() - started,
                            f"unit {p.name(u)} needs stage >= {lo[u]} and <= {hi[u]}")

    m = cp_model.CpModel()
    x: dict[tuple[int, int], object] = {}
    stage = []
    for u in range(p.n):
        xs = []
        for s in range(lo[u], hi[u] + 1):
            x[u, s] = m.new_bool_var(f"x_{u}_{s}")
            xs.append(x[u, s])
        m.add_exactly_one(xs)
        sv = m.new_int_var(lo[u], hi[u], f"stage_{u}")
        m.add(sv == sum(s * x[u, s] for s in range(lo[u], hi[u] + 1)))
        stage.append(sv)
    for b in range(p.n):
        for a, gap in p.preds[b]:
            m.add(stage[b] >= stage[a] + gap)

    S = p.budget.physical_stages
    for r in p.resources:
        cap = p.budget.get_capacity(r)
        groups: dict[int, list[tuple[int, int]]] = {}
        for (u, s) in x:
            d = p.demand[r][u]
            if d:
                groups.setdefault(s % S if r in SHARED_RESOURCES else s, []).append((u, s))
        for members in groups.values():
            if sum(p.demand[r][u] for u, _ in members) > cap:
                m.add(sum(p.demand[r][u] * x[u, s] for u, s in members) <= cap)

    stages = m.new_int_var(min(lower, horizon), horizon, "stages")
    for u in range(p.n):
        m.add(stages >= stage[u] + 1 + p.height[u])
    m.minimize(stages)
    if hint is not None:
        for u in range(p.n):
            m.add_hint(stage[u], hint[u])
            for s in range(lo[u], hi[u] + 1):
                m.add_hint(x[u, s], hint[u] == s)
        m.add_hint(stages, max(hint, default=-1) + 1)

    solver = cp_model.CpSolver()
    limit = max(0.0, float(time_limit_s))
    # Same model, same answer: the workers' strategies are interleaved in fixed batches
    # (``interleave_search``: "the search is deterministic (independently of num_workers!)",
    # or-tools sat_parameters.proto) and the limit is counted in deterministic time, the
    # solver's work measure calibrated to about a second, not on the wall clock. The wall
    # clock only stops a run that is far slower than that calibration.
    solver.parameters.max_deterministic_time = limit
    solver.parameters.max_time_in_seconds = WALL_BACKSTOP * limit + 1.0
    solver.parameters.interleave_search = True
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(m)
    wall = solver.wall_time
    backstop = wall >= WALL_BACKSTOP * limit + 1.0
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        found = [int(solver.value(v)) for v in stage]
        bound = max(lower, int(round(solver.best_objective_bound)))
        return CpResult(found, status == cp_model.OPTIMAL, False, bound, wall,
                        f"CP-SAT {solver.status_name(status).lower()}"
                        + ("; stopped by the wall clock, not reproducible" if backstop else ""))
    if status == cp_model.INFEASIBLE:
        return CpResult(None, False, True, lower, wall,
                        f"CP-SAT: no schedule within {horizon} stages")
    if status == cp_model.UNKNOWN:
        return CpResult(None, False, False, lower, wall,
                        f"CP-SAT found no solution within the {time_limit_s:g} s time limit")
    return CpResult(None, False, False, lower, wall,
                    f"CP-SAT failed: {solver.status_name(status)} "
                    f"({m.validate() or 'no detail'})")
