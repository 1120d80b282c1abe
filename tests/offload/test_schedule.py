"""Scheduling units onto stages: greedy list scheduler, CP-SAT, recirculation and reports."""

from __future__ import annotations

import io
import json
import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from hw.pipeline.config import TargetParams
from hw.pipeline.timing import TimingModel
from hw.targets import load_target
from offload.errors import MapperError
from offload.schedule import (
    DEP_KINDS,
    SHARED_RESOURCES,
    STATUS_FALLBACK,
    STATUS_GREEDY,
    STATUS_INFEASIBLE,
    STATUS_OPTIMAL,
    Dependency,
    ScheduleError,
    StageBudget,
    Unit,
    budget_from_target,
    greedy_schedule,
    resource_table,
    solve_schedule,
    stage_timing,
)
from tests.budget import examples

PIPE = budget_from_target(load_target("pipe"))
SMALL = StageBudget(name="small", capacity={"tables": 2, "sram_blocks": 4, "gateways": 2},
                    physical_stages=8, stage_cycles=4)


def table(uid: str, label: str = "", **res: int) -> Unit:
    return Unit(uid, "table", res or {"tables": 1}, label)


def chain(n: int, kind: str, **res: int) -> tuple[list[Unit], list[Dependency]]:
    units = [table(f"t{i}", **res) for i in range(n)]
    return units, [Dependency(f"t{i}", f"t{i + 1}", kind) for i in range(n - 1)]


def check_valid(sched, units, deps, budget) -> None:
    """Every dependency gap and every stage's (or physical stage's) capacity holds."""
    a = sched.assignment
    assert set(a) == {u.id for u in units}
    for d in deps:
        assert a[d.dst] - a[d.src] >= d.min_gap, d
    S = budget.physical_stages
    use: dict[tuple[str, int], int] = {}
    for u in units:
        for r, v in u.resources.items():
            key = (r, a[u.id] % S if r in SHARED_RESOURCES else a[u.id])
            use[key] = use.get(key, 0) + v
    for (r, _), v in use.items():
        assert v <= budget.get_capacity(r), (r, v)


def brute_force(units, deps, budget, limit):
    """The least stage count <= limit of any valid assignment, by exhaustive search, or None."""
    S = budget.physical_stages
    ids = [u.id for u in units]

    def search(k: int) -> bool:
        stage: dict[str, int] = {}
        use: dict[tuple[str, int], int] = {}

        def place(i: int) -> bool:
            if i == len(units):
                return True
            u = units[i]
            for s in range(k):
                stage[u.id] = s
                ok = all(stage[d.dst] - stage[d.src] >= d.min_gap for d in deps
                         if d.src in stage and d.dst in stage)
                keys = [(r, s % S if r in SHARED_RESOURCES else s, v)
                        for r, v in u.resources.items() if v]
                if ok and all(use.get((r, p), 0) + v <= budget.get_capacity(r)
                              for r, p, v in keys):
                    for r, p, v in keys:
                        use[r, p] = use.get((r, p), 0) + v
                    if place(i + 1):
                        return True
                    for r, p, v in keys:
                        use[r, p] -= v
                del stage[u.id]
            return False

        return place(0)

    for k in range(1, limit + 1):
        if search(k):
            return k
    return None if ids else 0


# --- budgets -----------------------------------------------------------------------------

def test_budget_from_pipe_profile():
    """The pipe profile's per-stage resources, stage count and recirculation become the budget."""
    assert PIPE.capacity["tables"] == 4 and PIPE.capacity["sram_blocks"] == 16
    assert PIPE.capacity["tcam_blocks"] == 2 and PIPE.capacity["alu_slots"] == 32
    assert PIPE.capacity["externs.checksum"] == 1
    assert PIPE.physical_stages == 12 and PIPE.max_passes == 4 and PIPE.recirc_cycles == 8
    assert PIPE.max_logical_stages == 48


def test_budget_from_rmt_profile():
    """The RMT profile: 32 stages, 106 SRAM blocks, two passes, no bus (header per clock)."""
    rmt = budget_from_target(load_target("rmt"))
    assert rmt.physical_stages == 32 and rmt.capacity["sram_blocks"] == 106
    assert rmt.max_logical_stages == 64 and rmt.bus_bits is None


