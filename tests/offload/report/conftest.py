"""A small report built once per session: three corpus programs, two NIC targets and the host,
short simulations, one RTL result file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from offload.report import ReportOptions, run_report
from tests.conftest import ROOT, corpus_object, require

SMALL_OBJECTS = ("xdp_drop", "firewall", "bpf2bpf_loop")
RTL_RESULT = {"packets": 500, "mismatches": 0, "cycles_per_packet": 14.5, "ii": 1,
              "mpps": 250.0, "engine": "icarus"}


def small_options(rtl: Path | None = None, **changes: Any) -> ReportOptions:
    """Few packets and sizes: a few seconds per program."""
    base = {"targets": ("pipe", "nfp"), "packets": 300, "sizes": (64, 1518),
            "trace_packets": 16, "host_packets": 2, "host_repeat": 10,
            "maps_dir": str(ROOT / "examples" / "xdp" / "scenarios"),
            "rtl_results": str(rtl) if rtl else None}
    base.update(changes)
    return ReportOptions(**base)


@pytest.fixture(scope="session")
def small_report(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """(report folder, document) of the three small programs."""
    base = tmp_path_factory.mktemp("report")
    rtl = base / "rtl"
    rtl.mkdir()
    (rtl / "xdp_drop_prog.json").write_text(json.dumps(RTL_RESULT))
    out = base / "out"
    objects = [str(corpus_object(n)) for n in SMALL_OBJECTS]
    doc = run_report(objects, str(out), small_options(rtl), jobs=1, show_progress=False)
    return out, doc


@pytest.fixture(scope="session")
def cosim_results(tmp_path_factory) -> Path:
    """A folder with one real RTL result: ``offload rtl``'s co-simulation of xdp_tx (20
    packets, about 10 s), written as ``offload rtl --results`` writes it."""
    require("simulator")
    from offload.cosim import cosim, write_result

    base = tmp_path_factory.mktemp("cosim")
    result = cosim(str(corpus_object("xdp_tx")), packets=20, quiet=True,
                   workdir=base / "work")
    write_result(result, base / "results")
    return base / "results"


@pytest.fixture(scope="session")
def rtl_report(cosim_results, tmp_path_factory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(report folder, document, the failing result) of xdp_tx (its real RTL result),
    xdp_drop (the same result marked failed: 3 output mismatches) and globals (host-only on
    pipe: no result), without simulation."""
    base = tmp_path_factory.mktemp("rtl-report")
    rtl = base / "rtl"
    rtl.mkdir()
    real = json.loads(next(cosim_results.glob("*.json")).read_text())
    (rtl / "xdp_tx.xdp_tx_prog.json").write_text(json.dumps(real))
    failed = {**real, "program": "xdp_drop_prog", "object": str(corpus_object("xdp_drop")),
              "ok": False, "mismatches": 3, "output_mismatches": 3,
              "differences": ["packet 4: output byte 12 is 0x08 (expected 0x86)"]}
    (rtl / "xdp_drop.xdp_drop_prog.json").write_text(json.dumps(failed))
    objects = [str(corpus_object(n)) for n in ("xdp_tx", "xdp_drop", "globals")]
    out = base / "out"
    doc = run_report(objects, str(out), small_options(rtl, targets=("pipe",), simulate=False),
                     jobs=1, show_progress=False)
    return out, doc, failed
