"""`offload check`: the JSON shape, the table, and bad input as one line with exit 2."""

from __future__ import annotations

import json

import pytest

from offload.check_cmd import register
from tests.conftest import corpus_object
from tests.offload import cli_runner


@pytest.fixture
def run(monkeypatch, capsys):
    """Run `offload ...` in-process with the check subcommand registered."""
    return cli_runner(monkeypatch, capsys, register)


def test_json_shape(run):
    """--json gives the verdict and reasons with insn, file, line, what and fix."""
    code, out, _ = run("check", str(corpus_object("parser_counters")), "--target", "rmt",
                       "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["verdict"] in ("full", "partial", "host-only", "rejected")
    assert doc["verdict"] == "host-only" and doc["target"] == "rmt"
    assert {"program", "explanation", "reasons", "stats"} <= set(doc)
    for r in doc["reasons"]:
        assert {"insn", "file", "line", "what", "fix"} <= set(r)
        assert isinstance(r["insn"], int) and isinstance(r["line"], int)
    assert any(r["kind"] == "variable_offset" and r["file"].endswith("parser_counters.c")
               for r in doc["reasons"])
    assert {"insns", "reachable_insns", "nic_insns", "loops"} <= set(doc["stats"])


def test_program_option_and_full_verdict(run):
    """--program picks a program of the object; a program that fits has no reasons."""
    code, out, _ = run("check", str(corpus_object("tail_call")), "--program", "xdp_tcp",
                       "--target", "pipe", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["program"] == "xdp_tcp" and doc["verdict"] == "full"
    assert doc["reasons"] == []


def test_table_output(run):
    """Without --json: the verdict line, then one row per reason with file:line."""
    code, out, _ = run("check", str(corpus_object("fib_router")), "--target", "nfp")
    assert code == 0
    assert "xdp_fib_router on nfp: partial" in out
    assert "fib_router.c:55" in out and "bpf_fib_lookup" in out


@pytest.mark.parametrize("args, needle", [
    (["--target", "nope"], "unknown target 'nope'"),
    (["--program", "missing"], "no program named 'missing'"),
])
def test_bad_input_is_one_line_exit_2(run, args, needle):
    """An unknown target or program is one line on stderr and exit status 2."""
    code, out, err = run("check", str(corpus_object("xdp_tx")), *args)
    lines = err.strip().splitlines()
    assert code == 2 and out == ""
    assert len(lines) == 1 and lines[0].startswith("offload: error: ") and needle in lines[0]


def test_missing_object_is_one_line(run, tmp_path):
    """A missing object file is one line naming it, exit status 2."""
    code, _, err = run("check", str(tmp_path / "none.o"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "none.o" in err


def test_non_xdp_programs_are_refused_and_skipped(tmp_path):
    """check: the default is the first XDP program (the skipped ones on stderr); a tc
    program gets no XDP verdict, an unknown section is refused (exit 2, one line)."""
    import subprocess
    import sys

    from tests.conftest import ROOT, compile_bpf
    from tests.mixed_sections import MIXED_SOURCE

    obj = str(compile_bpf(tmp_path, MIXED_SOURCE, "mixed"))

    def check(*args):
        return subprocess.run([sys.executable, "-m", "offload", "check", obj, *args],
                              capture_output=True, text=True, cwd=ROOT)

    r = check()
    assert r.returncode == 0 and "xdp_first on pipe: full" in r.stdout
    assert "skipped: trace_write (tracepoint" in r.stderr
    r = check("--program", "tc_classify")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "sched_cls program (section 'tc'), not XDP" in r.stderr
    r = check("--program", "odd_one")
    assert r.returncode == 2 and "the kernel refuses to load it" in r.stderr