def test_budget_rejects_non_pipeline_target():
    """Only a pipeline profile has stages to schedule onto."""
    with pytest.raises(ScheduleError, match="expected a pipeline target, got a cpu target"):
        budget_from_target(load_target("host"))


# --- known optima ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["match", "action"])
@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_strict_chain_needs_one_stage_per_unit(kind, n):
    """A chain of n match (or action) dependencies needs n stages, greedy and solver alike."""
    units, deps = chain(n, kind)
    assert greedy_schedule(units, deps, PIPE).num_stages == n
    s = solve_schedule(units, deps, PIPE, time_limit_s=2)
    assert s.num_stages == n and s.status == STATUS_OPTIMAL
    assert [s.get_stage(f"t{i}") for i in range(n)] == list(range(n))


@pytest.mark.parametrize("n", [1, 4, 5, 10, 17])
def test_independent_tables_limited_by_tables_per_stage(n):
    """n independent tables need ceil(n / tables per stage) stages."""
    units = [table(f"t{i}") for i in range(n)]
    s = solve_schedule(units, [], PIPE, time_limit_s=2)
    assert s.num_stages == -(-n // 4) == s.greedy_stages
    check_valid(s, units, [], PIPE)


@pytest.mark.parametrize("kind", ["successor", "reverse_match"])
def test_successor_chain_packs_into_one_stage(kind):
    """Successor and reverse-match dependencies allow the same stage: a chain fits in one."""
    units, deps = chain(4, kind)
    s = solve_schedule(units, deps, PIPE, time_limit_s=2)
    assert s.num_stages == 1 and set(s.assignment.values()) == {0}
    assert all(d.gap == 0 and d.min_gap == 0 for d in s.dependencies)


def test_mixed_graph_known_optimum():
    """Gateway -succ-> two tables -match-> ALU -action-> stateful, plus 3 free tables: 3 stages."""
    units = [Unit("gw", "gateway", {"gateways": 1}), table("acl"), table("route"),
             Unit("rewrite", "alu", {"alu_slots": 3}),
             Unit("count", "stateful", {"stateful": 1, "sram_blocks": 1}),
             table("x1"), table("x2"), table("x3")]
    deps = [Dependency("gw", "acl", "successor"), Dependency("gw", "route", "successor"),
            Dependency("acl", "rewrite", "match"), Dependency("route", "rewrite", "match"),
            Dependency("rewrite", "count", "action")]
    s = solve_schedule(units, deps, PIPE, time_limit_s=2)
    assert s.num_stages == 3 and s.feasible
    assert s.get_stage("gw") == s.get_stage("acl") == 0 and s.get_stage("count") == 2
    check_valid(s, units, deps, PIPE)
    # 5 tables at 4 per stage: the free ones spill into stage 1 or 2
    assert s.stage_usage()[0]["tables"] == 4


def test_shared_sram_counts_every_pass():
    """SRAM is per physical stage: logical stages S apart share it (docs section 6)."""
    b = StageBudget(name="tiny", capacity={"tables": 4, "sram_blocks": 4}, physical_stages=2,
                    stage_cycles=4, recirc_allowed=True, recirc_cycles=8, max_passes=3)
    units, deps = chain(3, "match", tables=1, sram_blocks=2)
    s = solve_schedule(units, deps, b, time_limit_s=2)
    assert s.num_stages == 3 and s.passes == 2 and s.physical_usage("sram_blocks") == [4, 2]
    units, deps = chain(3, "match", tables=1, sram_blocks=3)
    s = solve_schedule(units, deps, b, time_limit_s=2)
    assert not s.feasible and "shared by all passes" in s.reason


# --- solver against greedy and against brute force ----------------------------------------

def suboptimal_for_greedy() -> tuple[list[Unit], list[Dependency]]:
    """Greedy puts the widest unit (acl) first in stage 0, so route and its counter spill.

    Capacity: 2 tables, 4 SRAM blocks per stage. Greedy: acl (2 tables, 3 SRAM) in stage 0;
    route (1 table, 4 SRAM) cannot join it: stage 1; count (1 SRAM, successor of route)
    cannot join route's full SRAM: stage 2 -> 3 stages. Optimal: route in stage 0, acl and
    count in stage 1 -> 2 stages.
    """
    units = [table("acl", "acl table", tables=2, sram_blocks=3),
             table("route", "route table", tables=1, sram_blocks=4),
             Unit("count", "stateful", {"sram_blocks": 1}, "counter += 1")]
    return units, [Dependency("route", "count", "successor")]


def test_greedy_suboptimal_solver_strictly_better():
    """On a graph where greedy's priority wastes a stage's SRAM, CP-SAT needs one stage less."""
    units, deps = suboptimal_for_greedy()
    g = greedy_schedule(units, deps, SMALL)
    assert g.status == STATUS_GREEDY and g.num_stages == 3
    s = solve_schedule(units, deps, SMALL, time_limit_s=5)
    assert s.status == STATUS_OPTIMAL and s.num_stages == 2
    assert s.greedy_stages == 3 and s.solver_stages == 2 and s.lower_bound == 2
    assert s.get_stage("route") == 0 and s.get_stage("acl") == s.get_stage("count") == 1
    check_valid(s, units, deps, SMALL)


def test_solver_fits_a_limit_greedy_exceeds():
    """With 2 stages allowed greedy's 3 is infeasible, while the solver's 2 fits."""
    units, deps = suboptimal_for_greedy()
    g = greedy_schedule(units, deps, SMALL, max_stages=2)
    assert not g.feasible and g.num_stages == 3 and "at most 2 allowed" in g.reason
    s = solve_schedule(units, deps, SMALL, max_stages=2, time_limit_s=5)
    assert s.feasible and s.num_stages == 2 and s.greedy_stages == 3


@st.composite
def dags(draw, max_units: int, physical: int, max_passes: int):
    """A random DAG of units on a small budget (dependencies from lower to higher index)."""
    n = draw(st.integers(1, max_units))
    units = [Unit(f"u{i}", "table",
                  {"tables": draw(st.integers(0, 2)), "sram_blocks": draw(st.integers(0, 4)),
                   "gateways": draw(st.integers(0, 2))}) for i in range(n)]
    deps = [Dependency(f"u{i}", f"u{j}", draw(st.sampled_from(DEP_KINDS)))
            for i in range(n) for j in range(i + 1, n) if draw(st.integers(0, 9)) < 3]
    budget = StageBudget(name="rand", capacity={"tables": 2, "sram_blocks": 4, "gateways": 2},
                         physical_stages=physical, stage_cycles=4, recirc_allowed=True,
                         recirc_cycles=8, max_passes=max_passes)
    return units, deps, budget


@settings(max_examples=examples(30), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(dags(max_units=14, physical=16, max_passes=1))
def test_solver_schedule_is_valid_on_random_dags(problem):
    """On random DAGs of up to 14 units the CP-SAT schedule keeps every gap and capacity,
    and its stage count is the greedy one's or the solver's own, reported as such."""
    units, deps, budget = problem
    g = greedy_schedule(units, deps, budget)
    s = solve_schedule(units, deps, budget, time_limit_s=2)
    assert s.greedy_stages == g.num_stages
    if s.feasible:
        check_valid(s, units, deps, budget)
        assert s.num_stages == max(s.assignment.values(), default=-1) + 1


TRAP_BUDGET = StageBudget(name="trap", capacity={"tables": 2, "sram_blocks": 4, "gateways": 2},
                          physical_stages=8, stage_cycles=4)


def greedy_traps(seed: int, tries: int) -> list[tuple[list[Unit], list[Dependency], int, int]]:
    """Random DAGs of 4-7 units on a budget of 2 tables, 4 SRAM blocks, 2 gateways per stage,
    kept when the greedy list scheduler needs more stages than the exhaustive optimum:
    (units, deps, greedy stages, optimum)."""
    rng = random.Random(seed)
    found = []
    for _ in range(tries):
        n = rng.randint(4, 7)
        units = [Unit(f"u{i}", "table", {"tables": rng.randint(0, 2),
                                         "sram_blocks": rng.randint(0, 4),
                                         "gateways": rng.randint(0, 2)}) for i in range(n)]
        deps = [Dependency(f"u{i}", f"u{j}", rng.choice(DEP_KINDS))
                for i in range(n) for j in range(i + 1, n) if rng.random() < 0.3]
        g = greedy_schedule(units, deps, TRAP_BUDGET).num_stages
        best = brute_force(units, deps, TRAP_BUDGET, g)
        if best is not None and best < g:
            found.append((units, deps, g, best))
    return found


def test_solver_reaches_the_optimum_where_greedy_does_not():
    """Generated graphs where greedy needs more stages than the brute-force optimum (Jose et
    al., NSDI 2015, report up to 38 % more on RMT): CP-SAT finds the optimum every time, its
    schedule is valid, and a second run gives the same assignment."""
    traps = greedy_traps(seed=1, tries=400)
    assert len(traps) >= 10, f"only {len(traps)} graphs where greedy is suboptimal"
    assert max(g / best for _, _, g, best in traps) >= 1.25  # greedy loses a stage in four
    for units, deps, g, best in traps:
        s = solve_schedule(units, deps, TRAP_BUDGET, time_limit_s=5)
        assert s.status == STATUS_OPTIMAL, s.message
        assert (s.greedy_stages, s.num_stages) == (g, best), s.message
        check_valid(s, units, deps, TRAP_BUDGET)
        again = solve_schedule(units, deps, TRAP_BUDGET, time_limit_s=5)
        assert again.assignment == s.assignment


@settings(max_examples=examples(40), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(dags(max_units=6, physical=3, max_passes=3))
def test_solver_matches_brute_force_on_tiny_graphs(problem):
    """On <= 6 units (3 physical stages, 3 passes, shared SRAM) CP-SAT finds the exhaustive optimum."""
    units, deps, budget = problem
    best = brute_force(units, deps, budget, budget.max_logical_stages)
    s = solve_schedule(units, deps, budget, time_limit_s=5)
    if best is None:
        assert not s.feasible
    else:
        assert s.feasible and s.num_stages == best, s.message
        check_valid(s, units, deps, budget)


# --- recirculation -----------------------------------------------------------------------

def test_recirculation_thirty_stages_on_twelve():
    """30 logical stages on pipe's 12: 3 passes, II x3, latency with 2 recirculation penalties."""
    units, deps = chain(30, "match")
    s = solve_schedule(units, deps, PIPE, time_limit_s=2)
    assert s.feasible and s.num_stages == 30 and s.passes == 3
    t = s.timing
    assert t.ii_cycles == 3 * t.ii_one_pass_cycles == 3
    assert t.throughput_factor == pytest.approx(1 / 3)
    assert t.recirc_penalty_cycles == 2 * 8
    assert t.latency_cycles == 5 + 3 * 12 * 4 + 2 * 8 + 2 == 167
    # the same numbers as the pipeline's own timing model (hw/pipeline/timing.py)
    model = TimingModel(TargetParams(), passes=3)
    assert t.latency_cycles == model.latency_cycles()
    assert t.ii_cycles == model.initiation_interval(64)
    assert stage_timing(30, PIPE, 1500).ii_cycles == model.initiation_interval(1500) == 24


def test_beyond_max_passes_is_infeasible_with_reason():
    """50 dependent stages need 5 passes of 12; pipe allows 4: infeasible, and says why."""
    units, deps = chain(50, "match")
    s = solve_schedule(units, deps, PIPE, time_limit_s=2)
    assert not s.feasible and s.status == STATUS_INFEASIBLE
    assert s.reason == ("needs 50 logical stages = 5 passes of 12, 'pipe' allows at most 4 "
                        "passes (48 logical stages)")
    assert s.greedy_stages == 50 and s.timing.passes == 5


def test_no_recirculation_target_rejects_a_second_pass():
    """Without recirculation 13 dependent stages do not fit 12 physical ones."""
    b = StageBudget(name="flat", capacity={"tables": 4}, physical_stages=12, stage_cycles=4)
    units, deps = chain(13, "match")
    s = solve_schedule(units, deps, b, time_limit_s=2)
    assert not s.feasible
    assert s.reason == "needs 13 logical stages, 'flat' has 12 stages and no recirculation"


# --- fallbacks and errors ----------------------------------------------------------------

def test_time_limit_falls_back_to_greedy():
    """A zero time limit leaves CP-SAT without a solution: greedy's schedule, and a message."""
    units, deps = suboptimal_for_greedy()
    s = solve_schedule(units, deps, SMALL, time_limit_s=0)
    assert s.status == STATUS_FALLBACK and s.feasible
    assert s.num_stages == s.greedy_stages == 3 and s.solver_stages is None
    assert "time limit" in s.message and "using the greedy schedule (3 stages)" in s.message


def test_solver_unavailable_falls_back_to_greedy(monkeypatch):
    """Without OR-Tools the greedy schedule is returned with a one-line message, no exception."""
    monkeypatch.setitem(sys.modules, "ortools.sat.python", None)
    units, deps = suboptimal_for_greedy()
    s = solve_schedule(units, deps, SMALL)
    assert s.status == STATUS_FALLBACK and s.num_stages == 3
    assert s.message.startswith("OR-Tools CP-SAT is not available")
    assert "\n" not in s.message


def test_unit_larger_than_a_stage_is_infeasible():
    """A table wanting more SRAM blocks than a stage has is named in the reason."""
    units = [table("big", "map flows", tables=1, sram_blocks=20)]
    s = solve_schedule(units, [], PIPE)
    assert not s.feasible
    assert s.reason == "unit 'big' (map flows): needs 20 sram_blocks, a stage of 'pipe' has 16"


@pytest.mark.parametrize(("units", "deps", "match"), [
    ([Unit("a", "table", {"bogus": 1})], [], "unit 'a': unknown resource 'bogus'"),
    ([Unit("a", "lut", {})], [], "unit 'a': unknown kind 'lut'"),
    ([table("a"), table("a")], [], "unit 'a': defined twice"),
    ([table("a")], [Dependency("a", "b", "match")], "dependency 'a' -> 'b': no unit 'b'"),
    ([table("a"), table("b")], [Dependency("a", "b", "data")], "unknown kind 'data'"),
    ([table("a"), table("b")], [Dependency("a", "b", "match"), Dependency("b", "a", "successor")],
     "dependency cycle among units a, b"),
])
def test_malformed_problem_raises(units, deps, match):
    """Unknown resources, kinds and units, duplicates and cycles raise ScheduleError."""
    with pytest.raises(ScheduleError, match=match):
        solve_schedule(units, deps, PIPE)
    assert issubclass(ScheduleError, MapperError)


# --- reports -----------------------------------------------------------------------------

def test_resource_log_json_and_table():
    """The JSON log has per-stage usage, totals and dependency latencies; the table renders."""
    units, deps = suboptimal_for_greedy()
    deps = deps + [Dependency("route", "acl", "reverse_match")]
    s = solve_schedule(units, deps, SMALL, time_limit_s=5)
    doc = json.loads(json.dumps(s.to_dict()))
    assert doc["stages_used"] == 2 and doc["greedy_stages"] == 2
    assert [st_["usage"]["sram_blocks"] for st_ in doc["stages"]] == [4, 4]
    assert doc["totals"]["tables"] == {"used": 3, "available": 16}
    assert {d["kind"]: d["latency_cycles"] for d in doc["dependencies"]} == {
        "successor": 1, "reverse_match": 0}
    out = io.StringIO()
    Console(file=out, width=160).print(resource_table(s))
    text = out.getvalue()
    assert "route table" in text and "4/4" in text and "total" in text


def test_dependency_latency_match_costs_more_than_action():
    """On pipe's 4-cycle stages a match dependency costs 4 cycles, an action dependency 2."""
    units, deps = chain(2, "match")
    s = solve_schedule(units, deps + [Dependency("t0", "t1", "action")], PIPE)
    lat = {d.kind: d.latency_cycles for d in s.dependencies}
    assert lat == {"match": 4, "action": 2}
    assert all(d.gap == 1 for d in s.dependencies)


def test_resource_table_shows_shared_memory_per_physical_stage():
    """With recirculation the SRAM cells add the physical stage's sum; labels print verbatim."""
    b = StageBudget(name="tiny", capacity={"tables": 4, "sram_blocks": 4}, physical_stages=2,
                    stage_cycles=4, recirc_allowed=True, recirc_cycles=8, max_passes=3)
    units = [table(f"t{i}", f"arr[{i}] += 1", tables=1, sram_blocks=2) for i in range(3)]
    deps = [Dependency("t0", "t1", "match"), Dependency("t1", "t2", "match")]
    out = io.StringIO()
    Console(file=out, width=160).print(resource_table(solve_schedule(units, deps, b)))
    text = out.getvalue()
    assert "arr[2] += 1" in text and "2/4 (4)" in text and "2/4 (2)" in text
    assert "3 logical stages, 2 passes" in text
