"""offload.lower.passes: the fixed-point driver and the named passes of the lowering."""

from __future__ import annotations

from ebpf.analysis import analyze
from ebpf.loader.elf import load
from hw.targets import load_target
from offload.lower import LOWER_PASSES, lower_program
from offload.lower.passes import Pass, fixed_point, run_passes
from tests.conftest import corpus_object


def halve(n: int) -> int | None:
    """Collatz-like refinement: halve even numbers, stop at odd ones."""
    return n // 2 if n % 2 == 0 else None


def test_fixed_point_stops_when_refine_has_nothing():
    """48 -> 24 -> 12 -> 6 -> 3: four refinements, the result belongs to the last state."""
    seen: list[int] = []
    fp = fixed_point(lambda n: seen.append(n) or n * 10, lambda n, r: halve(n), 48, limit=10)
    assert (fp.state, fp.result, fp.refinements) == (3, 30, 4)
    assert seen == [48, 24, 12, 6, 3]


def test_fixed_point_limit_never_refines_past_it():
    """With limit 2 the driver evaluates three states and never asks refine a third time."""
    asked: list[int] = []

    def refine(n: int, r: int) -> int | None:
        asked.append(n)
        return halve(n)

    fp = fixed_point(lambda n: -n, refine, 48, limit=2)
    assert (fp.state, fp.result, fp.refinements) == (12, -12, 2)
    assert asked == [48, 24]


def test_fixed_point_with_limit_zero_evaluates_once():
    """Limit 0: one evaluation, no refinement (the mapper's single round when capped)."""
    fp = fixed_point(lambda n: n + 1, lambda n, r: 1 / 0, 5, limit=0)
    assert (fp.state, fp.result, fp.refinements) == (5, 6, 0)


def test_run_passes_in_order_with_their_names():
    """Passes change the state in order; the trace names each as it runs."""
    state: list[str] = []
    trace: list[str] = []
    run_passes([Pass("a", lambda s: s.append("A")), Pass("b", lambda s: s.append("B"))],
               state, trace)
    assert state == ["A", "B"] and trace == ["a", "b"]


def test_corpus_lowering_runs_every_named_pass():
    """firewall lowers through translate and every pass of LOWER_PASSES, in order."""
    obj = load(corpus_object("firewall"))
    prog = obj.programs[0]
    low = lower_program(analyze(prog, obj), obj, prog, load_target("pipe"), set())
    assert low.ok, low.reasons
    assert low.passes == ["translate"] + [p.name for p in LOWER_PASSES]
    assert len(set(low.passes)) == len(low.passes) and low.units
