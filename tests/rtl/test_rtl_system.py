"""System tests: corpus programs mapped, loaded and run on pipe_top (offload.cosim).

Each co-simulation drives a random trace with its scenario's map state through the RTL
(idle cycles, back-pressure) and checks every output, verdict, punt and the final table and
register words against the pipeline model, the cycle counts against TimingModel, and the
model (+ host part) against the VM. ``make test`` runs SUBSET; ``make regression`` sets
``RTL_SYSTEM=all`` for every program that maps, and ``RTL_RESULTS=DIR`` to keep the result
files (DIR/<object stem>.<program>.json) for the summary table and the report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ebpf.loader.elf import load
from offload.cosim import cosim, prepare, simulate, write_result
from tests.conftest import CORPUS_NAMES, corpus_object
from tests.rtl.test_rtl_units import needs_sim

# Every program of the corpus; HOST_ONLY ones must be refused with a reason.
PROGRAMS = {
    "adjust_tail": ["xdp_adjust_tail"], "bpf2bpf_loop": ["xdp_bpf2bpf_loop"],
    "fib_router": ["xdp_fib_router"], "firewall": ["xdp_firewall"], "globals": ["xdp_globals"],
    "icmp_echo": ["xdp_icmp_echo"], "katran_lb": ["xdp_katran_lb"],
    "lpm_router": ["xdp_lpm_router"], "nat": ["xdp_snat"],
    "parser_counters": ["xdp_parser_counters"], "rate_limiter": ["xdp_rate_limiter"],
    "syn_flood": ["xdp_syn_flood"], "tail_call": ["xdp_dispatch", "xdp_tcp", "xdp_udp"],
    "xdp_drop": ["xdp_drop_prog"], "xdp_pass": ["xdp_pass_prog", "xdp_pass_frags"],
    "xdp_tx": ["xdp_tx_prog"],
}
HOST_ONLY = {("globals", "xdp_globals")}
# make test: a program with no stage, a partial one with punts, a two-pass one with rule
# tables (hash and LPM) and counters, one with per-CPU counters in 22 stages
SUBSET = {("xdp_drop", "xdp_drop_prog"), ("katran_lb", "xdp_katran_lb"),
          ("firewall", "xdp_firewall"), ("parser_counters", "xdp_parser_counters")}
FULL = os.environ.get("RTL_SYSTEM", "") == "all"
PACKETS = int(os.environ.get("RTL_PACKETS", "200" if FULL else "60"))
CASES = [(stem, prog) for stem, progs in PROGRAMS.items() for prog in progs
         if (stem, prog) not in HOST_ONLY and (FULL or (stem, prog) in SUBSET)]


def test_program_list_is_the_corpus() -> None:
    """PROGRAMS names every program of every corpus object (so none is left untested)."""
    assert sorted(PROGRAMS) == sorted(CORPUS_NAMES)
    for stem, progs in PROGRAMS.items():
        assert sorted(p.name for p in load(corpus_object(stem)).programs) == sorted(progs)


@needs_sim
@pytest.mark.parametrize(("stem", "program"), CASES, ids=[f"{s}:{p}" for s, p in CASES])
def test_system(stem: str, program: str, tmp_path: Path) -> None:
    """0 mismatches against model and VM, cycles per packet and II equal to TimingModel."""
    r = cosim(corpus_object(stem), program, packets=PACKETS, seed=1, workdir=tmp_path,
              quiet=True)
    if os.environ.get("RTL_RESULTS"):
        write_result(r, os.environ["RTL_RESULTS"])
    assert r.differences == [], r.differences[:5]
    assert r.vm_equivalence == "ok"
    assert r.mismatches == 0 and r.timing_mismatches == 0
    assert r.packets >= PACKETS  # the trace (none shorter than 14 bytes) + the timed batch
    assert r.vm_packets == r.packets - min(64, PACKETS)
    assert r.cycles_per_packet == r.model_cycles_per_packet > 0
    assert r.ii == r.model_ii >= r.passes
    assert r.mpps == pytest.approx(r.clock_mhz / r.ii)
    assert r.ok
    if stem == "firewall":  # its rule tables hold the scenario's entries: the trace hits them
        assert 0 < r.table_hits < r.vm_packets


@needs_sim
def test_bad_register_image_is_caught(tmp_path: Path) -> None:
    """A register word the RTL loads differently from the model shows in the final state:
    the state comparison is not vacuous."""
    job = prepare(corpus_object("parser_counters"), packets=20, workdir=tmp_path)
    stage, unit = next((s, u.unit) for s, st in enumerate(job.config.stages)
                       for u in st.stateful)
    hexfile = job.images / f"st{stage:02d}_r{unit}.hex"
    lines = hexfile.read_text().splitlines()
    first = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("//"))
    lines[first] = f"{int(lines[first], 16) ^ 0x5A5A:016x}"
    hexfile.write_text("\n".join(lines) + "\n")
    r = simulate(job, quiet=True)
    assert r.state_mismatches >= 1 and not r.ok
    assert any(f"stateful unit {unit} register" in d for d in r.differences), r.differences
    assert r.vm_equivalence == "ok"  # the model and the VM still agree: the RTL differs


@needs_sim
def test_bad_default_verdict_is_caught(tmp_path: Path) -> None:
    """An RTL whose deparser image says XDP_PASS where the model says XDP_DROP differs on
    every packet it decides (all but the punted, which the host runs): output mismatches
    are counted, not hidden."""
    job = prepare(corpus_object("xdp_drop"), packets=12, workdir=tmp_path, timed=4)
    dep = job.images / "deparser.hex"
    lines = dep.read_text().splitlines()
    first = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("//"))
    assert int(lines[first], 16) == 1  # XDP_DROP
    lines[first] = f"{2:08x}"
    dep.write_text("\n".join(lines) + "\n")
    r = simulate(job, quiet=True)
    sent = len(json.loads((tmp_path / "packets.json").read_text()))  # the long-enough ones
    assert r.packets == sent + 4  # + the 4 timed packets
    assert r.output_mismatches == r.packets - r.punted > 0 and not r.ok
    assert r.differences[0] == "packet 0: verdict 2 (expected 1)"


@needs_sim
def test_system_at_backpressure_099(tmp_path: Path) -> None:
    """At back-pressure 0.99 (and idle 0.5) the stall budget, derived from the cycle bound
    and the stimulus, lets the RTL finish: 0 mismatches, as at 0.2."""
    job = prepare(corpus_object("firewall"), "xdp_firewall", packets=24, seed=2,
                  workdir=tmp_path, idle=0.5, backpressure=0.99)
    r = simulate(job, quiet=True)
    assert r.differences == [], r.differences[:5]
    assert r.mismatches == 0 and r.timing_mismatches == 0 and r.ok
