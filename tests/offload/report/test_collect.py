"""offload.report.collect and .mapping: inputs checked up front, the evidence per program."""

from __future__ import annotations

import json
import sys
import types

import pytest

from ebpf.analysis import analyze
from ebpf.errors import ElfError
from ebpf.loader.elf import load
from hw.errors import TargetError
from hw.targets import load_target
from offload.errors import MapperError
from offload.feasibility import check
from offload.report import ReportError, mapping, plan
from offload.report.collect import (
    collect_program,
    read_rtl_result,
    resolve_targets,
)
from tests.conftest import ROOT, corpus_object
from tests.offload.report.conftest import RTL_RESULT, small_options


def test_plan_lists_every_program_with_unique_ids():
    """Each program of each object is one spec; tail_call has three."""
    p = plan([str(corpus_object("tail_call")), str(corpus_object("xdp_pass"))],
             small_options())
    assert [s.program for s in p.programs] == ["xdp_tcp", "xdp_udp", "xdp_dispatch",
                                               "xdp_pass_prog", "xdp_pass_frags"]
    assert len({s.id for s in p.programs}) == 5
    assert all(s.maps and s.maps.endswith(".json") for s in p.programs)


def test_plan_rejects_an_unknown_target():
    """An unknown target name is the profile loader's one-line TargetError."""
    with pytest.raises(TargetError, match="nosuch"):
        plan([str(corpus_object("xdp_drop"))], small_options(targets=("nosuch",)))


def test_plan_rejects_a_broken_elf(tmp_path):
    """A file that is not an ELF object is an ElfError naming it."""
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"not an object")
    with pytest.raises(ElfError, match="bad.o: not an ELF file"):
        plan([str(bad)], small_options())


def test_plan_rejects_missing_folders(tmp_path):
    """A missing map-state or RTL folder is a ReportError naming it."""
    obj = str(corpus_object("xdp_drop"))
    with pytest.raises(ReportError, match="map state folder not found"):
        plan([obj], small_options(maps_dir=str(tmp_path / "nope")))
    with pytest.raises(ReportError, match="RTL results folder not found"):
        plan([obj], small_options(rtl_results=str(tmp_path / "nope")))


def test_resolve_targets_always_adds_the_host():
    """Asking for pipe alone still simulates the host for comparison."""
    targets, _ = resolve_targets(["pipe"])
    assert [t.name for t in targets] == ["pipe", "host"]
    every, _ = resolve_targets([])
    assert [t.name for t in every].count("host") == 1


def test_rtl_result_read_and_checked(tmp_path):
    """A file with the five numbers alone (no verdict): ok, passed when nothing mismatched,
    the cosim fields null, other keys under extra; a bad value names the file and key."""
    good = tmp_path / "p.json"
    good.write_text(json.dumps(RTL_RESULT))
    doc = read_rtl_result(good)
    assert doc["status"] == "ok" and doc["cycles_per_packet"] == 14.5 and doc["passed"]
    assert doc["extra"] == {"engine": "icarus"}
    assert doc["output_mismatches"] is None and doc["vm_equivalence"] is None
    assert doc["label"] == "pass · 14.5 cyc · II 1" and doc["sort"] == 14.5
    assert doc["line_rate_share"] == pytest.approx(250.0 / 148.8095, rel=1e-5)
    bad = tmp_path / "q.json"
    bad.write_text(json.dumps({**RTL_RESULT, "mismatches": "none"}))
    with pytest.raises(ReportError, match="q.json: mismatches: expected a number"):
        read_rtl_result(bad)
    bad.write_text("{")
    with pytest.raises(ReportError, match="not JSON"):
        read_rtl_result(bad)


@pytest.mark.parametrize(("change", "message"), [
    ({"ii": -1}, r"ii: expected a number >= 0, got -1"),
    ({"cycles_per_packet": None}, r"cycles_per_packet: expected a number >= 0, got None"),
    ({"timing_mismatches": -2}, r"timing_mismatches: expected a number >= 0, got -2"),
    ({"ok": "yes"}, r"ok: expected true or false, got 'yes'"),
    ({"differences": "many"}, r"differences: expected a list of strings"),
    ({"program": "other_prog"}, r"program: expected 'xdp_tx_prog', got 'other_prog'"),
])
def test_rtl_result_rejects_bad_values(tmp_path, change, message):
    """Each bad value is one ReportError naming the file and the key."""
    f = tmp_path / "xdp_tx.xdp_tx_prog.json"
    f.write_text(json.dumps({**RTL_RESULT, "program": "xdp_tx_prog", **change}))
    with pytest.raises(ReportError, match=f"xdp_tx.xdp_tx_prog.json: {message}"):
        read_rtl_result(f, "xdp_tx_prog")


