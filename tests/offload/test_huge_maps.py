"""A 32 M-entry array program through `offload diff`, `map` and `report`: map state is
sparse end to end, so each command stays under 2 GB of resident memory (the issue's bound;
with dense state `diff` reached 24 GB and was killed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ebpf.kernel.load import bpf_permitted
from tests.conftest import ROOT
from tests.huge_ring import RING_ENTRIES, build_ring

PERMITTED, REASON = bpf_permitted()
LIMIT_KB = 2 * 1024 * 1024  # 2 GB in ru_maxrss units (KiB)

# A fresh interpreter runs the command and reports RUSAGE_CHILDREN's ru_maxrss: the peak
# resident set of the command or of any process it waited for (report's workers).
_MEASURE = ("import resource, subprocess, sys\n"
            "r = subprocess.run([sys.executable, '-m', 'offload', *sys.argv[1:]],"
            " capture_output=True, text=True)\n"
            "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(r.returncode)\n")


def offload_peak(*args: str) -> tuple[subprocess.CompletedProcess, int]:
    """Run `offload ARGS`: (the result, its peak resident set in KiB)."""
    r = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True,
                       text=True, cwd=ROOT)
    *err, peak = r.stderr.rstrip("\n").split("\n")
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout, "\n".join(err)), \
        int(peak)


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    """The ring object (2 x 32 M-entry arrays) and its state file."""
    return build_ring(tmp_path_factory.mktemp("ring"))


@pytest.mark.skipif(not PERMITTED, reason=f"bpf(2) not usable: {REASON}")
def test_diff_on_a_32m_entry_array_under_2gb(ring):
    """diff: VM and kernel agree on 500 packets; the peak RSS is below 2 GB."""
    obj, state, _slots = ring
    r, peak = offload_peak("diff", str(obj), "--random", "500", "--maps", str(state), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["mismatches"] == 0 and doc["verdicts"]["vm"].get("XDP_DROP", 0) > 0
    assert peak < LIMIT_KB, f"peak RSS {peak} KiB"


def test_map_on_a_32m_entry_array_under_2gb(ring):
    """map --target rmt: the equivalence holds, the rings are cut for their size (named),
    and the peak RSS is below 2 GB."""
    obj, state, _slots = ring
    r, peak = offload_peak("map", str(obj), "--scenario", str(state), "--target", "rmt",
                           "--json", "--time-limit", "5")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["equivalence"]["ok"] is True
    what = " ".join(reason["what"] for reason in doc["reasons"])
    assert f"map 'ring' ({RING_ENTRIES} entries)" in what
    assert peak < LIMIT_KB, f"peak RSS {peak} KiB"


def test_report_on_a_32m_entry_array_under_2gb(ring, tmp_path):
    """report (pipe and host): written with a row for the ring program; peak RSS < 2 GB."""
    obj, state, _slots = ring
    r, peak = offload_peak("report", str(obj), "-o", str(tmp_path / "rep"), "--maps-dir",
                           str(state.parent), "--target", "pipe", "--no-sim",
                           "--trace-packets", "300", "--host-packets", "20")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert "xdp_ring" in json.dumps(doc)
    assert peak < LIMIT_KB, f"peak RSS {peak} KiB"
