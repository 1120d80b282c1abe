"""sim.reuse: one behaviour per program and traffic across the runs of a RunCache."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sim.scenario
from offload.sim_cost import mapped_nic_cost
from sim.model import TraceCost
from sim.reuse import traffic_digest, without_paths
from sim.scenario import Behaviour, RunCache, Scenario, prepare, run_behaviour, simulate
from sim.spec import parse_traffic
from sim.traffic import generate
from tests.conftest import ROOT, corpus_object

SCENARIOS = ROOT / "examples" / "xdp" / "scenarios"


def _same(a: Behaviour, b: Behaviour) -> None:
    assert a.klass.tolist() == b.klass.tolist()
    assert (a.verdicts, a.costs, a.packets, a.labels, a.counts) == \
        (b.verdicts, b.costs, b.packets, b.labels, b.counts)
    assert [t.path for t in a.traces] == [t.path for t in b.traces]


def _timeless(doc):
    """The report without the engine's own wall time (differs from run to run)."""
    if isinstance(doc, dict):
        return {k: _timeless(v) for k, v in doc.items() if k not in ("wall_s", "simulated_pps")}
    if isinstance(doc, list):
        return [_timeless(v) for v in doc]
    return doc


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = sim.scenario.run_behaviour

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(sim.scenario, "run_behaviour", counted)
    return calls


@pytest.mark.parametrize("stem", ["katran_lb", "rate_limiter", "lpm_router"])
def test_merged_paths_equal_a_run_without_paths(stem):
    """A behaviour split by path and then merged equals the run without paths, class for
    class (stateful, clock-reading and table programs of the corpus)."""
    sc = Scenario(program=str(corpus_object(stem)), maps=str(SCENARIOS / f"{stem}.json"),
                  traffic="imix@40G,flows=50", packets=400, seed=2, executor="vm")
    traffic = generate(parse_traffic(sc.traffic, line_rate_gbps=40), 400, 2,
                       line_rate_gbps=40)
    _same(without_paths(run_behaviour(sc, traffic, "vm", paths=True)),
          run_behaviour(sc, traffic, "vm", paths=False))


def test_merge_keeps_first_class_and_sums_counts():
    """Classes that differ only by path merge into the first of them (its packet, label
    and trace), with the counts summed and every packet's class renumbered in order."""

    class T:
        def __init__(self, path):
            self.path = path
    c1, c2 = TraceCost(insns=5, map_helpers=0, helpers=0), TraceCost(insns=7, map_helpers=1,
                                                                      helpers=1)
    beh = Behaviour(program="p", executor="vm", clock=False,
                    klass=np.array([0, 1, 2, 1, 0, 3], dtype=np.int32),
                    verdicts=[2, 2, 1, 2], costs=[c1, c2, c1, c1],
                    packets=[b"a", b"b", b"c", b"d"], labels=["A", "B", "C", "D"],
                    counts=[2, 2, 1, 1], traces=[T([0]), T([0, 1]), T([0, 2]), T([0, 3])])
    out = without_paths(beh)
    assert out.klass.tolist() == [0, 1, 2, 1, 0, 0]
    assert out.verdicts == [2, 2, 1] and out.costs == [c1, c2, c1]
    assert out.packets == [b"a", b"b", b"c"] and out.labels == ["A", "B", "C"]
    assert out.counts == [3, 2, 1] and [t.path for t in out.traces] == [[0], [0, 1], [0, 2]]
    assert beh.klass.tolist() == [0, 1, 2, 1, 0, 3]  # the cached one is not changed


def test_digest_reads_arrival_times_only_with_the_clock():
    """The same packets at another line rate: the same digest unless the clock is read."""
    spec = parse_traffic("64B@100%,flows=30", line_rate_gbps=40)
    slow = generate(spec, 300, 4, line_rate_gbps=40)
    fast = generate(parse_traffic("64B@100%,flows=30", line_rate_gbps=100), 300, 4,
                    line_rate_gbps=100)
    assert traffic_digest(slow, False) == traffic_digest(fast, False)
    assert traffic_digest(slow, True) != traffic_digest(fast, True)
    other = generate(spec, 300, 5, line_rate_gbps=40)
    assert traffic_digest(slow, False) != traffic_digest(other, False)


