"""The mapper on the whole corpus and every target: verdicts, stages, punts, equivalence."""

from __future__ import annotations

import json
from functools import cache

import pytest

from ebpf.loader.elf import load
from hw.pipeline import load_config
from offload.errors import MapperError
from offload.mapper import ProgramLoadError, UnknownTargetError, map_program, write_config
from sim.packets import random_packets
from tests.conftest import corpus_object

TARGETS = ("pipe", "rmt", "nfp", "hxdp", "dpu", "host")
PIPELINES = ("pipe", "rmt")
F, P, H = "full", "partial", "host-only"
# One row per program: the mapped verdict on pipe, rmt, nfp, hxdp, dpu, host.
EXPECTED = {
    ("adjust_tail", "xdp_adjust_tail"): (F, P, F, F, F, F),
    ("bpf2bpf_loop", "xdp_bpf2bpf_loop"): (P, P, F, F, F, F),
    ("fib_router", "xdp_fib_router"): (P, P, P, P, F, F),
    ("firewall", "xdp_firewall"): (F, H, H, H, F, F),
    ("globals", "xdp_globals"): (H, H, H, F, F, F),
    ("icmp_echo", "xdp_icmp_echo"): (F, P, F, F, F, F),
    ("katran_lb", "xdp_katran_lb"): (P, P, P, P, F, F),
    ("lpm_router", "xdp_lpm_router"): (P, P, P, P, F, F),
    ("nat", "xdp_snat"): (P, P, P, F, F, F),
    ("parser_counters", "xdp_parser_counters"): (F, H, H, H, F, F),
    ("rate_limiter", "xdp_rate_limiter"): (P, P, P, F, F, F),
    ("syn_flood", "xdp_syn_flood"): (P, P, P, P, F, F),
    ("tail_call", "xdp_tcp"): (F, P, F, F, F, F),
    ("tail_call", "xdp_udp"): (F, P, F, F, F, F),
    ("tail_call", "xdp_dispatch"): (P, P, P, P, F, F),
    ("xdp_drop", "xdp_drop_prog"): (F, F, F, F, F, F),
    ("xdp_pass", "xdp_pass_prog"): (F, F, F, F, F, F),
    ("xdp_pass", "xdp_pass_frags"): (F, F, F, F, F, F),
    ("xdp_tx", "xdp_tx_prog"): (F, F, F, F, F, F),
}
CASES = [(name, prog, t) for (name, prog) in EXPECTED for t in TARGETS]


@cache
def report(name: str, program: str, target: str):
    """The report; pipelines on the specified trace (2000 packets), others on 300."""
    packets = None if target in PIPELINES else random_packets(300, seed=1)
    return map_program(corpus_object(name), target, program, time_limit_s=5, packets=packets)


@pytest.mark.parametrize("name,program,target", CASES)
def test_every_program_gets_a_verdict_with_reasons(name, program, target):
    """The verdict table holds, and every verdict but full comes with reasons."""
    r = report(name, program, target)
    assert r.verdict == EXPECTED[(name, program)][TARGETS.index(target)], r.explanation
    assert r.explanation
    if r.verdict != F:
        assert r.reasons
    doc = json.loads(json.dumps(r.to_dict()))
    for key in ("stages", "greedy_stages", "solver_stages", "recirculations", "verdict",
                "punted_fraction", "reasons"):
        assert key in doc


@pytest.mark.parametrize("name,program,target",
                         [c for c in CASES if c[2] in PIPELINES])
