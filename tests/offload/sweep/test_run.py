"""offload sweep end to end: rows equal `offload sim` on the same point, reuse by content
hash, failed points as rows, a killed worker, an external dask scheduler."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from hw.targets import BUILTIN_DIR
from offload.cli import main
from offload.sweep.results import COLUMNS, read_table
from tests.conftest import ROOT, corpus_object
from tests.dask_cluster import external_dask

SPEC = """
programs = [{{object = "{obj}"}}]
targets = ["pipe", "host"]
traffic = ["64B@100G"]
packets = {packets}
seed = 3
host_cost = "model"
[params.pipe]
num_stages = [2, 12]
[params.host]
cores = [1, 3]
"""


def sweep(tmp_path: Path, name: str = "xdp_tx", packets: int = 3000, **extra) -> Path:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(obj=corpus_object(name), packets=packets))
    return spec


def sim_json(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "offload", "sim", *args, "--json"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(proc.stdout)


def test_rows_equal_offload_sim(tmp_path, capsys):
    """Every row's figures are what `offload sim` gives for that profile and point."""
    spec = sweep(tmp_path)
    assert main(["sweep", str(spec), "-o", str(tmp_path / "out"), "--workers", "2",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["points"] == 4 and summary["computed"] == 4 and summary["failed"] == 0
    rows = read_table(tmp_path / "out" / "results.parquet")
    assert len(rows) == 4 and set(rows[0]) == set(COLUMNS)
    for row in rows:
        missing = [c for c, v in row.items() if c != "error" and (
            v is None or (isinstance(v, float) and math.isnan(v)))]
        assert not missing, (row["target"], missing)
        params = json.loads(row["params"])
        if row["target"] == "pipe":
            doc = tomllib.loads((BUILTIN_DIR / "pipe.toml").read_text())
            doc["stages"]["count"] = params["num_stages"]
            prof = tmp_path / f"p{params['num_stages']}" / "pipe.toml"
            prof.parent.mkdir()
            prof.write_text(tomli_w.dumps(doc))
            ref = sim_json(row["object"], "--target", str(prof), "--traffic", "64B@100G",
                           "--packets", "3000", "--seed", "3", "--host-cost", "model")
            assert row["stages"] == ref["nic_cost"]["stages"]
            assert row["passes"] == ref["nic_cost"]["passes"]
            assert row["verdict"] == ref["nic_cost"]["verdict"] == "full"
        else:
            ref = sim_json(row["object"], "--target", "host", "--host-cores",
                           str(params["cores"]), "--traffic", "64B@100G", "--packets",
                           "3000", "--seed", "3", "--host-cost", "model")
            assert row["host_cores"] == params["cores"]
        m = ref["metrics"]
        assert row["achieved_mpps"] == pytest.approx(m["achieved"]["mpps"], rel=1e-12)
        assert row["p99_latency_ns"] == pytest.approx(m["latency_ns"]["p99"], rel=1e-12)
        assert row["lost"] == m["lost"]["total"]
    pipe = {json.loads(r["params"])["num_stages"]: r for r in rows if r["target"] == "pipe"}
    assert pipe[2]["passes"] > pipe[12]["passes"], "fewer stages, more passes"
    assert (tmp_path / "out" / "summary.md").read_text().count("| xdp_tx_prog |") == 4
    assert {Path(p).name for p in summary["plots"]} >= {"mpps_vs_num_stages.png",
                                                        "mpps_vs_cores.png",
                                                        "pareto_xdp_tx_prog.png"}


def test_second_run_reuses_and_recomputes_only_changes(tmp_path, capsys):
    """A second run computes nothing; a new traffic spec computes only its points."""
    spec = sweep(tmp_path, name="xdp_drop", packets=2000)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "-o", str(out), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["sweep", str(spec), "-o", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["computed"], again["reused"]) == (0, 4)
    assert [r["achieved_mpps"] for r in again["rows"]] == [
        r["achieved_mpps"] for r in first["rows"]]
    spec.write_text(spec.read_text().replace('["64B@100G"]', '["64B@100G", "128B@100G"]'))
    assert main(["sweep", str(spec), "-o", str(out), "--json"]) == 0
    third = json.loads(capsys.readouterr().out)
    assert (third["computed"], third["reused"], third["points"]) == (4, 4, 8)
    assert len(list((out / "points").glob("*.json"))) == 8


def test_failing_point_is_a_row(tmp_path, capsys):
    """A program the object lacks fails its points with the reason; the sweep completes."""
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
programs = [{{object = "{corpus_object('xdp_drop')}"}},
            {{object = "{corpus_object('xdp_drop')}", program = "no_such_prog"}}]
targets = ["host"]
traffic = ["64B@10G"]
packets = 1000
""")
    rc = main(["sweep", str(spec), "-o", str(tmp_path / "out"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert (summary["computed"], summary["failed"]) == (1, 1)
    bad = next(r for r in summary["rows"] if r["error"])
    assert "no_such_prog" in bad["error"] and "\n" not in bad["error"]
    assert len(read_table(tmp_path / "out" / "results.parquet")) == 2


def _worker_pids(parent: int) -> list[int]:
    """Dask's worker processes: the sweep's children started by multiprocessing spawn."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and "spawn_main" in cmd:
            pids.append(int(entry.name))
    return sorted(pids)


def test_killed_worker_sweep_completes_once(tmp_path):
    """SIGKILL to a worker mid-sweep: the sweep completes, every point present exactly once."""
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
programs = [{{object = "{corpus_object('xdp_drop')}"}}]
targets = ["host"]
traffic = ["64B@100G", "64B@40G", "64B@25G"]
packets = 150000
host_cost = "model"
[params.host]
cores = [1, 2, 3, 4]
""")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "offload", "sweep", str(spec), "-o",
                             str(out), "--workers", "2", "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 600  # a hang guard, not a speed assertion
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = len(list((out / "points").glob("*.json"))) if out.exists() else 0
            workers = _worker_pids(proc.pid)
            if done >= 1 and len(workers) == 2:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "the sweep ended before a worker could be killed"
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["points"] == 12 and summary["failed"] == 0
    rows = read_table(out / "results.parquet")
    keys = [r["key"] for r in rows]
    assert len(keys) == 12 and len(set(keys)) == 12
    assert len(list((out / "points").glob("*.json"))) == 12


def test_external_scheduler_gives_same_rows(tmp_path, capsys):
    """`dask scheduler` + `dask worker` started here: same rows as the LocalCluster run."""
    spec = sweep(tmp_path, name="xdp_drop", packets=2000)
    with external_dask(tmp_path) as address:
        assert main(["sweep", str(spec), "-o", str(tmp_path / "ext"), "--scheduler",
                     address, "--json"]) == 0
        ext = json.loads(capsys.readouterr().out)
    assert ext["engine"] == f"dask scheduler {address}" and ext["computed"] == 4
    assert main(["sweep", str(spec), "-o", str(tmp_path / "local"), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    drop = ("wall_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in ext["rows"]] == [
        {k: v for k, v in r.items() if k not in drop} for r in local["rows"]]


def test_one_scheduler_serves_report_and_regression(tmp_path):
    """offload report and the RTL regression run their work on the same scheduler."""
    drop, tx = corpus_object("xdp_drop"), corpus_object("xdp_tx")
    with external_dask(tmp_path) as address:
        rep = subprocess.run(
            [sys.executable, "-m", "offload", "report", str(drop), str(tx), "-o",
             str(tmp_path / "rep"), "--target", "pipe", "--no-sim", "--scheduler", address],
            capture_output=True, text=True, cwd=ROOT)
        rtl = subprocess.run(
            [sys.executable, "-m", "offload.regression", str(drop), "--packets", "8",
             "--results", str(tmp_path / "rtl"), "--junit", str(tmp_path / "j.xml"),
             "--summary", str(tmp_path / "s.md"), "--scheduler", address],
            capture_output=True, text=True, cwd=ROOT)
    assert rep.returncode == 0, rep.stderr
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc["engine"] == f"dask scheduler {address}"
    assert f"engine: dask scheduler {address}" in rep.stderr
    local = subprocess.run(
        [sys.executable, "-m", "offload", "report", str(drop), str(tx), "-o",
         str(tmp_path / "loc"), "--target", "pipe", "--no-sim", "--jobs", "1"],
        capture_output=True, text=True, cwd=ROOT, check=True)
    assert "engine: this process" in local.stderr
    loc = json.loads((tmp_path / "loc" / "report.json").read_text())
    assert [(r["program"], r["target"], r["verdict"]) for r in doc["comparison"]] == [
        (r["program"], r["target"], r["verdict"]) for r in loc["comparison"]]
    assert rtl.returncode == 0, rtl.stderr + rtl.stdout
    assert f"on dask scheduler {address}" in rtl.stdout
    assert json.loads(next((tmp_path / "rtl").glob("*.json")).read_text())["ok"] is True
