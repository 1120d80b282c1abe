"""offload.regression: results, the summary table, JUnit XML, reuse and exit status."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from offload.regression import main
from tests.conftest import corpus_object
from tests.rtl.test_rtl_units import needs_sim


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return [str(corpus_object("xdp_tx")), str(corpus_object("globals")), "--packets", "8",
            "--results", str(tmp_path / "results"), "--junit", str(tmp_path / "junit.xml"),
            "--summary", str(tmp_path / "summary.md"), *extra]


@needs_sim
def test_regression_outputs(tmp_path: Path, monkeypatch, capsys) -> None:
    """A run writes a result per co-simulated program, one JUnit case each (host-only
    programs are listed, not test cases), the Markdown summary; a reused result that
    differs makes the run fail and shows as FAIL and as a JUnit failure."""
    monkeypatch.setenv("RTL_BUILD_DIR", str(tmp_path / "build"))
    assert main(_args(tmp_path, "--jobs", "1")) == 0
    out = capsys.readouterr().out
    assert "1 programs co-simulated (16 packets), 1 host-only, 0 failed" in out
    result = tmp_path / "results" / "xdp_tx.xdp_tx_prog.json"
    doc = json.loads(result.read_text())
    assert doc["ok"] and doc["packets"] == 16 and doc["mismatches"] == 0
    summary = (tmp_path / "summary.md").read_text().splitlines()
    assert summary[2] == "| xdp_tx:xdp_tx_prog | 16 | 0 | 55.0 | 1.000 | 250.0 | 168 % | pass |"
    assert summary[3] == "| globals:xdp_globals | - | - | - | - | - | - | host-only |"
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["xdp_tx:xdp_tx_prog"]
    assert cases[0].find("failure") is None and suite.get("failures") == "0"

    doc.update(ok=False, mismatches=3, differences=["packet 1: verdict 2 (expected 3)"])
    result.write_text(json.dumps(doc))  # newer than the object and the RTL: reused
    assert main(_args(tmp_path, "--reuse")) == 1
    assert "0 failed" not in capsys.readouterr().out
    assert "| 3 |" in (tmp_path / "summary.md").read_text().splitlines()[2]
    assert (tmp_path / "summary.md").read_text().splitlines()[2].endswith("| FAIL |")
    failure = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == "packet 1: verdict 2 (expected 3)"


def test_regression_bad_object(tmp_path: Path, capsys) -> None:
    """A broken object: one line, exit status 2, nothing simulated."""
    bad = tmp_path / "broken.o"
    bad.write_bytes(b"\x7fELF" + bytes(40))
    assert main([str(bad), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err
    assert not (tmp_path / "r").exists()


def test_regression_bad_options(tmp_path: Path, capsys) -> None:
    """--packets 0 is bad input (one line, exit 2), not a program the mapper refused."""
    assert main(_args(tmp_path, "--packets", "0")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--packets" in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "junit.xml").exists()
