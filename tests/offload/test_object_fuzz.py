"""Seeded mutants of the corpus objects through check and map (tests/ebpf/mutants.py):
the mutants that load get a verdict or one clean error line from the package errors the
command line reports (exit 2), never a traceback or a hang; each case runs bounded in
memory and time (tests/bounded.py). The loader and VM stages: tests/ebpf/loader/test_elf_fuzz.py.
"""

from __future__ import annotations

from functools import cache

from ebpf.errors import EbpfError
from ebpf.loader.elf import load_bytes
from offload.cli import USER_ERRORS
from offload.feasibility import check
from offload.mapper import map_program
from sim.packets import random_packets
from tests.bounded import failures, run_bounded
from tests.budget import examples
from tests.ebpf.loader.test_elf_fuzz import CASE_TIMEOUT_S, MEM_BYTES, SEED
from tests.ebpf.mutants import mutant


@cache
def _trace() -> list[bytes]:
    return random_packets(50, seed=1)


def _stage(index: int, what: str) -> str:
    try:
        obj = load_bytes(mutant(SEED, index)[1], "mutant.o")
    except EbpfError:
        return "not loaded"
    try:
        if what == "check":
            for target in ("pipe", "nfp"):
                check(obj, None, target)
        else:
            map_program(obj, "pipe", time_limit_s=2, packets=_trace())
    except USER_ERRORS as exc:
        assert str(exc) and "\n" not in str(exc).strip(), str(exc)
        return "error"
    return "ok"


def _check(index: int) -> str:
    return _stage(index, "check")


def _map(index: int) -> str:
    return _stage(index, "map")


def _report(outcomes):
    bad = failures(outcomes, {"ok", "error", "not loaded"})
    return [f"{mutant(SEED, o.index)[0]}: {o.kind}: {o.detail}" for o in bad[:10]]


def test_check_on_mutants():
    """check on pipe and nfp for a few hundred mutants: a verdict or one clean error."""
    n = examples(300)
    outcomes = run_bounded(_check, range(n), case_timeout_s=CASE_TIMEOUT_S,
                           mem_bytes=MEM_BYTES)
    assert _report(outcomes) == []
    assert sum(o.kind == "ok" for o in outcomes) > n // 3


def test_map_on_mutants():
    """map onto pipe (lowering, schedule, equivalence on 50 packets) for a few dozen
    mutants: a mapping or one clean error, within the per-case budget."""
    n = examples(60)
    outcomes = run_bounded(_map, range(10_000, 10_000 + n), case_timeout_s=4 * CASE_TIMEOUT_S,
                           mem_bytes=MEM_BYTES)
    assert _report(outcomes) == []
    assert sum(o.kind == "ok" for o in outcomes) > n // 3
