"""`offload report`: bad input as one line with exit 2 and nothing written; atomic output."""

from __future__ import annotations

import json

import pytest

from offload.report.report_cmd import register
from tests.conftest import corpus_object
from tests.offload import cli_runner


@pytest.fixture
def run(monkeypatch, capsys):
    """Run `offload ...` in-process with the report subcommand registered."""
    return cli_runner(monkeypatch, capsys, register)


QUICK = ("--no-sim", "--trace-packets", "4", "--host-packets", "1", "--host-repeat", "2",
         "--target", "pipe")


def assert_nothing_written(folder):
    assert not [p.name for p in folder.iterdir() if p.name != "in"], list(folder.iterdir())


def test_help_prints(run):
    """report --help prints the options (a '%' in a default once crashed argparse)."""
    code, out, _ = run("report", "--help")
    assert code == 0 and "(default imix@100%)" in out and "--scheduler" in out


def test_unknown_target(run, tmp_path):
    """An unknown target: one line, exit 2, no output folder, no temporary left."""
    code, _, err = run("report", str(corpus_object("xdp_drop")), "-o", str(tmp_path / "r"),
                       "--target", "nosuch")
    assert code == 2 and err.count("\n") == 1 and "nosuch" in err
    assert_nothing_written(tmp_path)


def test_broken_elf(run, tmp_path):
    """A broken ELF among good ones: one line naming it, exit 2, nothing written."""
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / "broken.o"
    bad.write_bytes(b"\x7fELF" + bytes(60))
    code, _, err = run("report", str(corpus_object("xdp_drop")), str(bad), "-o",
                       str(tmp_path / "r"), *QUICK)
    assert code == 2 and err.count("\n") == 1 and "broken.o" in err
    assert_nothing_written(tmp_path)


def test_unwritable_output(run, tmp_path):
    """An output folder whose parent is a file, or a non-empty folder that is no report."""
    (tmp_path / "file").write_text("x")
    code, _, err = run("report", str(corpus_object("xdp_drop")), "-o",
                       str(tmp_path / "file" / "r"), *QUICK)
    assert code == 2 and err.count("\n") == 1
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    code, _, err = run("report", str(corpus_object("xdp_drop")), "-o", str(other), *QUICK)
    assert code == 2 and "holds no previous report" in err
    assert (other / "notes.txt").read_text() == "keep me"


def test_report_replaces_a_previous_report(run, tmp_path):
    """A second run replaces the first report whole; no temporary folders remain."""
    out = tmp_path / "r"
    obj = str(corpus_object("xdp_drop"))
    assert run("report", obj, "-o", str(out), *QUICK)[0] == 0
    first = json.loads((out / "report.json").read_text())
    assert [p["program"] for p in first["programs"]] == ["xdp_drop_prog"]
    (out / "stale.txt").write_text("from before")
    code, _, err = run("report", str(corpus_object("xdp_tx")), "-o", str(out), *QUICK)
    assert code == 0 and "index.html" in err
    second = json.loads((out / "report.json").read_text())
    assert [p["program"] for p in second["programs"]] == ["xdp_tx_prog"]
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_bad_sizes_is_a_usage_error(run, tmp_path):
    """--sizes must be frame sizes: argparse's usage error, one line, exit 2."""
    code, _, err = run("report", str(corpus_object("xdp_drop")), "-o", str(tmp_path / "r"),
                       "--sizes", "64,abc")
    assert code == 2 and err.count("\n") == 1 and "--sizes" in err


def test_worker_processes_give_the_same_programs(tmp_path):
    """--jobs 2 gathers in forked workers: the same programs, in the given order."""
    from offload.report import ReportOptions, run_report

    objs = [str(corpus_object(n)) for n in ("xdp_tx", "xdp_drop", "xdp_pass")]
    opts = ReportOptions(targets=("pipe",), simulate=False, trace_packets=4, host_packets=1,
                         host_repeat=2)
    doc = run_report(objs, str(tmp_path / "r"), opts, jobs=2, show_progress=False)
    assert [p["program"] for p in doc["programs"]] == [
        "xdp_tx_prog", "xdp_drop_prog", "xdp_pass_prog", "xdp_pass_frags"]