def test_rtl_result_of_a_failed_cosimulation(tmp_path):
    """ok false: not passed, labelled FAIL with its mismatches and sorted before passes; a
    failure without counted mismatches (the VM disagrees) is FAIL (VM)."""
    f = tmp_path / "r.json"
    f.write_text(json.dumps({**RTL_RESULT, "ok": False, "mismatches": 2,
                             "timing_mismatches": 1}))
    doc = read_rtl_result(f)
    assert not doc["passed"] and doc["label"] == "FAIL 3" and doc["sort"] == -3
    f.write_text(json.dumps({**RTL_RESULT, "ok": False, "vm_equivalence": "packet 3: verdict"
                             " 1 (expected 2)"}))
    assert read_rtl_result(f)["label"] == "FAIL (VM)"


def test_rtl_files_are_found_by_object_stem_and_program(tmp_path):
    """<stem>.<program>.json first (offload rtl --results), then <program>.json, then
    <stem>.json unless it is another program's."""
    obj = str(corpus_object("xdp_pass"))
    (tmp_path / "xdp_pass.xdp_pass_prog.json").write_text(json.dumps({**RTL_RESULT, "ii": 2}))
    (tmp_path / "xdp_pass_prog.json").write_text(json.dumps({**RTL_RESULT, "ii": 3}))
    (tmp_path / "xdp_pass.json").write_text(json.dumps({**RTL_RESULT, "ii": 4,
                                                        "program": "xdp_pass_prog"}))
    specs = {s.program: s for s in plan([obj], small_options(rtl_results=str(tmp_path))
                                        ).programs}
    assert specs["xdp_pass_prog"].rtl["ii"] == 2
    frags = specs["xdp_pass_frags"].rtl
    assert frags["status"] == "not run"
    assert "no xdp_pass.xdp_pass_frags.json (nor xdp_pass_frags.json)" in frags["reason"]
    (tmp_path / "xdp_pass.xdp_pass_prog.json").unlink()
    assert plan([obj], small_options(rtl_results=str(tmp_path))).programs[0].rtl["ii"] == 3
    (tmp_path / "xdp_pass_prog.json").unlink()
    assert plan([obj], small_options(rtl_results=str(tmp_path))).programs[0].rtl["ii"] == 4


def test_plan_checks_rtl_files_up_front(tmp_path):
    """A malformed RTL file for one of the programs fails the plan, before any work."""
    (tmp_path / "xdp_drop_prog.json").write_text("[]")
    with pytest.raises(ReportError, match="expected a JSON object"):
        plan([str(corpus_object("xdp_drop"))], small_options(rtl_results=str(tmp_path)))


def test_real_rtl_result_in_the_document(rtl_report, cosim_results):
    """offload rtl's result file is read whole; a failed one is not passed; a host-only
    program has none and the reason says why."""
    _, doc, failed = rtl_report
    real = json.loads(next(cosim_results.glob("*.json")).read_text())
    by = {p["program"]: p["rtl"] for p in doc["programs"]}
    tx = by["xdp_tx_prog"]
    assert tx["status"] == "ok" and tx["passed"] is True and real["ok"] is True
    for key in ("packets", "mismatches", "output_mismatches", "state_mismatches",
                "timing_mismatches", "cycles_per_packet", "model_cycles_per_packet", "ii",
                "model_ii", "mpps", "punted", "seed", "vm_equivalence", "differences"):
        assert tx[key] == real[key], key
    assert tx["source"].endswith("xdp_tx.xdp_tx_prog.json")
    assert tx["extra"] == {"waves": real["waves"]}
    assert tx["line_rate_share"] == pytest.approx(real["mpps"] / real["line_rate_mpps"])
    drop = by["xdp_drop_prog"]
    assert drop["passed"] is False and drop["label"] == "FAIL 3"
    assert drop["differences"] == failed["differences"]
    glob = by["xdp_globals"]
    assert glob["status"] == "not run"
    assert "host-only on pipe: nothing to put on the NIC" in glob["reason"]


