"""Nothing left behind (offload/cleanup.py): SIGTERM and SIGKILL of a report leave no
temporary folder and no worker process; a failed `offload rtl` leaves no work folder; files
get the user's umask; two reports into one folder take turns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, corpus_object

QUICK = ["--no-sim", "--trace-packets", "4", "--host-packets", "1", "--host-repeat", "2",
         "--target", "pipe"]
OBJECTS = ["firewall", "katran_lb", "nat", "parser_counters", "fib_router", "lpm_router"]


def _offload(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "offload", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _processes_naming(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmd and state != "Z":
            found.append(int(entry.name))
    return found


def _wait_for(predicate, timeout_s: float = 120.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_signal_during_report_leaves_no_folder_and_no_process(sig, tmp_path):
    """A report gathering in two workers is stopped by SIGTERM (exit 143) or SIGKILL: the
    temporary folders go (the watcher process removes them even after SIGKILL) and no
    worker outlives the command."""
    out = tmp_path / "rep"
    proc = _offload("report", *(str(corpus_object(n)) for n in OBJECTS), "-o", str(out),
                    "--jobs", "2", *QUICK)
    # wait until the workers run: the temporary folder exists and two forks carry our path
    assert _wait_for(lambda: any(p.name.startswith(".rep.tmp-") for p in tmp_path.iterdir())
                     and len(_processes_naming(str(out))) >= 3), proc.communicate()
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
    assert _wait_for(lambda: not _processes_naming(str(out)), 30), _processes_naming(str(out))
    assert _wait_for(lambda: list(tmp_path.iterdir()) == [], 30), list(tmp_path.iterdir())


def test_failed_rtl_leaves_no_work_folder(tmp_path):
    """`offload rtl` on a program that does not map: exit 2, one line, and its temporary
    work folder is gone."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = _offload("rtl", str(corpus_object("globals")), env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.glob("cosim-*"))


def test_output_files_get_the_umask(tmp_path):
    """asm -o and run --out create files 0666 & ~umask (not mkstemp's 0600)."""
    src = tmp_path / "p.s"
    src.write_text("mov32 %r0, 2\nexit\n")

    def umask_022():
        os.umask(0o022)

    for args, made in ((["asm", str(src), "-o", str(tmp_path / "p.bin")], "p.bin"),
                       (["run", str(corpus_object("xdp_tx")), "--random", "2", "--out",
                         str(tmp_path / "o.pcap")], "o.pcap")):
        proc = _offload(*args, preexec_fn=umask_022)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert (tmp_path / made).stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.pcap", "p.bin", "p.s"]


def test_two_reports_into_one_folder_take_turns(tmp_path):
    """Two reports written to one folder at once: both succeed, the folder holds one whole
    report (one of the two), nothing else is left."""
    out = tmp_path / "r"
    procs = [_offload("report", str(corpus_object(n)), "-o", str(out), *QUICK)
             for n in ("xdp_drop", "xdp_tx")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    doc = json.loads((out / "report.json").read_text())
    assert [p["program"] for p in doc["programs"]] in (["xdp_drop_prog"], ["xdp_tx_prog"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
