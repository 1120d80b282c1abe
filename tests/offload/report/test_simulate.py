"""offload.report.simulate: the report's runs use the mapped NIC cost and one shared cache."""

from __future__ import annotations

import numpy as np
import pytest

from ebpf.loader.elf import load
from hw.pipeline import load_config
from hw.pipeline.timing import TimingModel
from hw.targets import load_target
from offload.equivalence import initial_pipeline_state, load_scenario
from offload.mapper import map_program
from offload.report import plan
from offload.report.collect import collect_program
from sim.packets import random_packets
from sim.pcap import write_pcap
from sim.spec import parse_traffic
from sim.traffic import generate
from tests.conftest import ROOT, corpus_object
from tests.offload.report.conftest import small_options

KATRAN_STATE = str(ROOT / "examples" / "xdp" / "scenarios" / "katran_lb.json")
TRACE = 400
SEED = 1


@pytest.fixture(scope="module")
def katran(tmp_path_factory):
    """(document, latency traffic spec) of katran_lb on pipe, latency run on a capture of
    the scenario's own trace (random_packets(400, seed=1): some packets hit a VIP)."""
    pcap = tmp_path_factory.mktemp("katran") / "trace.pcap"
    write_pcap(pcap, random_packets(TRACE, seed=SEED))
    spec = f"pcap:{pcap}@100%"
    p = plan([str(corpus_object("katran_lb"))],
             small_options(targets=("pipe",), sizes=(64,), packets=TRACE, seed=SEED,
                           latency_traffic=spec))
    doc = collect_program(p.programs[0], p, permitted=(False, "not needed here"))
    return doc, spec


def test_partial_program_punts_what_the_pipeline_model_punts(katran):
    """katran_lb is partial on pipe: the report's run punts exactly the packets a separate
    PipelineModel of a fresh mapping punts when it sees every packet in order."""
    doc, spec = katran
    pipe = load_target("pipe")
    f = next(f for f in doc["feasibility"] if f["target"] == "pipe")
    assert f["final_verdict"] == "partial"
    run = next(r for r in doc["simulation"]["latency"] if r["target"] == "pipe")
    assert "error" not in run, run.get("error")
    assert run["nic_cost"]["punt"] == "model"
    obj = load(corpus_object("katran_lb"))
    report = map_program(obj, pipe, "xdp_katran_lb", scenario=KATRAN_STATE)
    model = initial_pipeline_state(obj, "xdp_katran_lb", report.config,
                                   load_scenario(KATRAN_STATE))
    traffic = generate(parse_traffic(spec, line_rate_gbps=pipe.line_rate_gbps), TRACE, SEED,
                       line_rate_gbps=pipe.line_rate_gbps)
    punted = np.array([model.process(traffic.reps[r]).punted for r in traffic.rep.tolist()],
                      dtype=bool)
    assert 0 < punted.sum() < len(punted)
    assert run["punted_packets"] == int(punted.sum())
    assert run["punted_fraction"] == pytest.approx(float(punted.mean()))
    assert run["metrics"]["finished_on"]["host"] >= int(punted.sum())


def test_pipe_latency_is_the_mapped_configurations(katran):
    """Every pipe run's latency is TimingModel's for the mapped configuration, and the
    source of the cost says it is the mapping's."""
    doc, _ = katran
    pipe = load_target("pipe")
    report = map_program(load(corpus_object("katran_lb")), pipe, "xdp_katran_lb",
                         scenario=KATRAN_STATE)
    latency = TimingModel(load_config(report.config)).latency_cycles()
    sim = doc["simulation"]
    assert sim["nic_cost"]["pipe"]["latency_cycles"] == latency
    assert sim["nic_cost_source"]["pipe"].startswith("mapper: ")
    runs = [r for r in sim["sweep"] + sim["latency"] if r["target"] == "pipe"]
    assert len(runs) == 2
    for r in runs:
        assert r["nic_cost"]["latency_cycles"] == latency
        assert r["nic_cost"]["source"].startswith("mapper: ")
        assert f"pipeline latency: {latency} cycles" in " ".join(r["assumptions"])


def test_one_cache_times_each_packet_once(katran):
    """The kernel times a class's packet once for all targets and runs of a program: no
    more packets than the classes of the runs."""
    doc, _ = katran
    sim = doc["simulation"]
    distinct = sum(r["classes"] for r in sim["sweep"] + sim["latency"])
    assert sim["kernel_timed_packets"] <= distinct


