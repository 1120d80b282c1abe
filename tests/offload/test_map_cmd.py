"""`offload map`: the report on screen and as JSON, the configuration file, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hw.pipeline import load_config
from offload.map_cmd import register
from tests.conftest import ROOT, corpus_object
from tests.offload import cli_runner


@pytest.fixture
def run(monkeypatch, capsys):
    """Run the command line with `map` registered (cli.py wires it in for real)."""
    return cli_runner(monkeypatch, capsys, register)


def test_json_report_has_the_documented_keys(run, tmp_path):
    """--json: stages, greedy_stages, solver_stages, recirculations, verdict,
    punted_fraction, reasons; -o writes a configuration that validates."""
    out = tmp_path / "tcp.json"
    status, stdout, _ = run("map", corpus_object("tail_call"), "--program", "xdp_tcp",
                            "--target", "pipe", "-o", out, "--json", "--time-limit", "3")
    assert status == 0
    doc = json.loads(stdout)
    for key in ("stages", "greedy_stages", "solver_stages", "recirculations", "verdict",
                "punted_fraction", "reasons", "equivalence", "resources", "cuts"):
        assert key in doc
    assert doc["verdict"] == "full" and doc["equivalence"]["ok"]
    assert doc["solver_stages"] <= doc["greedy_stages"]
    assert load_config(out).program == "xdp_tcp"


def test_table_report_names_verdict_stages_and_reasons(run):
    """The human report: verdict line, stages, punted share, equivalence, reasons."""
    status, stdout, _ = run("map", corpus_object("tail_call"), "--program", "xdp_dispatch")
    assert status == 0
    assert "xdp_dispatch on pipe: partial" in stdout
    assert "stages:" in stdout and "punted:" in stdout and "equivalence: holds" in stdout
    assert "tail_call" in stdout  # the reason: bpf_tail_call


def test_run_to_completion_target_reports_cost(run):
    """nfp: verdict and cost, no stages."""
    status, stdout, _ = run("map", corpus_object("xdp_tx"), "--target", "nfp", "--json")
    doc = json.loads(stdout)
    assert status == 0 and doc["cost"]["mpps_total"] > 0 and doc["stages"] is None


@pytest.mark.parametrize("argv,message", [
    (("--target", "nope"), "unknown target 'nope'"),
    (("--program", "nope"), "no program named 'nope'"),
])
def test_bad_input_is_one_line_exit_2(run, argv, message):
    """Unknown target or program: one line on stderr, exit status 2, no traceback."""
    status, _, err = run("map", corpus_object("tail_call"), *argv)
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_object_is_one_line(run, tmp_path):
    """An object that does not exist: one line, exit 2."""
    status, _, err = run("map", tmp_path / "missing.o")
    assert status == 2 and "cannot read" in err


def test_output_without_configuration_is_an_error(run, tmp_path):
    """-o for a host-only program: nothing to write, said in one line."""
    status, _, err = run("map", corpus_object("globals"), "-o", tmp_path / "g.json")
    assert status == 2 and "no configuration to write" in err


def _map_in_a_process(tmp_path, name: str, *extra: str) -> tuple[str, bytes]:
    """`python -m offload map` in its own process: stdout and the configuration written."""
    out = tmp_path / f"{name}.json"
    done = subprocess.run([sys.executable, "-m", "offload", "map",
                           str(corpus_object("parser_counters")), "--no-equivalence",
                           "--time-limit", "1", "-o", str(out), *extra],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return done.stdout.replace(str(out), "CONFIG"), out.read_bytes()


def test_two_runs_give_identical_output(tmp_path):
    """Same input, same mapping: parser_counters, where CP-SAT improves on greedy and stops
    at its time limit, mapped twice in separate processes gives the same report and the
    same configuration byte for byte (JSON: all but mapping_time_s, the wall clock)."""
    text1, config1 = _map_in_a_process(tmp_path, "a")
    text2, config2 = _map_in_a_process(tmp_path, "b")
    assert text1 == text2 and config1 == config2
    json1, config3 = _map_in_a_process(tmp_path, "c", "--json")
    json2, _ = _map_in_a_process(tmp_path, "d", "--json")
    doc1, doc2 = json.loads(json1), json.loads(json2)
    assert doc1["solver_status"] == "feasible"  # the search was cut by the time limit
    assert doc1["solver_stages"] < doc1["greedy_stages"]
    doc1.pop("mapping_time_s"), doc2.pop("mapping_time_s")
    assert doc1 == doc2 and config3 == config1
