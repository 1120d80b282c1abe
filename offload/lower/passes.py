"""The lowering's pass machinery: named passes over one state, and the one fixed-point driver.

A lowering is a sequence of named passes (``run_passes``): each takes the state the earlier
ones left (the IR of ``offload.lower.ir``: ops, values, predicates, dependencies) and
changes it in place; ``trace`` records the names in the order they ran, so a test or a
debugging session can see which passes a program went through.

Every "do it again until nothing changes" loop of the compiler runs on ``fixed_point``:

- the mapper's rounds (``offload.mapper``): partition, lower; a construct the lowering could
  not express becomes a new reason to cut, and the program is partitioned again;
- the scheduling repairs (``offload.lower.compile_pipeline``): schedule, then add ordering
  dependencies for the per-stage limits the scheduler does not model, and schedule again;
- the container-pressure retry: allocate, and when the containers do not fit, reload late
  packet fields late and schedule once more.

``fixed_point(evaluate, refine, state, limit=N)`` evaluates ``state``, then asks ``refine``
for a better state given the result; it stops when ``refine`` answers None (a fixed point)
or after ``N`` refinements, and returns the last state evaluated with its result, so the
pair is always consistent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S")
R = TypeVar("R")


@dataclass(frozen=True)
class Fixpoint(Generic[S, R]):
    """What ``fixed_point`` ends with: the last state evaluated, its result, and the
    refinements made (``limit`` of them: the limit may have stopped it)."""

    state: S
    result: R
    refinements: int


def fixed_point(evaluate: Callable[[S], R], refine: Callable[[S, R], S | None], state: S,
                *, limit: int) -> Fixpoint[S, R]:
    """Evaluate, refine, evaluate again, until ``refine`` gives None or ``limit`` refinements."""
    refinements = 0
    while True:
        result = evaluate(state)
        if refinements >= limit:  # refine may change the IR: not asked past the limit
            return Fixpoint(state, result, refinements)
        nxt = refine(state, result)
        if nxt is None:
            return Fixpoint(state, result, refinements)
        state = nxt
        refinements += 1


@dataclass(frozen=True)
class Pass(Generic[S]):
    """A named step of the lowering: ``run(state)`` changes the state in place."""

    name: str
    run: Callable[[S], None]


def run_passes(passes: Iterable[Pass[S]], state: S, trace: list[str] | None = None) -> S:
    """Run ``passes`` in order over ``state``; their names go to ``trace`` as they run."""
    for p in passes:
        if trace is not None:
            trace.append(p.name)
        p.run(state)
    return state