def test_runs_name_their_executor():
    """Every run of the report says what ran its packets: the VM when asked, and with auto
    the compiled code (the program compiles); the verdicts agree."""
    from offload.report.simulate import simulate_program

    host = load_target("host")
    args = (str(corpus_object("rate_limiter")), "xdp_rate_limiter",
            str(ROOT / "examples" / "xdp" / "scenarios" / "rate_limiter.json"), [host])
    kw = dict(packets=300, seed=2, sizes=(64,), latency_traffic="64B@10G,flows=4")
    vm = simulate_program(*args, executor="vm", **kw)
    auto = simulate_program(*args, **kw)
    runs = vm["sweep"] + vm["latency"]
    assert all(r["executor"] == "vm" for r in runs)
    assert all(r["executor"] == "compiled" for r in auto["sweep"] + auto["latency"])
    assert [r["metrics"]["verdicts"] for r in runs] == [
        r["metrics"]["verdicts"] for r in auto["sweep"] + auto["latency"]]


def test_steady_runs_last_the_simulators_run_length():
    """With no packet count every run lasts the simulator's default run length, keeps its
    steady-state window, and an overloaded host loses in that window what flow
    conservation says: offered minus achieved."""
    from hw.ethernet import LINE_RATE_100G_MPPS
    from offload.report.simulate import simulate_program
    from sim.scenario import DEFAULT_DURATION_NS

    host = load_target("host")
    assert host.line_rate_gbps == 100
    sim = simulate_program(str(corpus_object("xdp_pass")), "xdp_pass_prog", None, [host],
                           packets=None, seed=1, sizes=(64,))
    assert sim["packets"] is None
    runs = sim["sweep"] + sim["latency"]
    assert len(runs) == 2 and not any("error" in r for r in runs)
    for r in runs:
        assert r["metrics"]["duration_ns"] >= DEFAULT_DURATION_NS
        assert r["metrics"]["steady"]["converged"]
    steady = sim["sweep"][0]["metrics"]["steady"]
    assert sim["sweep"][0]["metrics"]["lost"]["total"] > 0
    assert steady["loss_fraction"] == pytest.approx(
        1 - steady["achieved_mpps"] / LINE_RATE_100G_MPPS, abs=0.01)


def test_packets_option_takes_steady():
    """`--packets steady` (the default) asks for the simulator's run length; a bad value is
    one line naming both forms, exit status 2."""
    import subprocess
    import sys

    from offload.report.report_cmd import _run_packets

    assert _run_packets("steady") is None
    assert _run_packets("4000") == 4000
    from offload.cli import build_parser  # steady is the default, not a transient of 4000

    args = build_parser().parse_args(["report", str(corpus_object("xdp_drop")), "-o", "x"])
    assert args.packets is None
    proc = subprocess.run([sys.executable, "-m", "offload", "report",
                           str(corpus_object("xdp_drop")), "-o", "/nonexistent/x",
                           "--packets", "lots"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "'lots'" in proc.stderr and "steady" in proc.stderr


def _without_times(doc):
    """A run document without what varies between measurements (the engines' wall times)."""
    if isinstance(doc, dict):
        return {k: _without_times(v) for k, v in doc.items()
                if k not in ("wall_s", "simulated_pps", "kernel_timed_packets")}
    if isinstance(doc, list):
        return [_without_times(v) for v in doc]
    return doc


@pytest.mark.parametrize("stem", ["katran_lb", "rate_limiter"])
def test_runs_equal_with_native_code_reused(stem, monkeypatch):
    """The report's runs of a program with every native function already built in the
    process (``ebpf.compiled.native``) equal the runs that build them, and build nothing
    again (the second run takes the first one's BPF_PROG_TEST_RUN timings)."""
    from ebpf.compiled import codegen, native
    from offload.report.simulate import simulate_program
    from sim.scenario import RunCache

    monkeypatch.setattr(native, "_BUILT", {})
    built = []
    orig = codegen.build_function
    monkeypatch.setattr(codegen, "build_function",
                        lambda *a: (built.append(a[2].name), orig(*a))[1])
    obj = load(corpus_object(stem))
    args = (str(corpus_object(stem)), obj.get_xdp_program().name,
            str(ROOT / "examples" / "xdp" / "scenarios" / f"{stem}.json"),
            [load_target("pipe"), load_target("nfp")])
    kw = dict(packets=300, seed=3, sizes=(64,), latency_traffic="imix@100%")
    first_cache = RunCache()
    cold = simulate_program(*args, cache=first_cache, **kw)
    assert built
    n = len(built)
    warm = simulate_program(*args, cache=RunCache(host_ns=first_cache.host_ns), **kw)
    assert len(built) == n
    assert _without_times(warm) == _without_times(cold)
