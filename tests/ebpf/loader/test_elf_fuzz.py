"""Seeded mutants of the corpus objects through the loader and a short VM run: every
outcome is a load (or a run) or one clean ``EbpfError`` line naming the file; nothing
crashes, hangs or allocates what a field merely declares (tests/bounded.py runs the cases
in a child with a memory limit and a per-case watchdog; tests/ebpf/mutants.py makes them).
"""

from __future__ import annotations

import os

from ebpf.differential import Scenario, VmSide
from ebpf.errors import EbpfError
from ebpf.loader.elf import load_bytes
from sim.packets import random_packets
from tests.bounded import failures, run_bounded
from tests.budget import examples
from tests.ebpf.mutants import mutant

SEED = int(os.environ.get("FUZZ_SEED", "17"))
CASE_TIMEOUT_S = 10.0  # a budget against hangs (cases take milliseconds), not a speed test
MEM_BYTES = 1 << 30


def _clean(exc: EbpfError) -> str:
    text = str(exc)
    assert text.startswith("mutant.o: ") and "\n" not in text, text
    return "error"


def _load(index: int) -> str:
    try:
        load_bytes(mutant(SEED, index)[1], "mutant.o")
    except EbpfError as exc:
        return _clean(exc)
    return "ok"


def _vm_run(index: int) -> str:
    try:
        obj = load_bytes(mutant(SEED, index)[1], "mutant.o")
    except EbpfError:
        return "not loaded"
    try:
        vm = VmSide(obj, None, Scenario(), cpus=2)
        for packet in random_packets(8, seed=index):
            vm.run(packet)
        vm.dump()
    except EbpfError as exc:
        assert "\n" not in str(exc), str(exc)
        return "error"
    return "ok"


def _report(outcomes, accepted):
    bad = failures(outcomes, accepted)
    return [f"{mutant(SEED, o.index)[0]}: {o.kind}: {o.detail}" for o in bad[:10]]


def test_loader_mutants_load_or_fail_cleanly():
    """A few thousand mutants of the corpus (BTF, symbols, relocations, section headers,
    maps, code): each loads or is one ElfError line naming the file; 0 crashes, 0 hangs."""
    n = examples(3000)
    outcomes = run_bounded(_load, range(n), case_timeout_s=CASE_TIMEOUT_S, mem_bytes=MEM_BYTES)
    assert len(outcomes) == n
    assert _report(outcomes, {"ok", "error"}) == []
    kinds = {o.kind for o in outcomes}
    assert kinds == {"ok", "error"}  # the mutants reach both outcomes


def test_vm_runs_mutants_that_load():
    """The mutants that load run 8 packets on the VM and dump their maps: a verdict or one
    VmError line each; no crash, hang or declared-size allocation."""
    n = examples(300)
    outcomes = run_bounded(_vm_run, range(n), case_timeout_s=CASE_TIMEOUT_S,
                           mem_bytes=MEM_BYTES)
    assert _report(outcomes, {"ok", "error", "not loaded"}) == []
    assert sum(o.kind == "ok" for o in outcomes) > n // 3