def _classes(name: str, target: str):
    obj = load(corpus_object(name))
    prog = obj.programs[0]
    an = analyze(prog, obj)
    res = check(obj, prog.name, target, analysis=an)
    return an, res, mapping.derive_blocks(an, res)


def test_full_verdict_keeps_every_reachable_block_on_the_nic():
    """xdp_drop on pipe: every block is nic."""
    _, res, classes = _classes("xdp_drop", "pipe")
    assert res.verdict == "full"
    assert set(classes.values()) == {"nic"}


def test_partial_verdict_blocks_follow_the_reasons():
    """bpf2bpf_loop on pipe: punt blocks hold reason slots, nic blocks hold none, the entry
    stays on the NIC."""
    an, res, classes = _classes("bpf2bpf_loop", "pipe")
    assert res.verdict == "partial"
    bad = {s for r in res.reasons for s in r.insns}
    blocks = {b.start: b for b in an.cfg.iter_blocks()}
    assert classes[an.cfg.get_function(an.cfg.entry).entry] == "nic"
    for start, c in classes.items():
        held = bad & set(blocks[start].slots)
        assert bool(held) == (c == "punt"), (start, c)
    assert "host" in classes.values()


def test_host_only_verdict_puts_nothing_on_the_nic():
    """firewall on nfp (percpu_array counted on every path): no nic block."""
    _, res, classes = _classes("firewall", "nfp")
    assert res.verdict == "host-only"
    assert "nic" not in classes.values()


def test_mapper_unavailable_is_reported_with_the_reason(monkeypatch):
    """A mapper that raises MapperError: unavailable, with why (on one line: a newline in
    the message is shown escaped, ebpf.display)."""
    obj, pipe = load(corpus_object("xdp_drop")), load_target("pipe")

    def broken(*_args, **_kw):
        raise MapperError("lowering exploded\nsecond line")

    fake = types.ModuleType("offload.mapper")
    fake.map_program = broken
    monkeypatch.setitem(sys.modules, "offload.mapper", fake)
    view = mapping.ask_mapper(obj, "xdp_drop_prog", pipe)
    assert not view.available and view.reason == ("the mapper failed: lowering exploded"
                                                  "\\nsecond line")


def test_mapper_result_is_used_when_present(monkeypatch):
    """A mapper report with a schedule: stage map available, its verdict and reasons used,
    the simulator gets its stages and passes."""
    from offload.feasibility import Reason
    from offload.schedule import Unit, budget_from_target, greedy_schedule

    pipe = load_target("pipe")
    sched = greedy_schedule([Unit("t0", "table", {"tables": 1}, "flow_rules"),
                             Unit("g0", "gateway", {"gateways": 1})], [],
                            budget_from_target(pipe))
    seen = {}

    class Report:
        verdict, explanation = "partial", "the lowering cut slot 0"
        reasons = [Reason(0, None, None, "cannot lower this", "cut it", "lowering", (0,))]
        schedule, stages, passes, config = sched, 1, 1, None

        def to_dict(self):
            return {"verdict": self.verdict, "explanation": self.explanation,
                    "reasons": [r.to_dict() for r in self.reasons], "punted_fraction": 0.25,
                    "packets": 8, "stages": 1, "passes": 1, "config": {"big": "doc"}}

    def map_program(obj, target, program, **kw):
        seen.update(target=target.name, program=program, **kw)
        return Report()

    fake = types.ModuleType("offload.mapper")
    fake.map_program = map_program
    monkeypatch.setitem(sys.modules, "offload.mapper", fake)
    p = plan([str(corpus_object("xdp_drop"))], small_options(targets=("pipe",),
                                                                simulate=False))
    doc = collect_program(p.programs[0], p, permitted=(False, "test"))
    assert seen["target"] == "pipe" and seen["program"] == "xdp_drop_prog"
    assert seen["scenario"].endswith("xdp_drop.json")
    f = next(f for f in doc["feasibility"] if f["target"] == "pipe")
    assert f["verdict"] == "full" and f["final_verdict"] == "partial"
    assert f["final_source"] == "mapper" and f["blocks"]["punt"] == [0]
    assert f["punted_fraction"] == 0.25 and "mapper" in f["punted_source"]
    assert [r["kind"] for r in f["lowering_reasons"]] == ["lowering"]
    assert "config" not in f["mapper"]
    assert f["stage_map"]["available"] and f["stage_map"]["stages"][0]["usage"]["tables"] == 1
    cost = next(c for c in doc["costs"] if c["target"] == "pipe")
    assert cost["source"] == "mapper" and cost["mpps_total"] > 0