@pytest.mark.parametrize("stem", ["katran_lb", "rate_limiter"])
def test_shared_cache_gives_the_same_reports_with_fewer_runs(stem, monkeypatch):
    """nfp, hxdp, dpu, pipe and host on one traffic with one cache: every report equals
    the one with a fresh cache per run; the program runs once per line rate when it reads
    the clock (else once) for the runs without a mapped pipeline, and once per mapped
    pipeline run (its model shares the executor's maps)."""
    from ebpf.differential import uses_clock
    from ebpf.loader.elf import load

    base = dict(program=str(corpus_object(stem)), maps=str(SCENARIOS / f"{stem}.json"),
                traffic="imix@100%,flows=40", packets=500, seed=3, executor="vm",
                host_cost="model")
    targets = ["nfp", "hxdp", "dpu", "pipe", "host"]
    obj = load(base["program"])
    clock = any(uses_clock(p, obj) for p in obj.programs)

    def reports(shared: RunCache | None) -> tuple[list[str], int]:
        out, rates, beside = [], set(), 0
        for t in targets:
            prep = prepare(Scenario(target=t, **base), nic_cost_for=mapped_nic_cost,
                           cache=shared if shared is not None else RunCache())
            out.append(json.dumps(_timeless(simulate(prep, progress_enabled=False)),
                                  sort_keys=True, default=str))
            if prep.nic_cost is not None and prep.nic_cost.punt == "model":
                beside += 1
            else:
                rates.add(prep.target.line_rate_gbps if clock else 0)
        return out, len(rates) + beside
    fresh, expected = reports(None)
    calls = _counting(monkeypatch)
    assert reports(RunCache())[0] == fresh
    assert len(calls) == expected < len(targets)


def test_host_runs_share_the_nic_runs_behaviour(monkeypatch):
    """A host run (executor auto, timed in the kernel) after a DPU run on the same traffic
    takes the DPU run's behaviour (auto opens the compiled executor for a program that
    compiles): the program runs once, and both reports equal those of a cache without
    behaviours (the kernel timings shared so that both sides price the same ns)."""
    base = dict(program=str(corpus_object("katran_lb")),
                maps=str(SCENARIOS / "katran_lb.json"), traffic="imix@100%,flows=40",
                packets=500, seed=3)
    shared = RunCache()

    def reports(cache_for) -> list[str]:
        return [json.dumps(_timeless(simulate(prepare(Scenario(target=t, **base),
                                                      cache=cache_for()),
                                              progress_enabled=False)),
                           sort_keys=True, default=str)
                for t in ("dpu", "host")]
    calls = _counting(monkeypatch)
    reused = reports(lambda: shared)
    assert len(calls) == 1 and len(shared.behaviours) == 1
    calls.clear()
    fresh = reports(lambda: RunCache(host_ns=shared.host_ns))
    assert len(calls) == 2 and fresh == reused


def test_auto_stays_itself_where_the_compiled_code_refuses():
    """``auto`` on a program the compiled code refuses (bpf_loop) is not keyed as compiled
    (open_executor then opens the kernel or the VM); other kinds are keyed as they are."""
    from types import SimpleNamespace

    import tests.ebpf.vm.test_machine as vm_tests
    from ebpf.compiled import CompiledUnsupported, CompiledVm
    from ebpf.loader.elf import load
    from sim.reuse import reuse_kind

    looping = vm_tests.prog("mov %r1, 1\nmov %r2, 0\nmov %r3, 0\nmov %r4, 0\ncall 181\nexit")
    with pytest.raises(CompiledUnsupported):  # the oracle: the compiled VM refuses it
        CompiledVm([], looping)
    assert reuse_kind("auto", SimpleNamespace(programs=[looping])) == "auto"
    obj = load(str(corpus_object("katran_lb")))
    assert [reuse_kind(k, obj) for k in ("auto", "compiled", "vm", "kernel")] == \
        ["compiled", "compiled", "vm", "kernel"]
