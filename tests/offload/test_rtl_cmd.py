"""`offload rtl`: the regression row on screen and as JSON, the result file, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offload.cli import main
from tests.conftest import corpus_object
from tests.rtl.test_rtl_units import needs_sim


@needs_sim
def test_offload_rtl_text(tmp_path: Path, capsys) -> None:
    """The table row, the model comparison, the VM line and the work directory."""
    rc = main(["rtl", str(corpus_object("katran_lb")), "--packets", "12", "--workdir",
               str(tmp_path / "w")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "RTL co-simulation on pipe (partial: 8 stages, 1 pass(es), 250 MHz)" in out
    row = next(line for line in out.splitlines() if "katran_lb:xdp_katran_lb" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[1:] == ["24", "0", "55.0", "1.000", "250.0", "168 %", "pass"], cells
    assert "cycles per packet 55.0 (model 55.0), II 1.000 (model 1.000)" in out
    assert "VM (kernel semantics), 12 packets: equivalent" in out
    assert (tmp_path / "w" / "sim.log").is_file()


@needs_sim
def test_offload_rtl_json(tmp_path: Path, capsys) -> None:
    """`offload rtl --json` prints the row's keys and writes the result file."""
    rc = main(["rtl", str(corpus_object("xdp_tx")), "--packets", "16", "--seed", "3",
               "--json", "--workdir", str(tmp_path / "w"), "--results", str(tmp_path / "r")])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["ok"]
    for key in ("packets", "mismatches", "cycles_per_packet", "ii", "mpps"):
        assert isinstance(doc[key], int | float), key
    assert doc["mismatches"] == 0 and doc["seed"] == 3 and doc["packets"] == 32
    saved = json.loads((tmp_path / "r" / "xdp_tx.xdp_tx_prog.json").read_text())
    assert saved == doc


@pytest.mark.parametrize(("args", "message"), [
    (["globals"], "does not map onto pipe"),
    (["xdp_drop", "--target", "nfp"], "the RTL implements the pipeline targets only"),
    (["xdp_drop", "--target", "nosuch"], "nosuch"),
    (["xdp_drop", "--program", "nosuch"], "no program named 'nosuch'"),
    (["xdp_drop", "--packets", "0"], "--packets: expected an integer in 1..1000000, got 0"),
    (["xdp_drop", "--packets", str(10**12)], "--packets: expected an integer in 1..1000000"),
    (["xdp_drop", "--seed", "-1"], "--seed: expected an integer in 0..4294967295, got -1"),
])
def test_offload_rtl_bad_input(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    """Bad input: one line naming the problem, exit status 2, no work directory left."""
    work = tmp_path / "w"
    rc = main(["rtl", str(corpus_object(args[0])), *args[1:], "--workdir", str(work)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not work.exists()


def test_offload_rtl_broken_object(tmp_path: Path, capsys) -> None:
    """A broken ELF: one line naming the file, exit status 2."""
    bad = tmp_path / "broken.o"
    bad.write_bytes(b"\x7fELF" + bytes(60))
    assert main(["rtl", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and len(err.splitlines()) == 1


@needs_sim
def test_offload_rtl_leaves_no_temporary_folder(tmp_path: Path, capsys, monkeypatch) -> None:
    """Without --workdir the images, build and log go into a temporary folder that is gone
    afterwards (they were ~22 MB per run in /tmp)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rc = main(["rtl", str(corpus_object("xdp_tx")), "--packets", "4"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "work directory removed" in out
    assert list(tmp_path.iterdir()) == []