def test_nic_cost_follows_the_verdict_without_a_mapping():
    """Other NICs and unmapped pipelines: full punts nothing, host-only everything, partial
    the helpers rule; the source says where the cost came from."""
    nfp, pipe = load_target("nfp"), load_target("pipe")
    res = check(load(corpus_object("firewall")), None, nfp)
    cost = mapping.nic_cost(res, nfp)
    assert res.verdict == "host-only" and cost.punt == "all"
    assert cost.source.startswith("feasibility check: host-only on nfp")
    res = check(load(corpus_object("xdp_drop")), None, pipe)
    view = mapping.MapperView(False, "the mapper failed: boom")
    cost = mapping.nic_cost(res, pipe, view)
    assert cost.punt == "none" and "the mapper failed: boom" in cost.source
    assert cost.latency_cycles is None


def test_nic_cost_of_a_mapped_pipeline_is_the_simulators():
    """firewall on pipe (two passes): the simulator's mapped cost from the report's own
    MapReport, latency from TimingModel (physical stages per pass, not logical stages x
    passes), punts decided by the pipeline model."""
    from hw.pipeline import load_config
    from hw.pipeline.timing import TimingModel
    from sim.mapping import cost_from_report

    pipe = load_target("pipe")
    obj = load(corpus_object("firewall"))
    view = mapping.ask_mapper(obj, "xdp_firewall", pipe,
                              scenario=str(ROOT / "examples/xdp/scenarios/firewall.json"))
    assert view.available and view.result.passes == 2
    cost = mapping.nic_cost(check(obj, None, pipe), pipe, view)
    assert cost == cost_from_report(view.result, pipe)
    assert cost.punt == "model" and cost.config is view.result.config
    timing = TimingModel(load_config(view.result.config))
    assert cost.pipeline_latency_cycles(pipe) == timing.latency_cycles()
    logical = cost.passes * cost.stages * pipe.stages.latency_cycles
    assert timing.latency_cycles() < logical  # the old rule counted every logical stage
    assert cost.source.startswith(f"mapper: {cost.stages} stages, 2 passes, full")


def test_without_bpf_the_host_section_says_why():
    """permitted False: verifier not run, no timing, and the reason is kept."""
    p = plan([str(corpus_object("xdp_drop"))], small_options(targets=("pipe",),
                                                                simulate=False))
    doc = collect_program(p.programs[0], p, permitted=(False, "EPERM (test)"))
    assert doc["host"]["verifier"]["status"] == "not run"
    assert "EPERM (test)" in doc["host"]["verifier"]["message"]
    assert "measurement" not in doc["host"]
    host_cost = next(c for c in doc["costs"] if c["target"] == "host")
    assert host_cost["status"] == "ok" and host_cost["source"] == "model"
    assert doc["simulation"] is None


def test_small_report_document(small_report):
    """The session report: every program x target row, the RTL result where given."""
    _, doc = small_report
    assert doc["schema"] == "xdp-offload-report/1"
    assert [t["name"] for t in doc["targets"]] == ["pipe", "nfp", "host"]
    ids = [p["id"] for p in doc["programs"]]
    assert len(doc["comparison"]) == len(ids) * 3
    drop = next(p for p in doc["programs"] if p["program"] == "xdp_drop_prog")
    assert drop["rtl"]["status"] == "ok" and drop["rtl"]["mismatches"] == 0
    fw = next(p for p in doc["programs"] if p["program"] == "xdp_firewall")
    assert fw["rtl"]["status"] == "not run" and "xdp_firewall.json" in fw["rtl"]["reason"]
    sim = fw["simulation"]
    assert {(r["target"], r["size"]) for r in sim["sweep"]} == {
        (t, s) for t in ("pipe", "nfp", "host") for s in (64, 1518)}
    for r in sim["latency"]:
        cdf = r["latency_cdf"]
        assert cdf and cdf[-1][1] == 1.0
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(cdf, cdf[1:], strict=False))
    nfp = next(f for f in fw["feasibility"] if f["target"] == "nfp")
    assert nfp["verdict"] == "host-only" and nfp["punted_fraction"] == 1.0
    nfp_run = next(r for r in sim["sweep"] if r["target"] == "nfp" and r["size"] == 64)
    assert nfp_run["punted_fraction"] == 1.0  # a host-only program punts everything