def test_mapped_programs_pass_equivalence_and_fit(name, program, target):
    """Full or partial on a pipeline means a configuration that validates, is equivalent
    to the VM on random_packets(2000, seed=1), fits the passes, and the solver is never
    above the list scheduler."""
    r = report(name, program, target)
    if r.verdict == H:
        assert r.config is None or r.equivalence is None or not r.equivalence["ok"]
        return
    assert r.equivalence["ok"], r.equivalence["failure"]
    assert r.equivalence["packets"] == 2000
    load_config(r.config)
    assert r.solver_stages is not None and r.solver_stages <= r.greedy_stages
    assert r.stages <= r.physical_stages * 4
    assert r.recirculations == max(0, -(-r.stages // r.physical_stages) - 1)
    assert 0.0 <= r.punted_fraction <= 1.0
    if r.verdict == P:
        assert r.punt_reasons.get("16", 0) > 0 or r.punted_fraction >= 0


@pytest.mark.parametrize("name,program", [("firewall", "xdp_firewall"),
                                          ("parser_counters", "xdp_parser_counters")])
def test_hand_mapped_programs_map_whole_automatically(name, program):
    """firewall and parser_counters, mapped by hand in examples/pipeline, map whole."""
    r = report(name, program, "pipe")
    assert r.verdict == F and r.punt_reasons == {"3": r.punted}


@pytest.mark.parametrize("target", ("nfp", "hxdp", "dpu", "host"))
def test_run_to_completion_targets_get_a_cost(target):
    """Run-to-completion targets: cost from hw.rtc over the trace's VM runs."""
    r = report("tail_call", "xdp_tcp", target)
    assert r.cost is not None and r.cost["mpps_total"] > 0
    assert r.stages is None and r.config is None


def test_write_config_and_images(tmp_path):
    """-o writes a document hw.pipeline.load_config reads; images go next to it."""
    r = report("xdp_tx", "xdp_tx_prog", "pipe")
    out = tmp_path / "tx.json"
    write_config(r, out, tmp_path / "img")
    assert load_config(out).program == "xdp_tx_prog"
    assert (tmp_path / "img" / "manifest.json").exists()
    with pytest.raises(MapperError, match="no configuration"):
        write_config(report("globals", "xdp_globals", "pipe"), out)


def test_bad_input_is_one_line_errors(tmp_path):
    """Unknown target, unloadable object, unknown program: MapperError subclasses."""
    with pytest.raises(UnknownTargetError, match="unknown target 'nope'"):
        map_program(corpus_object("xdp_tx"), "nope")
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"not an elf")
    with pytest.raises(ProgramLoadError):
        map_program(bad, "pipe")
    with pytest.raises(ProgramLoadError, match="no program named"):
        map_program(corpus_object("xdp_tx"), "pipe", "nope")


def test_largest_program_maps_in_seconds():
    """The largest corpus program maps (without the equivalence run) in well under a
    minute; bench/mapping_time.py gives the ratio to loading it."""
    sizes = []
    for (name, program) in EXPECTED:
        sizes.append((load(corpus_object(name)).get_program(program).num_slots, name, program))
    _, name, program = max(sizes)
    r = map_program(corpus_object(name), "pipe", program, equivalence=False, time_limit_s=5)
    assert r.verdict in (F, P) and r.mapping_time_s < 60


def test_trace_verdict_the_target_lacks_is_reported(tmp_path):
    """A map value of 4 returned as the verdict: not a static reason on nfp, but the
    mapper counts the trace packets that returned XDP_REDIRECT (the VM's verdicts)."""
    from tests.conftest import compile_bpf
    from tests.offload.test_feasibility import MAP_ACTION_SOURCE

    obj = compile_bpf(tmp_path, MAP_ACTION_SOURCE, "action")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"maps": {"actions": [{"key": "08000000",
                                                       "value": "04000000"}]}}))
    rep = map_program(obj, "nfp", "xdp_map_action", scenario=str(state))
    ipv4 = sum(1 for p in random_packets(2000, seed=1) if p[12:14] == b"\x08\x00")
    assert rep.verdict == "full"
    assert any(m.startswith(f"{ipv4} of 2000 trace packets returned XDP_REDIRECT (4)")
               for m in rep.messages), rep.messages


def test_mapping_leaves_the_recursion_limit_as_it_found_it():
    """The if-conversion raises Python's recursion limit for itself only: a mapping leaves the
    process's limit unchanged (readers rely on it to refuse absurdly nested input)."""
    import sys

    before = sys.getrecursionlimit()
    map_program(corpus_object("firewall"), "pipe", equivalence=False, time_limit_s=5)
    assert sys.getrecursionlimit() == before