def test_stateful_programs_are_submitted_first():
    """The pool gets the programs heaviest first: those with maps (every simulated packet
    runs them: rate_limiter, katran_lb) before the stateless ones (xdp_tx, xdp_drop), the
    longer program first among equals; every program exactly once."""
    from offload.report import ReportOptions
    from offload.report.collect import plan
    from offload.report.report_cmd import submission_order

    names = ("xdp_tx", "rate_limiter", "xdp_drop", "katran_lb")
    specs = plan([str(corpus_object(n)) for n in names], ReportOptions()).programs
    order = [s.program for s in submission_order(specs)]
    assert sorted(order) == sorted(s.program for s in specs)
    assert order[:2] == ["xdp_katran_lb", "xdp_rate_limiter"]  # katran_lb is the longer
    assert set(order[2:]) == {"xdp_tx_prog", "xdp_drop_prog"}


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON"),
    (json.dumps({"packets": 20, "mismatches": 0, "cycles_per_packet": 55.0, "ii": 1}),
     "mpps: expected a number >= 0, got None"),
    (json.dumps({"packets": 20, "mismatches": -1, "cycles_per_packet": 55.0, "ii": 1,
                 "mpps": 250.0}), "mismatches: expected a number >= 0, got -1"),
])
def test_bad_rtl_result(run, tmp_path, content, message):
    """A bad RTL result file (not JSON, a key missing, a negative number): one line naming
    the file and what is wrong, exit 2, nothing written."""
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / "xdp_tx.xdp_tx_prog.json"
    bad.write_text(content)
    code, _, err = run("report", str(corpus_object("xdp_tx")), "-o", str(tmp_path / "r"),
                       "--rtl-results", str(tmp_path / "in"), *QUICK)
    assert code == 2 and err.count("\n") == 1, err
    assert str(bad) in err and message in err
    assert_nothing_written(tmp_path)


def test_non_xdp_programs_are_listed_as_skipped(run, tmp_path):
    """An object with tracepoint, tc and unknown-section programs: the report covers its
    two XDP programs (rows named object.program) and lists the others with the reason."""
    from tests.conftest import compile_bpf
    from tests.mixed_sections import MIXED_SOURCE

    obj = compile_bpf(tmp_path, MIXED_SOURCE, "mixed")
    code, _, err = run("report", str(obj), "-o", str(tmp_path / "r"), *QUICK)
    assert code == 0, err
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [p["id"] for p in doc["programs"]] == ["mixed.xdp_first", "mixed.xdp_second"]
    skipped = {s["program"]: s for s in doc["skipped"]}
    assert set(skipped) == {"trace_write", "tc_classify", "odd_one"}
    assert skipped["tc_classify"]["type"] == "sched_cls"
    assert "not one libbpf knows" in skipped["odd_one"]["reason"]
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "| mixed.xdp_first |" in summary and "Not analysed:" in summary


@pytest.mark.parametrize("jobs", [1, 2])
def test_one_failing_program_gets_a_row_and_the_rest_is_written(tmp_path, monkeypatch,
                                                                 jobs):
    """A program whose gathering fails (MemoryError in-process; a worker that dies with
    --jobs 2) gets a failed row naming it and why; the other programs are in the report."""
    import os

    from offload.report import ReportOptions, report_cmd, run_report

    real = report_cmd.collect_program

    def flaky(spec, *args, **kwargs):
        if spec.program == "xdp_drop_prog":
            if jobs == 1:
                raise MemoryError()
            os._exit(9)  # the worker dies as the OOM killer would end it
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(report_cmd, "collect_program", flaky)
    objs = [str(corpus_object(n)) for n in ("xdp_drop", "xdp_tx")]
    opts = ReportOptions(targets=("pipe",), simulate=False, trace_packets=4, host_packets=1,
                         host_repeat=2)
    out = tmp_path / "r"
    doc = run_report(objs, str(out), opts, jobs=jobs, show_progress=False)
    failed = {f["id"]: f for f in doc["failed"]}
    assert set(failed) == {"xdp_drop.xdp_drop_prog"}
    assert failed["xdp_drop.xdp_drop_prog"]["object"].endswith("xdp_drop.o")
    want = "out of memory" if jobs == 1 else "worker process died"
    assert want in failed["xdp_drop.xdp_drop_prog"]["reason"]
    assert [p["id"] for p in doc["programs"]] == ["xdp_tx.xdp_tx_prog"]
    summary = (out / "summary.md").read_text()
    assert "| xdp_drop.xdp_drop_prog | **failed**:" in summary
    assert json.loads((out / "report.json").read_text())["failed"][0]["reason"] == \
        failed["xdp_drop.xdp_drop_prog"]["reason"]


def test_loader_sized_map_takes_the_state_size(run, tmp_path):
    """A map sized by its loader: the report sizes it from --maps-dir's state file (the
    kernel's verifier accepts the sized load; the VM traces count the packets)."""
    from tests.conftest import compile_bpf
    from tests.ebpf.test_differential import LOADER_SIZED_SOURCE

    obj = compile_bpf(tmp_path, LOADER_SIZED_SOURCE, "sized")
    states = tmp_path / "states"
    states.mkdir()
    (states / "sized.json").write_text(json.dumps({"maps": {}, "max_entries": {"counts": 8}}))
    code, _, err = run("report", str(obj), "-o", str(tmp_path / "r"), "--maps-dir",
                       str(states), *QUICK)
    assert code == 0 and "failed" not in err, err
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert not doc.get("failed")
    prog = doc["programs"][0]
    assert prog["traces"]["error"] is None and prog["traces"]["packets"] > 0
    assert {f["target"]: f["final_verdict"] for f in prog["feasibility"]}["pipe"] == "full"
    from ebpf.kernel.load import bpf_permitted

    if bpf_permitted()[0]:
        assert prog["host"]["verifier"]["status"] == "accepted"
