"""offload.regression: results, the summary table, JUnit XML, reuse and exit status."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

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


def test_names_are_escaped_in_junit_summary_and_table(tmp_path: Path, capsys) -> None:
    """Object and program names with control characters or markup: the JUnit XML parses
    (XML 1.0 cannot hold them raw), the Markdown rows stay whole, the table shows them
    as typed; all escaped by ebpf.display.printable."""
    from offload.regression import junit, markdown, print_table

    bad = {"object": "/x/lpm\x1b.o", "program": "ro\nte\x07", "packets": 4, "mismatches": 1,
           "cycles_per_packet": 55.0, "ii": 1.0, "mpps": 250.0, "line_rate_mpps": 148.8,
           "ok": False, "wall_s": 1.0, "differences": ["map 'ro\nte\x07' differs"],
           "vm_equivalence": "ok", "workdir": "w"}
    refused = {"object": "/x/g.o", "program": "[red]x", "refused": "host-only"}
    errored = {"object": "/x/e.o", "program": "p", "error": "e.o: map 'a\x1bb': bad"}
    results = [bad, refused, errored]
    junit(results, tmp_path / "junit.xml")
    raw = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert "\x1b" not in raw and "\x07" not in raw
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert [c.get("name") for c in suite.findall("testcase")] == ["lpm\\x1b:ro\\nte\\x07",
                                                                   "e:p"]
    assert suite.find("testcase/failure").get("message") == "map 'ro\\nte\\x07' differs"
    assert suite.find("testcase/error").get("message") == "e.o: map 'a\\x1bb': bad"
    rows = markdown(results).splitlines()
    assert len(rows) == 5
    assert rows[2].startswith("| lpm\\x1b:ro\\nte\\x07 | 4 | 1 |")
    assert rows[3] == "| g:[red]x | - | - | - | - | - | - | host-only |"
    print_table(results)
    out = capsys.readouterr().out
    assert "g:[red]x" in out and "lpm\\x1b:ro\\nte\\x07" in out and "\x1b" not in out


def test_stimulus_is_seeded_and_reaches_high_backpressure() -> None:
    """Each program's (idle, back-pressure) comes from the seed and its name: the same
    seed gives the same draw, values stay in 0..0.5 and 0..0.99, and over a few seeds the
    corpus runs at back-pressure above 0.9."""
    from offload.regression import stimulus

    draws = [stimulus(seed, stem, "p") for seed in range(1, 4)
             for stem in ("firewall", "katran_lb", "nat", "xdp_tx", "fib_router")]
    assert draws == [stimulus(seed, stem, "p") for seed in range(1, 4)
                     for stem in ("firewall", "katran_lb", "nat", "xdp_tx", "fib_router")]
    assert all(0 <= i <= 0.5 and 0 <= b <= 0.99 for i, b in draws)
    assert max(b for _, b in draws) > 0.9 and min(b for _, b in draws) < 0.5


def test_bounded_stimulus_scales_the_same_draw() -> None:
    """--max-backpressure (the report's results) keeps each program's seeded draw and
    scales its back-pressure into 0..P; idle is unchanged; out-of-range P is refused."""
    from offload.regression import MAX_BACKPRESSURE, REPORT_BACKPRESSURE, stimulus

    names = [(seed, stem) for seed in range(1, 4)
             for stem in ("firewall", "katran_lb", "nat", "xdp_tx", "fib_router")]
    full = [stimulus(seed, stem, "p") for seed, stem in names]
    bounded = [stimulus(seed, stem, "p", REPORT_BACKPRESSURE) for seed, stem in names]
    assert [i for i, _ in bounded] == [i for i, _ in full]
    assert all(0 <= b <= REPORT_BACKPRESSURE for _, b in bounded)
    for (_, b), (_, f) in zip(bounded, full, strict=True):
        assert b == pytest.approx(f * REPORT_BACKPRESSURE / MAX_BACKPRESSURE, abs=0.011)
    assert max(b for _, b in bounded) > 0.4  # still random back-pressure, not none


def test_max_backpressure_option_is_checked(tmp_path: Path, capsys) -> None:
    """--max-backpressure outside 0..0.99: one line, exit status 2, nothing written."""
    assert main(_args(tmp_path, "--max-backpressure", "1.5")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--max-backpressure" in err
    assert not (tmp_path / "results").exists()


@needs_sim
def test_result_records_its_stimulus(tmp_path: Path, monkeypatch) -> None:
    """The result file names the (idle, back-pressure) the program ran under: the bounded
    draw of its seed and name."""
    from offload.regression import stimulus

    monkeypatch.setenv("RTL_BUILD_DIR", str(tmp_path / "build"))
    args = [str(corpus_object("xdp_tx")), "--packets", "8", "--jobs", "1",
            "--results", str(tmp_path / "results"), "--junit", str(tmp_path / "j.xml"),
            "--summary", str(tmp_path / "s.md"), "--max-backpressure", "0.3"]
    assert main(args) == 0
    doc = json.loads((tmp_path / "results" / "xdp_tx.xdp_tx_prog.json").read_text())
    assert (doc["idle"], doc["backpressure"]) == stimulus(1, "xdp_tx", "xdp_tx_prog", 0.3)
    assert doc["ok"] and 0 <= doc["backpressure"] <= 0.3


def test_longest_expected_runs_go_first() -> None:
    """The co-simulations are handed out by their expected stall factor, largest first
    (1 / ((1 - idle)(1 - back-pressure)) of each program's seeded draw), all of them once."""
    from offload.regression import longest_first, stimulus

    todo = [(Path(f"/x/{stem}.o"), "p") for stem in
            ("firewall", "katran_lb", "nat", "xdp_tx", "fib_router", "lpm_router")]
    options = {"seed": 1, "max_backpressure": 0.99}
    order = longest_first(todo, options)
    assert sorted(order) == sorted(todo)
    factors = [1 / ((1 - i) * (1 - b)) for i, b in
               (stimulus(1, o.stem, p, 0.99) for o, p in order)]
    assert factors == sorted(factors, reverse=True) and factors[0] > factors[-1]
